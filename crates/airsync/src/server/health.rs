//! `GET /api/health` and `GET /api/health/detailed`: cheap enough to poll
//! every second; PostgreSQL down answers 503 within a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;

use super::Services;

/// How long a health check waits for PostgreSQL: half the second the
/// answer is promised in, the other half left for a busy machine.
const DATABASE_DEADLINE: Duration = Duration::from_millis(500);

async fn ping(pool: &PgPool) -> Result<Duration, String> {
    let started = Instant::now();
    match tokio::time::timeout(DATABASE_DEADLINE, sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            DATABASE_DEADLINE.as_millis()
        )),
    }
}

/// 200 when PostgreSQL answers, 503 otherwise.
pub async fn liveness(State(services): State<Arc<Services>>) -> Response {
    liveness_of(&services.pool).await
}

/// The liveness answer of any process that uses `pool`.
/// Public, so it says nothing of why: the reason is logged.
pub async fn liveness_of(pool: &PgPool) -> Response {
    match ping(pool).await {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response(),
        Err(reason) => {
            tracing::warn!(reason, "health check: the database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

#[derive(sqlx::FromRow)]
struct OutboxTotals {
    pending: i64,
    in_flight: i64,
    /// Tables whose last full reconcile finished (not made due again).
    tables_reconciled: i64,
    /// When the earliest of those finished.
    last_full_reconcile: Option<DateTime<Utc>>,
    oldest_pending_seconds: Option<f64>,
    dead_letters: i64,
    leases: Value,
    checkpoints: Value,
    last_inbox_event: Option<DateTime<Utc>>,
}

async fn totals(pool: &PgPool) -> Result<OutboxTotals, String> {
    let query = sqlx::query_as::<_, OutboxTotals>(
        "SELECT
            (SELECT count(*) FROM sync_outbox) AS pending,
            (SELECT count(*) FROM sync_outbox WHERE state = 'leased') AS in_flight,
            (SELECT count(*) FROM sync_checkpoint
              WHERE name LIKE 'inbound:reconcile:%'
                AND (value->>'finished_at')::timestamptz > 'epoch') AS tables_reconciled,
            (SELECT min((value->>'finished_at')::timestamptz) FROM sync_checkpoint
              WHERE name LIKE 'inbound:reconcile:%') AS last_full_reconcile,
            (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM sync_outbox) AS oldest_pending_seconds,
            (SELECT count(*) FROM sync_dead_letter) AS dead_letters,
            (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'owner', lease_owner, 'events', n,
                        'expiresInSeconds', round(extract(epoch FROM expires - now())::numeric, 1))), '[]')
               FROM (SELECT lease_owner, count(*) AS n, max(lease_expires_at) AS expires
                       FROM sync_outbox WHERE state = 'leased' GROUP BY lease_owner) l) AS leases,
            (SELECT coalesce(jsonb_object_agg(name, jsonb_build_object(
                        'updatedAt', updated_at,
                        'ageSeconds', round(extract(epoch FROM now() - updated_at)::numeric, 1))), '{}')
               FROM sync_checkpoint) AS checkpoints,
            (SELECT max(received_at) FROM sync_inbox_events) AS last_inbox_event",
    )
    .fetch_one(pool);
    match tokio::time::timeout(DATABASE_DEADLINE, query).await {
        Ok(Ok(totals)) => Ok(totals),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            DATABASE_DEADLINE.as_millis()
        )),
    }
}

