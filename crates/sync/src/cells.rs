//! Converting a row's columns into Airtable cell values (outbound), per the
//! mapping's field kinds.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::mapping::{EntityMapping, FieldKind, FieldMapping};
use crate::rows::RowState;

/// Why a row cannot be turned into Airtable fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// A linked row has no Airtable record yet.
    #[error("linked {entity} {row_id} has no Airtable record yet")]
    MissingLink {
        /// The linked entity.
        entity: String,
        /// The linked row.
        row_id: Uuid,
    },
    /// A column holds a value the field's kind cannot carry.
    #[error("column {column} holds {value}, which a {kind:?} field cannot carry")]
    Unconvertible {
        /// The column.
        column: String,
        /// The field's kind.
        kind: FieldKind,
        /// The value, abbreviated.
        value: String,
    },
}

/// Airtable record ids of linked rows, by (entity, row id).
/// A linked row whose record the team deleted maps to [`DELETED_RECORD`]:
/// the link is left out, as Airtable itself drops links to a deleted record.
pub type LinkIds = HashMap<(String, Uuid), String>;

/// The record id of a linked row whose record was deleted in Airtable.
pub const DELETED_RECORD: &str = "";

/// The Airtable fields of `row`, keyed by the mapping's field names (or ids),
/// for every field that flows to Airtable. Empty values become `null` (or an
/// empty list), which clears the cell, so a cleared column clears Airtable too.
pub fn to_airtable_fields(
    entity: &EntityMapping,
    row: &RowState,
    links: &LinkIds,
) -> Result<Map<String, Value>, CellError> {
    let mut fields = Map::new();
    for field in entity.fields.iter().filter(|f| f.flows_to_airtable()) {
        let value = match field.kind {
            FieldKind::Links => {
                let target = field.target.as_deref().unwrap_or_default();
                let ids = row
                    .links
                    .get(&field.field)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut records = Vec::new();
                for id in ids {
                    records.extend(resolve(links, target, *id)?);
                }
                Value::Array(records)
            }
            _ => {
                let column = field.column.as_deref().unwrap_or_default();
                let raw = row.columns.get(column).unwrap_or(&Value::Null);
                column_to_cell(field, column, raw, links)?
            }
        };
        fields.insert(field.field.clone(), value);
    }
    Ok(fields)
}

/// The record of a linked row; `None` when the team deleted it.
fn resolve(links: &LinkIds, entity: &str, row_id: Uuid) -> Result<Option<Value>, CellError> {
    match links.get(&(entity.to_owned(), row_id)) {
        Some(record) if record == DELETED_RECORD => Ok(None),
        Some(record) => Ok(Some(Value::String(record.clone()))),
        None => Err(CellError::MissingLink {
            entity: entity.to_owned(),
            row_id,
        }),
    }
}

fn unconvertible(field: &FieldMapping, column: &str, raw: &Value) -> CellError {
    CellError::Unconvertible {
        column: column.to_owned(),
        kind: field.kind,
        value: abbreviate(raw),
    }
}

/// A value as JSON text, cut to at most 80 bytes for an error message (at a
/// character boundary: the value may hold any text).
pub(crate) fn abbreviate(value: &Value) -> String {
    const MAX: usize = 80;
    let mut text = value.to_string();
    if text.len() > MAX {
        let end = (0..=MAX)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
    }
    text
}

