//! Cell and record JSON as Airtable answers it: the REST (V1) shape, the
//! `cellFormat=string` shape, and the V2 shape of webhook payloads.

use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use crate::clock::format_ms;
use crate::model::{Base, Field, FieldType, Record, Table};

/// How cells are rendered in a record answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CellFormat {
    /// Typed JSON (the default).
    Json,
    /// Text, as shown in Airtable's UI, with times in this zone.
    Text(Tz),
}

/// Options of a record answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderOpts<'a> {
    pub by_field_id: bool,
    /// Indexes (into `table.fields`) of the fields to include; all if `None`.
    pub only: Option<&'a [usize]>,
    pub format: CellFormat,
    pub comment_count: bool,
}

impl Default for RenderOpts<'_> {
    fn default() -> Self {
        RenderOpts {
            by_field_id: false,
            only: None,
            format: CellFormat::Json,
            comment_count: false,
        }
    }
}

/// `{"id", "createdTime", "fields"}` with empty cells left out.
pub(crate) fn record_json(base: &Base, table: &Table, record: &Record, opts: &RenderOpts) -> Value {
    let mut fields = Map::new();
    let mut add = |field: &Field| {
        let value = match opts.format {
            CellFormat::Json => cell_v1(table, field, record),
            CellFormat::Text(zone) => {
                cell_text(base, table, field, record, zone).map(Value::String)
            }
        };
        if let Some(v) = value {
            let key = if opts.by_field_id {
                &field.id
            } else {
                &field.name
            };
            fields.insert(key.clone(), v);
        }
    };
    match opts.only {
        Some(indexes) => indexes
            .iter()
            .filter_map(|i| table.fields.get(*i))
            .for_each(&mut add),
        None => table.fields.iter().for_each(&mut add),
    }
    let mut out = Map::with_capacity(4);
    out.insert("id".into(), Value::String(record.id.clone()));
    out.insert(
        "createdTime".into(),
        Value::String(format_ms(record.created_ms)),
    );
    out.insert("fields".into(), Value::Object(fields));
    if opts.comment_count {
        out.insert("commentCount".into(), json!(0));
    }
    Value::Object(out)
}

/// The REST value of a cell, `None` when empty (empty cells are omitted).
pub(crate) fn cell_v1(table: &Table, field: &Field, record: &Record) -> Option<Value> {
    match field.kind {
        FieldType::CreatedTime => Some(Value::String(time_of(field, record.created_ms))),
        FieldType::LastModifiedTime => {
            let slots = referenced_slots(table, field);
            record
                .last_modified(&slots)
                .map(|ms| Value::String(time_of(field, ms)))
        }
        FieldType::AutoNumber => Some(json!(record.auto_number)),
        _ => record.get(field.slot).filter(|v| !is_empty(v)).cloned(),
    }
}

/// The slots a lastModifiedTime field watches (every editable field when
/// it names none).
pub(crate) fn referenced_slots(table: &Table, field: &Field) -> Vec<u32> {
    field
        .option("referencedFieldIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .filter_map(|id| table.field_by_id(id))
                .map(|f| f.slot)
                .collect()
        })
        .unwrap_or_default()
}

/// A computed time as a date or a timestamp, per the field's result type.
fn time_of(field: &Field, ms: i64) -> String {
    let is_date = field
        .option("result")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        == Some("date");
    if is_date {
        crate::clock::from_ms(ms).format("%Y-%m-%d").to_string()
    } else {
        format_ms(ms)
    }
}