/// The sync's state: outbox, dead letters, worker leases, inbound
/// positions, the background parts that stopped, and Airtable's rate state
/// per base; the legacy backend's keys beside them. A readiness answer: 503
/// when the database does not answer or the sync is degraded (a dead
/// letter, a stopped worker or inbound sync; `reasons` says why), as the
/// legacy endpoint did; `/api/health` is the liveness answer.
pub async fn detailed(State(services): State<Arc<Services>>, headers: HeaderMap) -> Response {
    if let Some(refused) = super::monitor::refuse_unless_monitor(
        &headers,
        services.metrics_token.as_deref(),
        Some(&services.api),
    ) {
        return refused;
    }
    let database = ping(&services.pool).await;
    let airtable = services.airtable.as_ref().map(|client| {
        let metrics = client.metrics();
        json!({
            "bases": metrics.bases.iter().map(|b| json!({
                "baseId": b.base_id,
                "pausedForSeconds": b.paused_for.as_secs_f64(),
                "sharePercent": b.share * 100.0,
                "requestsPerWindow": b.requests_per_window,
                "rateLimitEpisodesByOthers": b.episodes_by_others,
                "budgetKeptBy": budget_kept_by(b),
            })).collect::<Vec<_>>(),
            "requestsInFlight": metrics.in_flight,
            "rateLimitedTotal": metrics.rate_limited,
        })
    });
    let worker = services.worker.as_ref().map(|w| {
        let s = w.snapshot();
        json!({ "sent": s.sent, "retried": s.retried, "deadLettered": s.dead_lettered, "deferred": s.deferred })
    });
    let Ok(latency) = database else {
        let reason = database.err().unwrap_or_default();
        let body = json!({
            "status": "unavailable",
            "reasons": ["the database does not answer"],
            "database": { "ok": false, "error": reason },
            "airtable": airtable,
            "db": "unavailable",
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    };
    let tables = services.mapping.entities().len() as i64;
    let stopped = services.stopped.list();
    let mut reasons: Vec<String> = stopped
        .iter()
        .map(|(part, error)| format!("the {part} stopped: {error}"))
        .collect();
    let mut legacy = json!({ "db": "ok" });
    let sync = match totals(&services.pool).await {
        Ok(t) => {
            // Every table reconciled, and none due again after a gap.
            let last_full_sync = t
                .last_full_reconcile
                .filter(|_| t.tables_reconciled >= tables);
            if t.dead_letters > 0 {
                reasons.push(format!(
                    "{} change(s) in the dead-letter queue",
                    t.dead_letters
                ));
            }
            legacy = json!({
                "db": "ok",
                "outbox_pending": t.pending - t.in_flight,
                "outbox_oldest_seconds": t.oldest_pending_seconds.unwrap_or(0.0),
                "dead_letter_count": t.dead_letters,
                "last_full_sync": last_full_sync,
            });
            json!({
                "outbox": {
                    "pending": t.pending,
                    "waiting": t.pending - t.in_flight,
                    "inFlight": t.in_flight,
                    "oldestPendingSeconds": t.oldest_pending_seconds,
                },
                "deadLetters": t.dead_letters,
                "workerLeases": t.leases,
                "inbound": {
                    "checkpoints": t.checkpoints,
                    "lastWebhookNotificationAt": t.last_inbox_event,
                    "lastFullReconcileAt": last_full_sync,
                },
            })
        }
        Err(err) => {
            reasons.push(format!("the sync's state could not be read: {err}"));
            json!({ "error": err })
        }
    };
    let (status, code) = if reasons.is_empty() {
        ("ok", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    let mut body = json!({
        "status": status,
        "reasons": reasons,
        "database": { "ok": true, "latencyMs": latency.as_secs_f64() * 1000.0 },
        "sync": sync,
        "worker": worker,
        "stoppedParts": stopped,
        "airtable": airtable,
        "baseId": services.base_id,
    });
    if let (Value::Object(body), Value::Object(legacy)) = (&mut body, legacy) {
        body.extend(legacy);
    }
    (code, Json(body)).into_response()
}

/// Who keeps a base's budget: the deployment (every process shares it
/// through the database) or, when the database cannot be reached, this
/// process alone.
pub(super) fn budget_kept_by(pace: &airsync_airtable::BasePace) -> &'static str {
    if pace.deployment_wide {
        "deployment"
    } else {
        "process"
    }
}
