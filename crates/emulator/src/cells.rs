//! Turning a written cell value into the stored value, with Airtable's
//! validation, typecast rules and error types.

use serde_json::{json, Map, Value};

use crate::dates;
use crate::error::ApiError;
use crate::ids;
use crate::model::{Field, FieldType, Table};

/// A validated value, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prepared {
    /// Empty the cell.
    Clear,
    /// Store this value as is.
    Value(Value),
    /// Select choices by name; names not yet among the choices are created
    /// (only reachable with typecast).
    Choices(Vec<String>),
    /// Links, some of which may create a record in the linked table
    /// (only reachable with typecast).
    Links(Vec<LinkTarget>),
}

/// One element of a link cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LinkTarget {
    /// An existing record of the linked table.
    Existing(String),
    /// A new record of the linked table whose primary field is this text.
    Create(String),
}

/// `INVALID_VALUE_FOR_COLUMN` for a value a field cannot hold.
pub(crate) fn cannot_accept(field: &Field, raw: &Value) -> ApiError {
    ApiError::unprocessable(
        "INVALID_VALUE_FOR_COLUMN",
        format!("Cannot parse value {raw} for field {}", field.name),
    )
}

/// `INVALID_VALUE_FOR_COLUMN` for a write to a computed field.
pub(crate) fn computed(field: &Field) -> ApiError {
    ApiError::unprocessable(
        "INVALID_VALUE_FOR_COLUMN",
        format!(
            "Field \"{}\" cannot accept a value because the field is computed",
            field.name
        ),
    )
}

/// Validates one written value. `linked` is the linked table for link
/// fields; `previous` is the cell's current value (attachments keep the
/// objects whose ids are sent back).
pub(crate) fn prepare(
    field: &Field,
    raw: &Value,
    typecast: bool,
    linked: Option<&Table>,
    previous: Option<&Value>,
) -> Result<Prepared, ApiError> {
    if field.kind.is_computed() {
        return Err(computed(field));
    }
    if raw.is_null() {
        return Ok(Prepared::Clear);
    }
    let bad = || cannot_accept(field, raw);
    match field.kind {
        FieldType::SingleLineText
        | FieldType::MultilineText
        | FieldType::RichText
        | FieldType::Url
        | FieldType::PhoneNumber => {
            let text = text_of(raw, typecast).ok_or_else(bad)?;
            Ok(text_value(text))
        }
        FieldType::Email => {
            let text = text_of(raw, typecast).ok_or_else(bad)?;
            if text.is_empty() {
                return Ok(Prepared::Clear);
            }
            if !looks_like_email(&text) {
                return Err(bad());
            }
            Ok(Prepared::Value(Value::String(text)))
        }
        FieldType::Number | FieldType::Currency | FieldType::Percent | FieldType::Duration => {
            let n = number_of(raw, typecast, field.kind == FieldType::Percent).ok_or_else(bad)?;
            Ok(Prepared::Value(json_number(n).ok_or_else(bad)?))
        }
        FieldType::Rating => {
            let n = number_of(raw, typecast, false).ok_or_else(bad)?;
            let max = field.option("max").and_then(Value::as_f64).unwrap_or(5.0);
            if n == 0.0 {
                return Ok(Prepared::Clear);
            }
            if n.fract() != 0.0 || n < 1.0 || n > max {
                return Err(bad());
            }
            Ok(Prepared::Value(json!(n as i64)))
        }
        FieldType::Checkbox => match checkbox_of(raw, typecast).ok_or_else(bad)? {
            true => Ok(Prepared::Value(Value::Bool(true))),
            false => Ok(Prepared::Clear),
        },
        FieldType::Date => prepare_date(field, raw, typecast),
        FieldType::DateTime => prepare_date_time(field, raw, typecast),
        FieldType::SingleSelect => prepare_single_select(field, raw, typecast),
        FieldType::MultipleSelects => prepare_multiple_selects(field, raw, typecast),
        FieldType::MultipleRecordLinks => prepare_links(field, raw, typecast, linked),
        FieldType::MultipleAttachments => prepare_attachments(field, raw, previous),
        FieldType::CreatedTime | FieldType::LastModifiedTime | FieldType::AutoNumber => {
            Err(computed(field))
        }
    }
}

fn text_value(text: String) -> Prepared {
    if text.is_empty() {
        Prepared::Clear
    } else {
        Prepared::Value(Value::String(text))
    }
}

/// The text of a value: strings always, numbers and booleans with typecast.
fn text_of(raw: &Value, typecast: bool) -> Option<String> {
    match raw {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if typecast => Some(n.to_string()),
        Value::Bool(b) if typecast => Some(b.to_string()),
        Value::Array(items) if typecast => {
            let parts: Option<Vec<String>> = items.iter().map(|v| text_of(v, true)).collect();
            Some(parts?.join(", "))
        }
        _ => None,
    }
}

