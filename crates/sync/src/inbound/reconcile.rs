//! The full reconcile: every record of every mapped table, streamed a page
//! at a time (memory stays flat in the base's size but for the set of
//! record ids seen), applied like any listing, and the records deleted in
//! Airtable found by comparing the id map with what was seen. A reconcile
//! that would delete more than a share of a table (a page that failed, a
//! wrong view) refuses and reports instead, unless forced.

use std::collections::HashSet;
use std::time::Instant;

use airsync_airtable::{ListOptions, Page, Priority};
use chrono::Utc;
use futures_util::TryStreamExt;

use super::apply::{apply_deletes, begin_inbound, Counts};
use super::checkpoint::{self, PollCheckpoint, ReconcileCheckpoint};
use super::context::InboundContext;
use super::listing::apply_listing;
use super::metrics::InboundMetricsSnapshot;
use super::observe::from_record;
use super::schema::{ResolvedBase, ResolvedEntity};
use crate::session_lock::SessionLock;
use crate::{Error, Result};

/// What to reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Only this table: an entity name, an Airtable table name or id, or a
    /// PostgreSQL table name. Every mapped table when `None`.
    pub table: Option<String>,
    /// Apply deletes even beyond the mass-delete guard.
    pub force: bool,
}

/// What the reconcile of one table did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableReconcile {
    /// The entity.
    pub entity: String,
    /// Records read from Airtable.
    pub records: u64,
    /// Rows created, changed, and found equal.
    pub created: u64,
    /// Rows changed.
    pub updated: u64,
    /// Rows already equal.
    pub unchanged: u64,
    /// Records set aside to try again.
    pub deferred: u64,
    /// Records found deleted in Airtable and applied per the policy.
    pub deleted: u64,
    /// Deletes found but refused by the mass-delete guard.
    pub refused_deletes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// What a reconcile did, per table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReconcileReport {
    /// One entry per table, in the mapping's order.
    pub tables: Vec<TableReconcile>,
}

impl ReconcileReport {
    /// Whether a table's deletes were refused.
    pub fn refused(&self) -> bool {
        self.tables.iter().any(|t| t.refused_deletes > 0)
    }

    /// Records read in all.
    pub fn records(&self) -> u64 {
        self.tables.iter().map(|t| t.records).sum()
    }
}

/// Which entities `table` names.
pub(crate) fn select<'b>(
    base: &'b ResolvedBase,
    table: Option<&str>,
) -> Result<Vec<&'b ResolvedEntity>> {
    let Some(table) = table else {
        return Ok(base.entities.iter().collect());
    };
    let found: Vec<&ResolvedEntity> = base
        .entities
        .iter()
        .filter(|e| {
            e.name() == table
                || e.mapping.airtable_table == table
                || e.table_id == table
                || e.mapping.table == table
        })
        .collect();
    if found.is_empty() {
        return Err(Error::NotFound(format!("no mapped table {table:?}")));
    }
    Ok(found)
}

/// Reconciles the chosen tables, in the mapping's order (linked tables
/// first, so links resolve without extra reads).
/// Runs [`reconcile`] unless another process of the deployment is running
/// one of the same base (a session advisory lock on the database):
/// `None` then. Two reconciles at once would read every table twice and
/// spend the base's requests twice for nothing.
pub async fn reconcile_exclusive(
    ctx: &InboundContext,
    options: &ReconcileOptions,
) -> Result<Option<ReconcileReport>> {
    let key = format!("airsync:reconcile:{}", ctx.base_id());
    let Some(lock) = SessionLock::try_acquire(ctx.pool(), key).await? else {
        return Ok(None);
    };
    let result = reconcile(ctx, options).await;
    lock.release().await;
    result.map(Some)
}

pub async fn reconcile(
    ctx: &InboundContext,
    options: &ReconcileOptions,
) -> Result<ReconcileReport> {
    ctx.forget_schema();
    let base = ctx.schema().await?;
    let mut report = ReconcileReport::default();
    for entity in select(&base, options.table.as_deref())? {
        report
            .tables
            .push(reconcile_table(ctx, &base, entity, options.force).await?);
    }
    Ok(report)
}

