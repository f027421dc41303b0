//! Text inputs: emails, passwords, names and notes.

use std::fmt;

use serde::Serialize;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::schema;

/// An email address, trimmed; compared case-insensitively everywhere.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses an address: something, one `@`, something, no spaces; the
    /// same rule as the `users_pg_email_format` constraint.
    pub fn parse(raw: &str) -> Result<Email, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if trimmed.chars().count() > 320 {
            return Err("must be at most 320 characters".into());
        }
        let mut parts = trimmed.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) => (local, domain),
            _ => return Err("must be an email address".into()),
        };
        if local.is_empty() || domain.is_empty() || trimmed.chars().any(char::is_whitespace) {
            return Err("must be an email address".into());
        }
        Ok(Email(trimmed.to_owned()))
    }

    /// The address as typed (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that login throttling and lookups use.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A new password: 10 to 1024 characters. The upper bound keeps hashing
/// cheap enough that a long input cannot be used to burn CPU.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The rule for a password being set.
    pub fn parse_new(raw: &str) -> Result<Password, String> {
        let length = raw.chars().count();
        if length < 10 {
            return Err("must be at least 10 characters".into());
        }
        if length > 1024 {
            return Err("must be at most 1024 characters".into());
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".into());
        }
        Ok(Password(raw.to_owned()))
    }

    /// A password presented at login: only the upper bound applies, so that a
    /// user whose password predates the rules can still sign in.
    pub fn parse_presented(raw: &str) -> Result<Password, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > 1024 {
            return Err("must be at most 1024 characters".into());
        }
        Ok(Password(raw.to_owned()))
    }

    /// The clear text, for hashing and verifying only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A name: trimmed, not blank, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Name, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be blank".into());
        }
        if trimmed.chars().count() > 200 {
            return Err("must be at most 200 characters".into());
        }
        Ok(Name(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Free text (notes, remarks, descriptions): at most 5000 characters; may be
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct Notes(String);

impl Notes {
    pub fn parse(raw: &str) -> Result<Notes, String> {
        if raw.chars().count() > 5000 {
            return Err("must be at most 5000 characters".into());
        }
        Ok(Notes(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        schema::text(
            "An email address, compared without regard to case.",
            1,
            320,
            "ann@example.com",
        )
    }
}

impl ToSchema for Email {}

impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        schema::text(
            "A password. A new one has 10 to 1024 characters and is not only spaces; \
             one presented at sign-in is checked only for its length, up to 1024.",
            1,
            1024,
            "correct horse battery",
        )
    }
}

impl ToSchema for Password {}

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        schema::text("A name, trimmed; not blank.", 1, 200, "Morning walks")
    }
}

impl ToSchema for Name {}

impl PartialSchema for Notes {
    fn schema() -> RefOr<Schema> {
        schema::text("Free text; may be empty.", 0, 5000, "Before breakfast.")
    }
}

impl ToSchema for Notes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_parse_accepts_an_address_and_trims_it() {
        assert_eq!(
            Email::parse("  Ann@Example.com ").map(|e| e.normalized()),
            Ok("ann@example.com".into())
        );
    }

    #[test]
    fn email_parse_rejects_what_the_schema_would_reject() {
        for raw in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "a@b@c",
            "a b@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn new_passwords_need_ten_characters() {
        assert!(Password::parse_new("short").is_err());
        assert!(Password::parse_new("long enough!").is_ok());
        assert!(Password::parse_new("          ").is_err());
    }

    #[test]
    fn names_are_trimmed_and_must_say_something() {
        assert_eq!(
            Name::parse("  Run  ").map(Name::into_string),
            Ok("Run".into())
        );
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"x".repeat(201)).is_err());
    }
}
