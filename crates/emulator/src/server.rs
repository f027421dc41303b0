//! The HTTP side: the router, and the gate every request passes (URL length, latency, faults, auth, rate limits, trailing
//! slash, counters, one log line).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;

use crate::app::{App, Shared};
use crate::error::ApiError;
use crate::faults::FaultKind;

/// What URL lengths are measured against: Airtable sees its own origin.
const API_ORIGIN: &str = "https://api.airtable.com";

/// The router of every endpoint.
pub(crate) fn router(app: Shared) -> Router {
    use crate::{control, meta, records as r, webhooks::api as w};
    let not_found = || async { ApiError::route_not_found() };
    Router::new()
        .route("/v0/meta/whoami", get(meta::whoami))
        .route(
            "/v0/meta/bases",
            get(meta::list_bases).post(meta::create_base),
        )
        .route(
            "/v0/meta/bases/{base}/tables",
            get(meta::base_schema).post(meta::create_table),
        )
        .route(
            "/v0/meta/bases/{base}/tables/{table}",
            patch(meta::update_table),
        )
        .route(
            "/v0/meta/bases/{base}/tables/{table}/fields",
            post(meta::create_field),
        )
        .route(
            "/v0/meta/bases/{base}/tables/{table}/fields/{field}",
            patch(meta::update_field),
        )
        .route("/v0/bases/{base}/webhooks", get(w::list).post(w::create))
        .route(
            "/v0/bases/{base}/webhooks/{hook}",
            axum::routing::delete(w::delete),
        )
        .route("/v0/bases/{base}/webhooks/{hook}/refresh", post(w::refresh))
        .route(
            "/v0/bases/{base}/webhooks/{hook}/enableNotifications",
            post(w::enable_notifications),
        )
        .route(
            "/v0/bases/{base}/webhooks/{hook}/payloads",
            get(w::payloads),
        )
        .route(
            "/v0/{base}/{table}",
            get(r::list_get)
                .post(r::create)
                .patch(r::update_many_merge)
                .put(r::update_many_replace)
                .delete(r::delete_many),
        )
        .route("/v0/{base}/{table}/listRecords", post(r::list_post))
        .route(
            "/v0/{base}/{table}/{record}",
            get(r::get_one)
                .patch(r::update_one_merge)
                .put(r::update_one_replace)
                .delete(r::delete_one),
        )
        .merge(control::router())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            app.config.max_body_bytes,
        ))
        .with_state(app)
}

/// The base a request concerns, from its path (for limits and counters).
fn base_of(path: &str) -> Option<String> {
    let mut segs = path.trim_start_matches('/').split('/');
    if segs.next() != Some("v0") {
        return None;
    }
    let base = match (segs.next(), segs.next(), segs.next()) {
        (Some("meta"), Some("bases"), Some(base)) => base,
        (Some("meta"), _, _) => return None,
        (Some("bases"), Some(base), _) => base,
        (Some(base), Some(_), _) => base,
        _ => return None,
    };
    Some(base.to_owned()).filter(|b| !b.is_empty())
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Strips one trailing slash (airtable.js writes to `/v0/app…/Table/`).
fn without_trailing_slash(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    if path.len() <= 1 || !path.ends_with('/') {
        return None;
    }
    let trimmed = &path[..path.len() - 1];
    let pq = match uri.query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_owned(),
    };
    pq.parse().ok()
}

/// An answer for an injected fault.
fn fault_response(kind: FaultKind) -> Response {
    match kind {
        FaultKind::ServerError => ApiError::server_error().into_response(),
        FaultKind::BadGateway => ApiError::bad_gateway().into_response(),
        FaultKind::Unavailable => ApiError::retriable().into_response(),
        FaultKind::RateLimited => ApiError::rate_limited().into_response(),
        FaultKind::Drop => {
            // The status line goes out, then the body fails: the client sees
            // the connection close mid-answer.
            let failing = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected connection drop",
                ))
            });
            let mut response = Response::new(Body::from_stream(failing));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("64"));
            response
        }
    }
}

