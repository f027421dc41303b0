//! Sending chunks of prepared actions to Airtable and recording the outcome:
//! the id map and the completion of the events in one transaction, or a
//! retry, or a dead letter. A chunk that Airtable refuses is split so that
//! one bad record never blocks the others.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::id_map;
use crate::mapping::EntityMapping;
use crate::outbox::{self, DeadLetterReason, FailureDetail, Operation, OutboxEvent, Requeue};
use crate::rows::quote_ident;
use crate::versions::{self, Sending};
use crate::Result;

use super::prepare::Action;
use super::{WorkerContext, WorkerTuning};

/// Why a write to Airtable failed, as the worker needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Airtable answered 429: the base is paused; waiting costs no attempt.
    pub rate_limited: bool,
    /// Worth trying again later (5xx, timeouts, connection errors).
    pub retryable: bool,
    /// Airtable refused the base or the table, not the records: the token
    /// is wrong or lost its access, the base or table is gone (401, 403,
    /// a 404 that names no record). No record is at fault, so none is
    /// dead-lettered: the events wait without using an attempt.
    pub access_denied: bool,
    /// What Airtable said.
    pub detail: FailureDetail,
}

impl SendError {
    /// Whether Airtable refused records of the request (a 4xx answer
    /// other than for access or the rate limit), so that one record may be
    /// at fault and the others can go alone.
    pub fn refused_records(&self) -> bool {
        !self.rate_limited
            && !self.access_denied
            && self
                .detail
                .http_status
                .is_some_and(|s| (400..500).contains(&s))
    }
}

/// A record read by [`RecordWriter::read`]: its id and the cells asked for.
pub type ReadRecord = (String, Map<String, Value>);

/// A record an upsert created or found: its id and when Airtable created it.
pub type Upserted = (String, DateTime<Utc>);

/// The writes the worker makes. The Airtable client implements it; the
/// boundary keeps the worker's rules apart from HTTP.
pub trait RecordWriter: Send + Sync {
    /// Creates or finds records by upsert on `merge_field`, at most ten;
    /// answers their record ids, with their creation times, in input order.
    fn upsert(
        &self,
        table: &str,
        merge_field: &str,
        records: Vec<Map<String, Value>>,
    ) -> impl Future<Output = std::result::Result<Vec<Upserted>, SendError>> + Send;

    /// Updates records by id, merging the given cells, at most ten.
    fn update(
        &self,
        table: &str,
        records: Vec<(String, Map<String, Value>)>,
    ) -> impl Future<Output = std::result::Result<Vec<String>, SendError>> + Send;

    /// Deletes records by id, at most ten.
    fn delete(
        &self,
        table: &str,
        record_ids: Vec<String>,
    ) -> impl Future<Output = std::result::Result<Vec<String>, SendError>> + Send;

    /// Reads records by id (at most ten), the cells of `fields` only;
    /// answers (record id, cells) for each record still there.
    fn read(
        &self,
        table: &str,
        record_ids: Vec<String>,
        fields: Vec<String>,
    ) -> impl Future<Output = std::result::Result<Vec<ReadRecord>, SendError>> + Send;

    /// Finds the records whose `field` holds one of `values` (at most ten);
    /// answers (value, record id) pairs.
    fn find(
        &self,
        table: &str,
        field: &str,
        values: Vec<String>,
    ) -> impl Future<Output = std::result::Result<Vec<(String, String)>, SendError>> + Send;
}

/// Up to ten actions of one kind for one entity: one request.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub entity: String,
    pub actions: Vec<Action>,
}

/// Splits an entity's actions into request-sized chunks of one kind each.
pub(crate) fn chunk_actions(entity: &str, actions: Vec<Action>) -> Vec<Chunk> {
    let (mut creates, mut updates, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for action in actions {
        match action {
            Action::Create { .. } => creates.push(action),
            Action::Update { .. } => updates.push(action),
            Action::Delete { .. } => deletes.push(action),
        }
    }
    [creates, updates, deletes]
        .into_iter()
        .flat_map(|kind| {
            let mut chunks = Vec::new();
            let mut rest = kind;
            while !rest.is_empty() {
                let tail = rest.split_off(rest.len().min(10));
                chunks.push(Chunk {
                    entity: entity.to_owned(),
                    actions: std::mem::replace(&mut rest, tail),
                });
            }
            chunks
        })
        .collect()
}

/// What became of a chunk's events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkOutcome {
    pub sent: u64,
    pub requests: u64,
    pub retried: u64,
    pub dead: u64,
    /// Complete without a write.
    pub finished: u64,
}

