//! Record writes: create, update (merge or destructive), upsert, delete.
//!
//! Every operation validates the whole batch before changing anything, so a
//! batch with one bad record changes nothing, as in Airtable. The caller
//! holds the state lock for the whole call.

use serde_json::{json, Map, Value};

use crate::cells::{self, LinkTarget, Prepared};
use crate::changes::ChangeSet;
use crate::clock::Millis;
use crate::error::ApiError;
use crate::ids;
use crate::model::{Base, FieldType, Record};

/// Cell values of one record as a client sends them (by name or id).
pub(crate) type FieldsInput = Map<String, Value>;

/// Options common to every write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteOptions {
    pub typecast: bool,
    pub now: Millis,
}

/// A validated cell write.
struct Planned {
    field: usize,
    value: Prepared,
}

/// `UNKNOWN_FIELD_NAME`.
pub(crate) fn unknown_field(name: &str) -> ApiError {
    ApiError::unprocessable(
        "UNKNOWN_FIELD_NAME",
        format!("Unknown field name: \"{name}\""),
    )
}

fn duplicate_ids() -> ApiError {
    ApiError::unprocessable(
        "INVALID_RECORDS",
        "A record id appears more than once in the request",
    )
}

/// Validates the cells of one record without changing anything.
fn plan(
    base: &Base,
    t: usize,
    fields: &FieldsInput,
    typecast: bool,
    previous: Option<&Record>,
) -> Result<Vec<Planned>, ApiError> {
    let table = &base.tables[t];
    let mut out: Vec<Planned> = Vec::with_capacity(fields.len());
    for (key, raw) in fields {
        let index = table.field_index(key).ok_or_else(|| unknown_field(key))?;
        let field = &table.fields[index];
        let linked = match field.kind {
            FieldType::MultipleRecordLinks => field
                .option_str("linkedTableId")
                .and_then(|id| base.table_by_id(id)),
            _ => None,
        };
        let prev = previous.and_then(|r| r.get(field.slot));
        let value = cells::prepare(field, raw, typecast, linked, prev)?;
        // The same field named twice (by name and by id): the last one wins.
        out.retain(|p| p.field != index);
        out.push(Planned {
            field: index,
            value,
        });
    }
    Ok(out)
}

/// Creates records; answers their ids in request order.
pub(crate) fn create_records(
    base: &mut Base,
    t: usize,
    inputs: &[FieldsInput],
    opts: WriteOptions,
    changes: &mut ChangeSet,
) -> Result<Vec<String>, ApiError> {
    let plans = inputs
        .iter()
        .map(|fields| plan(base, t, fields, opts.typecast, None))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids = Vec::with_capacity(plans.len());
    for cells in plans {
        let id = insert(base, t, opts.now, changes);
        apply(base, t, &id, cells, false, opts, changes);
        ids.push(id);
    }
    Ok(ids)
}

fn insert(base: &mut Base, t: usize, now: Millis, changes: &mut ChangeSet) -> String {
    let table = &mut base.tables[t];
    let id = table.insert_record(ids::new_id(ids::RECORD), now);
    changes.created(&table.id, &id);
    id
}

/// Updates existing records of table `t`; `destructive` (PUT) clears
/// every editable field the request does not name.
pub(crate) fn update_records(
    base: &mut Base,
    t: usize,
    inputs: &[(String, FieldsInput)],
    destructive: bool,
    opts: WriteOptions,
    changes: &mut ChangeSet,
) -> Result<(), ApiError> {
    let mut seen: Vec<&str> = Vec::with_capacity(inputs.len());
    let mut plans = Vec::with_capacity(inputs.len());
    for (id, fields) in inputs {
        if seen.contains(&id.as_str()) {
            return Err(duplicate_ids());
        }
        seen.push(id);
        let record = base.tables[t]
            .record(id)
            .ok_or_else(|| cells::row_does_not_exist(id))?;
        plans.push(plan(base, t, fields, opts.typecast, Some(record))?);
    }
    for ((id, _), cells) in inputs.iter().zip(plans) {
        apply(base, t, id, cells, destructive, opts, changes);
    }
    Ok(())
}

/// The outcome of an upsert, ids in request order.
pub(crate) struct UpsertOutcome {
    pub ids: Vec<String>,
    pub created: Vec<String>,
    pub updated: Vec<String>,
}

/// Field types that `fieldsToMergeOn` may name.
fn mergeable(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::Number
            | FieldType::SingleLineText
            | FieldType::MultilineText
            | FieldType::SingleSelect
            | FieldType::MultipleSelects
            | FieldType::Date
    )
}

