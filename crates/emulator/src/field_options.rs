//! Field options: which are required per type, their defaults, and the
//! normalized form the metadata API answers.

use serde_json::{json, Map, Value};

use crate::changes::{ChangeSet, SchemaChange};
use crate::error::ApiError;
use crate::ids;
use crate::model::{Base, Field, FieldType};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request_because(message)
}

fn precision(given: &Map<String, Value>, max: u64, kind: &str) -> Result<Value, ApiError> {
    match given.get("precision").and_then(Value::as_u64) {
        Some(p) if p <= max => Ok(json!(p)),
        _ => Err(invalid(format!(
            "Field type {kind} requires options.precision between 0 and {max}"
        ))),
    }
}

/// `dateFormat` with both `name` and `format`, from either.
fn date_format(given: &Map<String, Value>) -> Result<Value, ApiError> {
    const FORMATS: [(&str, &str); 5] = [
        ("local", "l"),
        ("friendly", "LL"),
        ("us", "M/D/YYYY"),
        ("european", "D/M/YYYY"),
        ("iso", "YYYY-MM-DD"),
    ];
    let spec = given
        .get("dateFormat")
        .ok_or_else(|| invalid("options.dateFormat is required"))?;
    let name = spec.get("name").and_then(Value::as_str);
    let format = spec.get("format").and_then(Value::as_str);
    FORMATS
        .iter()
        .find(|(n, f)| Some(*n) == name || (name.is_none() && Some(*f) == format))
        .filter(|(_, f)| format.is_none() || format == Some(*f))
        .map(|(n, f)| json!({"name": n, "format": f}))
        .ok_or_else(|| invalid("options.dateFormat is not one Airtable knows"))
}

fn time_format(given: &Map<String, Value>) -> Result<Value, ApiError> {
    let spec = given
        .get("timeFormat")
        .ok_or_else(|| invalid("options.timeFormat is required"))?;
    let name = spec.get("name").and_then(Value::as_str);
    let format = spec.get("format").and_then(Value::as_str);
    match (name, format) {
        (Some("12hour"), None | Some("h:mma")) | (None, Some("h:mma")) => {
            Ok(json!({"name": "12hour", "format": "h:mma"}))
        }
        (Some("24hour"), None | Some("HH:mm")) | (None, Some("HH:mm")) => {
            Ok(json!({"name": "24hour", "format": "HH:mm"}))
        }
        _ => Err(invalid("options.timeFormat is not one Airtable knows")),
    }
}

fn time_zone(given: &Map<String, Value>) -> Result<Value, ApiError> {
    let zone = given
        .get("timeZone")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("options.timeZone is required"))?;
    crate::dates::parse_zone(zone).ok_or_else(|| invalid(format!("Unknown time zone {zone}")))?;
    Ok(json!(zone))
}

fn choices(given: &Map<String, Value>) -> Result<Value, ApiError> {
    let list = given
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("options.choices is required"))?;
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for choice in list {
        let name = choice
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("every choice needs a name"))?;
        if out.iter().any(|c| c["name"] == name) {
            return Err(invalid(format!("duplicate choice {name}")));
        }
        let mut c = json!({"id": ids::new_id(ids::CHOICE), "name": name});
        if let Some(color) = choice.get("color").and_then(Value::as_str) {
            c["color"] = json!(color);
        }
        out.push(c);
    }
    Ok(Value::Array(out))
}

fn default_time_result() -> Value {
    json!({"type": "dateTime", "options": {
        "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
        "timeFormat": {"name": "24hour", "format": "HH:mm"},
        "timeZone": "utc"}})
}

