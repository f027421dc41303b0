//! The payload reader: pages the webhook's payloads from the cursor kept in
//! `sync_checkpoint`, applies them in order, and advances the cursor in the
//! same transaction as the changes, so a crash in between applies nothing
//! twice and loses nothing. A ping only wakes it; it also runs on a timer,
//! so a lost ping delays a change by seconds, not forever.

use std::collections::BTreeMap;

use airsync_airtable::{PayloadPage, Priority, WebhookPayload};
use chrono::Utc;
use futures_util::TryStreamExt;

use super::apply::{apply_deletes, apply_upserts, begin_inbound, BatchInput, Counts, Mode};
use super::checkpoint::{self, WebhookCheckpoint};
use super::context::InboundContext;
use super::links::prefetch_links;
use super::notification::mark_processed;
use super::observe::{from_payload, Change, Observation};
use super::schema::ResolvedBase;
use crate::Result;

/// What one read did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadReport {
    /// Pages read.
    pub pages: u64,
    /// Payloads applied.
    pub payloads: u64,
    /// The cursor afterwards.
    pub cursor: u64,
    /// The webhook is gone or in error; [`ensure_webhook`] recreates it.
    ///
    /// [`ensure_webhook`]: super::ensure_webhook
    pub webhook_broken: bool,
}

/// Reads and applies every payload waiting since the cursor.
pub async fn read_payloads_once(ctx: &InboundContext) -> Result<ReadReport> {
    let name = checkpoint::webhook_name(ctx.base_id());
    let mut report = ReadReport::default();
    let Some(stored) = checkpoint::load::<WebhookCheckpoint>(ctx.pool(), &name).await? else {
        return Ok(report);
    };
    report.cursor = stored.cursor;
    if stored.broken {
        report.webhook_broken = true;
        return Ok(report);
    }
    let started = Utc::now();
    let base = ctx.schema().await?;
    let mut cursor = stored.cursor;
    // Someone waits for these changes: they go ahead of pushes and pages.
    let mut pages = ctx
        .client()
        .with_priority(Priority::Urgent)
        .base(ctx.base_id())
        .webhook_payloads(&stored.webhook_id, cursor);
    loop {
        let page = match pages.try_next().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(err) if matches!(err.status(), Some(404)) => {
                tracing::warn!(webhook = %stored.webhook_id, "the webhook is gone");
                mark_broken(ctx, &stored.webhook_id).await?;
                report.webhook_broken = true;
                break;
            }
            Err(err) => return Err(err.into()),
        };
        report.pages += 1;
        match apply_page(ctx, &base, &stored, cursor, &page).await? {
            Some((next, applied, broken)) => {
                cursor = next;
                report.payloads += applied;
                if broken {
                    report.webhook_broken = true;
                    break;
                }
            }
            // Another reader moved the cursor: it reads from there.
            None => break,
        }
        if !page.might_have_more {
            break;
        }
    }
    report.cursor = cursor;
    mark_processed(ctx, started).await?;
    Ok(report)
}

/// Flags the webhook for recreation.
async fn mark_broken(ctx: &InboundContext, webhook_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE sync_checkpoint SET value = jsonb_set(value, '{broken}', 'true')
          WHERE name = $1 AND value->>'webhook_id' = $2",
    )
    .bind(checkpoint::webhook_name(ctx.base_id()))
    .bind(webhook_id)
    .execute(ctx.pool())
    .await?;
    Ok(())
}