/// The stored form of a prepared merge value (`None` when empty).
fn merge_value(p: &Prepared, kind: FieldType) -> Option<Value> {
    match p {
        Prepared::Clear => None,
        Prepared::Value(v) => Some(v.clone()),
        Prepared::Choices(names) if kind == FieldType::SingleSelect => {
            names.first().map(|n| Value::String(n.clone()))
        }
        Prepared::Choices(names) => Some(json!(names)),
        Prepared::Links(_) => None,
    }
}

/// Upsert: records with an id are updated; the others are matched on the
/// merge fields (none: create, one: update, several: the request fails).
pub(crate) fn upsert_records(
    base: &mut Base,
    t: usize,
    inputs: &[(Option<String>, FieldsInput)],
    merge_on: &[String],
    destructive: bool,
    opts: WriteOptions,
    changes: &mut ChangeSet,
) -> Result<UpsertOutcome, ApiError> {
    if merge_on.is_empty() || merge_on.len() > 3 {
        return Err(ApiError::invalid_request_because(
            "performUpsert.fieldsToMergeOn must name 1 to 3 fields",
        ));
    }
    let table = &base.tables[t];
    let mut merge_fields = Vec::with_capacity(merge_on.len());
    for name in merge_on {
        let index = table.field_index(name).ok_or_else(|| unknown_field(name))?;
        let field = &table.fields[index];
        if !mergeable(field.kind) {
            return Err(ApiError::invalid_request_because(format!(
                "Field \"{}\" of type {} cannot be used in fieldsToMergeOn",
                field.name,
                field.kind.as_str()
            )));
        }
        merge_fields.push(index);
    }
    // (target id, is new, planned cells)
    let mut targets: Vec<(String, bool, Vec<Planned>)> = Vec::with_capacity(inputs.len());
    let mut batch_keys: Vec<(Vec<Option<Value>>, String)> = Vec::new();
    for (id, fields) in inputs {
        if let Some(id) = id {
            let record = base.tables[t]
                .record(id)
                .ok_or_else(|| cells::row_does_not_exist(id))?;
            let cells = plan(base, t, fields, opts.typecast, Some(record))?;
            targets.push((id.clone(), false, cells));
            continue;
        }
        let table = &base.tables[t];
        // Airtable refuses a record that lacks a merge field; an explicit
        // null is allowed (and creates).
        for fi in &merge_fields {
            if !fields.keys().any(|k| table.field_index(k) == Some(*fi)) {
                return Err(ApiError::invalid_request_because(format!(
                    "Every record without an id must contain the fields to merge on; \"{}\" is missing",
                    table.fields[*fi].name
                )));
            }
        }
        let cells = plan(base, t, fields, opts.typecast, None)?;
        let key: Vec<Option<Value>> = merge_fields
            .iter()
            .map(|fi| {
                let kind = table.fields[*fi].kind;
                cells
                    .iter()
                    .find(|p| p.field == *fi)
                    .and_then(|p| merge_value(&p.value, kind))
            })
            .collect();
        let target = if key.iter().any(Option::is_none) {
            None
        } else {
            let mut matches = table.records.values().filter(|r| {
                merge_fields
                    .iter()
                    .zip(&key)
                    .all(|(fi, v)| r.get(table.fields[*fi].slot) == v.as_ref())
            });
            let first = matches.next().map(|r| r.id.clone());
            if first.is_some() && matches.next().is_some() {
                return Err(ApiError::invalid_request_because(
                    "More than one record matches the fields to merge on",
                ));
            }
            first.or_else(|| {
                batch_keys
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, id)| id.clone())
            })
        };
        match target {
            Some(existing) => targets.push((existing, false, cells)),
            None => {
                let new_id = ids::new_id(ids::RECORD);
                batch_keys.push((key, new_id.clone()));
                targets.push((new_id, true, cells));
            }
        }
    }
    let mut outcome = UpsertOutcome {
        ids: Vec::with_capacity(targets.len()),
        created: Vec::new(),
        updated: Vec::new(),
    };
    for (id, is_new, cells) in targets {
        if is_new && !base.tables[t].by_id.contains_key(&id) {
            let table = &mut base.tables[t];
            table.insert_record(id.clone(), opts.now);
            changes.created(&table.id, &id);
            outcome.created.push(id.clone());
        } else if !outcome.created.contains(&id) && !outcome.updated.contains(&id) {
            outcome.updated.push(id.clone());
        }
        apply(base, t, &id, cells, destructive && !is_new, opts, changes);
        outcome.ids.push(id);
    }
    Ok(outcome)
}

/// Deletes records of table `t`; unknown ids refuse the whole batch.
pub(crate) fn delete_records(
    base: &mut Base,
    t: usize,
    record_ids: &[String],
    now: Millis,
    changes: &mut ChangeSet,
) -> Result<(), ApiError> {
    let mut seen: Vec<&str> = Vec::with_capacity(record_ids.len());
    for id in record_ids {
        if seen.contains(&id.as_str()) {
            return Err(duplicate_ids());
        }
        seen.push(id);
        if !base.tables[t].by_id.contains_key(id) {
            return Err(ApiError::record_not_found());
        }
    }
    for id in record_ids {
        unlink_everywhere(base, t, id, now, changes);
        let table = &mut base.tables[t];
        table.remove_record(id);
        changes.destroyed(&table.id, id);
    }
    Ok(())
}

