//! The coaching HTTP API (docs/domain.md), served from PostgreSQL, with
//! per-endpoint data backends and shadow reads.
//!
//! The binary builds an [`ApiConfig`], makes an [`AppState`] with a pool,
//! and calls [`serve`]; tests call [`router`] and drive it in-process.

#![forbid(unsafe_code)]

pub mod accounts;
mod admission;
mod auth;
mod backend_mode;
mod backends;
mod config;
mod domain;
mod error;
mod extract;
mod pagination;
mod routes;
mod routing;
mod rules;
mod server;
mod setup;
mod state;
mod store;

use std::future::Future;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;

pub use accounts::{create_user, invite_user, AccountError};
pub use admission::{Admission, AdmissionLimits};
pub use auth::jwt::LEEWAY_SECS as ACCESS_TOKEN_LEEWAY_SECS;
pub use auth::password::{HashCost, HashingLimits};
pub use auth::proxies::TrustedProxies;
pub use auth::throttle::ThrottleLimits;
pub use backend_mode::{DataBackendMode, EndpointGroup};
pub use config::{AirtableAccess, ApiConfig, MIN_JWT_SECRET_BYTES};
pub use error::Error;
pub use routing::Verb;
pub use server::{serve_router, ServerLimits};
pub use setup::SetupError;
pub use state::AppState;
pub use store::shadow::ShadowSnapshot;

/// The whole API as a router.
pub fn router(state: AppState) -> Router {
    let admission = state.admission().clone();
    routes::api_routes()
        .merge(routes::openapi::router())
        .into_router()
        .fallback(unknown_route)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            admission,
            admission::admit,
        ))
}

/// The signed-in user of a request, for routes outside the API (the
/// operations endpoints); `None` without a token, an error for a bad one.
pub fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<auth::CurrentUser>, Error> {
    auth::user_from_headers(state, headers)
}

async fn unknown_route(uri: Uri) -> impl IntoResponse {
    let body = serde_json::json!({ "error": { "code": "not_found", "message": format!("no route {}", uri.path()) } });
    (StatusCode::NOT_FOUND, axum::Json(body))
}

/// Every (method, path) the router serves, for checking the OpenAPI document.
pub fn served_routes() -> Vec<(Verb, &'static str)> {
    routes::api_routes()
        .merge(routes::openapi::router())
        .table()
        .to_vec()
}

/// The OpenAPI document and its operations, for tests and tools.
pub mod openapi {
    pub use crate::routes::openapi::{document, documented_operations, inlined, is_public};
}

/// Serves the API on `listener` until `shutdown` completes, then finishes
/// the requests in flight. Client addresses reach the handlers (login
/// throttling keys on them).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(state), ServerLimits::default(), shutdown).await
}
