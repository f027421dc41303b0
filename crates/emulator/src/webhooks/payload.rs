//! Turning a change transaction into one payload per interested webhook,
//! in Airtable's shape (V2 cell values keyed by field id).

use serde_json::{json, Map, Value};

use crate::changes::{ChangeSet, RecordChange, SchemaChange, Source};
use crate::clock::{format_ms, Millis};
use crate::model::Base;
use crate::render::{cell_v1, cell_v2};
use crate::webhooks::spec::{IncludeCells, Spec};

/// The user shown in `actionMetadata.sourceMetadata`.
fn source_metadata(source: Source) -> Value {
    let (id, email) = match source {
        Source::Client => ("usrEmulatorUiUser", "person@emulator.invalid"),
        _ => ("usrEmulatorApiUse", "api@emulator.invalid"),
    };
    json!({"user": {"id": id, "email": email, "permissionLevel": "create"}})
}

/// A record change with its cell values already in V2 form.
struct Delta {
    table_id: String,
    record_id: String,
    kind: DeltaKind,
}

enum DeltaKind {
    Created {
        created_ms: Millis,
        cells: Map<String, Value>,
    },
    /// (field id, current, previous) for changed cells, and the other
    /// non-empty cells for `includeCellValuesInFieldIds`.
    Changed {
        changed: Vec<(String, Value, Value)>,
        others: Map<String, Value>,
    },
    Destroyed,
}

fn deltas(base: &Base, changes: &ChangeSet) -> Vec<Delta> {
    let mut out = Vec::with_capacity(changes.records.len());
    for (table_id, record_id, change) in &changes.records {
        let Some(table) = base.table_by_id(table_id) else {
            continue;
        };
        let kind = match change {
            RecordChange::Nothing => continue,
            RecordChange::Destroyed => DeltaKind::Destroyed,
            RecordChange::Created => {
                let Some(record) = table.record(record_id) else {
                    continue;
                };
                let cells = table
                    .fields
                    .iter()
                    .filter_map(|f| {
                        cell_v1(table, f, record).map(|v| (f.id.clone(), cell_v2(base, f, &v)))
                    })
                    .collect();
                DeltaKind::Created {
                    created_ms: record.created_ms,
                    cells,
                }
            }
            RecordChange::Changed(cells) => {
                let Some(record) = table.record(record_id) else {
                    continue;
                };
                let mut changed = Vec::with_capacity(cells.len());
                for (slot, previous) in cells {
                    let Some(f) = table.field_by_slot(*slot) else {
                        continue;
                    };
                    let current = record
                        .get(*slot)
                        .map(|v| cell_v2(base, f, v))
                        .unwrap_or(Value::Null);
                    changed.push((f.id.clone(), current, cell_v2(base, f, previous)));
                }
                let others = table
                    .fields
                    .iter()
                    .filter(|f| !cells.iter().any(|(s, _)| *s == f.slot))
                    .filter_map(|f| {
                        cell_v1(table, f, record).map(|v| (f.id.clone(), cell_v2(base, f, &v)))
                    })
                    .collect();
                DeltaKind::Changed { changed, others }
            }
        };
        out.push(Delta {
            table_id: table_id.clone(),
            record_id: record_id.clone(),
            kind,
        });
    }
    out
}

/// Per-table changes while a payload is built.
type Tables = std::collections::BTreeMap<String, Map<String, Value>>;

fn entry<'a>(tables: &'a mut Tables, table_id: &str) -> &'a mut Map<String, Value> {
    tables.entry(table_id.to_owned()).or_default()
}

fn sub<'a>(obj: &'a mut Map<String, Value>, key: &str, empty: Value) -> &'a mut Value {
    obj.entry(key.to_owned()).or_insert(empty)
}

fn in_scope(spec: &Spec, base: &Base, table_id: &str) -> bool {
    match &spec.scope {
        None => true,
        Some(scope) => {
            scope == table_id
                || base
                    .table_by_id(table_id)
                    .is_some_and(|t| t.views.iter().any(|v| v.id == *scope))
        }
    }
}

