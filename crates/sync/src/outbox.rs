//! The outbox: "entity X changed" events, written by the capture triggers in
//! the same transaction as the change, and worked off by the worker.
//!
//! Every step that changes a claimed event checks that the caller still
//! holds its lease (fencing): a worker whose lease expired and was taken over
//! cannot complete, retry or dead-letter an event it no longer owns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::Result;

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Created or changed.
    Upsert,
    /// Deleted.
    Delete,
}

impl Operation {
    /// The name stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }

    fn from_db(value: &str) -> Operation {
        if value == "delete" {
            Operation::Delete
        } else {
            Operation::Upsert
        }
    }
}

/// A claimed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event's id.
    pub id: i64,
    /// The entity (mapping name).
    pub entity: String,
    /// The changed row.
    pub row_id: Uuid,
    /// The last operation captured. The worker decides by whether the row
    /// exists when it sends, so this is informative.
    pub operation: Operation,
    /// Failed attempts so far.
    pub attempts: i32,
    /// The event's idempotency key.
    pub idempotency_key: String,
    /// When the first change of the event was captured.
    pub created_at: DateTime<Utc>,
}

type EventRow = (i64, String, Uuid, String, i32, String, DateTime<Utc>);

fn event_from_row(row: EventRow) -> OutboxEvent {
    let (id, entity, row_id, operation, attempts, idempotency_key, created_at) = row;
    OutboxEvent {
        id,
        entity,
        row_id,
        operation: Operation::from_db(&operation),
        attempts,
        idempotency_key,
        created_at,
    }
}

/// Enqueues a change from code (the triggers do it for table writes); it
/// merges into the record's pending event if there is one.
pub async fn enqueue_change<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_id: Uuid,
    operation: Operation,
) -> Result<()> {
    sqlx::query("SELECT sync_enqueue_change($1, $2, $3)")
        .bind(entity)
        .bind(row_id)
        .bind(operation.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Claims up to `limit` due events in one statement and leases them to
/// `owner` for `lease`. A record that has an event in flight is skipped, so
/// two sends of one record never race.
pub async fn claim_batch(
    pool: &PgPool,
    owner: &str,
    limit: u32,
    lease: Duration,
) -> Result<Vec<OutboxEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "WITH due AS (
             SELECT o.id FROM sync_outbox o
              WHERE o.state = 'pending' AND o.next_attempt_at <= now()
                AND NOT EXISTS (SELECT 1 FROM sync_outbox l
                                 WHERE l.entity = o.entity AND l.row_id = o.row_id
                                   AND l.state = 'leased')
              ORDER BY o.next_attempt_at, o.id
              LIMIT $1
              FOR UPDATE SKIP LOCKED
         )
         UPDATE sync_outbox o
            SET state = 'leased', lease_owner = $2,
                lease_expires_at = now() + $3 * interval '1 millisecond'
           FROM due
          WHERE o.id = due.id
         RETURNING o.id, o.entity, o.row_id, o.operation, o.attempts, o.idempotency_key, o.created_at",
    )
    .bind(i64::from(limit))
    .bind(owner)
    .bind(millis(lease))
    .fetch_all(pool)
    .await?;
    let mut events: Vec<OutboxEvent> = rows.into_iter().map(event_from_row).collect();
    events.sort_by_key(|e| e.id);
    Ok(events)
}

/// Extends the leases `owner` still holds; returns the ids it holds.
pub async fn renew_leases(
    pool: &PgPool,
    owner: &str,
    ids: &[i64],
    lease: Duration,
) -> Result<Vec<i64>> {
    let held = sqlx::query_scalar(
        "UPDATE sync_outbox SET lease_expires_at = now() + $3 * interval '1 millisecond'
          WHERE id = ANY($1) AND state = 'leased' AND lease_owner = $2
         RETURNING id",
    )
    .bind(ids)
    .bind(owner)
    .bind(millis(lease))
    .fetch_all(pool)
    .await?;
    Ok(held)
}

/// Deletes finished events that `owner` still holds, in the caller's
/// transaction (together with the id map); returns the ids it deleted. An id
/// missing from the answer was taken over by another worker.
pub async fn complete(
    tx: &mut Transaction<'_, Postgres>,
    owner: &str,
    ids: &[i64],
) -> Result<Vec<i64>> {
    let done = sqlx::query_scalar(
        "DELETE FROM sync_outbox WHERE id = ANY($1) AND state = 'leased' AND lease_owner = $2 RETURNING id",
    )
    .bind(ids)
    .bind(owner)
    .fetch_all(&mut **tx)
    .await?;
    Ok(done)
}

/// How a leased event goes back to the queue.
#[derive(Debug, Clone)]
pub struct Requeue {
    /// Counted as a failed attempt (a 429 or a shutdown is not).
    pub count_attempt: bool,
    /// Wait before the next attempt.
    pub delay: Duration,
    /// Why, kept as `last_error`.
    pub error: Option<String>,
}

