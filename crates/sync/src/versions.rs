//! The sync model's bookkeeping in one place (docs/sync.md, "The sync
//! model"): when each side's value of a field was made, what each push sent
//! before it left, and which deletes are remembered.
//!
//! - **Change times** (`sync_row_version.changed_at`, by column, or by join
//!   table for a links field): the capture trigger stamps the columns an app
//!   write changed with the writing transaction's time; the inbound sync
//!   stamps the columns it takes from Airtable with the time Airtable
//!   changed them. A conflict compares these times with Airtable's, never
//!   the row's `updated_at`, which is per row and which inbound writes move.
//! - **Sent values** (`sync_row_version.sent`, by Airtable field): before a
//!   create or update leaves, the worker records each field's value, the
//!   change time of that value, and the send time; when Airtable's answer
//!   comes, the time it came (`landed`). Airtable later showing a value we
//!   sent is our own push (an echo), known by its content: it carries the
//!   app's change time, not the time it reached Airtable. A push that
//!   landed before a team change cannot have overwritten it.
//! - **Tombstones** (`sync_tombstone`): rows the app deleted never come back
//!   from a record Airtable still lists; rows whose record the team deleted
//!   have no record to link to.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::mapping::{FieldKind, FieldMapping};
use crate::Result;

/// How many sent values are kept per field (newest last). The newest one
/// tells when the field was last pushed; older ones let an echo that
/// arrives late (a slow payload, a page read during a push) still be known.
pub const SENT_KEPT: usize = 8;

/// How long a request may be on its way: a push sent this long before a
/// change Airtable reports may still have reached Airtable after it, unless
/// its answer came before the change.
pub fn flight_margin() -> chrono::Duration {
    chrono::Duration::seconds(60)
}

/// How far airsync's clock and Airtable's may differ: a push whose answer
/// came less than this before a change Airtable reports may still have
/// reached Airtable after it.
pub fn clock_margin() -> chrono::Duration {
    chrono::Duration::seconds(1)
}

/// A value a push carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// The field's value as sent (Airtable's REST form).
    pub v: Value,
    /// When the app (or an earlier inbound take) made that value.
    pub at: DateTime<Utc>,
    /// When the request left.
    pub sent: DateTime<Utc>,
    /// When Airtable's answer came (`None`: not yet, or never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<DateTime<Utc>>,
}

impl Sent {
    /// Whether this push may have reached Airtable after a change Airtable
    /// made at `at`: it left at most [`flight_margin`] before, and its
    /// answer, if it came, came after (within [`clock_margin`]).
    pub fn may_have_landed_after(&self, at: DateTime<Utc>) -> bool {
        self.sent >= at - flight_margin()
            && self
                .landed
                .is_none_or(|landed| landed + clock_margin() >= at)
    }
}

/// A row's change times and sent values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowVersions {
    /// Column (or join table) -> when the row's value was made.
    pub changed_at: HashMap<String, DateTime<Utc>>,
    /// Airtable field -> values sent, newest last.
    pub sent: HashMap<String, Vec<Sent>>,
}

impl RowVersions {
    fn from_json(changed_at: Value, sent: Value) -> RowVersions {
        RowVersions {
            changed_at: entries(changed_at),
            sent: entries(sent),
        }
    }

    /// When the row's value of `field` was made, where stamped.
    pub fn changed_at(&self, field: &FieldMapping) -> Option<DateTime<Utc>> {
        self.changed_at.get(clock_key(field)?).copied()
    }

