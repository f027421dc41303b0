//! Fuzzing of Airtable cell values into columns: any JSON at all, for every
//! field kind of the mapping, in either direction, gives a value or a clear
//! error, never a panic; and any value a column can hold survives the trip
//! to an Airtable cell and back (in the REST form and the webhook form).
//!
//! `AIRSYNC_FUZZ_SECS=600 cargo test -p airsync-sync --test fuzz_cells --
//! --nocapture` runs each property for that long; see docs/fuzzing.md.

use std::collections::HashMap;
use std::sync::OnceLock;

use airsync_sync::cells::{to_airtable_fields, LinkIds};
use airsync_sync::inbound::{canonical_cell, cell_to_column};
use airsync_sync::mapping::{Direction, EntityMapping, FieldKind, FieldMapping, Mapping};
use airsync_sync::rows::RowState;
use airsync_testkit::fuzz;
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use uuid::Uuid;

fn field(kind: FieldKind) -> FieldMapping {
    FieldMapping {
        column: Some("c".to_owned()),
        field: "F".to_owned(),
        kind,
        target: matches!(kind, FieldKind::Link | FieldKind::Links).then(|| "company".to_owned()),
        join: None,
        choices: Vec::new(),
        direction: Direction::Both,
    }
}

/// An entity of one field, and a row holding `value` in its column.
fn entity_and_row(kind: FieldKind, value: Value, links: Vec<Uuid>) -> (EntityMapping, RowState) {
    static USER: OnceLock<EntityMapping> = OnceLock::new();
    let mut entity = USER
        .get_or_init(|| {
            let mapping = Mapping::default_mapping().unwrap_or_else(|e| panic!("{e}"));
            mapping
                .entity("user")
                .unwrap_or_else(|| panic!("the default mapping has users"))
                .clone()
        })
        .clone();
    entity.fields = vec![field(kind)];
    let mut columns = Map::new();
    columns.insert("c".to_owned(), value);
    let row = RowState {
        id: Uuid::from_u128(7),
        columns,
        links: HashMap::from([("F".to_owned(), links)]),
    };
    (entity, row)
}

/// Strings that look like what the kinds expect, and do not quite.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        "[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}[T ]?[0-9:.Z+-]{0,20}",
        Just("2024-02-30".to_owned()),
        Just("+275760-09-13T00:00:00Z".to_owned()),
        Just("2024-05-01T09:30:00.000Z".to_owned()),
        Just("00000000-0000-0000-0000-0000000000c0".to_owned()),
        Just("recAAAAAAAAAAAAAA".to_owned()),
        Just("é2024-05-01".to_owned()),
        Just("\u{1F600}\u{1F600}\u{1F600}".to_owned()),
        "[a-z\n\r ]{0,12}",
    ]
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!(9.0e15)),
        Just(json!(-9.0e15)),
        Just(json!(1.5)),
        Just(json!(f64::MAX)),
    ]
}

/// Any JSON, with the shapes Airtable uses (choice and link objects)
/// mixed in.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["id", "name", "color", "url", "x"])
                    .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn any_cell_json_becomes_a_column_value_or_a_clear_error() {
    fuzz::run(
        "cells inbound",
        file!(),
        3_000,
        (
            prop::sample::select(FieldKind::ALL.to_vec()),
            any_json(),
            any::<bool>(),
        ),
        |(kind, cell, nullable)| {
            let field = field(kind);
            let canonical = canonical_cell(kind, Some(&cell));
            // Canonical is canonical: a second pass changes nothing.
            prop_assert_eq!(&canonical_cell(kind, Some(&canonical)), &canonical);
            if !matches!(kind, FieldKind::Link | FieldKind::Links | FieldKind::PgId) {
                if let Err(err) = cell_to_column(&field, nullable, &canonical) {
                    prop_assert!(!err.to_string().is_empty());
                }
            }
            // Raw (not canonical) JSON straight in: an answer too.
            let _ = cell_to_column(&field, nullable, &cell);
            Ok(())
        },
    );
}

#[test]
fn any_column_json_becomes_a_cell_or_a_clear_error() {
    fuzz::run(
        "cells outbound",
        file!(),
        3_000,
        (
            prop::sample::select(FieldKind::ALL.to_vec()),
            any_json(),
            prop::collection::vec(any::<u128>().prop_map(Uuid::from_u128), 0..3),
            any::<bool>(),
        ),
        |(kind, value, linked, known)| {
            let (entity, row) = entity_and_row(kind, value, linked.clone());
            let links: LinkIds = if known {
                linked
                    .iter()
                    .map(|id| (("company".to_owned(), *id), format!("rec{}", id.simple())))
                    .collect()
            } else {
                LinkIds::new()
            };
            if let Err(err) = to_airtable_fields(&entity, &row, &links) {
                prop_assert!(!err.to_string().is_empty());
            }
            Ok(())
        },
    );
}

