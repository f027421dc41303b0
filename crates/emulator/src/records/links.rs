//! Keeping both sides of a link in step: a link field and its inverse on
//! the linked table always agree, as in Airtable.

use serde_json::Value;

use crate::changes::ChangeSet;
use crate::clock::Millis;
use crate::model::{Base, Field, FieldType};

fn ids_of(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// After `record_id`'s link cell in `field` went from `previous` to
/// `current`, adds or removes `record_id` in the inverse cells of the
/// linked records.
pub(crate) fn sync_inverse(
    base: &mut Base,
    field: &Field,
    record_id: &str,
    previous: &Value,
    current: &Value,
    now: Millis,
    changes: &mut ChangeSet,
) {
    let (Some(linked_id), Some(inverse_id)) = (
        field.option_str("linkedTableId"),
        field.option_str("inverseLinkFieldId"),
    ) else {
        return;
    };
    let Some(lt) = base.tables.iter().position(|t| t.id == linked_id) else {
        return;
    };
    let Some(slot) = base.tables[lt].field_by_id(inverse_id).map(|f| f.slot) else {
        return;
    };
    let before = ids_of(previous);
    let after = ids_of(current);
    let added = after.iter().filter(|id| !before.contains(id));
    let removed = before.iter().filter(|id| !after.contains(id));
    let edits: Vec<(String, bool)> = added
        .map(|id| (id.to_string(), true))
        .chain(removed.map(|id| (id.to_string(), false)))
        .collect();
    let table = &mut base.tables[lt];
    let table_id = table.id.clone();
    for (other, add) in edits {
        let Some(record) = table.record_mut(&other) else {
            continue;
        };
        let mut ids: Vec<Value> = record
            .get(slot)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let present = ids.iter().any(|v| v.as_str() == Some(record_id));
        if add == present {
            continue;
        }
        if add {
            ids.push(Value::String(record_id.to_owned()));
        } else {
            ids.retain(|v| v.as_str() != Some(record_id));
        }
        let value = if ids.is_empty() {
            Value::Null
        } else {
            Value::Array(ids)
        };
        let previous = record.set(slot, value, now);
        changes.changed(&table_id, &other, slot, previous);
    }
}

/// Removes a record about to be deleted from link fields that have no
/// inverse (self-links), which `sync_inverse` cannot reach.
pub(crate) fn drop_one_way_links(
    base: &mut Base,
    t: usize,
    record_id: &str,
    now: Millis,
    changes: &mut ChangeSet,
) {
    let target_table = base.tables[t].id.clone();
    for table in &mut base.tables {
        let slots: Vec<u32> = table
            .fields
            .iter()
            .filter(|f| {
                f.kind == FieldType::MultipleRecordLinks
                    && f.option_str("linkedTableId") == Some(target_table.as_str())
                    && f.option_str("inverseLinkFieldId").is_none()
            })
            .map(|f| f.slot)
            .collect();
        if slots.is_empty() {
            continue;
        }
        let table_id = table.id.clone();
        for record in table.records.values_mut() {
            for slot in &slots {
                let Some(Value::Array(ids)) = record.get(*slot) else {
                    continue;
                };
                if !ids.iter().any(|v| v.as_str() == Some(record_id)) {
                    continue;
                }
                let kept: Vec<Value> = ids
                    .iter()
                    .filter(|v| v.as_str() != Some(record_id))
                    .cloned()
                    .collect();
                let value = if kept.is_empty() {
                    Value::Null
                } else {
                    Value::Array(kept)
                };
                let previous = record.set(*slot, value, now);
                changes.changed(&table_id, &record.id, *slot, previous);
            }
        }
    }
}
