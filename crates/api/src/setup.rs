//! Why the API cannot start.

use crate::config::MIN_JWT_SECRET_BYTES;

/// Why the API cannot start with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes, got {0}")]
    JwtSecretTooShort(usize),
    #[error("{variable} is {mode}, which needs the Airtable base: set AIRTABLE_TOKEN and AIRTABLE_BASE_ID")]
    AirtableMissing {
        variable: String,
        mode: &'static str,
    },
    #[error("JWT_SECRET cannot sign tokens: {0}")]
    Signing(String),
    #[error("preparing password hashing: {0}")]
    Hashing(String),
    #[error("the mapping cannot serve the API's Airtable backend: {0}")]
    Mapping(String),
}
