//! `GET /metrics`: Prometheus text format, for `airsync serve` and for the
//! separate `airsync worker` process (`--metrics-listen`), each exporting
//! the families of the parts it runs.

use std::sync::Arc;
use std::time::Duration;

use airsync_airtable::AirtableClient;
use airsync_api::ShadowSnapshot;
use airsync_sync::inbound::{InboundContext, ReconcileProgress};
use airsync_sync::mapping::Mapping;
use airsync_sync::status::outbound_status;
use airsync_sync::worker::WorkerMetrics;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

use super::http::HttpMetrics;
use super::prom::{Exposition, Kind};
use super::Services;

/// The parts of one process whose metrics it exports.
pub struct MetricSources<'a> {
    pub pool: &'a PgPool,
    pub mapping: &'a Mapping,
    pub http: &'a HttpMetrics,
    pub worker: Option<&'a WorkerMetrics>,
    pub airtable: Option<&'a AirtableClient>,
    pub inbound: Option<&'a InboundContext>,
    /// Shadow-read counts, where the API runs.
    pub shadow: Option<ShadowSnapshot>,
}

/// `airsync serve`'s exposition.
pub async fn exposition(State(services): State<Arc<Services>>, headers: HeaderMap) -> Response {
    if let Some(refused) = super::monitor::refuse_unless_monitor(
        &headers,
        services.metrics_token.as_deref(),
        Some(&services.api),
    ) {
        return refused;
    }
    let sources = MetricSources {
        pool: &services.pool,
        mapping: &services.mapping,
        http: &services.http,
        worker: services.worker.as_deref(),
        airtable: services.airtable.as_ref(),
        inbound: services.inbound.as_ref(),
        shadow: Some(services.api.shadow_differences()),
    };
    answer(render(&sources).await)
}

/// The exposition as an HTTP answer.
pub fn answer(text: String) -> Response {
    ([(CONTENT_TYPE, super::prom::CONTENT_TYPE)], text).into_response()
}

/// The families of every part in `sources`. Database gauges are left out
/// (and `airsync_database_up` is 0) when PostgreSQL does not answer within
/// a second, so that a scrape never hangs.
pub async fn render(sources: &MetricSources<'_>) -> String {
    let mut out = Exposition::default();
    sources.http.write(&mut out);

    let statuses = tokio::time::timeout(
        Duration::from_secs(1),
        outbound_status(sources.pool, sources.mapping),
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
        inbound_positions(sources.pool, sources.mapping),
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

    if let Some(worker) = sources.worker {
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

    if let Some(client) = sources.airtable {
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
            "airsync_airtable_rate_share_ratio",
            Kind::Gauge,
            "airsync's current share of a base's requests per second (falls when others' requests draw a 429).",
        );
        for b in &m.bases {
            out.sample(
                "airsync_airtable_rate_share_ratio",
                &[("base", &b.base_id)],
                b.share,
            );
        }
        out.family(
            "airsync_airtable_rate_budget_ratio",
            Kind::Gauge,
            "The configured budget: the most the share climbs back to.",
        );
        for b in &m.bases {
            out.sample(
                "airsync_airtable_rate_budget_ratio",
                &[("base", &b.base_id)],
                b.budget,
            );
        }
        out.family(
            "airsync_airtable_rate_limit_episodes_total",
            Kind::Counter,
            "429 episodes of a base, by their most likely cause (others: another client's requests; airsync: its own).",
        );
        for b in &m.bases {
            for (cause, count) in [
                ("others", b.episodes_by_others),
                ("airsync", b.episodes_by_airsync),
            ] {
                out.sample(
                    "airsync_airtable_rate_limit_episodes_total",
                    &[("base", &b.base_id), ("cause", cause)],
                    count as f64,
                );
            }
        }
        out.family(
            "airsync_airtable_request_duration_seconds",
            Kind::Histogram,
            "Latency of requests to Airtable.",
        );
        out.histogram("airsync_airtable_request_duration_seconds", &[], &m.latency);
    }

    if let Some(inbound) = sources.inbound {
        write_inbound(&mut out, inbound);
    }
    if let Some(shadow) = &sources.shadow {
        write_shadow(&mut out, shadow);
    }
    out.finish()
}

fn write_inbound(out: &mut Exposition, inbound: &InboundContext) {
    let metrics = inbound.metrics();
    let m = metrics.snapshot();
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
            "airsync_inbound_stale_listings_skipped_total",
            "Records of a listing left unapplied because a side changed them after it was read.",
            m.stale_listings_skipped,
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

    let provisioning = metrics.user_provisioning();
    out.family(
        "airsync_user_provisioning_seconds",
        Kind::Histogram,
        "Time from a user's creation in Airtable to the commit of its row in PostgreSQL (users created in Airtable only; the first reconcile, a backfill, left out).",
    );
    out.histogram("airsync_user_provisioning_seconds", &[], &provisioning);
    // Every mapped table has its series from the start, so that rates and
    // the dashboard see a reconcile's first page.
    let progress = metrics.reconcile_progress();
    let reconciles: Vec<(&str, ReconcileProgress)> = inbound
        .mapping()
        .entities()
        .iter()
        .map(|e| {
            let name = e.name.as_str();
            (name, progress.get(name).cloned().unwrap_or_default())
        })
        .collect();
    out.family(
        "airsync_reconcile_records_seen_total",
        Kind::Counter,
        "Records read by full reconciles, counted as each page arrives, by entity.",
    );
    for (entity, progress) in &reconciles {
        out.sample(
            "airsync_reconcile_records_seen_total",
            &[("table", *entity)],
            progress.records_seen as f64,
        );
    }
    out.family(
        "airsync_reconcile_running",
        Kind::Gauge,
        "1 while a full reconcile of the table runs in this process, by entity.",
    );
    for (entity, progress) in &reconciles {
        out.sample(
            "airsync_reconcile_running",
            &[("table", *entity)],
            if progress.running { 1.0 } else { 0.0 },
        );
    }
}

fn write_shadow(out: &mut Exposition, shadow: &ShadowSnapshot) {
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
}

/// Per entity: seconds since its changes were last read from Airtable (the
/// later of the webhook's last payload read and its own poll), and when its
/// last full reconcile finished.
pub(super) async fn inbound_positions(
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
