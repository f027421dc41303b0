//! Who may read `/metrics` and `/api/health/detailed`: they name the base,
//! the workers' hosts and processes, and database errors, so they answer
//! only a bearer of the metrics token (`METRICS_TOKEN`, for scrapers and
//! dashboards) or of an admin's access token. `/api/health` stays public
//! and says only whether the process is up.

use airsync_api::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Nothing when the request may read the monitoring endpoints; the answer
/// to send otherwise. `api` is the API's state where admins can sign in
/// (`serve`), none in the worker process.
pub fn refuse_unless_monitor(
    headers: &HeaderMap,
    metrics_token: Option<&str>,
    api: Option<&AppState>,
) -> Option<Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if let (Some(given), Some(token)) = (bearer, metrics_token) {
        if same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return None;
        }
    }
    if let Some(api) = api {
        if matches!(airsync_api::authenticate(api, headers), Ok(Some(user)) if user.is_admin()) {
            return None;
        }
    }
    let message = if api.is_some() {
        "give the metrics token (METRICS_TOKEN) or an admin's access token as a bearer token"
    } else {
        "give the metrics token (METRICS_TOKEN) as a bearer token"
    };
    let body = json!({ "error": { "code": "unauthorized", "message": message } });
    Some((StatusCode::UNAUTHORIZED, Json(body)).into_response())
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn only_the_metrics_token_opens_the_monitoring_endpoints_of_a_worker() {
        let token = Some("a-long-metrics-token");
        assert!(refuse_unless_monitor(&with_bearer("a-long-metrics-token"), token, None).is_none());
        for wrong in [
            "a-long-metrics-toke",
            "a-long-metrics-tokenX",
            "",
            "A-LONG-METRICS-TOKEN",
        ] {
            assert!(
                refuse_unless_monitor(&with_bearer(wrong), token, None).is_some(),
                "{wrong}"
            );
        }
        assert!(refuse_unless_monitor(&HeaderMap::new(), token, None).is_some());
        // Without a token set, nothing opens them.
        assert!(refuse_unless_monitor(&with_bearer(""), None, None).is_some());
    }
}