/// Applies one page; answers the next cursor, the payloads applied and
/// whether an error payload ended the webhook, or `None` when another
/// reader had moved the cursor.
async fn apply_page(
    ctx: &InboundContext,
    base: &ResolvedBase,
    stored: &WebhookCheckpoint,
    cursor: u64,
    page: &PayloadPage,
) -> Result<Option<(u64, u64, bool)>> {
    let webhook_id = stored.webhook_id.as_str();
    // Changes of entities the webhook leaves to the poll are passed over.
    let applied = |position: &usize| {
        base.entities
            .get(*position)
            .is_some_and(|entity| !stored.unwatched.iter().any(|e| e == entity.name()))
    };
    let mut payloads: Vec<&WebhookPayload> = Vec::new();
    let mut next = page.cursor.max(cursor);
    let mut broken = false;
    for (number, payload) in page.numbered() {
        if payload.error {
            tracing::warn!(webhook = %webhook_id, code = ?payload.code, "an error payload: the webhook must be recreated");
            next = number + 1;
            broken = true;
            break;
        }
        payloads.push(payload);
    }
    let changes: Vec<(&WebhookPayload, Vec<(usize, Change)>)> = payloads
        .iter()
        .map(|p| {
            let mut changes = from_payload(base, p);
            changes.retain(|(position, _)| applied(position));
            (*p, changes)
        })
        .collect();
    let batch: Vec<(usize, &Observation)> = changes
        .iter()
        .flat_map(|(_, c)| c.iter())
        .filter_map(|(position, change)| match change {
            Change::Upsert(o) => Some((*position, o)),
            Change::Delete(_) => None,
        })
        .collect();
    let prefetched = prefetch_links(ctx, base, &batch).await?;
    let mut counts = Counts::default();
    counts.links_fetched = prefetched.fetched;
    let no_answers = Default::default();

    let mut tx = begin_inbound(ctx.pool()).await?;
    let name = checkpoint::webhook_name(ctx.base_id());
    let Some(mut current) =
        checkpoint::load_for_update::<WebhookCheckpoint>(&mut *tx, &name).await?
    else {
        return Ok(None);
    };
    if current.webhook_id != webhook_id || current.cursor != cursor {
        return Ok(None);
    }
    let input = |position: usize, mode: Mode| {
        base.entities.get(position).map(|entity| BatchInput {
            entity,
            mode,
            airtable_later: &no_answers,
            gone: &prefetched.gone,
            measures_provisioning: true,
        })
    };
    let mut extras: BTreeMap<usize, Vec<Observation>> = BTreeMap::new();
    for (position, observation) in &prefetched.extra {
        extras
            .entry(*position)
            .or_default()
            .push(observation.clone());
    }
    for (position, group) in &extras {
        if let Some(input) = input(*position, Mode::Listing) {
            apply_upserts(&mut tx, &input, group, &mut counts).await?;
        }
    }
    for (payload, payload_changes) in &changes {
        let mut upserts: BTreeMap<usize, Vec<Observation>> = BTreeMap::new();
        let mut deletes: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (position, change) in payload_changes {
            match change {
                Change::Upsert(o) => upserts.entry(*position).or_default().push(o.clone()),
                Change::Delete(id) => deletes.entry(*position).or_default().push(id.clone()),
            }
        }
        for (position, group) in &upserts {
            if let Some(input) = input(*position, Mode::Payload) {
                apply_upserts(&mut tx, &input, group, &mut counts).await?;
            }
        }
        // Dependents first, so a cascade finds nothing left to do.
        for (position, records) in deletes.iter().rev() {
            if let Some(entity) = base.entities.get(*position) {
                apply_deletes(
                    &mut tx,
                    base,
                    entity,
                    records,
                    payload.timestamp,
                    &mut counts,
                )
                .await?;
            }
        }
    }
    current.cursor = next;
    // The newest change read, not the time of reading: a recreated
    // webhook's catch-up starts from it.
    current.last_read_at = payloads
        .iter()
        .filter_map(|p| p.timestamp)
        .max()
        .or(current.last_read_at);
    current.broken = broken;
    checkpoint::store(&mut *tx, &name, &current).await?;
    tx.commit().await?;
    counts.committed(&ctx.metrics());
    counts.payloads_applied += payloads.len() as u64;
    ctx.metrics().add(&counts);
    Ok(Some((next, payloads.len() as u64, broken)))
}
