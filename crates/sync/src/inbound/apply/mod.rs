//! Applying Airtable's records to PostgreSQL: match each record to its row,
//! merge field by field, and write what changed, a batch (a page, a payload)
//! at a time.
//!
//! A batch costs a handful of statements whatever its size: the id map, the
//! rows (locked for the transaction), the linked records, then one insert,
//! one update, one id-map upsert and one enqueue for the whole batch. When
//! one record makes a statement fail (a constraint, a value the column
//! refuses), the batch is rolled back to a savepoint and written record by
//! record, and the failing record is set aside with the database's reason
//! (see [`super::deferred`]), so one bad record never blocks the others.
//!
//! The caller owns the transaction and has marked it
//! `SET LOCAL airsync.origin = 'inbound'` ([`begin_inbound`]).

mod delete;
mod matching;
mod plan;
mod write;

pub(crate) use delete::apply_deletes;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::metrics::{InboundMetrics, InboundMetricsSnapshot};
use super::observe::Observation;
use super::rows::lock_rows;
use super::schema::ResolvedEntity;
use super::times::{LaterAnswers, TimeCheck};
use crate::Result;

use matching::{match_unknown, Match};
use plan::{plan_record, Planned};

/// How the observations of a batch were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// From webhook payloads: changes at a time, possibly older than what
    /// Airtable holds now.
    Payload,
    /// From a listing or a get: the records as they are now.
    Listing,
}

/// Counts of one batch, added to the metrics once committed, and the
/// creation times of the users it inserted, observed once committed.
///
/// It dereferences to the counters so that steps bump them as fields
/// (`counts.rows_created += 1`), as they did when it was the counters alone.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    tally: InboundMetricsSnapshot,
    users_created_at: Vec<DateTime<Utc>>,
}

impl std::ops::Deref for Counts {
    type Target = InboundMetricsSnapshot;
    fn deref(&self) -> &InboundMetricsSnapshot {
        &self.tally
    }
}

impl std::ops::DerefMut for Counts {
    fn deref_mut(&mut self) -> &mut InboundMetricsSnapshot {
        &mut self.tally
    }
}

impl Counts {
    /// Rows created, changed, deleted or deactivated so far.
    pub(crate) fn rows_changed(&self) -> u64 {
        self.rows_created + self.rows_updated + self.rows_deleted + self.rows_deactivated
    }

    /// Notes a user created in Airtable at `created_at` and inserted by the
    /// batch.
    pub(crate) fn user_inserted(&mut self, created_at: DateTime<Utc>) {
        self.users_created_at.push(created_at);
    }

    /// Called right after the commit of the transaction that wrote the
    /// batch: each inserted user's provisioning time ends now.
    pub(crate) fn committed(&mut self, metrics: &InboundMetrics) {
        let now = Utc::now();
        for created_at in self.users_created_at.drain(..) {
            let seconds = (now - created_at).num_milliseconds() as f64 / 1000.0;
            metrics.observe_user_provisioning(seconds);
        }
    }
}

/// What one batch needs besides its observations.
pub(crate) struct BatchInput<'a> {
    pub entity: &'a ResolvedEntity,
    pub mode: Mode,
    /// For listings: whether Airtable's change is later than the row's,
    /// by record and field (see [`TimeCheck`]).
    pub airtable_later: &'a LaterAnswers,
    /// Records known not to exist any more; links to them are dropped.
    pub gone: &'a HashSet<String>,
    /// Whether users this batch inserts count as provisioned (their time
    /// from creation in Airtable is observed). False for the first full
    /// reconcile of a table, the backfill: it brings in history, not users
    /// the team is waiting for.
    pub measures_provisioning: bool,
}

/// Opens a transaction whose writes the capture triggers do not echo.
pub(crate) async fn begin_inbound(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL airsync.origin = 'inbound'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// An id-map entry of a record in the batch.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    pub row_id: Uuid,
    pub synced: Option<Map<String, Value>>,
    /// When `synced` was last written (a push recorded, an inbound apply).
    pub agreed_at: Option<DateTime<Utc>>,
}

