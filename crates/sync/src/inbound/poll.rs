//! The incremental poll: per table, the records modified since the table's
//! watermark (`LAST_MODIFIED_TIME()`, minus an overlap for coarse times,
//! clock skew and writes in flight), for bases without a webhook, as the
//! safety net, and to catch up a webhook's gap. Re-reading a record is
//! harmless: applying is idempotent. Deletes are invisible to a poll; the
//! webhook and the reconcile see them.

use airsync_airtable::{formula, ListOptions};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::checkpoint::{self, PollCheckpoint};
use super::context::InboundContext;
use super::listing::apply_listing;
use super::metrics::InboundMetricsSnapshot;
use super::observe::from_record;
use super::schema::{ResolvedBase, ResolvedEntity};
use crate::Result;

/// What a poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// Tables polled.
    pub tables: u64,
    /// Records read (applied or found equal).
    pub records: u64,
}

/// Polls every mapped table once, each from its watermark. A table without
/// a watermark starts from now (a full reconcile brings in the past).
pub async fn poll_once(ctx: &InboundContext) -> Result<PollReport> {
    poll_all(ctx, None).await
}

/// Polls every table from `from` at the latest (a webhook's gap).
pub(crate) async fn catch_up(ctx: &InboundContext, from: DateTime<Utc>) -> Result<PollReport> {
    poll_all(ctx, Some(from)).await
}

async fn poll_all(ctx: &InboundContext, floor: Option<DateTime<Utc>>) -> Result<PollReport> {
    let base = ctx.schema().await?;
    let mut report = PollReport::default();
    crate::versions::prune_tombstones(ctx.pool()).await?;
    for entity in &base.entities {
        report.records += poll_table(ctx, &base, entity, floor).await?;
        report.tables += 1;
    }
    Ok(report)
}

async fn poll_table(
    ctx: &InboundContext,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
    floor: Option<DateTime<Utc>>,
) -> Result<u64> {
    let name = checkpoint::poll_name(entity.name());
    let stored: Option<PollCheckpoint> = checkpoint::load(ctx.pool(), &name).await?;
    let started = Utc::now();
    let since = match (stored, floor) {
        (Some(stored), Some(floor)) => stored.since.min(floor),
        (Some(stored), None) => stored.since,
        (None, Some(floor)) => floor,
        (None, None) => {
            checkpoint::store(ctx.pool(), &name, &PollCheckpoint { since: started }).await?;
            return Ok(0);
        }
    };
    let overlap = chrono::Duration::from_std(ctx.settings().poll_overlap)
        .unwrap_or_else(|_| chrono::Duration::seconds(60));
    let options = ListOptions::new()
        .filter(formula::modified_since(since - overlap))
        .fields(entity.field_ids())
        .by_field_id();
    let mut pages = ctx
        .client()
        .table(ctx.base_id(), entity.table_id.as_str())
        .pages(options);
    let mut records = 0;
    loop {
        let read_at = Utc::now();
        let Some(page) = pages.try_next().await? else {
            break;
        };
        records += page.records.len() as u64;
        let observations = page
            .records
            .iter()
            .map(|r| from_record(entity, r, read_at))
            .collect();
        apply_listing(ctx, base, entity, observations, true).await?;
    }
    let since = started.max(stored.map_or(started, |s| s.since));
    checkpoint::store(ctx.pool(), &name, &PollCheckpoint { since }).await?;
    ctx.metrics().add(&InboundMetricsSnapshot {
        table_polls: 1,
        ..Default::default()
    });
    if records > 0 {
        tracing::debug!(entity = %entity.name(), records, "incremental poll");
    }
    Ok(records)
}
