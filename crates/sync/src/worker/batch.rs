//! Processing one claimed batch: prepare, send in request-sized chunks with
//! bounded concurrency, and let events whose linked rows were in the same
//! batch follow in a second wave, once those rows have records.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

use crate::mapping::Mapping;
use crate::outbox::{self, DeadLetterReason, FailureDetail, OutboxEvent, Requeue};
use crate::Result;

use super::prepare::prepare_entity;
use super::send::{
    chunk_actions, complete_events, find_orphans, send_chunk, ChunkOutcome, RecordWriter,
};
use super::unseen::hold_unseen_edits;
use super::{BatchReport, WorkerContext};

/// A chain of links within one batch is at most this deep (user, program,
/// schedule day, method usage); deeper chains wait for the next claim.
const MAX_WAVES: usize = 5;

pub(crate) async fn process<W: RecordWriter + 'static>(
    ctx: Arc<WorkerContext<W>>,
    events: Vec<OutboxEvent>,
) -> Result<BatchReport> {
    let mut report = BatchReport {
        claimed: events.len() as u64,
        ..Default::default()
    };
    if events.is_empty() {
        return Ok(report);
    }
    // Dropped with this future, also when the batch is cancelled, so that
    // a cancelled batch's leases expire and its events are taken again.
    let _renewal = AbortOnDrop(spawn_lease_renewal(
        ctx.clone(),
        events.iter().map(|e| e.id).collect(),
    ));
    let result = process_waves(&ctx, events, &mut report).await;
    ctx.metrics.record(&report);
    result.map(|()| report)
}

async fn process_waves<W: RecordWriter + 'static>(
    ctx: &Arc<WorkerContext<W>>,
    mut wave: Vec<OutboxEvent>,
    report: &mut BatchReport,
) -> Result<()> {
    for round in 0..MAX_WAVES {
        let in_batch: HashSet<(String, Uuid)> =
            wave.iter().map(|e| (e.entity.clone(), e.row_id)).collect();
        let mut next_wave = Vec::new();
        let mut chunks = Vec::new();
        for (entity_name, events) in group_by_entity(&ctx.mapping, wave) {
            let Some(entity) = ctx
                .mapping
                .entity(&entity_name)
                .filter(|e| e.syncs_outbound())
            else {
                for event in events {
                    let detail = FailureDetail {
                        message: format!("entity {entity_name} is not mapped for outbound sync"),
                        ..Default::default()
                    };
                    outbox::dead_letter(
                        &ctx.pool,
                        &ctx.settings.owner,
                        event.id,
                        DeadLetterReason::Mapping,
                        &detail,
                    )
                    .await?;
                    report.dead += 1;
                }
                continue;
            };
            let prepared =
                prepare_entity(&ctx.pool, &ctx.mapping, entity, events, &in_batch).await?;
            for (event, reason, message) in prepared.dead {
                tracing::warn!(entity = %event.entity, row_id = %event.row_id, event_id = event.id, %message, "cannot be sent; moved to the dead-letter queue");
                let detail = FailureDetail {
                    message,
                    ..Default::default()
                };
                outbox::dead_letter(&ctx.pool, &ctx.settings.owner, event.id, reason, &detail)
                    .await?;
                report.dead += 1;
            }
            complete_events(ctx, &prepared.finished).await?;
            report.finished += prepared.finished.len() as u64;
            for deferred in prepared.deferred {
                if deferred.in_this_batch && round + 1 < MAX_WAVES {
                    next_wave.push(deferred.event);
                } else {
                    defer(
                        ctx,
                        &deferred.event,
                        deferred.count_attempt,
                        deferred.reason,
                    )
                    .await?;
                    report.deferred += 1;
                }
            }
            let mut read = ChunkOutcome::default();
            let mut actions = hold_unseen_edits(ctx, entity, prepared.actions, &mut read).await?;
            count(report, read);
            if !prepared.lookups.is_empty() {
                let (deletes, looked_up) = find_orphans(ctx, entity, prepared.lookups).await?;
                count(report, looked_up);
                actions.extend(deletes);
            }
            chunks.extend(chunk_actions(&entity.name, actions));
        }
        let outcomes: Vec<Result<ChunkOutcome>> = stream::iter(chunks)
            .map(|chunk| send_chunk(ctx, chunk))
            .buffer_unordered(ctx.settings.tuning.max_requests_in_flight.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            count(report, outcome?);
        }
        if next_wave.is_empty() {
            return Ok(());
        }
        wave = next_wave;
    }
    Ok(())
}

/// Adds what requests did to the batch's report.
fn count(report: &mut BatchReport, outcome: ChunkOutcome) {
    report.sent += outcome.sent;
    report.requests += outcome.requests;
    report.retried += outcome.retried;
    report.dead += outcome.dead;
    report.finished += outcome.finished;
}

/// Events grouped by entity, entities in the mapping's order (a linked
/// entity is usually mapped before the entities that link to it).
fn group_by_entity(mapping: &Mapping, events: Vec<OutboxEvent>) -> Vec<(String, Vec<OutboxEvent>)> {
    let position = |name: &str| {
        mapping
            .entities()
            .iter()
            .position(|e| e.name == name)
            .unwrap_or(usize::MAX)
    };
    let mut groups: BTreeMap<(usize, String), Vec<OutboxEvent>> = BTreeMap::new();
    for event in events {
        groups
            .entry((position(&event.entity), event.entity.clone()))
            .or_default()
            .push(event);
    }
    groups
        .into_iter()
        .map(|((_, name), events)| (name, events))
        .collect()
}

async fn defer<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    event: &OutboxEvent,
    count_attempt: bool,
    reason: String,
) -> Result<()> {
    let settings = &ctx.settings;
    if count_attempt
        && u32::try_from(event.attempts).unwrap_or(0) + 1 >= settings.tuning.max_attempts
    {
        let detail = FailureDetail {
            message: reason,
            ..Default::default()
        };
        outbox::dead_letter(
            &ctx.pool,
            &settings.owner,
            event.id,
            DeadLetterReason::MissingLink,
            &detail,
        )
        .await?;
        return Ok(());
    }
    let delay = if count_attempt {
        super::send::backoff(
            &settings.tuning,
            u32::try_from(event.attempts).unwrap_or(0) + 1,
        )
    } else {
        settings.tuning.link_wait
    };
    let requeue = Requeue {
        count_attempt,
        delay,
        error: Some(reason),
    };
    outbox::requeue(&ctx.pool, &settings.owner, event.id, &requeue).await?;
    Ok(())
}

/// Renews the batch's leases every third of the lease while it runs, so a
/// batch slowed by a rate-limit pause keeps its events.
fn spawn_lease_renewal<W: RecordWriter + 'static>(
    ctx: Arc<WorkerContext<W>>,
    ids: Vec<i64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = ctx.settings.tuning.lease / 3;
        loop {
            tokio::time::sleep(period).await;
            match outbox::renew_leases(
                &ctx.pool,
                &ctx.settings.owner,
                &ids,
                ctx.settings.tuning.lease,
            )
            .await
            {
                Ok(held) if held.len() < ids.len() => {
                    tracing::warn!(
                        lost = ids.len() - held.len(),
                        "some leases of a running batch were taken over"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "renewing leases failed"),
            }
        }
    })
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