/// Applies created or changed records of one entity. Returns the records
/// left out because their conflicts need Airtable's change time.
pub(crate) async fn apply_upserts(
    conn: &mut PgConnection,
    input: &BatchInput<'_>,
    observations: &[Observation],
    counts: &mut Counts,
) -> Result<Vec<TimeCheck>> {
    if observations.is_empty() {
        return Ok(Vec::new());
    }
    let entity = input.entity;
    // A record observed twice in a batch: its last observation counts.
    let mut latest: HashMap<&str, &Observation> = HashMap::new();
    for observation in observations {
        latest.insert(&observation.record_id, observation);
    }
    let observations: Vec<&Observation> = observations
        .iter()
        .filter(|o| {
            latest
                .get(o.record_id.as_str())
                .is_some_and(|l| std::ptr::eq(*l, *o))
        })
        .collect();
    let record_ids: Vec<String> = observations.iter().map(|o| o.record_id.clone()).collect();
    let mapped = load_mapped(conn, entity.name(), &record_ids).await?;
    let unknown: Vec<&Observation> = observations
        .iter()
        .copied()
        .filter(|o| !mapped.contains_key(&o.record_id))
        .collect();
    let matches = match_unknown(conn, entity, &unknown, input.mode).await?;

    let mut row_ids: Vec<Uuid> = mapped.values().map(|m| m.row_id).collect();
    row_ids.extend(matches.values().filter_map(|m| match m {
        Match::Row(id) => Some(*id),
        _ => None,
    }));
    row_ids.sort();
    row_ids.dedup();
    let rows = lock_rows(conn, &entity.mapping, &row_ids).await?;
    let ours_links = plan::record_ids_of_linked_rows(conn, entity, rows.values()).await?;
    let link_rows = plan::rows_of_linked_records(conn, input, &observations).await?;

    let mut plans = Vec::new();
    let mut time_checks = Vec::new();
    let mut parked = Vec::new();
    for observation in observations {
        let target = match mapped.get(&observation.record_id) {
            Some(m) => plan::Target::Mapped(m),
            None => match matches.get(&observation.record_id) {
                Some(m) => plan::Target::Matched(m),
                None => continue,
            },
        };
        let planned = plan_record(
            input,
            observation,
            target,
            &rows,
            &ours_links,
            &link_rows,
            counts,
        );
        match planned {
            Planned::Write(plan) => plans.push(*plan),
            Planned::Skip => {}
            Planned::NeedsTime(check) => time_checks.push(check),
            Planned::Park(reason) => parked.push((observation.record_id.clone(), reason)),
        }
    }
    for (record_id, reason) in &parked {
        super::deferred::park(conn, entity.name(), record_id, reason).await?;
        counts.records_deferred += 1;
    }
    let before = counts.rows_changed();
    write::write_plans(conn, entity, plans, counts).await?;
    stamp_if_changed(conn, entity.name(), counts, before).await?;
    Ok(time_checks)
}

/// Stamps the `inbound:changed:<entity>` checkpoint, in the batch's own
/// transaction, when the batch changed rows of `entity` since `counts`
/// showed `before` rows changed.
async fn stamp_if_changed(
    conn: &mut PgConnection,
    entity: &str,
    counts: &Counts,
    before: u64,
) -> Result<()> {
    let changed = counts.rows_changed() - before;
    if changed > 0 {
        super::checkpoint::mark_changed(&mut *conn, entity, changed).await?;
    }
    Ok(())
}

/// The id-map entries of `record_ids`, locked for the transaction so that a
/// push recorded meanwhile by the worker waits for this batch (or the batch
/// for it).
async fn load_mapped(
    conn: &mut PgConnection,
    entity: &str,
    record_ids: &[String],
) -> Result<HashMap<String, Mapped>> {
    type Row = (String, Uuid, Option<Value>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT airtable_id, row_id, synced_fields, agreed_at FROM airtable_id_map
          WHERE entity = $1 AND airtable_id = ANY($2)
          ORDER BY airtable_id FOR UPDATE",
    )
    .bind(entity)
    .bind(record_ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(record, row_id, synced, agreed_at)| {
            let synced = match synced {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            };
            (
                record,
                Mapped {
                    row_id,
                    synced,
                    agreed_at,
                },
            )
        })
        .collect())
}