async fn reconcile_table(
    ctx: &InboundContext,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
    force: bool,
) -> Result<TableReconcile> {
    let clock = Instant::now();
    let started = Utc::now();
    let metrics = ctx.metrics();
    let _running = metrics.reconcile_running(entity.name());
    // The first reconcile of a table is its backfill: the users it brings
    // in were not waiting to be provisioned.
    let measures_provisioning: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sync_checkpoint WHERE name = $1)")
            .bind(checkpoint::reconcile_name(entity.name()))
            .fetch_one(ctx.pool())
            .await?;
    let mut out = TableReconcile {
        entity: entity.name().to_owned(),
        ..Default::default()
    };
    // Pages are read ahead while the previous one is applied, so the read
    // pace (Airtable's 5 requests/s) is the only limit; the channel keeps
    // at most two pages in memory.
    type Read = (chrono::DateTime<Utc>, airsync_airtable::Result<Page>);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Read>(2);
    // A reconcile can wait: every other request of the base goes first.
    let mut pages = ctx
        .client()
        .with_priority(Priority::Background)
        .table(ctx.base_id(), entity.table_id.as_str())
        .pages(ListOptions::new().fields(entity.field_ids()).by_field_id());
    let reader = tokio::spawn(async move {
        loop {
            let read_at = Utc::now();
            let next = pages.try_next().await.transpose();
            let Some(next) = next else { break };
            let failed = next.is_err();
            if sender.send((read_at, next)).await.is_err() || failed {
                break;
            }
        }
    });
    let progress = ctx.settings().progress.clone();
    let part = entity.mapping.airtable_table.clone();
    if let Some(progress) = &progress {
        progress.start(&part, None);
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut counts = Counts::default();
    while let Some((read_at, page)) = receiver.recv().await {
        let page = page?;
        out.records += page.records.len() as u64;
        metrics.reconcile_records_seen(entity.name(), page.records.len() as u64);
        seen.extend(page.records.iter().map(|r| r.id.clone()));
        let observations = page
            .records
            .iter()
            .map(|r| from_record(entity, r, read_at))
            .collect();
        let page_counts =
            apply_listing(ctx, base, entity, observations, measures_provisioning).await?;
        add(&mut counts, &page_counts);
        if let Some(progress) = &progress {
            progress.advance(&part, out.records);
        }
    }
    let _ = reader.await;
    if let Some(progress) = &progress {
        progress.finish(&part, out.records);
    }

    // Records mapped before the listing started and not seen in it were
    // deleted in Airtable. Later mappings (a record created meanwhile) are
    // left to the next reconcile.
    let mapped: Vec<String> = sqlx::query_scalar(
        "SELECT airtable_id FROM airtable_id_map WHERE entity = $1 AND created_at < $2",
    )
    .bind(entity.name())
    .bind(started)
    .fetch_all(ctx.pool())
    .await?;
    let missing: Vec<String> = mapped.into_iter().filter(|id| !seen.contains(id)).collect();
    let table_size = seen.len() as u64 + missing.len() as u64;
    let settings = ctx.settings();
    let allowed = ((table_size as f64 * settings.max_delete_share).floor() as u64)
        .max(settings.max_unguarded_deletes);
    if missing.len() as u64 > allowed && !force {
        out.refused_deletes = missing.len() as u64;
        tracing::error!(entity = %entity.name(), deletes = missing.len(), table_size, allowed,
            "the reconcile would delete more than the guard allows; refused (use --force after checking)");
        ctx.metrics().add(&InboundMetricsSnapshot {
            mass_deletes_refused: 1,
            ..Default::default()
        });
    } else if !missing.is_empty() {
        for chunk in missing.chunks(500) {
            let mut tx = begin_inbound(ctx.pool()).await?;
            apply_deletes(&mut tx, base, entity, chunk, None, &mut counts).await?;
            tx.commit().await?;
        }
        out.deleted = missing.len() as u64;
        tracing::info!(entity = %entity.name(), deleted = missing.len(), "records deleted in Airtable, found by the reconcile");
    }
    let deletes = InboundMetricsSnapshot {
        rows_deleted: counts.rows_deleted,
        rows_deactivated: counts.rows_deactivated,
        table_reconciles: 1,
        ..Default::default()
    };
    ctx.metrics().add(&deletes);

    out.created = counts.rows_created;
    out.updated = counts.rows_updated;
    out.unchanged = counts.rows_unchanged;
    out.deferred = counts.records_deferred;
    out.seconds = clock.elapsed().as_secs_f64();
    let finished_at = Utc::now();
    let record = ReconcileCheckpoint {
        started_at: started,
        finished_at,
        records: out.records,
        deleted: out.deleted,
        refused_deletes: out.refused_deletes,
    };
    checkpoint::store(
        ctx.pool(),
        &checkpoint::reconcile_name(entity.name()),
        &record,
    )
    .await?;
    // Everything modified before the listing started has been seen.
    let poll = checkpoint::poll_name(entity.name());
    let since = checkpoint::load::<PollCheckpoint>(ctx.pool(), &poll)
        .await?
        .map_or(started, |p| p.since.max(started));
    checkpoint::store(ctx.pool(), &poll, &PollCheckpoint { since }).await?;
    Ok(out)
}

fn add(total: &mut Counts, page: &Counts) {
    total.rows_created += page.rows_created;
    total.rows_updated += page.rows_updated;
    total.rows_unchanged += page.rows_unchanged;
    total.records_deferred += page.records_deferred;
}
