use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{canonical_cell, cell_to_column, row_cell};
use crate::cells::{to_airtable_fields, LinkIds};
use crate::mapping::{Direction, FieldKind, FieldMapping, Mapping};
use crate::rows::RowState;

fn field(kind: FieldKind, column: &str) -> FieldMapping {
    FieldMapping {
        column: Some(column.to_owned()),
        field: column.to_owned(),
        kind,
        target: None,
        join: None,
        choices: Vec::new(),
        direction: Direction::Both,
    }
}

/// The V2 (webhook payload) form of a REST cell: selects as `{id, name}`,
/// links as `[{id, name}]`.
fn to_v2(kind: FieldKind, v1: &Value) -> Value {
    match (kind, v1) {
        (FieldKind::SingleSelect, Value::String(name)) => {
            json!({"id": "selAAAAAAAAAAAAAA", "name": name, "color": "blueLight2"})
        }
        (FieldKind::MultiSelect, Value::Array(names)) => Value::Array(
            names
                .iter()
                .map(|n| json!({"id": "selBBBBBBBBBBBBBB", "name": n}))
                .collect(),
        ),
        (FieldKind::Link | FieldKind::Links, Value::Array(ids)) => Value::Array(
            ids.iter()
                .map(|id| json!({"id": id, "name": "Primary"}))
                .collect(),
        ),
        (_, other) => other.clone(),
    }
}

fn row(columns: Value, links: HashMap<String, Vec<Uuid>>) -> RowState {
    let Value::Object(columns) = columns else {
        unreachable!("columns are an object")
    };
    RowState {
        id: Uuid::from_u128(7),
        columns,
        links,
    }
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.'\"é]{0,16}"
}

fn user_row() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,8}@[a-z]{1,8}\\.com",
        text(),
        prop::sample::select(vec!["user", "admin"]),
        0i64..100_000,
        prop::sample::subsequence(
            vec!["streak-3", "streak-7", "streak-14", "streak-100"],
            0..4,
        ),
        1i64..20,
        prop::option::of(any::<u128>()),
    )
        .prop_map(|(email, name, role, bonus, badges, level, company)| {
            json!({
                "id": Uuid::from_u128(7).to_string(),
                "email": email, "name": name, "role": role, "bonus_points": bonus,
                "badges": badges, "level": level,
                "company_id": company.map(|c| Uuid::from_u128(c).to_string()),
            })
        })
}