    /// The values sent of a field, newest last.
    pub fn sent(&self, field: &str) -> &[Sent] {
        self.sent.get(field).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether any create or update of the row ever left for Airtable.
    pub fn ever_sent(&self) -> bool {
        self.sent.values().any(|v| !v.is_empty())
    }
}

/// The entries of a JSON object that read as `T`; others are skipped.
fn entries<T: serde::de::DeserializeOwned>(object: Value) -> HashMap<String, T> {
    match object {
        Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
            .collect(),
        _ => HashMap::new(),
    }
}

/// The key of a field's change time: its column, or its join table.
pub fn clock_key(field: &FieldMapping) -> Option<&str> {
    match field.kind {
        FieldKind::Links => field.join.as_ref().map(|j| j.table.as_str()),
        _ => field.column.as_deref(),
    }
}

/// The versions of `row_ids` of one entity; rows without any are absent.
pub async fn load<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_ids: &[Uuid],
) -> Result<HashMap<Uuid, RowVersions>> {
    let rows: Vec<(Uuid, Value, Value)> = sqlx::query_as(
        "SELECT row_id, changed_at, sent FROM sync_row_version WHERE entity = $1 AND row_id = ANY($2)",
    )
    .bind(entity)
    .bind(row_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, changed_at, sent)| (id, RowVersions::from_json(changed_at, sent)))
        .collect())
}

/// One row's sent values, for [`record_sent`].
#[derive(Debug, Clone)]
pub struct Sending {
    pub row_id: Uuid,
    /// Airtable field -> the value sent and the change time it carries.
    pub fields: Vec<(String, Value, DateTime<Utc>)>,
}

/// Records, before a request leaves, what it sends: one statement for a
/// request's rows. Each field keeps its newest [`SENT_KEPT`] values. The
/// send time it stamps names the request for [`record_landed`].
pub async fn record_sent(
    conn: &mut PgConnection,
    entity: &str,
    rows: &[Sending],
) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    if rows.is_empty() {
        return Ok(now);
    }
    let items: Vec<Value> = rows
        .iter()
        .flat_map(|row| {
            row.fields.iter().map(move |(field, value, at)| {
                serde_json::json!({
                    "row_id": row.row_id,
                    "field": field,
                    "entry": Sent { v: value.clone(), at: *at, sent: now, landed: None },
                })
            })
        })
        .collect();
    sqlx::query("SELECT sync_record_sent($1, $2, $3)")
        .bind(entity)
        .bind(Value::Array(items))
        .bind(SENT_KEPT as i32)
        .execute(&mut *conn)
        .await?;
    Ok(now)
}

/// Stamps the values that the request sent at `sent` (its [`record_sent`]
/// time) for `row_ids` with the time its answer came: Airtable held them by
/// then.
pub async fn record_landed(
    conn: &mut PgConnection,
    entity: &str,
    row_ids: &[Uuid],
    sent: DateTime<Utc>,
) -> Result<()> {
    if row_ids.is_empty() {
        return Ok(());
    }
    // The same serialisation as the entry's, so that jsonb equality finds it.
    let sent = serde_json::json!(sent);
    let landed = serde_json::json!(Utc::now());
    sqlx::query(
        "UPDATE sync_row_version v
            SET sent = (
                SELECT jsonb_object_agg(f.key, coalesce((
                    SELECT jsonb_agg(CASE WHEN e.item -> 'sent' = $3
                                          THEN e.item || jsonb_build_object('landed', $4::jsonb)
                                          ELSE e.item END ORDER BY e.n)
                      FROM jsonb_array_elements(f.value) WITH ORDINALITY AS e(item, n)
                ), '[]'::jsonb))
                  FROM jsonb_each(v.sent) AS f)
          WHERE v.entity = $1 AND v.row_id = ANY($2) AND v.sent <> '{}'::jsonb",
    )
    .bind(entity)
    .bind(row_ids)
    .bind(sent)
    .bind(landed)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Stamps the columns (or join tables) the inbound sync took from Airtable
/// with the time Airtable changed them.
pub async fn stamp(
    conn: &mut PgConnection,
    entity: &str,
    stamps: &[(Uuid, Map<String, Value>)],
) -> Result<()> {
    if stamps.is_empty() {
        return Ok(());
    }
    let items: Vec<Value> = stamps
        .iter()
        .map(|(row_id, changed)| serde_json::json!({"row_id": row_id, "changed": changed}))
        .collect();
    sqlx::query(
        "INSERT INTO sync_row_version AS v (entity, row_id, changed_at)
         SELECT $1, x.row_id, x.changed FROM jsonb_to_recordset($2) AS x(row_id uuid, changed jsonb)
         ON CONFLICT (entity, row_id) DO UPDATE SET changed_at = v.changed_at || EXCLUDED.changed_at",
    )
    .bind(entity)
    .bind(Value::Array(items))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets the versions of rows whose delete has reached Airtable (or that
/// never had a record).
pub async fn forget<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_ids: &[Uuid],
) -> Result<()> {
    sqlx::query("DELETE FROM sync_row_version WHERE entity = $1 AND row_id = ANY($2)")
        .bind(entity)
        .bind(row_ids)
        .execute(executor)
        .await?;
    Ok(())
}

/// Which side deleted a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedBy {
    /// The app (or anyone writing to PostgreSQL) deleted the row.
    Postgres,
    /// The team deleted the row's record in Airtable.
    Airtable,
}

impl DeletedBy {
    fn from_side(side: &str) -> DeletedBy {
        if side == "airtable" {
            DeletedBy::Airtable
        } else {
            DeletedBy::Postgres
        }
    }
}

/// The tombstones of `row_ids` of one entity.
pub async fn tombstones<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    row_ids: &[Uuid],
) -> Result<HashMap<Uuid, DeletedBy>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT row_id, side FROM sync_tombstone WHERE entity = $1 AND row_id = ANY($2)",
    )
    .bind(entity)
    .bind(row_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, side)| (id, DeletedBy::from_side(&side)))
        .collect())
}