/// Writes validated cells to a record, resolving new choices and new
/// linked records first.
fn apply(
    base: &mut Base,
    t: usize,
    record_id: &str,
    cells: Vec<Planned>,
    destructive: bool,
    opts: WriteOptions,
    changes: &mut ChangeSet,
) {
    let mut touched: Vec<usize> = Vec::with_capacity(cells.len());
    for cell in cells {
        let value = resolve(base, t, cell.field, cell.value, opts, changes);
        touched.push(cell.field);
        write_cell(base, t, record_id, cell.field, value, opts.now, changes);
    }
    if destructive {
        for index in 0..base.tables[t].fields.len() {
            if !touched.contains(&index) && !base.tables[t].fields[index].kind.is_computed() {
                write_cell(base, t, record_id, index, Value::Null, opts.now, changes);
            }
        }
    }
}

/// The stored value of a prepared cell.
fn resolve(
    base: &mut Base,
    t: usize,
    field: usize,
    value: Prepared,
    opts: WriteOptions,
    changes: &mut ChangeSet,
) -> Value {
    match value {
        Prepared::Clear => Value::Null,
        Prepared::Value(v) => v,
        Prepared::Choices(names) => {
            let f = &mut base.tables[t].fields[field];
            for name in &names {
                crate::schema::ensure_choice(f, name);
            }
            if f.kind == FieldType::SingleSelect {
                names
                    .into_iter()
                    .next()
                    .map(Value::String)
                    .unwrap_or(Value::Null)
            } else {
                json!(names)
            }
        }
        Prepared::Links(targets) => {
            let linked_id = base.tables[t].fields[field]
                .option_str("linkedTableId")
                .map(str::to_owned);
            let lt = linked_id.and_then(|id| base.tables.iter().position(|x| x.id == id));
            let mut out = Vec::with_capacity(targets.len());
            for target in targets {
                match (target, lt) {
                    (LinkTarget::Existing(id), _) => out.push(Value::String(id)),
                    (LinkTarget::Create(name), Some(lt)) => {
                        let id = insert(base, lt, opts.now, changes);
                        if let Some(primary) = base.tables[lt].primary_field().map(|f| f.slot) {
                            if let Some(r) = base.tables[lt].record_mut(&id) {
                                r.set(primary, Value::String(name), opts.now);
                            }
                        }
                        out.push(Value::String(id));
                    }
                    (LinkTarget::Create(_), None) => {}
                }
            }
            Value::Array(out)
        }
    }
}

/// Whether two stored values mean the same cell content.
fn same(a: &Value, b: &Value) -> bool {
    let empty = |v: &Value| crate::render::is_empty(v);
    (empty(a) && empty(b)) || a == b
}

/// Sets one cell, notes the change and keeps inverse links in step. A
/// write of the value already there changes nothing (and does not bump the
/// modification time).
fn write_cell(
    base: &mut Base,
    t: usize,
    record_id: &str,
    field: usize,
    value: Value,
    now: Millis,
    changes: &mut ChangeSet,
) {
    let table = &mut base.tables[t];
    let f = table.fields[field].clone();
    let table_id = table.id.clone();
    let Some(record) = table.record_mut(record_id) else {
        return;
    };
    let current = record.get(f.slot).cloned().unwrap_or(Value::Null);
    if same(&current, &value) {
        return;
    }
    let previous = record.set(f.slot, value.clone(), now);
    changes.changed(&table_id, record_id, f.slot, previous.clone());
    if f.kind == FieldType::MultipleRecordLinks {
        crate::records::links::sync_inverse(base, &f, record_id, &previous, &value, now, changes);
    }
}

/// Removes every link to a record that is about to be deleted.
fn unlink_everywhere(
    base: &mut Base,
    t: usize,
    record_id: &str,
    now: Millis,
    changes: &mut ChangeSet,
) {
    let link_fields: Vec<_> = base.tables[t]
        .fields
        .iter()
        .filter(|f| f.kind == FieldType::MultipleRecordLinks)
        .cloned()
        .collect();
    for f in link_fields {
        let current = base.tables[t]
            .record(record_id)
            .and_then(|r| r.get(f.slot))
            .cloned()
            .unwrap_or(Value::Null);
        crate::records::links::sync_inverse(
            base,
            &f,
            record_id,
            &current,
            &Value::Null,
            now,
            changes,
        );
    }
    crate::records::links::drop_one_way_links(base, t, record_id, now, changes);
}
