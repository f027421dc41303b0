//! The API's one error type and its one JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`, plus `field` when one input
//! field is to blame and `conflictingId` when another record is in the way.
//! A 500 says nothing of its cause to the client; the cause is logged once,
//! with its chain, where the response is made.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Everything a request can fail with, named by what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: an input field is missing, malformed or out of range.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// 400: the request as a whole is unreadable (not JSON, not an object).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials, or credentials that do not match.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 404: the resource does not exist or is not the caller's to see. The
    /// field names the input that pointed at it when it came from a body or
    /// query.
    #[error("{what} not found")]
    NotFound {
        what: &'static str,
        field: Option<&'static str>,
    },
    /// 409: the request clashes with existing data.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        conflicting_id: Option<Uuid>,
    },
    /// 422: well-formed, but a domain rule forbids it.
    #[error("{message}")]
    Rule {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    /// 429: too many failed logins; try again after the given seconds.
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    /// 503: the server is too busy for this request now; try again after
    /// the given seconds. Nothing was done.
    #[error("the server is too busy")]
    Overloaded { retry_after_secs: u64 },
    /// 503: the request passed its deadline and was stopped; a write may or
    /// may not have taken effect.
    #[error("the request took too long")]
    TimedOut,
    /// 502: the Airtable base could not answer (airtable modes only).
    #[error("the Airtable base did not answer: {0}")]
    Upstream(String),
    /// 500: a fault of ours or of the database; logged, never shown.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with the API's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A 404 for a resource named in the path.
    pub fn not_found(what: &'static str) -> Error {
        Error::NotFound { what, field: None }
    }

    /// A 404 for a resource that an input field pointed at.
    pub fn not_found_in(what: &'static str, field: &'static str) -> Error {
        Error::NotFound {
            what,
            field: Some(field),
        }
    }

    /// A 422 for a domain rule.
    pub fn rule(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&'static str>,
    ) -> Error {
        Error::Rule {
            code,
            message: message.into(),
            field,
        }
    }

    /// A 500 with its cause, to be logged.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Internal(Box::new(cause))
    }

    /// A 500 described in words, for states that should not happen.
    pub fn invariant(message: impl Into<String>) -> Error {
        Error::Internal(message.into().into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidField { .. } | Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Rule { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Overloaded { .. } | Error::TimedOut => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody {
        let mut detail = ErrorDetail {
            code: "",
            message: String::new(),
            field: None,
            conflicting_id: None,
        };
        let (code, message): (&'static str, String) = match self {
            Error::InvalidField { field, message } => {
                detail.field = Some(field.clone());
                ("invalid_field", format!("{field}: {message}"))
            }
            Error::BadRequest(message) => ("bad_request", message.clone()),
            Error::Unauthorized(message) => ("unauthorized", (*message).to_owned()),
            Error::NotFound { what, field } => {
                detail.field = field.map(str::to_owned);
                ("not_found", format!("{what} not found"))
            }
            Error::Conflict {
                code,
                message,
                conflicting_id,
            } => {
                detail.conflicting_id = *conflicting_id;
                (code, message.clone())
            }
            Error::Rule {
                code,
                message,
                field,
            } => {
                detail.field = field.map(str::to_owned);
                (code, message.clone())
            }
            Error::TooManyAttempts { .. } => (
                "too_many_attempts",
                "too many failed sign-in attempts; try again later".to_owned(),
            ),
            Error::Overloaded { .. } => (
                "overloaded",
                "the server is too busy right now; try again shortly".to_owned(),
            ),
            Error::TimedOut => (
                "timed_out",
                "the request took too long and was stopped; read before repeating a write, \
                 it may have taken effect"
                    .to_owned(),
            ),
            Error::Upstream(_) => (
                "upstream_unavailable",
                "the data backend did not answer; try again".to_owned(),
            ),
            Error::Internal(_) => ("internal", "something went wrong on our side".to_owned()),
        };
        detail.code = code;
        detail.message = message;
        ErrorBody { error: detail }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// What went wrong, for programs: `invalid_field`, `not_found`,
    /// `unauthorized`, a rule's own code, and so on.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The input at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The record in the way (409).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicting_id: Option<Uuid>,
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Error {
        match err {
            // Every connection stayed busy for the pool's whole acquire
            // timeout: the server is overloaded, which is no fault to hide
            // behind a 500. Nothing was done.
            sqlx::Error::PoolTimedOut => {
                tracing::warn!("no database connection came free in time");
                Error::Overloaded {
                    retry_after_secs: 1,
                }
            }
            err => match airsync_db::constraint_violation(&err) {
                // A row of the signed-in user's could not point at the
                // user: the user was deleted while the token still lives.
                Some(violation)
                    if violation.kind == airsync_db::ConstraintKind::ForeignKey
                        && violation.constraint.ends_with("_user_id_fkey") =>
                {
                    Error::Unauthorized("the signed-in user no longer exists")
                }
                _ => Error::internal(err),
            },
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Error::Internal(cause) => {
                tracing::error!(error = %ErrorChain(cause.as_ref()), "request failed");
            }
            Error::Upstream(cause) => {
                tracing::warn!(error = %cause, "data backend failed");
            }
            _ => {}
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        let retry_after_secs = match self {
            Error::TooManyAttempts { retry_after_secs }
            | Error::Overloaded { retry_after_secs } => Some(retry_after_secs),
            Error::TimedOut => Some(1),
            _ => None,
        };
        if let Some(retry_after_secs) = retry_after_secs {
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Displays an error with its sources, `outer: inner: innermost`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_for_being_busy_is_a_503_that_says_when_to_come_back() {
        let response = Error::Overloaded {
            retry_after_secs: 2,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_pool_with_no_free_connection_is_a_refusal_for_being_busy_not_a_fault() {
        let error = Error::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(error, Error::Overloaded { .. }), "{error:?}");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
    }
}
