//! Errors: [`Error`] for the emulator's own failures (binding, persistence),
//! [`ApiError`] for the answers it gives clients, in Airtable's shapes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Failures that stop the emulator from starting or persisting its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The data directory could not be read or written.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// The snapshot in the data directory is not one the emulator wrote.
    #[error("the snapshot {path} is unreadable: {source}")]
    Snapshot {
        /// The snapshot file.
        path: std::path::PathBuf,
        /// The parse failure.
        source: serde_json::Error,
    },
    /// The configuration is inconsistent (e.g. a malformed base id).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A direct (in-process) operation was refused, with Airtable's answer.
    #[error("the emulator refused the operation: {0}")]
    Refused(ApiError),
}

/// Convenience alias for the crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of an error answer; Airtable uses three shapes.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    /// `{"error": {"type": T, "message": M}}`, message optional.
    Typed {
        kind: String,
        message: Option<String>,
    },
    /// `{"error": "NOT_FOUND"}`, used for unknown routes.
    Bare(&'static str),
    /// A non-JSON body, as the 414 and 502 answers are.
    Text(&'static str),
}

/// An error answer: a status and a body in one of Airtable's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    status: StatusCode,
    body: Body,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.body {
            Body::Typed { kind, message } => {
                write!(f, "{} {}", self.status.as_u16(), kind)?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Body::Bare(s) | Body::Text(s) => write!(f, "{} {}", self.status.as_u16(), s),
        }
    }
}

impl std::error::Error for ApiError {}

/// Airtable's message for a 403 on an unknown or forbidden base or table.
const MODEL_NOT_FOUND_MESSAGE: &str = "Invalid permissions, or the requested model was not found. Check that both your user and your token have the required permissions, and that the model names and/or ids are correct.";

impl ApiError {
    /// An error with a type and a message.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Body::Typed {
                kind: kind.to_owned(),
                message: Some(message.into()),
            },
        }
    }

    /// An error with a type and no message.
    pub fn type_only(status: StatusCode, kind: &str) -> Self {
        ApiError {
            status,
            body: Body::Typed {
                kind: kind.to_owned(),
                message: None,
            },
        }
    }

    /// 422 with the given type and message.
    pub fn unprocessable(kind: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, kind, message)
    }

    /// 401 for a missing, malformed or unknown token (Airtable does not tell
    /// them apart).
    pub fn authentication_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_REQUIRED",
            "Authentication required",
        )
    }

    /// 403 for an unknown base or table.
    pub fn model_not_found() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            MODEL_NOT_FOUND_MESSAGE,
        )
    }

    /// 404 `{"error":"NOT_FOUND"}` for a route that does not exist.
    pub fn route_not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: Body::Bare("NOT_FOUND"),
        }
    }

    /// 404 for an unknown record id.
    pub fn record_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "MODEL_ID_NOT_FOUND",
            "Record not found",
        )
    }

    /// 422 `INVALID_REQUEST_UNKNOWN` with Airtable's generic message.
    pub fn invalid_request() -> Self {
        Self::unprocessable(
            "INVALID_REQUEST_UNKNOWN",
            "Invalid request: parameter validation failed. Check your request data.",
        )
    }

    /// 422 `INVALID_REQUEST_UNKNOWN` with a specific message.
    pub fn invalid_request_because(message: impl Into<String>) -> Self {
        Self::unprocessable("INVALID_REQUEST_UNKNOWN", message)
    }

    /// 400 for a body that is not JSON (the type is our choice; Airtable's
    /// is undocumented).
    pub fn unparseable_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_UNKNOWN",
            "Invalid request: the request body is not valid JSON.",
        )
    }

    /// 413 for a body over the size limit.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            "Request body is too large",
        )
    }

    /// 414 for a URL of 16,000 characters or more (not JSON, as observed).
    pub fn uri_too_long() -> Self {
        ApiError {
            status: StatusCode::URI_TOO_LONG,
            body: Body::Text("URI Too Long"),
        }
    }

    /// 429 `RATE_LIMIT_REACHED`.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_REACHED",
            "Rate limit exceeded. Please try again later",
        )
    }

    /// 500 for an injected fault.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "SERVER_ERROR",
            "Server encountered an unexpected error",
        )
    }

    /// 502 for an injected fault (a proxy answer, so not JSON).
    pub fn bad_gateway() -> Self {
        ApiError {
            status: StatusCode::BAD_GATEWAY,
            body: Body::Text("<html><body><h1>502 Bad Gateway</h1></body></html>"),
        }
    }

    /// 503 `RETRIABLE_ERROR`.
    pub fn retriable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RETRIABLE_ERROR",
            "Server encountered an error while processing your request, and it is safe to retry the request",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error.type` (or bare error string), for logs and tests.
    pub fn kind(&self) -> &str {
        match &self.body {
            Body::Typed { kind, .. } => kind,
            Body::Bare(s) | Body::Text(s) => s,
        }
    }

    /// The JSON body as Airtable sends it (`null` for non-JSON answers).
    pub fn body_json(&self) -> serde_json::Value {
        match &self.body {
            Body::Typed {
                kind,
                message: Some(m),
            } => json!({"error": {"type": kind, "message": m}}),
            Body::Typed {
                kind,
                message: None,
            } => json!({"error": {"type": kind}}),
            Body::Bare(s) => json!({ "error": s }),
            Body::Text(_) => serde_json::Value::Null,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.body {
            Body::Text(text) => {
                let mut response = (self.status, text).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            _ => crate::respond::json_response(self.status, &self.body_json()),
        }
    }
}

/// Parses a JSON request body (413 and 400 as appropriate).
pub(crate) fn parse_body(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let bytes = body.map_err(|_| ApiError::body_too_large())?;
    if bytes.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|_| ApiError::unparseable_body())
}
