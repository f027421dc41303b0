//! The log of inbound conflicts: fields the three-way merge found changed on
//! both sides, with both values and the side kept. Written in the same
//! transaction as the apply that decided them and pruned as it grows, so the
//! ops page can list the recent ones.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::Result;

/// Conflicts kept at most; older ones are pruned as new ones arrive.
pub const KEEP_CONFLICTS: i64 = 1_000;
/// Days a conflict is kept at most.
pub const KEEP_DAYS: i32 = 30;

/// One conflict, as logged.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LoggedConflict {
    pub id: i64,
    pub entity: String,
    pub row_id: Uuid,
    pub airtable_id: String,
    /// The field's key in the mapping (its Airtable name).
    pub field: String,
    /// The row's value, as a canonical Airtable cell.
    pub postgres_value: Option<Value>,
    /// Airtable's value, as a canonical cell.
    pub airtable_value: Option<Value>,
    /// `airtable` or `postgres`: the side whose value was kept.
    pub winner: String,
    pub at: DateTime<Utc>,
}

/// A conflict to log.
#[derive(Debug, Clone)]
pub(crate) struct NewConflict<'a> {
    pub row_id: Uuid,
    pub airtable_id: &'a str,
    pub field: &'a str,
    pub postgres: &'a Value,
    pub airtable: &'a Value,
    pub winner: &'static str,
}

/// Logs the conflicts of one entity and prunes the log, on the caller's
/// transaction.
pub(crate) async fn record(
    conn: &mut PgConnection,
    entity: &str,
    conflicts: &[NewConflict<'_>],
) -> Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "row_id": c.row_id, "airtable_id": c.airtable_id, "field": c.field,
                "postgres_value": c.postgres, "airtable_value": c.airtable, "winner": c.winner,
            })
        })
        .collect();
    sqlx::query(
        "INSERT INTO sync_conflicts (entity, row_id, airtable_id, field, postgres_value, airtable_value, winner)
         SELECT $1, x.row_id, x.airtable_id, x.field, x.postgres_value, x.airtable_value, x.winner
           FROM jsonb_to_recordset($2) AS x(row_id uuid, airtable_id text, field text,
                                            postgres_value jsonb, airtable_value jsonb, winner text)",
    )
    .bind(entity)
    .bind(Value::Array(rows))
    .execute(&mut *conn)
    .await?;
    // SKIP LOCKED: two applies pruning at once never wait on each other;
    // whatever one leaves, the next prune takes.
    sqlx::query(
        "DELETE FROM sync_conflicts WHERE id IN (
             SELECT id FROM sync_conflicts
              WHERE at < now() - make_interval(days => $1)
                 OR id <= (SELECT id FROM sync_conflicts ORDER BY id DESC OFFSET $2 LIMIT 1)
              FOR UPDATE SKIP LOCKED)",
    )
    .bind(KEEP_DAYS)
    .bind(KEEP_CONFLICTS)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest conflicts first, at most `limit`.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<LoggedConflict>> {
    let conflicts = sqlx::query_as(
        "SELECT id, entity, row_id, airtable_id, field, postgres_value, airtable_value, winner, at
           FROM sync_conflicts ORDER BY at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(conflicts)
}
