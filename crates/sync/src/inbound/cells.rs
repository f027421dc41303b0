//! Airtable cells to column values: the reverse of
//! [`crate::cells::to_airtable_fields`].
//!
//! Every value is first brought into one canonical shape, whatever its
//! origin: a REST (V1) cell from a listing, a V2 cell from a webhook payload
//! (selects as `{id, name}`, links as `[{id, name}]`), a cell the worker
//! recorded in `synced_fields`, or a row's column. Empty is always the same
//! value (text `null`, a checkbox `false`, a list `[]`), so that the three
//! sides of a merge compare equal exactly when Airtable would show the same
//! cell.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cells::LinkIds;
use crate::mapping::{FieldKind, FieldMapping};
use crate::rows::RowState;

/// Why a cell cannot become a column value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellConversionError {
    /// The cell is empty and the column requires a value.
    #[error("field {field:?} is empty, and column {column} requires a value")]
    Required {
        /// The Airtable field.
        field: String,
        /// The column.
        column: String,
    },
    /// The cell holds a value the column cannot hold.
    #[error("field {field:?} holds {value}, which column {column} cannot hold")]
    Unfit {
        /// The Airtable field.
        field: String,
        /// The column.
        column: String,
        /// The value, abbreviated.
        value: String,
    },
}

/// The canonical form of a cell of `kind` (`None`: absent, which Airtable
/// uses for every empty cell).
pub fn canonical_cell(kind: FieldKind, value: Option<&Value>) -> Value {
    let value = value.unwrap_or(&Value::Null);
    match kind {
        FieldKind::Text | FieldKind::LongText | FieldKind::PgId => text(value),
        FieldKind::SingleSelect => match value {
            Value::Object(choice) => choice.get("name").map(text).unwrap_or(Value::Null),
            other => text(other),
        },
        FieldKind::Number | FieldKind::Integer => match value {
            Value::Number(n) => n.as_f64().map(number).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        FieldKind::Boolean => Value::Bool(value.as_bool() == Some(true)),
        FieldKind::Date => value
            .as_str()
            .and_then(|s| s.get(..10))
            .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
            .map(|d| Value::String(d.to_owned()))
            .unwrap_or(Value::Null),
        FieldKind::DateTime => date_time(value)
            .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .unwrap_or(Value::Null),
        FieldKind::MultiSelect => Value::Array(
            items(value)
                .iter()
                .filter_map(|item| match item {
                    Value::Object(choice) => choice.get("name").and_then(Value::as_str),
                    other => other.as_str(),
                })
                .filter(|name| !name.is_empty())
                .map(|name| Value::String(name.to_owned()))
                .collect(),
        ),
        FieldKind::List => match value {
            Value::String(text) => lines(text),
            Value::Array(items) => {
                let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                lines(&joined.join("\n"))
            }
            _ => Value::Array(Vec::new()),
        },
        FieldKind::Link | FieldKind::Links => Value::Array(
            items(value)
                .iter()
                .filter_map(|item| match item {
                    Value::Object(link) => link.get("id").and_then(Value::as_str),
                    other => other.as_str(),
                })
                .map(|id| Value::String(id.to_owned()))
                .collect(),
        ),
    }
}

fn text(value: &Value) -> Value {
    match value {
        Value::String(s) if !s.is_empty() => Value::String(s.clone()),
        Value::Number(n) => Value::String(n.to_string()),
        _ => Value::Null,
    }
}

/// A number as an integer when it is one, so that 3 and 3.0 compare equal.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// A dateTime cell's instant. Only years 0 to 9999 count: RFC 3339, which
/// Airtable answers in, has four digits for the year, so a later instant
/// (epoch milliseconds can name one) has no text form that parses back.
fn date_time(value: &Value) -> Option<DateTime<Utc>> {
    let instant = match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        // Airtable accepts epoch milliseconds for a dateTime cell.
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        _ => None,
    };
    instant.filter(|t| (0..=9999).contains(&t.year()))
}

fn items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// One item per line; an empty text is an empty list, and so is a lone
/// `\r` (one empty line, which the outbound side writes as an empty cell).
fn lines(text: &str) -> Value {
    if text.trim_end_matches('\r').is_empty() && !text.contains('\n') {
        return Value::Array(Vec::new());
    }
    Value::Array(
        text.split('\n')
            .map(|line| Value::String(line.trim_end_matches('\r').to_owned()))
            .collect(),
    )
}

/// The canonical cell of a row's column (or join table) for `field`: what
/// Airtable shows once the row is pushed. A linked row without an Airtable
/// record becomes `"pg:<uuid>"`, which equals no record id.
pub(crate) fn row_cell(field: &FieldMapping, row: &RowState, records: &LinkIds) -> Value {
    let target = field.target.as_deref().unwrap_or_default();
    let record_of = |id: Uuid| {
        records
            .get(&(target.to_owned(), id))
            .cloned()
            .unwrap_or_else(|| format!("pg:{id}"))
    };
    match field.kind {
        FieldKind::Links => Value::Array(
            row.links
                .get(&field.field)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|id| Value::String(record_of(*id)))
                .collect(),
        ),
        FieldKind::PgId => Value::String(row.id.to_string()),
        FieldKind::Link => {
            let column = field.column.as_deref().unwrap_or_default();
            let id = row
                .columns
                .get(column)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            Value::Array(
                id.map(|id| Value::String(record_of(id)))
                    .into_iter()
                    .collect(),
            )
        }
        kind => {
            let column = field.column.as_deref().unwrap_or_default();
            canonical_cell(kind, row.columns.get(column))
        }
    }
}

/// The column value for a canonical cell of `field`. Links and the pg_id are
/// not columns of this kind: the caller resolves them.
pub fn cell_to_column(
    field: &FieldMapping,
    nullable: bool,
    canonical: &Value,
) -> Result<Value, CellConversionError> {
    let column = field.column.as_deref().unwrap_or_default();
    let unfit = || CellConversionError::Unfit {
        field: field.field.clone(),
        column: column.to_owned(),
        value: crate::cells::abbreviate(canonical),
    };
    let empty = |zero: Value| {
        if nullable {
            Ok(Value::Null)
        } else {
            Ok(zero)
        }
    };
    match (field.kind, canonical) {
        (FieldKind::Text | FieldKind::LongText | FieldKind::SingleSelect, Value::Null) => {
            empty(json!(""))
        }
        (FieldKind::Text | FieldKind::LongText | FieldKind::SingleSelect, Value::String(s)) => {
            Ok(Value::String(s.clone()))
        }
        (FieldKind::Number | FieldKind::Integer, Value::Null) => empty(json!(0)),
        (FieldKind::Number, Value::Number(_)) => Ok(canonical.clone()),
        (FieldKind::Integer, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(json!(f as i64)),
            _ => Err(unfit()),
        },
        (FieldKind::Boolean, Value::Bool(b)) => Ok(Value::Bool(*b)),
        (FieldKind::Date | FieldKind::DateTime, Value::Null) => {
            if nullable {
                Ok(Value::Null)
            } else {
                Err(CellConversionError::Required {
                    field: field.field.clone(),
                    column: column.to_owned(),
                })
            }
        }
        (FieldKind::Date | FieldKind::DateTime, Value::String(s)) => Ok(Value::String(s.clone())),
        (FieldKind::MultiSelect | FieldKind::List, Value::Array(items)) => {
            Ok(Value::Array(items.clone()))
        }
        _ => Err(unfit()),
    }
}

#[cfg(test)]
mod tests;
