//! Deciding what to write for one record: the merge's outcome turned into
//! column values, join-table rows, the id-map entry and pushes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::matching::Match;
use super::{BatchInput, Counts, Mapped};
use crate::cells::LinkIds;
use crate::id_map;
use crate::inbound::cells::{cell_to_column, row_cell};
use crate::inbound::merge::{merge_record, Conflict, Push, RowSide};
use crate::inbound::observe::Observation;
use crate::inbound::rows::LockedRow;
use crate::inbound::schema::ResolvedEntity;
use crate::inbound::times::TimeCheck;
use crate::mapping::FieldKind;
use crate::versions;
use crate::Result;

/// Where a record goes.
pub(crate) enum Target<'a> {
    Mapped(&'a Mapped),
    Matched(&'a Match),
}

/// The outcome of planning one record.
pub(crate) enum Planned {
    Write(Box<RecordPlan>),
    Skip,
    NeedsTime(TimeCheck),
    /// Set aside, with the reason.
    Park(String),
}

/// The writes of one record.
#[derive(Debug, Clone)]
pub(crate) struct RecordPlan {
    pub record_id: String,
    pub row_id: Uuid,
    /// Every inbound column of a new row, with `id`.
    pub insert: Option<Map<String, Value>>,
    /// Every inbound column of a changed row, with `id`: the row's values
    /// where it keeps them, Airtable's where it takes them.
    pub update: Option<Map<String, Value>>,
    /// Join-table contents taken from Airtable, by field index.
    pub links: Vec<(usize, Vec<Uuid>)>,
    /// A new `synced_fields` (and the id-map entry) to store.
    pub synced: Option<Value>,
    pub push: Push,
    /// The row is gone from PostgreSQL: make sure the record's delete is on
    /// its way (the record is mapped to the row first, so that the worker
    /// knows which record to delete).
    pub push_delete: bool,
    /// When Airtable made the values taken (a payload's time; for a listing,
    /// when its request left), stamped as the columns' change times.
    pub taken_at: Option<DateTime<Utc>>,
    /// The columns (or join tables) taken from Airtable.
    pub taken: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// For a user created in Airtable and new to PostgreSQL: when it was
    /// created there, the start of its provisioning time.
    pub user_created_at: Option<DateTime<Utc>>,
}

/// The entity whose inserts from Airtable are measured as provisioning
/// (`airsync_user_provisioning_seconds`): accounts the team creates in
/// Airtable and the app waits for.
const PROVISIONED_ENTITY: &str = "user";

impl RecordPlan {
    fn new(record_id: &str, row_id: Uuid) -> Self {
        RecordPlan {
            record_id: record_id.to_owned(),
            row_id,
            insert: None,
            update: None,
            links: Vec::new(),
            synced: None,
            push: Push::None,
            push_delete: false,
            taken_at: None,
            taken: Vec::new(),
            conflicts: Vec::new(),
            user_created_at: None,
        }
    }
}

/// Row ids of linked records, by (entity, record id).
pub(crate) type LinkRows = HashMap<(String, String), Uuid>;

pub(crate) fn plan_record(
    input: &BatchInput<'_>,
    observation: &Observation,
    target: Target<'_>,
    rows: &HashMap<Uuid, LockedRow>,
    ours_links: &LinkIds,
    link_rows: &LinkRows,
    counts: &mut Counts,
) -> Planned {
    let entity = input.entity;
    if let (Target::Mapped(mapped), Some(read_at)) = (&target, observation.read_at) {
        if mapped.agreed_at.is_some_and(|agreed| agreed >= read_at) {
            // The two sides agreed on the record (a push recorded, a payload
            // applied) after this listing was read: it may show Airtable
            // before that. The next listing or payload brings it again.
            tracing::debug!(entity = %entity.name(), record = %observation.record_id,
                "a listing read before the record's last agreement; not applied");
            counts.stale_listings_skipped += 1;
            return Planned::Skip;
        }
    }
    match target {
        Target::Mapped(mapped) => match rows.get(&mapped.row_id) {
            Some(row) => existing_row(input, observation, row, Some(mapped), ours_links, link_rows),
            None if entity.mapping.syncs_outbound() => {
                // PostgreSQL deleted the row: the delete wins over any change.
                let mut plan = RecordPlan::new(&observation.record_id, mapped.row_id);
                plan.push_delete = true;
                Planned::Write(Box::new(plan))
            }
            // Reference data is Airtable's: a row lost here comes back.
            None => new_row(input, observation, mapped.row_id, link_rows),
        },
        Target::Matched(Match::Row(id)) => match rows.get(id) {
            Some(row) => existing_row(input, observation, row, None, ours_links, link_rows),
            None => new_row(input, observation, *id, link_rows),
        },
        Target::Matched(Match::New(id)) => {
            let mut planned = new_row(input, observation, *id, link_rows);
            if let Planned::Write(plan) = &mut planned {
                plan.user_created_at = provisioning_start(input, observation);
            }
            planned
        }
        Target::Matched(Match::Duplicate(reason)) => Planned::Park(format!("duplicate: {reason}")),
        Target::Matched(Match::DeletedInPostgres(id)) => {
            tracing::info!(entity = %entity.name(), record = %observation.record_id, row_id = %id,
                "a record of a row PostgreSQL deleted; the delete wins and the record is deleted");
            let mut plan = RecordPlan::new(&observation.record_id, *id);
            plan.push_delete = true;
            Planned::Write(Box::new(plan))
        }
        Target::Matched(Match::DeletedInAirtable(id)) => {
            tracing::info!(entity = %entity.name(), record = %observation.record_id, row_id = %id,
                "a payload about a record the team has deleted since; left alone");
            counts.rows_unchanged += 1;
            Planned::Skip
        }
        Target::Matched(Match::Earlier(id)) => {
            tracing::info!(entity = %entity.name(), record = %observation.record_id, row_id = %id,
                "a record created before the row's current one, by a create tried again; left alone");
            counts.rows_unchanged += 1;
            Planned::Skip
        }
        Target::Matched(Match::UnknownRow(id)) => {
            tracing::info!(entity = %entity.name(), record = %observation.record_id, row_id = %id,
                "a change of a record whose row PostgreSQL does not have; left alone");
            counts.rows_unchanged += 1;
            Planned::Skip
        }
    }
}

/// When the provisioning of a record new to PostgreSQL started: its creation
/// in Airtable, else the time Airtable reported the change; `None` when the
/// record is no user or the batch does not measure provisioning.
fn provisioning_start(input: &BatchInput<'_>, observation: &Observation) -> Option<DateTime<Utc>> {
    if !input.measures_provisioning || input.entity.name() != PROVISIONED_ENTITY {
        return None;
    }
    observation.created_at.or(observation.at)
}

/// The canonical cells of a row's inbound fields.
pub(crate) fn row_cells(
    entity: &ResolvedEntity,
    row: &crate::rows::RowState,
    links: &LinkIds,
) -> Map<String, Value> {
    entity
        .inbound_fields()
        .map(|f| (f.key().to_owned(), row_cell(&f.mapping, row, links)))
        .collect()
}

fn existing_row(
    input: &BatchInput<'_>,
    observation: &Observation,
    row: &LockedRow,
    mapped: Option<&Mapped>,
    ours_links: &LinkIds,
    link_rows: &LinkRows,
) -> Planned {
    let entity = input.entity;
    let ours = row_cells(entity, &row.state, ours_links);
    let side = RowSide {
        ours: &ours,
        base: mapped.and_then(|m| m.synced.as_ref()),
        versions: &row.versions,
        updated_at: row.updated_at,
    };
    let answer = input.airtable_later.get(&observation.record_id);
    let outcome = merge_record(entity, observation, &side, answer);
    if !outcome.needs_time.is_empty() {
        return Planned::NeedsTime(TimeCheck {
            record_id: observation.record_id.clone(),
            fields: outcome.needs_time,
        });
    }
    let (columns, links) = match taken_values(input, observation, &outcome.take, link_rows) {
        Ok(values) => values,
        Err(reason) => return Planned::Park(reason),
    };
    let mut plan = RecordPlan::new(&observation.record_id, row.state.id);
    plan.taken = taken_keys(entity, &outcome.take);
    plan.taken_at = observation.at.or(observation.read_at);
    if !columns.is_empty() || !links.is_empty() {
        let mut update = Map::new();
        update.insert("id".into(), Value::String(row.state.id.to_string()));
        for column in inbound_columns(entity) {
            let value = columns
                .get(column)
                .or_else(|| row.state.columns.get(column))
                .cloned()
                .unwrap_or(Value::Null);
            update.insert(column.to_owned(), value);
        }
        plan.update = Some(update);
        plan.links = links;
    }
    let old = mapped.and_then(|m| m.synced.clone());
    let mut synced = old.clone().unwrap_or_default();
    synced.extend(outcome.synced);
    if mapped.is_none() || old.as_ref() != Some(&synced) {
        plan.synced = Some(Value::Object(synced));
    }
    plan.push = outcome.push;
    plan.conflicts = outcome.conflicts;
    // A plan that writes nothing still goes to the writer, which counts it
    // as unchanged and clears the record's deferred entry.
    Planned::Write(Box::new(plan))
}

fn new_row(
    input: &BatchInput<'_>,
    observation: &Observation,
    row_id: Uuid,
    link_rows: &LinkRows,
) -> Planned {
    let entity = input.entity;
    let take: Vec<usize> = entity
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.mapping.flows_from_airtable() && f.kind() != FieldKind::PgId)
        .map(|(i, _)| i)
        .collect();
    let (columns, links) = match taken_values(input, observation, &take, link_rows) {
        Ok(values) => values,
        Err(reason) => return Planned::Park(reason),
    };
    let mut insert = Map::new();
    insert.insert("id".into(), Value::String(row_id.to_string()));
    for column in inbound_columns(entity) {
        insert.insert(
            column.to_owned(),
            columns.get(column).cloned().unwrap_or(Value::Null),
        );
    }
    let synced: Map<String, Value> = entity
        .inbound_fields()
        .map(|f| (f.key().to_owned(), observation.cell(entity, f.key())))
        .collect();
    let mut plan = RecordPlan::new(&observation.record_id, row_id);
    plan.taken = taken_keys(entity, &take);
    plan.taken_at = observation.at.or(observation.read_at);
    plan.insert = Some(insert);
    plan.links = links;
    plan.synced = Some(Value::Object(synced));
    // A record the team created has no pg_id yet: send it the row's id.
    if let Some(pg_id) = entity.pg_id() {
        let has = observation.cell(entity, pg_id.key());
        if entity.mapping.syncs_outbound() && has.as_str() != Some(row_id.to_string().as_str()) {
            plan.push = Push::Always;
        }
    }
    Planned::Write(Box::new(plan))
}