/// The gate in front of the router.
pub(crate) async fn gate(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if let Some(uri) = without_trailing_slash(req.uri()) {
        *req.uri_mut() = uri;
    }
    if path.starts_with("/_emulator") {
        if !app.config.control && path.trim_end_matches('/') != "/_emulator/stats" {
            return ApiError::route_not_found().into_response();
        }
        return next.run(req).await;
    }
    let base = base_of(&path);
    let response = api_gate(&app, req, next, base.as_deref()).await;
    let status = response.status().as_u16();
    if path.starts_with("/v0") {
        app.counters.record(base.as_deref(), status);
    }
    tracing::info!(
        target: "airsync_emulator::request",
        %method,
        path = %path,
        status,
        base = base.as_deref().unwrap_or("-"),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn api_gate(app: &App, req: Request, next: Next, base: Option<&str>) -> Response {
    if req.method() == Method::OPTIONS {
        return cors_preflight();
    }
    let url_len = API_ORIGIN.len() + req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if url_len >= app.config.max_url_len {
        return ApiError::uri_too_long().into_response();
    }
    if let Some(delay) = app.faults.delay() {
        tokio::time::sleep(delay).await;
    }
    if let Some(kind) = app.faults.draw(base) {
        return fault_response(kind);
    }
    let Some(token) = bearer(&req) else {
        return ApiError::authentication_required().into_response();
    };
    if !app.config.tokens.is_empty() && !app.config.tokens.iter().any(|t| t == token) {
        return ApiError::authentication_required().into_response();
    }
    if !app.limiter.admit(base, token, app.now()) {
        return ApiError::rate_limited().into_response();
    }
    let listing = is_listing(req.method(), req.uri().path());
    let response = next.run(req).await;
    let delay = [
        app.faults.answer_delay(),
        app.faults.listing_answer_delay().filter(|_| listing),
    ]
    .into_iter()
    .flatten()
    .sum::<std::time::Duration>();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Whether a request lists a table's records (`GET /v0/{base}/{table}`,
/// `POST /v0/{base}/{table}/listRecords`): its answer is a page, larger and
/// slower than a write's.
fn is_listing(method: &Method, path: &str) -> bool {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["v0", base, _] => *method == Method::GET && !matches!(*base, "meta" | "bases"),
        ["v0", base, _, "listRecords"] => {
            *method == Method::POST && !matches!(*base, "meta" | "bases")
        }
        _ => false,
    }
}

fn cors_preflight() -> Response {
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("DELETE,GET,OPTIONS,PATCH,POST,PUT"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization,content-length,content-type,user-agent,x-airtable-application-id,x-airtable-user-agent,x-api-version,x-requested-with"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_known_by_method_and_path() {
        assert!(is_listing(&Method::GET, "/v0/appA/Table"));
        assert!(is_listing(&Method::GET, "/v0/appA/Table/"));
        assert!(is_listing(&Method::POST, "/v0/appA/tblX/listRecords"));
        assert!(!is_listing(&Method::GET, "/v0/appA/Table/recX"));
        assert!(!is_listing(&Method::PATCH, "/v0/appA/Table"));
        assert!(!is_listing(&Method::GET, "/v0/meta/bases"));
        assert!(!is_listing(&Method::GET, "/v0/bases/appA/webhooks"));
    }

    #[test]
    fn the_base_is_found_in_record_meta_and_webhook_paths() {
        assert_eq!(base_of("/v0/appA/Table").as_deref(), Some("appA"));
        assert_eq!(
            base_of("/v0/meta/bases/appB/tables").as_deref(),
            Some("appB")
        );
        assert_eq!(base_of("/v0/bases/appC/webhooks").as_deref(), Some("appC"));
        assert_eq!(base_of("/v0/meta/bases"), None);
        assert_eq!(base_of("/v0/meta/whoami"), None);
    }

    #[test]
    fn one_trailing_slash_is_dropped_and_the_query_kept() {
        let uri: Uri = "/v0/app/T/?a=1".parse().expect("uri");
        assert_eq!(
            without_trailing_slash(&uri)
                .map(|u| u.to_string())
                .as_deref(),
            Some("/v0/app/T?a=1")
        );
        let root: Uri = "/".parse().expect("uri");
        assert!(without_trailing_slash(&root).is_none());
    }
}
