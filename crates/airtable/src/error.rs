//! The crate's one error type, and how Airtable's error answers are read.
//!
//! Every failure of a request carries the request's method and path (never
//! its query string, which may hold user data inside a formula, and never the
//! token), so that a log line or a dead letter says what was being asked.

use std::time::Duration;

/// Convenience alias for the crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Airtable's error type for a 429 caused by the request rate.
pub const RATE_LIMIT_REACHED: &str = "RATE_LIMIT_REACHED";
/// Airtable's error type for a list offset that is no longer valid.
pub const LIST_RECORDS_ITERATOR_NOT_AVAILABLE: &str = "LIST_RECORDS_ITERATOR_NOT_AVAILABLE";
/// A 429 for the workspace's monthly quota: waiting seconds does not help.
const BILLING_LIMIT_EXCEEDED: &str = "PUBLIC_API_BILLING_LIMIT_EXCEEDED";

/// Everything that can go wrong when talking to Airtable.
///
/// [`Error::is_retryable`] sorts failures into transient ones (429, 5xx,
/// timeouts, connection errors) and permanent ones (other 4xx, bad input, a
/// body that does not decode). The client already retried transient failures
/// as its [`RetryPolicy`](crate::RetryPolicy) allows before returning one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Airtable answered with an error status.
    #[error("{method} {path} answered {status}{}", describe(.error_type, .message))]
    Api {
        /// The request's HTTP method.
        method: String,
        /// The request's path, percent-encoded, without the query string.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Airtable's error type, e.g. `INVALID_VALUE_FOR_COLUMN`, when the
        /// body had one.
        error_type: Option<String>,
        /// Airtable's error message, when the body had one.
        message: Option<String>,
        /// The `Retry-After` the answer carried, if any.
        retry_after: Option<Duration>,
    },
    /// No answer came within the configured connect or request timeout.
    #[error("{method} {path} timed out{}", if *.connecting { " while connecting" } else { "" })]
    Timeout {
        /// The request's HTTP method.
        method: String,
        /// The request's path, without the query string.
        path: String,
        /// True when the connection was never established, so Airtable
        /// cannot have seen the request.
        connecting: bool,
    },
    /// The connection failed (refused, reset, TLS, closed mid-answer).
    #[error("{method} {path} failed to reach Airtable: {source}")]
    Connection {
        /// The request's HTTP method.
        method: String,
        /// The request's path, without the query string.
        path: String,
        /// True when the connection was never established, so Airtable
        /// cannot have seen the request.
        connecting: bool,
        /// The transport's error.
        #[source]
        source: reqwest::Error,
    },
    /// Airtable answered with a success status but a body this client
    /// cannot read.
    #[error("{method} {path} answered {status} with an unexpected body: {source}")]
    Decode {
        /// The request's HTTP method.
        method: String,
        /// The request's path, without the query string.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Why the body did not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The client configuration is unusable (e.g. a malformed API URL).
    #[error("invalid Airtable client configuration: {0}")]
    Config(String),
    /// The caller's input was refused before anything was sent.
    #[error("invalid request to Airtable: {0}")]
    InvalidInput(String),
    /// A cell holds a value of another type than the one asked for.
    #[error("field {field:?} holds {found}, not {expected}")]
    CellType {
        /// The field's name or id.
        field: String,
        /// The type asked for.
        expected: &'static str,
        /// A short description of what is there.
        found: String,
    },
    /// A write that needed several requests failed after some of them had
    /// succeeded. Batches go out in input order and each is all-or-nothing,
    /// so the first `applied.len()` input records were written.
    #[error("{} records were written before a later batch failed: {source}", .applied.len())]
    PartiallyApplied {
        /// Ids of the records written (or deleted), in input order.
        applied: Vec<String>,
        /// The failure of the batch that did not go through.
        #[source]
        source: Box<Error>,
    },
}