fn looks_like_email(text: &str) -> bool {
    let mut parts = text.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

/// A number: JSON numbers always; numeric strings with typecast (commas,
/// currency symbols and, for percent fields, a `%` sign are understood).
fn number_of(raw: &Value, typecast: bool, percent: bool) -> Option<f64> {
    match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if typecast => {
            let trimmed = s.trim();
            let has_percent = trimmed.ends_with('%');
            let cleaned: String = trimmed
                .chars()
                .filter(|c| !matches!(c, ',' | '$' | '€' | '£' | '%' | ' '))
                .collect();
            let n: f64 = cleaned.parse().ok()?;
            Some(if percent && has_percent { n / 100.0 } else { n })
        }
        Value::Bool(b) if typecast => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// A JSON number, written as an integer when it is one.
pub(crate) fn json_number(n: f64) -> Option<Value> {
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Some(json!(n as i64))
    } else {
        serde_json::Number::from_f64(n).map(Value::Number)
    }
}

fn checkbox_of(raw: &Value, typecast: bool) -> Option<bool> {
    match raw {
        Value::Bool(b) => Some(*b),
        Value::String(s) if typecast => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "checked" | "yes" | "y" | "1" | "x" | "on" => Some(true),
            "false" | "unchecked" | "no" | "n" | "0" | "" | "off" => Some(false),
            _ => None,
        },
        Value::Number(n) if typecast => Some(n.as_f64().is_some_and(|n| n != 0.0)),
        _ => None,
    }
}

fn prepare_date(field: &Field, raw: &Value, typecast: bool) -> Result<Prepared, ApiError> {
    match raw {
        Value::String(s) if s.is_empty() => Ok(Prepared::Clear),
        Value::String(s) => dates::parse_date(s)
            .map(|d| Prepared::Value(Value::String(d)))
            .ok_or_else(|| cannot_accept(field, raw)),
        Value::Number(n) if typecast => {
            let ms = n.as_i64().ok_or_else(|| cannot_accept(field, raw))?;
            let date = crate::clock::from_ms(ms).format("%Y-%m-%d").to_string();
            Ok(Prepared::Value(Value::String(date)))
        }
        _ => Err(cannot_accept(field, raw)),
    }
}

fn prepare_date_time(field: &Field, raw: &Value, _typecast: bool) -> Result<Prepared, ApiError> {
    let zone = field
        .option_str("timeZone")
        .and_then(dates::parse_zone)
        .unwrap_or(chrono_tz::Tz::UTC);
    let ms = match raw {
        Value::String(s) if s.is_empty() => return Ok(Prepared::Clear),
        Value::String(s) => dates::parse_datetime(s, zone),
        // Airtable takes epoch milliseconds even without typecast.
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| cannot_accept(field, raw))?;
    Ok(Prepared::Value(Value::String(crate::clock::format_ms(ms))))
}

/// `INVALID_MULTIPLE_CHOICE_OPTIONS` with the text Airtable sends.
fn unknown_choice(name: &str) -> ApiError {
    ApiError::unprocessable(
        "INVALID_MULTIPLE_CHOICE_OPTIONS",
        format!("Insufficient permissions to create new select option \"\"{name}\"\""),
    )
}