/// Checks and completes the options of a new field of table `t`.
pub(crate) fn normalize(
    base: &Base,
    t: usize,
    kind: FieldType,
    given: Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let mut out = Map::new();
    match kind {
        FieldType::Number | FieldType::Percent => {
            out.insert("precision".into(), precision(&given, 8, kind.as_str())?);
        }
        FieldType::Currency => {
            out.insert("precision".into(), precision(&given, 7, kind.as_str())?);
            let symbol = given
                .get("symbol")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("Field type currency requires options.symbol"))?;
            out.insert("symbol".into(), json!(symbol));
        }
        FieldType::Duration => {
            let format = given
                .get("durationFormat")
                .and_then(Value::as_str)
                .unwrap_or("h:mm");
            out.insert("durationFormat".into(), json!(format));
        }
        FieldType::Rating => {
            let max = given.get("max").and_then(Value::as_u64).unwrap_or(5);
            if !(1..=10).contains(&max) {
                return Err(invalid("options.max must be between 1 and 10"));
            }
            out.insert("max".into(), json!(max));
            out.insert(
                "icon".into(),
                given.get("icon").cloned().unwrap_or(json!("star")),
            );
            out.insert(
                "color".into(),
                given.get("color").cloned().unwrap_or(json!("yellowBright")),
            );
        }
        FieldType::Checkbox => {
            out.insert(
                "icon".into(),
                given.get("icon").cloned().unwrap_or(json!("check")),
            );
            out.insert(
                "color".into(),
                given.get("color").cloned().unwrap_or(json!("greenBright")),
            );
        }
        FieldType::Date => {
            out.insert("dateFormat".into(), date_format(&given)?);
        }
        FieldType::DateTime => {
            out.insert("dateFormat".into(), date_format(&given)?);
            out.insert("timeFormat".into(), time_format(&given)?);
            out.insert("timeZone".into(), time_zone(&given)?);
        }
        FieldType::SingleSelect | FieldType::MultipleSelects => {
            out.insert("choices".into(), choices(&given)?);
        }
        FieldType::MultipleRecordLinks => {
            let linked = given
                .get("linkedTableId")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("options.linkedTableId is required"))?;
            if base.table_by_id(linked).is_none() && base.tables[t].id != linked {
                return Err(invalid(format!("linked table {linked} does not exist")));
            }
            out.insert("linkedTableId".into(), json!(linked));
            out.insert("isReversed".into(), json!(false));
            let single = given
                .get("prefersSingleRecordLink")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            out.insert("prefersSingleRecordLink".into(), json!(single));
            if let Some(view) = given.get("viewIdForRecordSelection") {
                out.insert("viewIdForRecordSelection".into(), view.clone());
            }
        }
        FieldType::MultipleAttachments => {
            out.insert("isReversed".into(), json!(false));
        }
        FieldType::CreatedTime => {
            out.insert(
                "result".into(),
                given
                    .get("result")
                    .cloned()
                    .unwrap_or_else(default_time_result),
            );
        }
        FieldType::LastModifiedTime => {
            let referenced = given
                .get("referencedFieldIds")
                .cloned()
                .unwrap_or(json!([]));
            let valid = referenced.as_array().is_some_and(|ids| {
                ids.iter().all(|id| {
                    id.as_str()
                        .and_then(|id| base.tables[t].field_by_id(id))
                        .is_some_and(|f| !f.kind.is_computed())
                })
            });
            if !valid {
                return Err(invalid(
                    "options.referencedFieldIds must name editable fields of this table",
                ));
            }
            out.insert("isValid".into(), json!(true));
            out.insert("referencedFieldIds".into(), referenced);
            out.insert(
                "result".into(),
                given
                    .get("result")
                    .cloned()
                    .unwrap_or_else(default_time_result),
            );
        }
        FieldType::SingleLineText
        | FieldType::MultilineText
        | FieldType::RichText
        | FieldType::Email
        | FieldType::Url
        | FieldType::PhoneNumber
        | FieldType::AutoNumber => return Ok(None),
    }
    Ok(Some(out))
}

/// Creates the inverse of the new link field `f` of table `t` on the
/// linked table (self-links have none) and points the two at each other.
pub(crate) fn create_inverse(base: &mut Base, t: usize, f: usize, changes: &mut ChangeSet) {
    let source_table_id = base.tables[t].id.clone();
    let source_name = base.tables[t].name.clone();
    let field_id = base.tables[t].fields[f].id.clone();
    let Some(linked_id) = base.tables[t].fields[f]
        .option_str("linkedTableId")
        .map(str::to_owned)
    else {
        return;
    };
    if linked_id == source_table_id {
        return;
    }
    let Some(lt) = base.tables.iter().position(|x| x.id == linked_id) else {
        return;
    };
    let linked = &mut base.tables[lt];
    let mut name = source_name.clone();
    let mut n = 2;
    while linked
        .fields
        .iter()
        .any(|x| x.name.eq_ignore_ascii_case(&name))
    {
        name = format!("{source_name} {n}");
        n += 1;
    }
    let slot = linked.next_slot;
    linked.next_slot += 1;
    let inverse_id = ids::new_id(ids::FIELD);
    let mut options = Map::new();
    options.insert("linkedTableId".into(), json!(source_table_id));
    options.insert("isReversed".into(), json!(false));
    options.insert("prefersSingleRecordLink".into(), json!(false));
    options.insert("inverseLinkFieldId".into(), json!(field_id));
    linked.fields.push(Field {
        id: inverse_id.clone(),
        name,
        description: None,
        kind: FieldType::MultipleRecordLinks,
        options: Some(options),
        slot,
    });
    changes.schema.push(SchemaChange::FieldCreated {
        table_id: linked_id,
        field_id: inverse_id.clone(),
    });
    if let Some(opts) = base.tables[t].fields[f].options.as_mut() {
        opts.insert("inverseLinkFieldId".into(), json!(inverse_id));
    }
}