proptest! {
    /// A user row pushed to Airtable and read back, in the REST form and
    /// in the payload form, gives back every column, and compares equal
    /// to the row it came from (an echo changes nothing).
    #[test]
    fn a_user_row_survives_the_round_trip_through_airtable_cells(columns in user_row()) {
        let mapping = Mapping::default_mapping().expect("mapping");
        let entity = mapping.entity("user").expect("user");
        let state = row(columns.clone(), HashMap::new());
        let company = state.columns.get("company_id").and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let mut links = LinkIds::new();
        if let Some(company) = company {
            links.insert(("company".to_owned(), company), "recCOMPANY0000001".to_owned());
        }
        let cells = to_airtable_fields(entity, &state, &links).expect("to cells");
        for field in entity.fields.iter().filter(|f| f.flows_from_airtable()) {
            let v1 = cells.get(&field.field).cloned().unwrap_or(Value::Null);
            let canonical = canonical_cell(field.kind, Some(&v1));
            prop_assert_eq!(&canonical, &canonical_cell(field.kind, Some(&to_v2(field.kind, &v1))));
            prop_assert_eq!(&canonical, &row_cell(field, &state, &links), "field {}", field.field);
            match field.kind {
                FieldKind::Link => {
                    let expected: Vec<Value> = company.map(|_| json!("recCOMPANY0000001")).into_iter().collect();
                    prop_assert_eq!(canonical, Value::Array(expected));
                }
                FieldKind::PgId => prop_assert_eq!(canonical, json!(state.id.to_string())),
                _ => {
                    let column = field.column.as_deref().unwrap_or_default();
                    let back = cell_to_column(field, false, &canonical).expect("to column");
                    prop_assert_eq!(&back, &columns[column], "column {}", column);
                }
            }
        }
    }

    /// Dates, instants, numbers, lists and long texts come back as they
    /// went, whatever their value.
    #[test]
    fn scalar_and_list_columns_survive_the_round_trip(
        days in 0i64..40_000,
        millis in 0i64..4_000_000_000_000,
        number in -1.0e9f64..1.0e9,
        lines in prop::collection::vec("[a-z ]{0,8}", 0..5),
        notes in "[a-zA-Z\n .]{0,40}",
    ) {
        let date = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days);
        let at: DateTime<Utc> = Utc.timestamp_millis_opt(millis).single().expect("instant");
        // PostgreSQL renders a timestamptz with its offset and microseconds.
        let pg_at = at.with_timezone(&chrono::FixedOffset::east_opt(3600).expect("offset"))
            .format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string();
        let fields = [
            (field(FieldKind::Date, "on"), json!(date.to_string())),
            (field(FieldKind::DateTime, "at"), json!(pg_at)),
            (field(FieldKind::Number, "n"), json!(number)),
            (field(FieldKind::List, "items"), json!(lines)),
            (field(FieldKind::LongText, "notes"), json!(notes)),
        ];
        let mut entity = Mapping::default_mapping().expect("mapping").entity("goal").expect("goal").clone();
        entity.fields = fields.iter().map(|(f, _)| f.clone()).collect();
        let columns: Map<String, Value> = fields.iter()
            .map(|(f, v)| (f.column.clone().unwrap_or_default(), v.clone()))
            .collect();
        let state = row(Value::Object(columns), HashMap::new());
        let cells = to_airtable_fields(&entity, &state, &LinkIds::new()).expect("to cells");
        for (field, original) in &fields {
            let v1 = cells.get(&field.field).cloned().unwrap_or(Value::Null);
            let canonical = canonical_cell(field.kind, Some(&v1));
            prop_assert_eq!(&canonical, &row_cell(field, &state, &LinkIds::new()), "field {}", field.field);
            let back = cell_to_column(field, false, &canonical).expect("to column");
            match field.kind {
                FieldKind::DateTime => {
                    let back = DateTime::parse_from_rfc3339(back.as_str().unwrap_or_default()).expect("instant");
                    prop_assert_eq!(back.with_timezone(&Utc), at);
                }
                // A list of one empty item is an empty text in Airtable.
                FieldKind::List if lines.len() == 1 && lines[0].is_empty() => {
                    prop_assert_eq!(back, json!([]));
                }
                _ => prop_assert_eq!(&back, original, "field {}", field.field),
            }
        }
    }
}

#[test]
fn empty_cells_are_one_value_whatever_their_form() {
    assert_eq!(canonical_cell(FieldKind::Text, None), Value::Null);
    assert_eq!(
        canonical_cell(FieldKind::Text, Some(&json!(""))),
        Value::Null
    );
    assert_eq!(canonical_cell(FieldKind::Boolean, None), json!(false));
    assert_eq!(
        canonical_cell(FieldKind::Boolean, Some(&Value::Null)),
        json!(false)
    );
    assert_eq!(canonical_cell(FieldKind::MultiSelect, None), json!([]));
    assert_eq!(
        canonical_cell(FieldKind::Links, Some(&Value::Null)),
        json!([])
    );
    assert_eq!(
        canonical_cell(FieldKind::Integer, Some(&json!(3.0))),
        json!(3)
    );
    assert_eq!(
        canonical_cell(
            FieldKind::SingleSelect,
            Some(&json!({"id": "selA", "name": "admin"}))
        ),
        json!("admin")
    );
}

#[test]
fn a_value_the_column_cannot_hold_is_refused_with_its_field() {
    let level = field(FieldKind::Integer, "level");
    let err = cell_to_column(&level, false, &json!(2.5)).expect_err("not an integer");
    assert!(err.to_string().contains("level"), "{err}");
    let start = field(FieldKind::Date, "start_date");
    assert!(matches!(
        cell_to_column(&start, false, &Value::Null),
        Err(super::CellConversionError::Required { .. })
    ));
    assert_eq!(cell_to_column(&start, true, &Value::Null), Ok(Value::Null));
}

#[test]
fn an_instant_past_year_9999_is_no_date_time() {
    // 253402300800000 ms is 10000-01-01: its text would need five digits
    // of year, which RFC 3339 has no room for, so it would not parse back.
    let late = json!(253_402_300_800_000_i64);
    assert_eq!(
        canonical_cell(FieldKind::DateTime, Some(&late)),
        Value::Null
    );
    let last = json!(253_402_300_799_999_i64);
    let canonical = canonical_cell(FieldKind::DateTime, Some(&last));
    assert_eq!(canonical, json!("9999-12-31T23:59:59.999Z"));
    assert_eq!(
        canonical_cell(FieldKind::DateTime, Some(&canonical)),
        canonical
    );
}