impl ChunkOutcome {
    pub(crate) fn add(&mut self, other: ChunkOutcome) {
        self.sent += other.sent;
        self.requests += other.requests;
        self.retried += other.retried;
        self.dead += other.dead;
        self.finished += other.finished;
    }
}

/// Sends one chunk and records the outcome.
pub(crate) async fn send_chunk<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    chunk: Chunk,
) -> Result<ChunkOutcome> {
    let Some(entity) = ctx.mapping.entity(&chunk.entity) else {
        return Ok(ChunkOutcome::default());
    };
    let mut outcome = ChunkOutcome {
        requests: 1,
        ..Default::default()
    };
    let sent_at = record_sending(ctx, entity, &chunk.actions).await?;
    match write(ctx, entity, &chunk.actions).await {
        Ok(written) => {
            record_success(ctx, entity, &chunk.actions, &written, sent_at).await?;
            outcome.sent = chunk.actions.len() as u64;
        }
        // A failure of the request, not of a record in it: all wait.
        Err(err)
            if err.rate_limited
                || err.access_denied
                || (err.retryable && !err.refused_records()) =>
        {
            outcome.add(fail_events(ctx, chunk.actions.iter().map(Action::event), &err).await?);
        }
        Err(err) if chunk.actions.len() > 1 => {
            // Airtable refuses a batch whole when one record is bad: send
            // each alone to find it, and let the others through.
            tracing::info!(entity = %entity.name, error = %err.detail.message, "a batch was refused; sending its records one by one");
            for action in chunk.actions {
                let single = Chunk {
                    entity: chunk.entity.clone(),
                    actions: vec![action],
                };
                outcome.add(Box::pin(send_chunk(ctx, single)).await?);
            }
        }
        Err(err) => {
            let event = chunk.actions[0].event();
            tracing::warn!(entity = %entity.name, row_id = %event.row_id, event_id = event.id, error = %err.detail.message, "Airtable refused the record; moved to the dead-letter queue");
            outcome.add(fail_events(ctx, [event], &err).await?);
        }
    }
    Ok(outcome)
}

/// Sends one chunk; answers each record's id, with its creation time for
/// a create.
async fn write<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &EntityMapping,
    actions: &[Action],
) -> std::result::Result<Vec<(String, Option<DateTime<Utc>>)>, SendError> {
    let untimed = |ids: Vec<String>| ids.into_iter().map(|id| (id, None)).collect();
    let table = entity.airtable_table.as_str();
    match actions.first() {
        Some(Action::Create { .. }) => {
            let merge_field = entity
                .pg_id_field()
                .map(|f| f.field.as_str())
                .unwrap_or("pg_id");
            let records = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Create { fields, .. } => Some(fields.clone()),
                    _ => None,
                })
                .collect();
            let upserted = ctx.writer.upsert(table, merge_field, records).await?;
            Ok(upserted
                .into_iter()
                .map(|(id, created)| (id, Some(created)))
                .collect())
        }
        Some(Action::Update { .. }) => {
            let records = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Update {
                        record_id, fields, ..
                    } => Some((record_id.clone(), fields.clone())),
                    _ => None,
                })
                .collect();
            ctx.writer.update(table, records).await.map(untimed)
        }
        Some(Action::Delete { .. }) => {
            let ids = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Delete { record_id, .. } => Some(record_id.clone()),
                    _ => None,
                })
                .collect();
            ctx.writer.delete(table, ids).await.map(untimed)
        }
        None => Ok(Vec::new()),
    }
}

/// Records what the request is about to send, before it leaves: Airtable
/// showing these values later is our own push, whenever and however the
/// request ended (`crate::versions`). Returns the send time that names the
/// request's entries.
async fn record_sending<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &EntityMapping,
    actions: &[Action],
) -> Result<DateTime<Utc>> {
    let sending: Vec<Sending> = actions
        .iter()
        .filter_map(|action| match action {
            Action::Create {
                event,
                fields,
                made_at,
            }
            | Action::Update {
                event,
                fields,
                made_at,
                ..
            } => Some(Sending {
                row_id: event.row_id,
                fields: fields
                    .iter()
                    .map(|(field, value)| {
                        let at = made_at.get(field).copied().unwrap_or_else(Utc::now);
                        (field.clone(), value.clone(), at)
                    })
                    .collect(),
            }),
            Action::Delete { .. } => None,
        })
        .collect();
    if sending.is_empty() {
        return Ok(Utc::now());
    }
    let mut conn = ctx.pool.acquire().await?;
    versions::record_sent(&mut conn, &entity.name, &sending).await
}