fn describe(error_type: &Option<String>, message: &Option<String>) -> String {
    match (error_type, message) {
        (Some(t), Some(m)) => format!(" {t}: {m}"),
        (Some(t), None) => format!(" {t}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// Whether trying the same request again later may succeed: 429 (except
    /// the monthly billing quota), 5xx, timeouts and connection errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api {
                status, error_type, ..
            } => {
                (*status == 429 && error_type.as_deref() != Some(BILLING_LIMIT_EXCEEDED))
                    || *status >= 500
            }
            Error::Timeout { .. } | Error::Connection { .. } => true,
            Error::PartiallyApplied { source, .. } => source.is_retryable(),
            Error::Decode { .. }
            | Error::Config(_)
            | Error::InvalidInput(_)
            | Error::CellType { .. } => false,
        }
    }

    /// Whether this is Airtable's rate limit (429 `RATE_LIMIT_REACHED`, or a
    /// 429 without a type).
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Error::Api {
                status: 429,
                error_type,
                ..
            } => error_type.as_deref() != Some(BILLING_LIMIT_EXCEEDED),
            Error::PartiallyApplied { source, .. } => source.is_rate_limited(),
            _ => false,
        }
    }

    /// Whether the failed request may nevertheless have taken effect:
    /// Airtable may have applied it before the answer was lost (a timeout or
    /// a broken connection after sending, a 500, 502 or 504). A 429, a 503
    /// `RETRIABLE_ERROR` (which Airtable documents as safe to retry), a
    /// refused connection and every 4xx mean it did not.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status >= 500 && *status != 503,
            Error::Timeout { connecting, .. } | Error::Connection { connecting, .. } => !connecting,
            Error::PartiallyApplied { .. } => true,
            Error::Decode { .. } => true,
            Error::Config(_) | Error::InvalidInput(_) | Error::CellType { .. } => false,
        }
    }

    /// The HTTP method of the request that failed.
    pub fn method(&self) -> Option<&str> {
        match self {
            Error::Api { method, .. }
            | Error::Timeout { method, .. }
            | Error::Connection { method, .. }
            | Error::Decode { method, .. } => Some(method),
            Error::PartiallyApplied { source, .. } => source.method(),
            _ => None,
        }
    }

    /// The path (without query) of the request that failed.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Api { path, .. }
            | Error::Timeout { path, .. }
            | Error::Connection { path, .. }
            | Error::Decode { path, .. } => Some(path),
            Error::PartiallyApplied { source, .. } => source.path(),
            _ => None,
        }
    }

    /// The HTTP status Airtable answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::PartiallyApplied { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Airtable's error type (e.g. `INVALID_VALUE_FOR_COLUMN`), if any.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Error::Api { error_type, .. } => error_type.as_deref(),
            Error::PartiallyApplied { source, .. } => source.error_type(),
            _ => None,
        }
    }

    /// Airtable's error message, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Api { message, .. } => message.as_deref(),
            Error::PartiallyApplied { source, .. } => source.message(),
            _ => None,
        }
    }

    /// The `Retry-After` delay Airtable asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            Error::PartiallyApplied { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// Whether a list offset expired and the listing must start again.
    pub(crate) fn is_iterator_expired(&self) -> bool {
        self.error_type() == Some(LIST_RECORDS_ITERATOR_NOT_AVAILABLE)
    }
}

/// The type and message of an Airtable error body, which comes in three
/// shapes: `{"error": {"type", "message"?}}`, `{"error": "NOT_FOUND"}`, and
/// (for 414 and gateway errors) text that is not JSON at all.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match value.get("error") {
            Some(serde_json::Value::String(kind)) => (Some(kind.clone()), None),
            Some(serde_json::Value::Object(obj)) => (
                obj.get("type").and_then(|v| v.as_str()).map(str::to_owned),
                obj.get("message")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            ),
            _ => (None, None),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                (None, None)
            } else {
                // Bounded so that a large HTML error page cannot flood logs.
                (None, Some(text.chars().take(200).collect()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, kind: Option<&str>) -> Error {
        Error::Api {
            method: "GET".into(),
            path: "/v0/app/tbl".into(),
            status,
            error_type: kind.map(str::to_owned),
            message: None,
            retry_after: None,
        }
    }

    #[test]
    fn rate_limits_and_server_errors_are_retryable_and_other_4xx_are_not() {
        assert!(api(429, Some(RATE_LIMIT_REACHED)).is_retryable());
        assert!(api(503, Some("RETRIABLE_ERROR")).is_retryable());
        assert!(api(500, None).is_retryable());
        assert!(!api(422, Some("INVALID_RECORDS")).is_retryable());
        assert!(!api(404, Some("NOT_FOUND")).is_retryable());
        assert!(!api(429, Some(BILLING_LIMIT_EXCEEDED)).is_retryable());
    }

    #[test]
    fn only_ambiguous_failures_may_have_been_applied() {
        assert!(!api(429, Some(RATE_LIMIT_REACHED)).may_have_been_applied());
        assert!(!api(503, None).may_have_been_applied());
        assert!(!api(422, None).may_have_been_applied());
        assert!(api(500, None).may_have_been_applied());
        assert!(api(502, None).may_have_been_applied());
    }

    #[test]
    fn error_bodies_of_all_three_shapes_are_read() {
        let typed = br#"{"error":{"type":"INVALID_RECORDS","message":"too many"}}"#;
        assert_eq!(
            parse_error_body(typed),
            (Some("INVALID_RECORDS".into()), Some("too many".into()))
        );
        let type_only = br#"{"error":{"type":"LIST_RECORDS_ITERATOR_NOT_AVAILABLE"}}"#;
        assert_eq!(
            parse_error_body(type_only),
            (Some(LIST_RECORDS_ITERATOR_NOT_AVAILABLE.into()), None)
        );
        assert_eq!(
            parse_error_body(br#"{"error":"NOT_FOUND"}"#),
            (Some("NOT_FOUND".into()), None)
        );
        assert_eq!(
            parse_error_body(b"URI Too Long"),
            (None, Some("URI Too Long".into()))
        );
    }

    #[test]
    fn the_display_names_method_path_status_type_and_message() {
        let err = Error::Api {
            method: "PATCH".into(),
            path: "/v0/appA/Clients".into(),
            status: 422,
            error_type: Some("UNKNOWN_FIELD_NAME".into()),
            message: Some("Unknown field name: \"X\"".into()),
            retry_after: None,
        };
        assert_eq!(
            err.to_string(),
            "PATCH /v0/appA/Clients answered 422 UNKNOWN_FIELD_NAME: Unknown field name: \"X\""
        );
    }
}