fn has_choice(field: &Field, name: &str) -> bool {
    field
        .choices()
        .iter()
        .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

fn prepare_single_select(field: &Field, raw: &Value, typecast: bool) -> Result<Prepared, ApiError> {
    let name = text_of(raw, typecast).ok_or_else(|| cannot_accept(field, raw))?;
    if name.is_empty() {
        return Ok(Prepared::Clear);
    }
    if !typecast && !has_choice(field, &name) {
        return Err(unknown_choice(&name));
    }
    Ok(Prepared::Choices(vec![name]))
}

fn prepare_multiple_selects(
    field: &Field,
    raw: &Value,
    typecast: bool,
) -> Result<Prepared, ApiError> {
    let names: Vec<String> = match raw {
        Value::Array(items) => items
            .iter()
            .map(|v| text_of(v, typecast).ok_or_else(|| cannot_accept(field, raw)))
            .collect::<Result<_, _>>()?,
        Value::String(s) if typecast => s.split(',').map(|p| p.trim().to_owned()).collect(),
        _ => return Err(cannot_accept(field, raw)),
    };
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        if !typecast && !has_choice(field, &name) {
            return Err(unknown_choice(&name));
        }
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    if unique.is_empty() {
        return Ok(Prepared::Clear);
    }
    Ok(Prepared::Choices(unique))
}

fn not_record_ids() -> ApiError {
    ApiError::unprocessable(
        "INVALID_VALUE_FOR_COLUMN",
        "Value is not an array of record IDs.",
    )
}

/// `ROW_DOES_NOT_EXIST` for a link to a record the linked table lacks.
pub(crate) fn row_does_not_exist(id: &str) -> ApiError {
    ApiError::unprocessable(
        "ROW_DOES_NOT_EXIST",
        format!("Record ID {id} does not exist in this table"),
    )
}

fn prepare_links(
    field: &Field,
    raw: &Value,
    typecast: bool,
    linked: Option<&Table>,
) -> Result<Prepared, ApiError> {
    let linked = linked.ok_or_else(|| cannot_accept(field, raw))?;
    let items: Vec<String> = match raw {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                // Some clients send `{id}` objects; Airtable takes them.
                Value::Object(o) => o
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(not_record_ids),
                _ => Err(not_record_ids()),
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) if typecast => s.split(',').map(|p| p.trim().to_owned()).collect(),
        _ => return Err(not_record_ids()),
    };
    let mut targets: Vec<LinkTarget> = Vec::with_capacity(items.len());
    for item in items.into_iter().filter(|i| !i.is_empty()) {
        let target = if linked.by_id.contains_key(&item) {
            LinkTarget::Existing(item)
        } else if typecast && !ids::is_id(&item, ids::RECORD) {
            match find_by_primary(linked, &item) {
                Some(id) => LinkTarget::Existing(id),
                None => LinkTarget::Create(item),
            }
        } else if ids::is_id(&item, ids::RECORD) {
            return Err(row_does_not_exist(&item));
        } else {
            return Err(not_record_ids());
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        return Ok(Prepared::Clear);
    }
    Ok(Prepared::Links(targets))
}

/// The first record of `table` whose primary field shows `text`.
fn find_by_primary(table: &Table, text: &str) -> Option<String> {
    let primary = table.primary_field()?;
    table
        .records
        .values()
        .find(|r| match r.get(primary.slot) {
            Some(Value::String(s)) => s == text,
            Some(Value::Number(n)) => n.to_string() == text,
            _ => false,
        })
        .map(|r| r.id.clone())
}

fn prepare_attachments(
    field: &Field,
    raw: &Value,
    previous: Option<&Value>,
) -> Result<Prepared, ApiError> {
    let Value::Array(items) = raw else {
        return Err(cannot_accept(field, raw));
    };
    let kept: &[Value] = previous
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut stored = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(obj) = item else {
            return Err(cannot_accept(field, raw));
        };
        if let Some(url) = obj.get("url").and_then(Value::as_str) {
            stored.push(Value::Object(new_attachment(obj, url)));
        } else if let Some(id) = obj.get("id").and_then(Value::as_str) {
            let existing = kept
                .iter()
                .find(|a| a.get("id").and_then(Value::as_str) == Some(id))
                .ok_or_else(|| cannot_accept(field, raw))?;
            stored.push(existing.clone());
        } else {
            return Err(cannot_accept(field, raw));
        }
    }
    if stored.is_empty() {
        return Ok(Prepared::Clear);
    }
    Ok(Prepared::Value(Value::Array(stored)))
}

/// An attachment stored as given, with an id and a file name added.
fn new_attachment(given: &Map<String, Value>, url: &str) -> Map<String, Value> {
    let mut obj = given.clone();
    obj.insert("id".into(), Value::String(ids::new_id(ids::ATTACHMENT)));
    if !obj.contains_key("filename") {
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("file");
        obj.insert("filename".into(), Value::String(name.to_owned()));
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;

    fn field(kind: FieldType, options: Value) -> Field {
        Field {
            id: "fldAAAAAAAAAAAAAA".into(),
            name: "F".into(),
            description: None,
            kind,
            options: options.as_object().cloned(),
            slot: 0,
        }
    }

    #[test]
    fn empty_values_clear_the_cell() {
        let text = field(FieldType::SingleLineText, Value::Null);
        assert_eq!(
            prepare(&text, &json!(""), false, None, None),
            Ok(Prepared::Clear)
        );
        assert_eq!(
            prepare(&text, &Value::Null, false, None, None),
            Ok(Prepared::Clear)
        );
        let check = field(FieldType::Checkbox, Value::Null);
        assert_eq!(
            prepare(&check, &json!(false), false, None, None),
            Ok(Prepared::Clear)
        );
        let tags = field(FieldType::MultipleSelects, json!({"choices": []}));
        assert_eq!(
            prepare(&tags, &json!([]), false, None, None),
            Ok(Prepared::Clear)
        );
    }

    #[test]
    fn ratings_must_be_whole_and_within_the_maximum() {
        let rating = field(FieldType::Rating, json!({"max": 5}));
        assert!(prepare(&rating, &json!(3), false, None, None).is_ok());
        assert!(prepare(&rating, &json!(6), false, None, None).is_err());
        assert!(prepare(&rating, &json!(2.5), false, None, None).is_err());
    }

    #[test]
    fn whole_numbers_are_written_as_integers() {
        assert_eq!(json_number(3.0), Some(json!(3)));
        assert_eq!(json_number(0.5), Some(json!(0.5)));
        assert_eq!(json_number(f64::NAN), None);
    }
}
