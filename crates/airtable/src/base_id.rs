//! An Airtable base id, checked once where it enters the process and then
//! carried as a type through the worker, the inbound sync, the coaching
//! API's Airtable backend and this client.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// An Airtable base id: `app` and 14 letters or digits
/// (`appXXXXXXXXXXXXXX`).
///
/// Built from outside input with [`BaseId::parse`] (or `str::parse`), which
/// says what is wrong with a bad id; a constant in code with
/// [`BaseId::from_static`], which is checked when the program is compiled:
///
/// ```
/// use airsync_airtable::BaseId;
///
/// const DEMO: BaseId = BaseId::from_static("appDEMOCOACHBASE1");
/// assert_eq!(DEMO.as_str(), "appDEMOCOACHBASE1");
/// assert_eq!("appDEMOCOACHBASE1".parse::<BaseId>().unwrap(), DEMO);
/// assert!(BaseId::parse("tblDEMOCOACHBASE1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaseId(Cow<'static, str>);

/// A string that is not an Airtable base id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an Airtable base id: \"app\" and 14 letters or digits, got {0:?}")]
pub struct InvalidBaseId(pub String);

impl BaseId {
    /// Checks the shape of a base id.
    pub fn parse(raw: &str) -> Result<BaseId, InvalidBaseId> {
        if is_base_id(raw) {
            Ok(BaseId(Cow::Owned(raw.to_owned())))
        } else {
            Err(InvalidBaseId(raw.to_owned()))
        }
    }

    /// A base id written in the code; a malformed one fails the build when
    /// used in a `const`, and panics otherwise.
    pub const fn from_static(id: &'static str) -> BaseId {
        assert!(
            is_base_id(id),
            "an Airtable base id is \"app\" and 14 letters or digits"
        );
        BaseId(Cow::Borrowed(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const fn is_base_id(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.len() != 17 || bytes[0] != b'a' || bytes[1] != b'p' || bytes[2] != b'p' {
        return false;
    }
    let mut at = 3;
    while at < bytes.len() {
        if !bytes[at].is_ascii_alphanumeric() {
            return false;
        }
        at += 1;
    }
    true
}

impl FromStr for BaseId {
    type Err = InvalidBaseId;

    fn from_str(raw: &str) -> Result<BaseId, InvalidBaseId> {
        BaseId::parse(raw)
    }
}

impl fmt::Display for BaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for BaseId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for BaseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<BaseId, D::Error> {
        let raw = String::deserialize(deserializer)?;
        BaseId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for BaseId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_id_is_app_and_fourteen_letters_or_digits() {
        assert!(BaseId::parse("appABCDEFGHIJ0123").is_ok());
        for bad in [
            "",
            "app",
            "appABCDEFGHIJ012",
            "appABCDEFGHIJ01234",
            "tblABCDEFGHIJ0123",
            "APPABCDEFGHIJ0123",
            "appABCDEFGHIJ012-",
            "appABCDEFGHIJ01é",
            "app/../../v0/meta",
        ] {
            let err = BaseId::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("\"app\" and 14 letters or digits"));
        }
    }

    #[test]
    fn a_parsed_id_equals_the_same_constant() {
        const ID: BaseId = BaseId::from_static("appABCDEFGHIJ0123");
        let parsed: BaseId = "appABCDEFGHIJ0123".parse().unwrap();
        assert_eq!(parsed, ID);
        assert_eq!(parsed.to_string(), "appABCDEFGHIJ0123");
    }

    #[test]
    fn a_base_id_reads_and_writes_as_a_json_string_and_a_bad_one_is_refused() {
        let id: BaseId = serde_json::from_str("\"appABCDEFGHIJ0123\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"appABCDEFGHIJ0123\"");
        let err = serde_json::from_str::<BaseId>("\"tbl1\"").unwrap_err();
        assert!(
            err.to_string().contains("\"app\" and 14 letters or digits"),
            "{err}"
        );
    }
}
