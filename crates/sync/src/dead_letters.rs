//! The dead-letter queue: events that gave up, kept with Airtable's error
//! until someone fixes the cause and replays them, or purges them.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::outbox::{enqueue_change, Operation};
use crate::progress::ProgressSink;
use crate::Result;

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub outbox_id: i64,
    pub entity: String,
    pub row_id: Uuid,
    pub operation: String,
    pub idempotency_key: String,
    pub attempts: i32,
    /// `rejected`, `attempts_exhausted`, `missing_link` or `mapping`.
    pub reason: String,
    pub last_error: String,
    pub http_status: Option<i32>,
    pub airtable_error_type: Option<String>,
    pub airtable_error_message: Option<String>,
    pub first_enqueued_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
    last_error, http_status, airtable_error_type, airtable_error_message, first_enqueued_at, failed_at";

/// The newest dead letters first, optionally of one entity.
pub async fn list(pool: &PgPool, entity: Option<&str>, limit: i64) -> Result<Vec<DeadLetter>> {
    let letters = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_dead_letter
          WHERE $1::text IS NULL OR entity = $1
          ORDER BY failed_at DESC, id DESC LIMIT $2"
    ))
    .bind(entity)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(letters)
}

/// One dead letter.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<DeadLetter>> {
    let letter = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sync_dead_letter WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(letter)
}

/// Puts dead letters back in the outbox (merging into a pending event of the
/// same record) and removes them, in one transaction. `None` replays all.
/// Returns how many were replayed.
pub async fn replay(pool: &PgPool, id: Option<i64>) -> Result<u64> {
    replay_reporting(pool, id, None).await
}

/// [`replay`], reporting each letter put back to `progress` (part
/// `dead letters`, with the total).
pub async fn replay_reporting(
    pool: &PgPool,
    id: Option<i64>,
    progress: Option<&dyn ProgressSink>,
) -> Result<u64> {
    const PART: &str = "dead letters";
    let mut tx = pool.begin().await?;
    let letters: Vec<(i64, String, Uuid, String)> = sqlx::query_as(
        "DELETE FROM sync_dead_letter WHERE $1::bigint IS NULL OR id = $1
         RETURNING id, entity, row_id, operation",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if let Some(progress) = progress {
        progress.start(PART, Some(letters.len() as u64));
    }
    for (done, (_, entity, row_id, operation)) in letters.iter().enumerate() {
        let operation = if operation == "delete" {
            Operation::Delete
        } else {
            Operation::Upsert
        };
        enqueue_change(&mut *tx, entity, *row_id, operation).await?;
        if let Some(progress) = progress {
            progress.advance(PART, done as u64 + 1);
        }
    }
    tx.commit().await?;
    if let Some(progress) = progress {
        progress.finish(PART, letters.len() as u64);
    }
    Ok(letters.len() as u64)
}

/// Which dead letters to purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// One, by id.
    One(i64),
    /// Every one that failed before this time.
    FailedBefore(DateTime<Utc>),
}

/// Deletes dead letters for good. Returns how many.
pub async fn purge(pool: &PgPool, which: Purge) -> Result<u64> {
    let result = match which {
        Purge::One(id) => sqlx::query("DELETE FROM sync_dead_letter WHERE id = $1").bind(id),
        Purge::FailedBefore(before) => {
            sqlx::query("DELETE FROM sync_dead_letter WHERE failed_at < $1").bind(before)
        }
    }
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}
