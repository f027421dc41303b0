//! The HTTP endpoints of the separate `airsync worker` process
//! (`--metrics-listen`): `/metrics`, with the same rendering as `airsync
//! serve` over the parts the worker runs, and `/api/health`.

use std::sync::Arc;

use airsync_airtable::AirtableClient;
use airsync_sync::mapping::Mapping;
use airsync_sync::worker::WorkerMetrics;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;

use super::health::liveness_of;
use super::http::{self, HttpMetrics};
use super::metrics::{answer, render, MetricSources};

/// What the worker process exports.
pub struct WorkerEndpoints {
    /// The database (outbox gauges, health).
    pub pool: PgPool,
    /// The mapping in use.
    pub mapping: Arc<Mapping>,
    /// The worker's counters.
    pub worker: Arc<WorkerMetrics>,
    /// The worker's Airtable client (requests, pacing, 429s).
    pub airtable: AirtableClient,
    /// Requests to these endpoints.
    pub http: Arc<HttpMetrics>,
    /// `METRICS_TOKEN`: the bearer token that opens `/metrics`.
    pub metrics_token: Option<String>,
}

/// `/metrics` and `/api/health` of the worker process.
pub fn worker_router(endpoints: Arc<WorkerEndpoints>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/health", get(health))
        .with_state(endpoints.clone())
        .layer(axum::middleware::from_fn_with_state(
            endpoints.http.clone(),
            http::track,
        ))
}

async fn metrics(State(endpoints): State<Arc<WorkerEndpoints>>, headers: HeaderMap) -> Response {
    if let Some(refused) =
        super::monitor::refuse_unless_monitor(&headers, endpoints.metrics_token.as_deref(), None)
    {
        return refused;
    }
    let sources = MetricSources {
        pool: &endpoints.pool,
        mapping: &endpoints.mapping,
        http: &endpoints.http,
        worker: Some(&endpoints.worker),
        airtable: Some(&endpoints.airtable),
        inbound: None,
        shadow: None,
    };
    answer(render(&sources).await)
}

async fn health(State(endpoints): State<Arc<WorkerEndpoints>>) -> Response {
    liveness_of(&endpoints.pool).await
}