/// `changedTablesById` (and `createdTablesById`) for one webhook, or
/// `None` when nothing in the transaction concerns it.
fn build(
    spec: &Spec,
    base: &Base,
    changes: &ChangeSet,
    deltas: &[Delta],
) -> Option<Map<String, Value>> {
    if !spec.allows_source(changes.source.as_str()) {
        return None;
    }
    let mut tables = Tables::new();
    let mut created_tables = Map::new();
    if spec.wants("tableData") {
        for d in deltas.iter().filter(|d| in_scope(spec, base, &d.table_id)) {
            let t = entry(&mut tables, &d.table_id);
            match &d.kind {
                DeltaKind::Created { created_ms, cells } if spec.allows_change("add") => {
                    if let Value::Object(o) = sub(t, "createdRecordsById", json!({})) {
                        o.insert(d.record_id.clone(), json!({"createdTime": format_ms(*created_ms), "cellValuesByFieldId": cells}));
                    }
                }
                DeltaKind::Changed { changed, others } if spec.allows_change("update") => {
                    let watched = |f: &str| {
                        spec.watch_data
                            .as_ref()
                            .is_none_or(|w| w.iter().any(|x| x == f))
                    };
                    if !changed.iter().any(|(f, _, _)| watched(f)) {
                        continue;
                    }
                    let current: Map<String, Value> = changed
                        .iter()
                        .map(|(f, c, _)| (f.clone(), c.clone()))
                        .collect();
                    let mut record = json!({"current": {"cellValuesByFieldId": current}});
                    if spec.include_previous_cells {
                        let previous: Map<String, Value> = changed
                            .iter()
                            .map(|(f, _, p)| (f.clone(), p.clone()))
                            .collect();
                        record["previous"] = json!({"cellValuesByFieldId": previous});
                    }
                    let unchanged: Map<String, Value> = match &spec.include_cells {
                        IncludeCells::None => Map::new(),
                        IncludeCells::All => others.clone(),
                        IncludeCells::Fields(ids) => others
                            .iter()
                            .filter(|(k, _)| ids.contains(k))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    };
                    if !unchanged.is_empty() {
                        record["unchanged"] = json!({"cellValuesByFieldId": unchanged});
                    }
                    if let Value::Object(o) = sub(t, "changedRecordsById", json!({})) {
                        o.insert(d.record_id.clone(), record);
                    }
                }
                DeltaKind::Destroyed if spec.allows_change("remove") => {
                    if let Value::Array(a) = sub(t, "destroyedRecordIds", json!([])) {
                        a.push(json!(d.record_id));
                    }
                }
                _ => {}
            }
        }
    }
    for change in &changes.schema {
        schema_change(spec, base, change, &mut tables, &mut created_tables);
    }
    tables.retain(|_, v| !v.is_empty());
    if tables.is_empty() && created_tables.is_empty() {
        return None;
    }
    let mut out = Map::new();
    if !tables.is_empty() {
        // A view scope also reports the changes under the view.
        if let Some(scope) = spec.scope.as_ref().filter(|s| s.starts_with("viw")) {
            for t in tables.values_mut() {
                let records: Map<String, Value> = t
                    .iter()
                    .filter(|(k, _)| k.ends_with("RecordsById") || *k == "destroyedRecordIds")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !records.is_empty() {
                    t.insert("changedViewsById".into(), json!({ scope.clone(): records }));
                }
            }
        }
        out.insert(
            "changedTablesById".into(),
            Value::Object(
                tables
                    .into_iter()
                    .map(|(k, v)| (k, Value::Object(v)))
                    .collect(),
            ),
        );
    }
    if !created_tables.is_empty() {
        out.insert("createdTablesById".into(), Value::Object(created_tables));
    }
    Some(out)
}

