//! Values that must never reach a log: tokens, keys, and the password inside
//! a database URL. Their `Debug` hides them.

use std::fmt;

/// A secret string. `Debug` prints `Secret([redacted])`; the value is read
/// with [`Secret::expose`] where it is used, and nowhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// An Airtable token: opaque, but one word without spaces.
    pub(super) fn parse_token(raw: &str) -> Result<Secret, String> {
        if raw.chars().any(char::is_whitespace) {
            return Err("must be a single token without spaces".to_owned());
        }
        Ok(Secret::new(raw))
    }

    /// A bearer token of our own (`METRICS_TOKEN`): one word, long enough
    /// that it cannot be guessed.
    pub(super) fn parse_bearer_token(raw: &str) -> Result<Secret, String> {
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be a single token without spaces".to_owned());
        }
        if raw.len() < 24 {
            return Err(format!("must be at least 24 bytes long, got {}", raw.len()));
        }
        Ok(Secret::new(raw))
    }

    /// A base64 value (standard alphabet, padding optional).
    pub(super) fn parse_base64(raw: &str) -> Result<Secret, String> {
        let body = raw.trim_end_matches('=');
        let valid = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
            && raw.len() - body.len() <= 2;
        if valid {
            Ok(Secret::new(raw))
        } else {
            Err("must be base64 (the webhook's macSecretBase64)".to_owned())
        }
    }

    /// A signing key for tokens: long enough that it cannot be guessed.
    pub(super) fn parse_jwt_secret(raw: &str) -> Result<Secret, String> {
        if raw.len() < 32 {
            return Err(format!("must be at least 32 bytes long, got {}", raw.len()));
        }
        Ok(Secret::new(raw))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A PostgreSQL connection URL. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://` and `postgresql://` URLs with a host.
    pub fn parse(raw: &str) -> Result<DatabaseUrl, String> {
        let url = url::Url::parse(raw).map_err(|err| format!("is not a valid URL ({err})"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "must start with postgres:// or postgresql://, got {}://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host, e.g. postgres://user@localhost:5432/airsync".to_owned());
        }
        Ok(DatabaseUrl(raw.to_owned()))
    }

    /// The full URL, password included, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&airsync_db::redact_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}
