//! The id map: which Airtable record mirrors which row.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::Result;

/// The Airtable record ids of `row_ids` of one entity, where known.
pub async fn airtable_ids<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_ids: &[Uuid],
) -> Result<HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT row_id, airtable_id FROM airtable_id_map WHERE entity = $1 AND row_id = ANY($2)",
    )
    .bind(entity)
    .bind(row_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A row's record as the worker needs it to push the row.
#[derive(Debug, Clone)]
pub struct KnownRecord {
    pub airtable_id: String,
    /// The cells last agreed with Airtable, where kept.
    pub synced_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The records of `row_ids` of one entity, where known, with the cells last
/// agreed with Airtable: one query for what the worker reads per batch.
pub async fn known_records<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_ids: &[Uuid],
) -> Result<HashMap<Uuid, KnownRecord>> {
    let rows: Vec<(Uuid, String, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT row_id, airtable_id, synced_fields FROM airtable_id_map
          WHERE entity = $1 AND row_id = ANY($2)",
    )
    .bind(entity)
    .bind(row_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(row, airtable_id, synced)| {
            let synced_fields = match synced {
                Some(serde_json::Value::Object(map)) => Some(map),
                _ => None,
            };
            let record = KnownRecord {
                airtable_id,
                synced_fields,
            };
            (row, record)
        })
        .collect())
}

/// The row mirrored by Airtable record `airtable_id` of `entity`.
pub async fn row_id<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    airtable_id: &str,
) -> Result<Option<Uuid>> {
    let row = sqlx::query_scalar(
        "SELECT row_id FROM airtable_id_map WHERE entity = $1 AND airtable_id = $2",
    )
    .bind(entity)
    .bind(airtable_id)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Records that `row_id` was pushed as `airtable_id` just now with `fields`
/// (the cells sent, merged into the cells last agreed: the base of the
/// inbound three-way merge), and
/// holds the record back from another push for `hold` (coalescing bursts).
pub async fn record_push(
    conn: &mut sqlx::PgConnection,
    entity: &str,
    row_id: Uuid,
    airtable_id: &str,
    fields: Option<&serde_json::Map<String, serde_json::Value>>,
    hold: Duration,
) -> Result<()> {
    let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO airtable_id_map (entity, row_id, airtable_id, last_pushed_at, hold_until, synced_fields, agreed_at)
         VALUES ($1, $2, $3, now(), now() + $4 * interval '1 millisecond', $5, clock_timestamp())
         ON CONFLICT (entity, row_id) DO UPDATE
            SET airtable_id = EXCLUDED.airtable_id,
                record_created_at = CASE WHEN airtable_id_map.airtable_id = EXCLUDED.airtable_id
                                         THEN airtable_id_map.record_created_at END,
                last_pushed_at = EXCLUDED.last_pushed_at,
                agreed_at = EXCLUDED.agreed_at,
                hold_until = EXCLUDED.hold_until,
                synced_fields = CASE WHEN EXCLUDED.synced_fields IS NULL
                                     THEN airtable_id_map.synced_fields
                                     ELSE coalesce(airtable_id_map.synced_fields, '{}'::jsonb)
                                          || EXCLUDED.synced_fields END",
    )
    .bind(entity)
    .bind(row_id)
    .bind(airtable_id)
    .bind(hold_ms)
    .bind(fields.map(|f| serde_json::Value::Object(f.clone())))
    .execute(&mut *conn)
    .await?;
    // A change captured while this push was in flight was due at once; it
    // waits for the hold too, so the burst it belongs to costs one more push.
    sqlx::query(
        "UPDATE sync_outbox
            SET next_attempt_at = greatest(next_attempt_at, now() + $3 * interval '1 millisecond')
          WHERE entity = $1 AND row_id = $2 AND state = 'pending'",
    )
    .bind(entity)
    .bind(row_id)
    .bind(hold_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a create that landed: like [`record_push`], and also when
/// Airtable created the record. A record the row had before (one the
/// inbound sync matched by its pg_id while this create was on its way) is
/// noted as an earlier record of the row: the team deleted it before this
/// create's upsert on pg_id ran, or the upsert would have found it, and its
/// delete, read later, is the team deleting the row (docs/sync.md, "A create
/// tried again").
pub async fn record_create(
    conn: &mut sqlx::PgConnection,
    entity: &str,
    row_id: Uuid,
    airtable_id: &str,
    created_at: chrono::DateTime<chrono::Utc>,
    fields: &serde_json::Map<String, serde_json::Value>,
    hold: Duration,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_earlier_record (entity, airtable_id, row_id)
         SELECT entity, airtable_id, row_id FROM airtable_id_map
          WHERE entity = $1 AND row_id = $2 AND airtable_id <> $3
         ON CONFLICT (entity, airtable_id) DO NOTHING",
    )
    .bind(entity)
    .bind(row_id)
    .bind(airtable_id)
    .execute(&mut *conn)
    .await?;
    record_push(conn, entity, row_id, airtable_id, Some(fields), hold).await?;
    sqlx::query(
        "UPDATE airtable_id_map SET record_created_at = $3 WHERE entity = $1 AND row_id = $2",
    )
    .bind(entity)
    .bind(row_id)
    .bind(created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a mapping learnt from Airtable (inbound), without a push time.
pub async fn record_mapping<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_id: Uuid,
    airtable_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO airtable_id_map (entity, row_id, airtable_id) VALUES ($1, $2, $3)
         ON CONFLICT (entity, row_id) DO UPDATE
            SET airtable_id = EXCLUDED.airtable_id,
                record_created_at = CASE WHEN airtable_id_map.airtable_id = EXCLUDED.airtable_id
                                         THEN airtable_id_map.record_created_at END",
    )
    .bind(entity)
    .bind(row_id)
    .bind(airtable_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// Forgets the record of a deleted row; the row's remembered delete keeps
/// the record's id (`crate::versions`).
pub async fn forget<'e>(executor: impl PgExecutor<'e>, entity: &str, row_id: Uuid) -> Result<()> {
    sqlx::query(
        "WITH gone AS (
             DELETE FROM airtable_id_map WHERE entity = $1 AND row_id = $2
             RETURNING entity, row_id, airtable_id)
         UPDATE sync_tombstone t SET airtable_id = gone.airtable_id
           FROM gone WHERE t.entity = gone.entity AND t.row_id = gone.row_id",
    )
    .bind(entity)
    .bind(row_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// The rows of records noted as earlier records of a row (the first
/// record of a create tried again, `sync_earlier_record`): record id -> row
/// id.
pub(crate) async fn earlier_records(
    conn: &mut sqlx::PgConnection,
    entity: &str,
    record_ids: &[String],
) -> Result<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT airtable_id, row_id FROM sync_earlier_record
          WHERE entity = $1 AND airtable_id = ANY($2)",
    )
    .bind(entity)
    .bind(record_ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Notes `record` as an earlier record of `row`.
pub(crate) async fn note_earlier(
    conn: &mut sqlx::PgConnection,
    entity: &str,
    record: &str,
    row: Uuid,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_earlier_record (entity, airtable_id, row_id) VALUES ($1, $2, $3)
         ON CONFLICT (entity, airtable_id) DO NOTHING",
    )
    .bind(entity)
    .bind(record)
    .bind(row)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