/// A value a column of `kind` can hold (as PostgreSQL's `to_jsonb` renders
/// it), and the value it must come back as.
fn column_value(kind: FieldKind) -> BoxedStrategy<(Value, Value)> {
    let non_empty_text = any::<String>().prop_filter("not empty", |s| !s.is_empty());
    match kind {
        FieldKind::Text | FieldKind::LongText | FieldKind::SingleSelect => prop_oneof![
            non_empty_text.prop_map(|s| (json!(s), json!(s))),
            Just((json!(""), json!("")))
        ]
        .boxed(),
        FieldKind::Number => prop_oneof![
            any::<f64>()
                .prop_filter("finite", |n| n.is_finite())
                .prop_map(|n| (json!(n), json!(n))),
            (-9_000_000_000_000_000i64..9_000_000_000_000_000).prop_map(|n| (json!(n), json!(n))),
        ]
        .boxed(),
        FieldKind::Integer => (-8_999_999_999_999_999i64..8_999_999_999_999_999)
            .prop_filter("exact in f64", |n| n.unsigned_abs() < 9_000_000_000_000_000)
            .prop_map(|n| {
                let n = n % 9_000_000_000_000_000 / 1_000; // well inside ±9e15
                (json!(n), json!(n))
            })
            .boxed(),
        FieldKind::Boolean => any::<bool>().prop_map(|b| (json!(b), json!(b))).boxed(),
        FieldKind::Date => (0i64..3_652_058)
            .prop_map(|days| {
                let date = NaiveDate::from_ymd_opt(1, 1, 1)
                    .unwrap_or_default()
                    .checked_add_days(chrono::Days::new(days.unsigned_abs()))
                    .unwrap_or_default()
                    .format("%Y-%m-%d")
                    .to_string();
                (json!(date), json!(date))
            })
            .boxed(),
        FieldKind::DateTime => (
            // Years 1 to 9999 (RFC 3339 has four-digit years), in ms.
            -62_135_596_800_000i64..253_402_300_799_000,
            0u32..1000,
            -86_399i32..86_400,
        )
            .prop_map(|(ms, micros, offset)| {
                let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
                let zone = FixedOffset::east_opt(offset / 60 * 60)
                    .unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
                // PostgreSQL renders a timestamptz with an offset and
                // microseconds; Airtable keeps milliseconds, in UTC.
                let pg = (at + chrono::Duration::microseconds(i64::from(micros)))
                    .with_timezone(&zone)
                    .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string();
                (
                    json!(pg),
                    json!(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
                )
            })
            .boxed(),
        FieldKind::MultiSelect => prop::collection::vec(
            any::<String>().prop_filter("not empty", |s| !s.is_empty()),
            0..5,
        )
        .prop_map(|items| (json!(items), json!(items)))
        .boxed(),
        FieldKind::List => prop::collection::vec("[^\n\r]{0,12}", 0..5)
            .prop_filter("one empty line reads back as no lines", |items| {
                items != &[String::new()]
            })
            .prop_map(|items| (json!(items), json!(items)))
            .boxed(),
        FieldKind::Link | FieldKind::Links | FieldKind::PgId => {
            unreachable!("links and the pg id are not column values")
        }
    }
}

/// The kinds that hold a column's own value (not links, not the pg id).
fn column_kinds() -> Vec<FieldKind> {
    FieldKind::ALL
        .into_iter()
        .filter(|kind| !matches!(kind, FieldKind::Link | FieldKind::Links | FieldKind::PgId))
        .collect()
}

/// The webhook payload (V2) form of a REST cell.
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
        (_, other) => other.clone(),
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y)
}

#[test]
fn a_column_value_survives_the_trip_to_a_cell_and_back() {
    let strategy = prop::sample::select(column_kinds())
        .prop_flat_map(|kind| (Just(kind), column_value(kind), any::<bool>()));
    fuzz::run(
        "cells round trip",
        file!(),
        3_000,
        strategy,
        |(kind, (value, expected), nullable)| {
            let (entity, row) = entity_and_row(kind, value.clone(), Vec::new());
            let cells = to_airtable_fields(&entity, &row, &LinkIds::new())
                .map_err(|e| TestCaseError::fail(format!("{value} refused: {e}")))?;
            let v1 = cells.get("F").cloned().unwrap_or(Value::Null);
            let canonical = canonical_cell(kind, Some(&v1));
            prop_assert_eq!(&canonical, &canonical_cell(kind, Some(&to_v2(kind, &v1))));
            let back = cell_to_column(&field(kind), nullable, &canonical)
                .map_err(|e| TestCaseError::fail(format!("{value} -> {v1} refused: {e}")))?;
            // Empty text is an empty cell, which a nullable column reads as
            // null.
            let expected = if nullable && expected == json!("") {
                Value::Null
            } else {
                expected
            };
            if kind == FieldKind::Number {
                prop_assert!(
                    numbers_equal(&back, &expected),
                    "{} came back as {}",
                    value,
                    back
                );
            } else {
                prop_assert_eq!(&back, &expected, "{} -> {}", value, v1);
            }
            Ok(())
        },
    );
}

/// Found by fuzzing: a long text of a lone carriage return read as one
/// empty line, `[""]`, which reads again as no lines, so the canonical form
/// was not stable (and differed from the row's empty list).
#[test]
fn a_lone_carriage_return_is_an_empty_list() {
    for cell in [json!("\r"), json!(["\r"]), json!("\r\r"), json!([""])] {
        assert_eq!(
            canonical_cell(FieldKind::List, Some(&cell)),
            json!([]),
            "{cell}"
        );
    }
    assert_eq!(
        canonical_cell(FieldKind::List, Some(&json!("\r\n"))),
        json!(["", ""])
    );
}