fn schema_change(
    spec: &Spec,
    base: &Base,
    change: &SchemaChange,
    tables: &mut Tables,
    created_tables: &mut Map<String, Value>,
) {
    let watched = |f: &str| {
        spec.watch_schemas
            .as_ref()
            .is_none_or(|w| w.iter().any(|x| x == f))
    };
    match change {
        SchemaChange::TableCreated { table_id }
            if spec.scope.is_none()
                && (spec.wants("tableMetadata") || spec.wants("tableFields"))
                && spec.allows_change("add") =>
        {
            let Some(table) = base.table_by_id(table_id) else {
                return;
            };
            let mut created =
                json!({"metadata": {"name": table.name, "description": table.description}});
            if spec.wants("tableFields") {
                let fields: Map<String, Value> = table
                    .fields
                    .iter()
                    .map(|f| {
                        (
                            f.id.clone(),
                            json!({"name": f.name, "type": f.kind.as_str()}),
                        )
                    })
                    .collect();
                created["fieldsById"] = Value::Object(fields);
            }
            if spec.wants("tableData") {
                created["recordsById"] = json!({});
            }
            created_tables.insert(table_id.clone(), created);
        }
        SchemaChange::TableMetadataChanged {
            table_id,
            previous_name,
            previous_description,
        } if spec.wants("tableMetadata")
            && spec.allows_change("update")
            && in_scope(spec, base, table_id) =>
        {
            let Some(table) = base.table_by_id(table_id) else {
                return;
            };
            let t = entry(tables, table_id);
            t.insert(
                "changedMetadata".into(),
                json!({
                    "current": {"name": table.name, "description": table.description},
                    "previous": {"name": previous_name, "description": previous_description},
                }),
            );
        }
        SchemaChange::FieldCreated { table_id, field_id }
            if spec.wants("tableFields")
                && spec.allows_change("add")
                && in_scope(spec, base, table_id)
                && !created_tables.contains_key(table_id) =>
        {
            let Some(field) = base
                .table_by_id(table_id)
                .and_then(|t| t.field_by_id(field_id))
            else {
                return;
            };
            let t = entry(tables, table_id);
            if let Value::Object(o) = sub(t, "createdFieldsById", json!({})) {
                o.insert(
                    field_id.clone(),
                    json!({"name": field.name, "type": field.kind.as_str()}),
                );
            }
        }
        SchemaChange::FieldChanged {
            table_id,
            field_id,
            previous,
        } if spec.wants("tableFields")
            && spec.allows_change("update")
            && in_scope(spec, base, table_id)
            && watched(field_id) =>
        {
            let Some(field) = base
                .table_by_id(table_id)
                .and_then(|t| t.field_by_id(field_id))
            else {
                return;
            };
            let mut current = Map::new();
            let mut before = Map::new();
            for key in ["name", "type", "description"] {
                let now = crate::schema::field_json(field)
                    .get(key)
                    .cloned()
                    .unwrap_or(Value::Null);
                let was = previous.get(key).cloned().unwrap_or(Value::Null);
                if now != was {
                    current.insert(key.into(), now);
                    before.insert(key.into(), was);
                }
            }
            let mut record = json!({"current": current});
            if spec.include_previous_fields {
                record["previous"] = Value::Object(before);
            }
            let t = entry(tables, table_id);
            if let Value::Object(o) = sub(t, "changedFieldsById", json!({})) {
                o.insert(field_id.clone(), record);
            }
        }
        SchemaChange::FieldDestroyed { table_id, field_id }
            if spec.wants("tableFields")
                && spec.allows_change("remove")
                && in_scope(spec, base, table_id) =>
        {
            let t = entry(tables, table_id);
            if let Value::Array(a) = sub(t, "destroyedFieldIds", json!([])) {
                a.push(json!(field_id));
            }
        }
        _ => {}
    }
}

/// Records a transaction: bumps the base's transaction number and appends
/// a payload to every active webhook it concerns. Answers whether a
/// notification ping is now owed.
pub(crate) fn publish(base: &mut Base, changes: &ChangeSet) -> bool {
    if changes.is_empty() {
        return false;
    }
    base.transaction_number += 1;
    let now = changes.at;
    crate::webhooks::housekeep(&mut base.webhooks, now);
    if !base.webhooks.iter().any(|w| w.is_active(now)) {
        return false;
    }
    let deltas = deltas(base, changes);
    let common = json!({
        "timestamp": format_ms(now),
        "baseTransactionNumber": base.transaction_number,
        "payloadFormat": "v0",
        "actionMetadata": {"source": changes.source.as_str(), "sourceMetadata": source_metadata(changes.source)},
    });
    let mut bodies = Vec::with_capacity(base.webhooks.len());
    for w in &base.webhooks {
        if !w.is_active(now) {
            bodies.push(None);
            continue;
        }
        let broken = changes.schema.iter().any(|c| match c {
            SchemaChange::FieldDestroyed { table_id, field_id } => {
                w.spec.broken_by(table_id, Some(field_id), base)
            }
            _ => false,
        });
        if broken {
            let mut body = common.clone();
            body["error"] = json!(true);
            body["code"] = json!("INVALID_FILTERS");
            bodies.push(Some((body, true)));
            continue;
        }
        bodies.push(build(&w.spec, base, changes, &deltas).map(|parts| {
            let mut body = common.clone();
            if let Value::Object(o) = &mut body {
                o.extend(parts);
            }
            (body, false)
        }));
    }
    let mut ping = false;
    for (w, body) in base.webhooks.iter_mut().zip(bodies) {
        if let Some((body, broken)) = body {
            w.push(now, body);
            if broken {
                w.hook_enabled = false;
            }
            ping |= w.ping_pending;
        }
    }
    ping
}
