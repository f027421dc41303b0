//! What Airtable tells us about a record, from a listing or a webhook
//! payload, in one shape: an [`Observation`] of its cells (canonical, keyed
//! like `synced_fields`), which of them changed, and when.

use std::collections::HashSet;

use airsync_airtable::{Record, WebhookPayload};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::schema::{ResolvedBase, ResolvedEntity};

/// One record as Airtable showed it.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub record_id: String,
    /// Canonical cells of the inbound fields, by field key. An absent key is
    /// an empty cell (Airtable omits empty cells).
    pub cells: Map<String, Value>,
    /// The fields this observation reports as changed; `None` when it shows
    /// the whole record (a listing, a created record), every field news.
    pub changed: Option<HashSet<String>>,
    /// When Airtable made the change (a payload's timestamp); `None` for a
    /// listing, which shows the state now.
    pub at: Option<DateTime<Utc>>,
    /// When the record was created in Airtable, where the observation says
    /// (a listing's `createdTime`, a created record's in a payload).
    pub created_at: Option<DateTime<Utc>>,
    /// For a listing or a get: when its request left. Airtable's state it
    /// shows is at least that recent, and may be older than anything the
    /// two sides agreed on after it.
    pub read_at: Option<DateTime<Utc>>,
}

impl Observation {
    /// The canonical cell of a field (empty when absent).
    pub fn cell(&self, entity: &ResolvedEntity, key: &str) -> Value {
        match self.cells.get(key) {
            Some(value) => value.clone(),
            None => entity
                .fields
                .iter()
                .find(|f| f.key() == key)
                .map(|f| f.airtable_value(None))
                .unwrap_or(Value::Null),
        }
    }

    /// Whether a field counts as news in this observation.
    pub fn reports(&self, key: &str) -> bool {
        self.changed.as_ref().is_none_or(|c| c.contains(key))
    }

    /// The record ids this observation links to, per linked entity.
    pub fn linked_records<'e>(&self, entity: &'e ResolvedEntity) -> Vec<(&'e str, String)> {
        let mut out = Vec::new();
        for field in entity.inbound_fields().filter(|f| f.kind().is_link()) {
            let Some(target) = field.mapping.target.as_deref() else {
                continue;
            };
            if let Some(Value::Array(ids)) = self.cells.get(field.key()) {
                for id in ids.iter().filter_map(Value::as_str) {
                    out.push((target, id.to_owned()));
                }
            }
        }
        out
    }
}

/// A change of one record of one entity.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Upsert(Observation),
    Delete(String),
}

/// Canonical cells of the inbound fields among `cells` (keyed by field id,
/// or by name for a record read without `returnFieldsByFieldId`).
fn canonical_cells(entity: &ResolvedEntity, cells: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for field in entity.inbound_fields() {
        let value = cells.get(&field.id).or_else(|| cells.get(field.key()));
        if let Some(value) = value {
            out.insert(field.key().to_owned(), field.airtable_value(Some(value)));
        }
    }
    out
}

/// A record from a listing or a get whose request left at `read_at`: the
/// whole record, as it was then.
pub(crate) fn from_record(
    entity: &ResolvedEntity,
    record: &Record,
    read_at: DateTime<Utc>,
) -> Observation {
    Observation {
        record_id: record.id.clone(),
        cells: canonical_cells(entity, record.fields.as_map()),
        changed: None,
        at: None,
        created_at: Some(record.created_time),
        read_at: Some(read_at),
    }
}

/// The record changes of a payload that concern mapped tables, as
/// (entity's place in the mapping, change). Changes that touch no inbound
/// field (e.g. the inverse side of a link) are left out.
pub(crate) fn from_payload(base: &ResolvedBase, payload: &WebhookPayload) -> Vec<(usize, Change)> {
    // A payload without a time is judged as happening now.
    let at = Some(payload.timestamp.unwrap_or_else(Utc::now));
    let mut out = Vec::new();
    for (table_id, table) in &payload.changed_tables_by_id {
        let Some(entity) = base.by_table_id(table_id) else {
            continue;
        };
        let position = base.position(entity.name());
        for (record_id, created) in &table.created_records_by_id {
            out.push((
                position,
                Change::Upsert(Observation {
                    record_id: record_id.clone(),
                    cells: canonical_cells(entity, &created.cell_values_by_field_id),
                    changed: None,
                    at,
                    created_at: created.created_time.or(at),
                    read_at: None,
                }),
            ));
        }
        for (record_id, changed) in &table.changed_records_by_id {
            let current = &changed.current.cell_values_by_field_id;
            let reported: HashSet<String> = current
                .keys()
                .filter_map(|id| entity.field_by_id(id))
                .filter(|f| f.mapping.flows_from_airtable())
                .map(|f| f.key().to_owned())
                .collect();
            if reported.is_empty() {
                continue;
            }
            let mut all = changed
                .unchanged
                .as_ref()
                .map(|u| u.cell_values_by_field_id.clone())
                .unwrap_or_default();
            all.extend(current.iter().map(|(k, v)| (k.clone(), v.clone())));
            out.push((
                position,
                Change::Upsert(Observation {
                    record_id: record_id.clone(),
                    cells: canonical_cells(entity, &all),
                    changed: Some(reported),
                    at,
                    created_at: None,
                    read_at: None,
                }),
            ));
        }
        for record_id in &table.destroyed_record_ids {
            out.push((position, Change::Delete(record_id.clone())));
        }
    }
    out
}
