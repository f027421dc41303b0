//! The process behind `airsync serve`: the coaching API, the operations
//! endpoints (health, metrics, the ops page) and the webhook receiver on one
//! HTTP listener, with the outbound worker running beside them; and the
//! metrics and health endpoints of the separate `airsync worker` process.

mod health;
pub mod history;
mod http;
mod metrics;
mod monitor;
mod ops;
mod prom;
mod webhook;
mod worker;

pub use http::{HttpMetrics, REQUEST_ID};
pub use worker::{worker_router, WorkerEndpoints};

use std::collections::BTreeMap;
use std::sync::Arc;

use airsync_airtable::AirtableClient;
use airsync_api::{AppState, DataBackendMode, EndpointGroup};
use airsync_sync::mapping::Mapping;
use airsync_sync::worker::WorkerMetrics;
use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;

/// What the operations endpoints look at: the parts running in this process.
pub struct Services {
    /// The database.
    pub pool: PgPool,
    /// The mapping in use.
    pub mapping: Arc<Mapping>,
    /// The API's state: sign-in for the ops page, shadow-read counters.
    pub api: AppState,
    /// The Airtable client, when one is configured.
    pub airtable: Option<AirtableClient>,
    /// The base kept in step.
    pub base_id: Option<airsync_airtable::BaseId>,
    /// The outbound worker's counters, when it runs in this process.
    pub worker: Option<Arc<WorkerMetrics>>,
    /// The inbound sync, when it runs in this process: it receives the
    /// webhook's notifications, and its counters are exported.
    pub inbound: Option<airsync_sync::inbound::InboundContext>,
    /// Every endpoint group's data backend.
    pub backends: BTreeMap<EndpointGroup, DataBackendMode>,
    /// HTTP requests of this process.
    pub http: Arc<HttpMetrics>,
    /// `METRICS_TOKEN`: the bearer token that opens `/metrics` and
    /// `/api/health/detailed` besides an admin's access token.
    pub metrics_token: Option<String>,
    /// How users without a password are invited (`INVITE_*`).
    pub invitations: Arc<crate::invitations::Invitations>,
    /// The last hour of the sync, for the ops page's charts
    /// ([`history::run`] fills it).
    pub history: history::History,
    /// The background parts of this process that stopped with an error.
    pub stopped: StoppedParts,
}

/// The background parts of a process (the outbound worker, the inbound
/// sync) that ended with an error, with the error: the process keeps
/// serving, and the detailed health says what no longer runs.
#[derive(Debug, Clone, Default)]
pub struct StoppedParts(Arc<std::sync::Mutex<BTreeMap<&'static str, String>>>);

impl StoppedParts {
    /// Records that `part` stopped with `error`.
    pub fn record(&self, part: &'static str, error: String) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(part, error);
    }

    /// Each stopped part with its error, by name.
    pub fn list(&self) -> BTreeMap<&'static str, String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The whole HTTP surface: the API, then the operations routes, every
/// request tracked by [`http::track`].
pub fn router(services: Arc<Services>) -> Router {
    let ops = Router::new()
        .route("/api/health", get(health::liveness))
        .route("/api/health/detailed", get(health::detailed))
        .route("/metrics", get(metrics::exposition))
        .route("/ops", get(ops::page))
        .route("/ops/api/state", get(ops::state))
        .route("/ops/api/conflicts", get(ops::conflicts))
        .route("/ops/api/dead-letters/{id}/replay", post(ops::replay))
        .route("/ops/api/dead-letters/{id}/purge", post(ops::purge))
        .route("/ops/api/users/{id}/invite", post(ops::invite))
        .route(
            "/api/sync/inbound",
            post(webhook::receive).layer(axum::extract::DefaultBodyLimit::max(
                webhook::MAX_NOTIFICATION_BYTES,
            )),
        )
        .with_state(services.clone());
    airsync_api::router(services.api.clone()).merge(ops).layer(
        axum::middleware::from_fn_with_state(services.http.clone(), http::track),
    )
}