/// Whether a stored value counts as empty (omitted from answers).
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The V2 (webhook payload) value of a stored V1 value: selects become
/// `{id, name, color}` objects and links `{id, name}` objects.
pub(crate) fn cell_v2(base: &Base, field: &Field, value: &Value) -> Value {
    match field.kind {
        FieldType::SingleSelect => value
            .as_str()
            .map(|name| choice_object(field, name))
            .unwrap_or(Value::Null),
        FieldType::MultipleSelects => match value {
            Value::Array(names) => Value::Array(
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|n| choice_object(field, n))
                    .collect(),
            ),
            _ => Value::Null,
        },
        FieldType::MultipleRecordLinks => {
            let linked = field
                .option_str("linkedTableId")
                .and_then(|id| base.table_by_id(id));
            match value {
                Value::Array(ids) => Value::Array(
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(|id| json!({"id": id, "name": primary_text(linked, id)}))
                        .collect(),
                ),
                _ => Value::Null,
            }
        }
        _ if is_empty(value) => Value::Null,
        _ => value.clone(),
    }
}

fn choice_object(field: &Field, name: &str) -> Value {
    field
        .choices()
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        .cloned()
        .unwrap_or_else(|| json!({"name": name}))
}

/// The primary field of a record shown as text ("" when unknown).
pub(crate) fn primary_text(table: Option<&Table>, record_id: &str) -> String {
    let Some(table) = table else {
        return String::new();
    };
    let (Some(record), Some(primary)) = (table.record(record_id), table.primary_field()) else {
        return String::new();
    };
    match cell_v1(table, primary, record) {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The text of a cell for `cellFormat=string` (`None` when empty).
pub(crate) fn cell_text(
    base: &Base,
    table: &Table,
    field: &Field,
    record: &Record,
    zone: Tz,
) -> Option<String> {
    let value = cell_v1(table, field, record)?;
    let precision = field
        .option("precision")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let text = match (field.kind, &value) {
        (FieldType::Number | FieldType::Duration | FieldType::Rating, Value::Number(n)) => {
            format!("{:.*}", precision, n.as_f64().unwrap_or(0.0))
        }
        (FieldType::Currency, Value::Number(n)) => format!(
            "{}{:.*}",
            field.option_str("symbol").unwrap_or("$"),
            precision,
            n.as_f64().unwrap_or(0.0)
        ),
        (FieldType::Percent, Value::Number(n)) => {
            format!("{:.*}%", precision, n.as_f64().unwrap_or(0.0) * 100.0)
        }
        (FieldType::Checkbox, _) => "checked".to_owned(),
        (FieldType::Date, Value::String(d)) => crate::dates::date_to_ms(d)
            .map(|ms| crate::moment::format(ms, Tz::UTC, &date_spec(field)))
            .unwrap_or_else(|| d.clone()),
        (
            FieldType::DateTime | FieldType::CreatedTime | FieldType::LastModifiedTime,
            Value::String(t),
        ) => match crate::dates::parse_datetime(t, Tz::UTC) {
            Some(ms) => {
                let spec = format!("{} {}", date_spec(field), time_spec(field));
                crate::moment::format(ms, zone, &spec)
            }
            None => t.clone(),
        },
        (FieldType::MultipleRecordLinks, Value::Array(ids)) => {
            let linked = field
                .option_str("linkedTableId")
                .and_then(|id| base.table_by_id(id));
            ids.iter()
                .filter_map(Value::as_str)
                .map(|id| primary_text(linked, id))
                .collect::<Vec<_>>()
                .join(", ")
        }
        (FieldType::MultipleAttachments, Value::Array(items)) => items
            .iter()
            .map(|a| {
                let name = a.get("filename").and_then(Value::as_str).unwrap_or("");
                let url = a.get("url").and_then(Value::as_str).unwrap_or("");
                format!("{name} ({url})")
            })
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    };
    Some(text)
}

/// The moment specifier of a date field's format.
fn date_spec(field: &Field) -> String {
    let format = field
        .option("dateFormat")
        .and_then(|d| d.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("l");
    match format {
        "l" => "M/D/YYYY".to_owned(),
        "LL" => "MMMM D, YYYY".to_owned(),
        other => other.to_owned(),
    }
}

fn time_spec(field: &Field) -> String {
    field
        .option("timeFormat")
        .and_then(|d| d.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("h:mma")
        .to_owned()
}