/// Records the id map and completes the events, in one transaction.
async fn record_success<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &EntityMapping,
    actions: &[Action],
    written_records: &[(String, Option<DateTime<Utc>>)],
    sent_at: DateTime<Utc>,
) -> Result<()> {
    let mut tx = ctx.pool.begin().await?;
    let written: Vec<Uuid> = actions
        .iter()
        .filter(|a| !matches!(a, Action::Delete { .. }))
        .map(|a| a.event().row_id)
        .collect();
    versions::record_landed(&mut tx, &entity.name, &written, sent_at).await?;
    for (action, (record_id, created_at)) in actions.iter().zip(written_records) {
        let event = action.event();
        match (action, created_at) {
            (Action::Delete { .. }, _) => {
                id_map::forget(&mut *tx, &entity.name, event.row_id).await?;
                versions::forget(&mut *tx, &entity.name, &[event.row_id]).await?;
            }
            (Action::Create { fields, .. }, Some(created_at)) => {
                id_map::record_create(
                    &mut tx,
                    &entity.name,
                    event.row_id,
                    record_id,
                    *created_at,
                    fields,
                    ctx.settings.tuning.hold_after_push,
                )
                .await?
            }
            (Action::Create { fields, .. } | Action::Update { fields, .. }, _) => {
                id_map::record_push(
                    &mut tx,
                    &entity.name,
                    event.row_id,
                    record_id,
                    Some(fields),
                    ctx.settings.tuning.hold_after_push,
                )
                .await?
            }
        }
    }
    requeue_deleted_rows(&mut tx, entity, &written).await?;
    let ids: Vec<i64> = actions.iter().map(|a| a.event().id).collect();
    let done = outbox::complete(&mut tx, &ctx.settings.owner, &ids).await?;
    tx.commit().await?;
    if done.len() < ids.len() {
        tracing::warn!(entity = %entity.name, lost = ids.len() - done.len(), "sent events whose lease another worker had taken; the id map is recorded and the other worker's send is an idempotent repeat");
    }
    Ok(())
}

/// A row deleted while its create or update was in flight may have had its
/// delete event handled already, when no record was known to delete: the
/// record just written must go too, so it gets a delete event. The rows that
/// still exist are locked until the id map commits, so that a delete racing
/// this transaction queues its event after it and finds the record.
async fn requeue_deleted_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    entity: &EntityMapping,
    written: &[Uuid],
) -> Result<()> {
    if written.is_empty() {
        return Ok(());
    }
    let present: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT id FROM {} WHERE id = ANY($1) FOR KEY SHARE",
        quote_ident(&entity.table)
    ))
    .bind(written)
    .fetch_all(&mut **tx)
    .await?;
    for row in written.iter().filter(|row| !present.contains(row)) {
        tracing::info!(entity = %entity.name, row_id = %row, "the row was deleted while it was being sent; its record will be deleted");
        outbox::enqueue_change(&mut **tx, &entity.name, *row, Operation::Delete).await?;
    }
    Ok(())
}

/// Looks up by `pg_id` the records of rows that are gone, with no record
/// known, after an earlier attempt that may have created one: a worker
/// killed between Airtable's answer to a create and its commit, or an
/// answer lost on the way. A record found is deleted like any other; the
/// events of rows with none are complete. Returns the deletes to send.
pub(crate) async fn find_orphans<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &EntityMapping,
    events: Vec<OutboxEvent>,
) -> Result<(Vec<Action>, ChunkOutcome)> {
    let mut deletes = Vec::new();
    let mut outcome = ChunkOutcome::default();
    let Some(pg_id) = entity.pg_id_field() else {
        complete_events(ctx, &events).await?;
        outcome.finished = events.len() as u64;
        return Ok((deletes, outcome));
    };
    for chunk in events.chunks(10) {
        let values = chunk.iter().map(|e| e.row_id.to_string()).collect();
        outcome.requests += 1;
        match ctx
            .writer
            .find(&entity.airtable_table, &pg_id.field, values)
            .await
        {
            Ok(found) => {
                let mut nothing = Vec::new();
                for event in chunk {
                    let row = event.row_id.to_string();
                    let mut records = found.iter().filter(|(value, _)| *value == row);
                    match records.next() {
                        Some((_, record_id)) => {
                            tracing::info!(entity = %entity.name, row_id = %event.row_id, %record_id, "found the record of a deleted row that an earlier attempt created; deleting it");
                            deletes.push(Action::Delete {
                                event: event.clone(),
                                record_id: record_id.clone(),
                            });
                        }
                        None => nothing.push(event.clone()),
                    }
                    if records.next().is_some() {
                        tracing::warn!(entity = %entity.name, row_id = %event.row_id, "more than one record holds the row's pg_id; deleting the first, a reconcile reports the rest");
                    }
                }
                complete_events(ctx, &nothing).await?;
                outcome.finished += nothing.len() as u64;
            }
            Err(err) => outcome.add(fail_events(ctx, chunk, &err).await?),
        }
    }
    Ok((deletes, outcome))
}