/// Remembers that the team deleted the records of these (row, record)
/// pairs. A row the app had deleted already stays remembered as the app's
/// delete; either way the record's id is kept.
pub async fn bury_deleted_in_airtable<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    rows: &[(Uuid, String)],
) -> Result<()> {
    let (row_ids, records): (Vec<Uuid>, Vec<String>) = rows.iter().cloned().unzip();
    sqlx::query(
        "INSERT INTO sync_tombstone (entity, row_id, side, airtable_id)
         SELECT $1, x.row_id, 'airtable', x.record FROM unnest($2::uuid[], $3::text[]) AS x(row_id, record)
         ON CONFLICT (entity, row_id) DO UPDATE SET airtable_id = EXCLUDED.airtable_id",
    )
    .bind(entity)
    .bind(&row_ids)
    .bind(&records)
    .execute(executor)
    .await?;
    Ok(())
}

/// The remembered deletes of rows whose record was one of `record_ids`:
/// record id -> (row id, who deleted it).
pub async fn tombstones_of_records<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    record_ids: &[String],
) -> Result<HashMap<String, (Uuid, DeletedBy)>> {
    if record_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Uuid, String)> = sqlx::query_as(
        "SELECT airtable_id, row_id, side FROM sync_tombstone
          WHERE entity = $1 AND airtable_id = ANY($2)",
    )
    .bind(entity)
    .bind(record_ids)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(record, row, side)| (record, (row, DeletedBy::from_side(&side))))
        .collect())
}

/// How long deletes are remembered.
pub const TOMBSTONE_DAYS: i64 = 90;

/// Forgets deletes, and records noted as earlier records of a row, older
/// than [`TOMBSTONE_DAYS`].
pub async fn prune_tombstones<'e>(executor: impl PgExecutor<'e>) -> Result<u64> {
    let (tombstones, earlier): (i64, i64) = sqlx::query_as(
        "WITH t AS (DELETE FROM sync_tombstone WHERE deleted_at < now() - $1 * interval '1 day' RETURNING 1),
              e AS (DELETE FROM sync_earlier_record WHERE noted_at < now() - $1 * interval '1 day' RETURNING 1)
         SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM e)",
    )
    .bind(TOMBSTONE_DAYS)
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(tombstones + earlier).unwrap_or(0))
}