/// One column's value as a cell value.
fn column_to_cell(
    field: &FieldMapping,
    column: &str,
    raw: &Value,
    links: &LinkIds,
) -> Result<Value, CellError> {
    if raw.is_null() {
        return Ok(match field.kind {
            FieldKind::MultiSelect | FieldKind::Link => Value::Array(Vec::new()),
            FieldKind::Boolean => Value::Bool(false),
            _ => Value::Null,
        });
    }
    let bad = || unconvertible(field, column, raw);
    Ok(match field.kind {
        FieldKind::Text
        | FieldKind::LongText
        | FieldKind::SingleSelect
        | FieldKind::PgId
        | FieldKind::Date => match raw.as_str().ok_or_else(bad)? {
            "" => Value::Null,
            text => Value::String(text.to_owned()),
        },
        FieldKind::Number | FieldKind::Integer => {
            if !raw.is_number() {
                return Err(bad());
            }
            raw.clone()
        }
        FieldKind::Boolean => Value::Bool(raw.as_bool().ok_or_else(bad)?),
        FieldKind::DateTime => {
            let text = raw.as_str().ok_or_else(bad)?;
            let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| bad())?;
            Value::String(
                parsed
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            )
        }
        FieldKind::MultiSelect => {
            let items = raw.as_array().ok_or_else(bad)?;
            if !items.iter().all(Value::is_string) {
                return Err(bad());
            }
            Value::Array(
                items
                    .iter()
                    .filter(|v| v.as_str() != Some(""))
                    .cloned()
                    .collect(),
            )
        }
        FieldKind::List => {
            let items = raw.as_array().ok_or_else(bad)?;
            let lines: Vec<&str> = items
                .iter()
                .map(|v| v.as_str().ok_or_else(bad))
                .collect::<Result<_, _>>()?;
            let text = lines.join("\n");
            if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            }
        }
        FieldKind::Link => {
            let id = raw
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(bad)?;
            let target = field.target.as_deref().unwrap_or_default();
            Value::Array(resolve(links, target, id)?.into_iter().collect())
        }
        FieldKind::Links => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;
    use serde_json::json;

    fn user_row() -> (EntityMapping, RowState) {
        let mapping = Mapping::default_mapping().expect("valid");
        let entity = mapping.entity("user").expect("user").clone();
        let id = Uuid::parse_str("00000000-0000-0000-0000-000000000001").expect("uuid");
        let columns = json!({
            "id": id.to_string(),
            "email": "anna@example.com",
            "name": "",
            "company_id": "00000000-0000-0000-0000-0000000000c0",
            "role": "admin",
            "bonus_points": 25,
            "badges": ["streak-3", "streak-7"],
            "level": 2,
            "time_zone": "Europe/Amsterdam",
            "password_hash": "never sent",
        });
        let Value::Object(columns) = columns else {
            unreachable!()
        };
        (
            entity,
            RowState {
                id,
                columns,
                links: HashMap::new(),
            },
        )
    }

    #[test]
    fn a_user_row_becomes_its_airtable_fields() {
        let (entity, row) = user_row();
        let company = Uuid::parse_str("00000000-0000-0000-0000-0000000000c0").expect("uuid");
        let links: LinkIds = [(
            ("company".to_owned(), company),
            "recCOMPANY0000001".to_owned(),
        )]
        .into();
        let fields = to_airtable_fields(&entity, &row, &links).expect("converts");
        assert_eq!(
            Value::Object(fields),
            json!({
                "Email": "anna@example.com",
                "Name": null,
                "Company": ["recCOMPANY0000001"],
                "Role": "admin",
                "Bonus points": 25,
                "Badges": ["streak-3", "streak-7"],
                "Level": 2,
                "Time zone": "Europe/Amsterdam",
                "pg_id": "00000000-0000-0000-0000-000000000001",
            })
        );
    }

    #[test]
    fn a_link_to_a_row_without_a_record_is_reported() {
        let (entity, row) = user_row();
        let err = to_airtable_fields(&entity, &row, &LinkIds::new()).expect_err("missing link");
        assert!(
            matches!(err, CellError::MissingLink { ref entity, .. } if entity == "company"),
            "{err}"
        );
    }

    #[test]
    fn timestamps_are_sent_in_utc_with_milliseconds() {
        let field = FieldMapping {
            column: Some("at".into()),
            field: "At".into(),
            kind: FieldKind::DateTime,
            target: None,
            join: None,
            choices: Vec::new(),
            direction: crate::mapping::Direction::Both,
        };
        let cell = column_to_cell(
            &field,
            "at",
            &json!("2026-03-29T02:30:00.5+02:00"),
            &LinkIds::new(),
        )
        .expect("converts");
        assert_eq!(cell, json!("2026-03-29T00:30:00.500Z"));
        let bad = column_to_cell(&field, "at", &json!("yesterday"), &LinkIds::new());
        assert!(matches!(bad, Err(CellError::Unconvertible { .. })));
    }

    /// Found by fuzzing: the error's abbreviation cut a character in two.
    #[test]
    fn an_unconvertible_value_with_wide_characters_is_abbreviated_whole() {
        let (entity, mut row) = user_row();
        row.columns.insert(
            "email".into(),
            json!(["recAAAAAAAAAAAAAA", 1.5, "\u{1F600}".repeat(30)]),
        );
        let err = to_airtable_fields(&entity, &row, &LinkIds::new()).expect_err("unconvertible");
        let CellError::Unconvertible { value, .. } = err else {
            panic!("expected an unconvertible value, got {err}");
        };
        assert!(
            value.len() <= 80 && value.starts_with("[\"recAAAAAAAAAAAAAA\""),
            "{value}"
        );
    }
}