/// Puts an event `owner` holds back in the queue. When the record already has
/// a newer pending event, that one carries the change and this one is
/// dropped (keeping the later of the two due times and the higher attempt
/// count). Returns false when `owner` no longer holds the lease.
pub async fn requeue(pool: &PgPool, owner: &str, id: i64, requeue: &Requeue) -> Result<bool> {
    // A trigger may insert a pending event for the record between our check
    // and our update; the unique index then refuses the update and we merge.
    for _ in 0..3 {
        let mut tx = pool.begin().await?;
        match requeue_in(&mut tx, Some(owner), id, requeue).await {
            Ok(held) => {
                tx.commit().await?;
                return Ok(held);
            }
            Err(crate::Error::Database(err)) if is_pending_conflict(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(false)
}

fn is_pending_conflict(err: &sqlx::Error) -> bool {
    airsync_db::constraint_violation(err)
        .is_some_and(|v| v.constraint == "sync_outbox_pending_record_key")
}

/// `requeue` inside a transaction; `owner` None takes any lease (rescue).
async fn requeue_in(
    tx: &mut Transaction<'_, Postgres>,
    owner: Option<&str>,
    id: i64,
    requeue: &Requeue,
) -> Result<bool> {
    let mine: Option<(String, Uuid, i32)> = sqlx::query_as(
        "SELECT entity, row_id, attempts FROM sync_outbox
          WHERE id = $1 AND state = 'leased' AND ($2::text IS NULL OR lease_owner = $2)
          FOR UPDATE",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((entity, row_id, attempts)) = mine else {
        return Ok(false);
    };
    let attempts = attempts + i32::from(requeue.count_attempt);
    let delay = millis(requeue.delay);
    let merged = sqlx::query(
        "UPDATE sync_outbox
            SET attempts = greatest(attempts, $3),
                next_attempt_at = greatest(next_attempt_at, now() + $4 * interval '1 millisecond'),
                last_error = coalesce($5, last_error)
          WHERE entity = $1 AND row_id = $2 AND state = 'pending'",
    )
    .bind(&entity)
    .bind(row_id)
    .bind(attempts)
    .bind(delay)
    .bind(&requeue.error)
    .execute(&mut **tx)
    .await?;
    if merged.rows_affected() > 0 {
        sqlx::query("DELETE FROM sync_outbox WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(
            "UPDATE sync_outbox
                SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                    attempts = $2, next_attempt_at = now() + $3 * interval '1 millisecond',
                    last_error = coalesce($4, last_error)
              WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(delay)
        .bind(&requeue.error)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Takes back events whose lease expired (their worker died or hung): each
/// counts as a failed attempt and is due at once. Returns how many.
pub async fn rescue_expired_leases(pool: &PgPool) -> Result<u64> {
    let expired: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM sync_outbox WHERE state = 'leased' AND lease_expires_at < now() ORDER BY id LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    let rescue = Requeue {
        count_attempt: true,
        delay: Duration::ZERO,
        error: Some("lease expired: the worker holding it stopped or hung".to_owned()),
    };
    let mut rescued = 0;
    for id in expired {
        let mut tx = pool.begin().await?;
        // Re-check under the row lock: the owner may have finished meanwhile.
        let still_expired: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM sync_outbox WHERE id = $1 AND state = 'leased' AND lease_expires_at < now()
              FOR UPDATE SKIP LOCKED",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if still_expired.is_some() {
            match requeue_in(&mut tx, None, id, &rescue).await {
                Ok(true) => {
                    tx.commit().await?;
                    rescued += 1;
                }
                Ok(false) => {}
                Err(crate::Error::Database(err)) if is_pending_conflict(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(rescued)
}

/// Why an event gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Airtable refused the record (4xx other than 429).
    Rejected,
    /// Transient failures used up every attempt.
    AttemptsExhausted,
    /// A linked row could not be sent first.
    MissingLink,
    /// The mapping cannot convert the row.
    Mapping,
}

impl DeadLetterReason {
    /// The name stored in `sync_dead_letter.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::AttemptsExhausted => "attempts_exhausted",
            DeadLetterReason::MissingLink => "missing_link",
            DeadLetterReason::Mapping => "mapping",
        }
    }
}

/// Airtable's side of a failure, kept with a dead letter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureDetail {
    /// The whole error as text.
    pub message: String,
    /// The HTTP status Airtable answered, if it answered.
    pub http_status: Option<u16>,
    /// Airtable's error type, e.g. `INVALID_VALUE_FOR_COLUMN`.
    pub airtable_error_type: Option<String>,
    /// Airtable's error message.
    pub airtable_error_message: Option<String>,
}

/// Moves an event `owner` holds to the dead-letter queue, in one transaction.
/// Returns the dead letter's id, or None when `owner` lost the lease.
pub async fn dead_letter(
    pool: &PgPool,
    owner: &str,
    id: i64,
    reason: DeadLetterReason,
    detail: &FailureDetail,
) -> Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    let dead: Option<i64> = sqlx::query_scalar(
        "WITH mine AS (
             DELETE FROM sync_outbox WHERE id = $1 AND state = 'leased' AND lease_owner = $2
             RETURNING id, entity, row_id, operation, idempotency_key, attempts, created_at
         )
         INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts,
                                       reason, last_error, http_status, airtable_error_type,
                                       airtable_error_message, first_enqueued_at)
         SELECT id, entity, row_id, operation, idempotency_key, attempts + 1,
                $3, $4, $5, $6, $7, created_at
           FROM mine
         RETURNING id",
    )
    .bind(id)
    .bind(owner)
    .bind(reason.as_str())
    .bind(&detail.message)
    .bind(detail.http_status.map(i32::from))
    .bind(&detail.airtable_error_type)
    .bind(&detail.airtable_error_message)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(dead)
}

/// Hands back every event `owner` holds without counting an attempt, e.g.
/// on shutdown. Returns how many.
pub async fn release_all(pool: &PgPool, owner: &str) -> Result<u64> {
    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM sync_outbox WHERE state = 'leased' AND lease_owner = $1",
    )
    .bind(owner)
    .fetch_all(pool)
    .await?;
    let release = Requeue {
        count_attempt: false,
        delay: Duration::ZERO,
        error: None,
    };
    let mut released = 0;
    for id in held {
        if requeue(pool, owner, id, &release).await? {
            released += 1;
        }
    }
    Ok(released)
}