/// The columns (or join tables) of the fields taken.
fn taken_keys(entity: &ResolvedEntity, take: &[usize]) -> Vec<String> {
    take.iter()
        .filter_map(|i| entity.fields.get(*i))
        .filter_map(|f| versions::clock_key(&f.mapping))
        .map(str::to_owned)
        .collect()
}

/// The inbound columns of an entity (link columns included, join tables
/// and the pg_id not).
pub(crate) fn inbound_columns(entity: &ResolvedEntity) -> impl Iterator<Item = &str> {
    entity
        .inbound_fields()
        .filter(|f| !matches!(f.kind(), FieldKind::Links | FieldKind::PgId))
        .filter_map(|f| f.mapping.column.as_deref())
}

type Taken = (Map<String, Value>, Vec<(usize, Vec<Uuid>)>);

/// Column values and join-table rows for the fields taken from Airtable;
/// the reason to set the record aside when one cannot be written yet.
fn taken_values(
    input: &BatchInput<'_>,
    observation: &Observation,
    take: &[usize],
    link_rows: &LinkRows,
) -> std::result::Result<Taken, String> {
    let entity = input.entity;
    let mut columns = Map::new();
    let mut links = Vec::new();
    for &index in take {
        let Some(field) = entity.fields.get(index) else {
            continue;
        };
        let theirs = observation.cell(entity, field.key());
        let column = field.mapping.column.as_deref().unwrap_or_default();
        match field.kind() {
            FieldKind::PgId => {}
            FieldKind::Link | FieldKind::Links => {
                let target = field.mapping.target.as_deref().unwrap_or_default();
                let mut ids = Vec::new();
                for record in theirs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if input.gone.contains(record) {
                        continue;
                    }
                    match link_rows.get(&(target.to_owned(), record.to_owned())) {
                        Some(id) if !ids.contains(id) => ids.push(*id),
                        Some(_) => {}
                        None => return Err(format!("waiting for linked {target} record {record}")),
                    }
                }
                if field.kind() == FieldKind::Links {
                    links.push((index, ids));
                } else {
                    match ids.first() {
                        Some(id) => {
                            columns.insert(column.to_owned(), Value::String(id.to_string()));
                        }
                        None if field.nullable => {
                            columns.insert(column.to_owned(), Value::Null);
                        }
                        None => {
                            return Err(format!(
                                "field {:?} is empty, and column {column} requires a value",
                                field.key()
                            ))
                        }
                    }
                }
            }
            _ => {
                let value = cell_to_column(&field.mapping, field.nullable, &theirs)
                    .map_err(|e| e.to_string())?;
                columns.insert(column.to_owned(), value);
            }
        }
    }
    Ok((columns, links))
}

