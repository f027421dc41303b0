//! Every request: a request id (taken from `X-Request-Id` or made), a span
//! that carries it to every log line of the request, the id in the answer,
//! and the count and latency by route template and status.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use airsync_airtable::Histogram;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tracing::Instrument;

use super::prom::{Exposition, Kind};

/// The header that carries the request id both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Upper bounds, in seconds, of the request latency histogram's buckets.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Clone)]
struct RouteStats {
    by_status: HashMap<u16, u64>,
    latency: Histogram,
}

impl Default for RouteStats {
    fn default() -> Self {
        RouteStats {
            by_status: HashMap::new(),
            latency: Histogram::new(BUCKETS),
        }
    }
}

/// Requests by (method, route template).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: Mutex<HashMap<(String, String), RouteStats>>,
}

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        let stats = routes
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *stats.by_status.entry(status).or_default() += 1;
        stats.latency.observe(seconds);
    }

    /// Writes `airsync_http_requests_total` and
    /// `airsync_http_request_duration_seconds`.
    pub fn write(&self, out: &mut Exposition) {
        let routes = match self.routes.lock() {
            Ok(routes) => routes.clone(),
            Err(_) => return,
        };
        let mut keys: Vec<&(String, String)> = routes.keys().collect();
        keys.sort();
        out.family(
            "airsync_http_requests_total",
            Kind::Counter,
            "HTTP requests by route template, method and status.",
        );
        for key in &keys {
            let mut statuses: Vec<(&u16, &u64)> = routes[*key].by_status.iter().collect();
            statuses.sort();
            for (status, count) in statuses {
                let status = status.to_string();
                out.sample(
                    "airsync_http_requests_total",
                    &[("method", &key.0), ("route", &key.1), ("status", &status)],
                    *count as f64,
                );
            }
        }
        out.family(
            "airsync_http_request_duration_seconds",
            Kind::Histogram,
            "HTTP request latency by route template and method.",
        );
        for key in &keys {
            out.histogram(
                "airsync_http_request_duration_seconds",
                &[("method", &key.0), ("route", &key.1)],
                &routes[*key].latency,
            );
        }
    }
}

/// A request id from the client is kept when it is short and printable;
/// otherwise one is made.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The method as a metrics label: the standard methods by name, anything
/// else (a client may send any token as a method) as `OTHER`, so that the
/// number of series stays bounded.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// The middleware: wraps every routed request.
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&request);
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics.record(&method, &route, status, elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_outside_the_standard_ones_is_labelled_other() {
        let made_up = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
        assert_eq!(method_label(&axum::http::Method::PATCH), "PATCH");
        let metrics = HttpMetrics::default();
        for n in 0..50 {
            let method = axum::http::Method::from_bytes(format!("X{n}").as_bytes()).unwrap();
            metrics.record(method_label(&method), "(unmatched)", 404, 0.001);
        }
        assert_eq!(metrics.routes.lock().unwrap().len(), 1);
    }
}