/// What becomes of events whose request failed: after a transient failure
/// they are tried again (or dead-lettered when their attempts are used up);
/// after Airtable refused the request they go to the dead-letter queue with
/// its error.
pub(crate) async fn fail_events<'a, W: RecordWriter>(
    ctx: &WorkerContext<W>,
    events: impl IntoIterator<Item = &'a OutboxEvent>,
    err: &SendError,
) -> Result<ChunkOutcome> {
    let mut outcome = ChunkOutcome::default();
    for event in events {
        let retried = if err.rate_limited || err.retryable || err.access_denied {
            retry_or_give_up(ctx, event, err).await?
        } else {
            outbox::dead_letter(
                &ctx.pool,
                &ctx.settings.owner,
                event.id,
                DeadLetterReason::Rejected,
                &err.detail,
            )
            .await?;
            false
        };
        if retried {
            outcome.retried += 1;
        } else {
            outcome.dead += 1;
        }
    }
    Ok(outcome)
}

/// Completes events that need no write.
pub(crate) async fn complete_events<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    events: &[OutboxEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let mut tx = ctx.pool.begin().await?;
    outbox::complete(&mut tx, &ctx.settings.owner, &ids).await?;
    // Rows the app deleted whose records are gone (or never were) need
    // their versions no more.
    let entities: Vec<&str> = events.iter().map(|e| e.entity.as_str()).collect();
    let rows: Vec<Uuid> = events.iter().map(|e| e.row_id).collect();
    sqlx::query(
        "DELETE FROM sync_row_version v
          USING unnest($1::text[], $2::uuid[]) AS x(entity, row_id), sync_tombstone t
          WHERE v.entity = x.entity AND v.row_id = x.row_id
            AND t.entity = v.entity AND t.row_id = v.row_id AND t.side = 'postgres'",
    )
    .bind(&entities)
    .bind(&rows)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Requeues an event after a transient failure, or dead-letters it when its
/// attempts are used up. Returns true when it was requeued.
pub(crate) async fn retry_or_give_up<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    event: &OutboxEvent,
    err: &SendError,
) -> Result<bool> {
    let settings = &ctx.settings;
    if err.access_denied {
        tracing::error!(entity = %event.entity, row_id = %event.row_id, status = ?err.detail.http_status,
            error = %err.detail.message,
            "Airtable refused the base or table (token, permissions, a base or table gone); the event waits without using an attempt");
        let requeue = Requeue {
            count_attempt: false,
            delay: settings.tuning.access_pause,
            error: Some(err.detail.message.clone()),
        };
        outbox::requeue(&ctx.pool, &settings.owner, event.id, &requeue).await?;
        return Ok(true);
    }
    if err.rate_limited {
        let requeue = Requeue {
            count_attempt: false,
            delay: settings.tuning.rate_limit_pause,
            error: Some(err.detail.message.clone()),
        };
        outbox::requeue(&ctx.pool, &settings.owner, event.id, &requeue).await?;
        return Ok(true);
    }
    let attempts = u32::try_from(event.attempts).unwrap_or(0) + 1;
    if attempts >= settings.tuning.max_attempts {
        tracing::warn!(entity = %event.entity, row_id = %event.row_id, event_id = event.id, attempts, error = %err.detail.message, "attempts used up; moved to the dead-letter queue");
        outbox::dead_letter(
            &ctx.pool,
            &settings.owner,
            event.id,
            DeadLetterReason::AttemptsExhausted,
            &err.detail,
        )
        .await?;
        return Ok(false);
    }
    let requeue = Requeue {
        count_attempt: true,
        delay: backoff(&settings.tuning, attempts),
        error: Some(err.detail.message.clone()),
    };
    outbox::requeue(&ctx.pool, &settings.owner, event.id, &requeue).await?;
    Ok(true)
}

/// Exponential back-off with jitter: base * 2^(attempt-1), capped, then a
/// random point in its upper half so that retries of many events spread out.
pub(crate) fn backoff(tuning: &WorkerTuning, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let full = tuning
        .retry_base
        .saturating_mul(1u32 << exponent)
        .min(tuning.retry_max);
    let jitter = rand::rng().random_range(0.5..=1.0);
    full.mul_f64(jitter)
}