/// Record ids of the rows that `rows` link to through inbound link fields.
pub(crate) async fn record_ids_of_linked_rows<'r>(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    rows: impl Iterator<Item = &'r LockedRow>,
) -> Result<LinkIds> {
    let mut wanted: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for row in rows {
        for field in entity.inbound_fields() {
            let Some(target) = field.mapping.target.as_deref() else {
                continue;
            };
            match field.kind() {
                FieldKind::Link => {
                    let id = field
                        .mapping
                        .column
                        .as_deref()
                        .and_then(|c| row.state.columns.get(c))
                        .and_then(Value::as_str)
                        .and_then(|s| Uuid::parse_str(s).ok());
                    wanted.entry(target).or_default().extend(id);
                }
                FieldKind::Links => {
                    let ids = row
                        .state
                        .links
                        .get(field.key())
                        .cloned()
                        .unwrap_or_default();
                    wanted.entry(target).or_default().extend(ids);
                }
                _ => {}
            }
        }
    }
    let mut out = LinkIds::new();
    for (target, ids) in wanted {
        for (row_id, record) in id_map::airtable_ids(&mut *conn, target, &ids).await? {
            out.insert((target.to_owned(), row_id), record);
        }
    }
    Ok(out)
}

/// Row ids of the records the observations link to, where the id map knows
/// them (records applied earlier in the same transaction included).
pub(crate) async fn rows_of_linked_records(
    conn: &mut PgConnection,
    input: &BatchInput<'_>,
    observations: &[&Observation],
) -> Result<LinkRows> {
    let mut wanted: HashMap<&str, Vec<String>> = HashMap::new();
    for observation in observations {
        for (target, record) in observation.linked_records(input.entity) {
            wanted.entry(target).or_default().push(record);
        }
    }
    let mut out = LinkRows::new();
    for (target, records) in wanted {
        let rows: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT airtable_id, row_id FROM airtable_id_map WHERE entity = $1 AND airtable_id = ANY($2)",
        )
        .bind(target)
        .bind(&records)
        .fetch_all(&mut *conn)
        .await?;
        for (record, row_id) in rows {
            out.insert((target.to_owned(), record), row_id);
        }
    }
    Ok(out)
}
