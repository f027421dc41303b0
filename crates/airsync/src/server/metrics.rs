//! `GET /metrics`: Prometheus text format.

use std::sync::Arc;
use std::time::Duration;

use airsync_sync::status::outbound_status;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::prom::{Exposition, Kind};
use super::Services;

/// The families of every part running in this process. Database gauges are
/// left out (and `airsync_database_up` is 0) when PostgreSQL does not answer
/// within a second, so that a scrape never hangs.
pub async fn exposition(State(services): State<Arc<Services>>) -> impl IntoResponse {
    let mut out = Exposition::default();
    services.http.write(&mut out);

    let statuses = tokio::time::timeout(
        Duration::from_secs(1),
        outbound_status(&services.pool, &services.mapping),
    )
    .await;
    out.family(
        "airsync_database_up",
        Kind::Gauge,
        "1 when PostgreSQL answered this scrape.",
    );
    match statuses {
        Ok(Ok(statuses)) => {
            out.sample("airsync_database_up", &[], 1.0);
            out.family(
                "airsync_outbox_pending",
                Kind::Gauge,
                "Outbound events waiting or in flight, by entity.",
            );
            for s in &statuses {
                out.sample(
                    "airsync_outbox_pending",
                    &[("entity", &s.entity)],
                    s.pending as f64,
                );
            }
            out.family(
                "airsync_outbox_oldest_pending_seconds",
                Kind::Gauge,
                "Age of the oldest waiting change, by entity.",
            );
            for s in &statuses {
                out.sample(
                    "airsync_outbox_oldest_pending_seconds",
                    &[("entity", &s.entity)],
                    s.oldest_pending_secs.unwrap_or(0) as f64,
                );
            }
            out.family(
                "airsync_dead_letters",
                Kind::Gauge,
                "Events in the dead-letter queue, by entity.",
            );
            for s in &statuses {
                out.sample(
                    "airsync_dead_letters",
                    &[("entity", &s.entity)],
                    s.dead_letters as f64,
                );
            }
        }
        _ => out.sample("airsync_database_up", &[], 0.0),
    }

    if let Ok(Ok(lags)) = tokio::time::timeout(
        Duration::from_secs(1),
        inbound_positions(&services.pool, &services.mapping),
    )
    .await
    {
        out.family(
            "airsync_inbound_lag_seconds",
            Kind::Gauge,
            "Seconds since a table's Airtable changes were last read (webhook payloads or its incremental poll), by entity.",
        );
        for (entity, lag, _) in &lags {
            if let Some(lag) = lag {
                out.sample("airsync_inbound_lag_seconds", &[("table", entity)], *lag);
            }
        }
        out.family(
            "airsync_reconcile_last_completed_timestamp_seconds",
            Kind::Gauge,
            "When a table's last full reconcile finished, as a Unix time, by entity.",
        );
        for (entity, _, reconciled) in &lags {
            if let Some(at) = reconciled {
                out.sample(
                    "airsync_reconcile_last_completed_timestamp_seconds",
                    &[("table", entity)],
                    *at,
                );
            }
        }
    }

    if let Some(worker) = &services.worker {
        let w = worker.snapshot();
        for (name, help, value) in [
            (
                "airsync_outbox_events_sent_total",
                "Records written to or deleted from Airtable by the worker.",
                w.sent,
            ),
            (
                "airsync_outbox_events_retried_total",
                "Events put back after a transient failure.",
                w.retried,
            ),
            (
                "airsync_outbox_events_dead_lettered_total",
                "Events moved to the dead-letter queue.",
                w.dead_lettered,
            ),
            (
                "airsync_outbox_events_deferred_total",
                "Events that waited for a linked row.",
                w.deferred,
            ),
            (
                "airsync_outbox_batches_total",
                "Batches the worker processed.",
                w.batches,
            ),
        ] {
            out.family(name, Kind::Counter, help);
            out.sample(name, &[], value as f64);
        }
    }

    if let Some(client) = &services.airtable {
        let m = client.metrics();
        out.family(
            "airsync_airtable_requests_total",
            Kind::Counter,
            "Requests to Airtable by base, kind and outcome.",
        );
        for r in &m.requests {
            out.sample(
                "airsync_airtable_requests_total",
                &[
                    ("base", &r.base_id),
                    ("kind", r.kind.as_str()),
                    ("outcome", &r.outcome),
                ],
                r.count as f64,
            );
        }
        for (name, help, value) in [
            (
                "airsync_airtable_rate_limited_total",
                "429 answers from Airtable.",
                m.rate_limited as f64,
            ),
            (
                "airsync_airtable_retries_total",
                "Requests sent again after a failure.",
                m.retries as f64,
            ),
            (
                "airsync_airtable_token_waits_total",
                "Requests that waited for a pacing slot.",
                m.token_waits as f64,
            ),
            (
                "airsync_airtable_token_wait_seconds_total",
                "Time spent waiting for pacing slots.",
                m.token_wait_seconds,
            ),
        ] {
            out.family(name, Kind::Counter, help);
            out.sample(name, &[], value);
        }
        out.family(
            "airsync_airtable_requests_in_flight",
            Kind::Gauge,
            "Requests to Airtable on the wire.",
        );
        out.sample(
            "airsync_airtable_requests_in_flight",
            &[],
            m.in_flight as f64,
        );
        out.family(
            "airsync_airtable_base_paused_seconds",
            Kind::Gauge,
            "Remaining pause of a base after a 429.",
        );
        for b in &m.bases {
            out.sample(
                "airsync_airtable_base_paused_seconds",
                &[("base", &b.base_id)],
                b.paused_for.as_secs_f64(),
            );
        }
        out.family(
            "airsync_airtable_request_duration_seconds",
            Kind::Histogram,
            "Latency of requests to Airtable.",
        );
        out.histogram(
            "airsync_airtable_request_duration_seconds",
            &[],
            &m.latency.bounds,
            &m.latency.counts,
            m.latency.sum_seconds,
        );
    }

    if let Some(inbound) = &services.inbound {
        let m = inbound.metrics().snapshot();
        for (name, help, value) in [
            (
                "airsync_inbound_payloads_applied_total",
                "Webhook payloads applied.",
                m.payloads_applied,
            ),
            (
                "airsync_inbound_rows_created_total",
                "Rows created from Airtable records.",
                m.rows_created,
            ),
            (
                "airsync_inbound_rows_updated_total",
                "Rows changed by Airtable records.",
                m.rows_updated,
            ),
            (
                "airsync_inbound_rows_deleted_total",
                "Rows deleted or deactivated because their record was deleted.",
                m.rows_deleted + m.rows_deactivated,
            ),
            (
                "airsync_inbound_echoes_suppressed_total",
                "Records that matched their row already (echoes of our own writes, repeats).",
                m.rows_unchanged,
            ),
            (
                "airsync_inbound_records_deferred_total",
                "Records set aside to be tried again.",
                m.records_deferred,
            ),
            (
                "airsync_inbound_notifications_rejected_total",
                "Webhook notifications refused (no valid MAC).",
                m.notifications_rejected,
            ),
            (
                "airsync_inbound_notifications_duplicate_total",
                "Webhook notifications seen before, dropped.",
                m.notifications_duplicate,
            ),
        ] {
            out.family(name, Kind::Counter, help);
            out.sample(name, &[], value as f64);
        }
        out.family(
            "airsync_inbound_conflicts_total",
            Kind::Counter,
            "Fields changed on both sides, by the side whose value was kept.",
        );
        out.sample(
            "airsync_inbound_conflicts_total",
            &[("winner", "airtable")],
            m.conflicts_airtable_won as f64,
        );
        out.sample(
            "airsync_inbound_conflicts_total",
            &[("winner", "postgres")],
            m.conflicts_postgres_won as f64,
        );
    }

    let shadow = services.api.shadow_differences();
    out.family(
        "airsync_shadow_reads_compared_total",
        Kind::Counter,
        "Shadow reads compared with PostgreSQL.",
    );
    out.sample(
        "airsync_shadow_reads_compared_total",
        &[],
        shadow.compared as f64,
    );
    out.family(
        "airsync_shadow_read_differences_total",
        Kind::Counter,
        "Differences between Airtable and PostgreSQL answers, by endpoint and field.",
    );
    for ((endpoint, field), count) in &shadow.differences {
        out.sample(
            "airsync_shadow_read_differences_total",
            &[("endpoint", endpoint), ("field", field)],
            *count as f64,
        );
    }

    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out.finish(),
    )
}

/// Per entity: seconds since its changes were last read from Airtable (the
/// later of the webhook's last payload read and its own poll), and when its
/// last full reconcile finished.
async fn inbound_positions(
    pool: &sqlx::PgPool,
    mapping: &airsync_sync::mapping::Mapping,
) -> Result<Vec<(String, Option<f64>, Option<f64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT e.entity,
                extract(epoch FROM now() - greatest(p.updated_at, (w.value->>'last_read_at')::timestamptz))::float8,
                extract(epoch FROM r.updated_at)::float8
           FROM unnest($1::text[]) AS e(entity)
           LEFT JOIN sync_checkpoint p ON p.name = 'inbound:poll:' || e.entity
           LEFT JOIN sync_checkpoint r ON r.name = 'inbound:reconcile:' || e.entity
           LEFT JOIN LATERAL (SELECT value FROM sync_checkpoint
                               WHERE name LIKE 'inbound:webhook:%' ORDER BY updated_at DESC LIMIT 1) w ON true",
    )
    .bind(mapping.entities().iter().map(|e| e.name.clone()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await
}
