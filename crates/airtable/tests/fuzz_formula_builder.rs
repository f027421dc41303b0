//! Fuzzing of the formula builder against the emulator's parser: for any
//! field name and any value a user can supply, the formula built for
//! "field equals value" parses to exactly that comparison and, evaluated,
//! keeps exactly the records whose field holds the value. No input can
//! widen a filter or change its meaning.
//!
//! `AIRSYNC_FUZZ_SECS=600 cargo test -p airsync-airtable --test
//! fuzz_formula_builder -- --nocapture` runs each property for that long;
//! see docs/fuzzing.md.

use airsync_airtable::formula::{self, field, text};
use airsync_emulator::formula::{self as emulator, BinOp, Context, Expr, Value};
use airsync_testkit::fuzz;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

/// One record: a text value per field name.
struct Record<'a> {
    id: String,
    cells: &'a [(String, String)],
}

impl Context for Record<'_> {
    fn field(&self, name: &str) -> Value {
        self.cells
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| Value::Text(v.clone()))
            .unwrap_or(Value::Error("#ERROR!".into()))
    }

    fn record_id(&self) -> String {
        self.id.clone()
    }

    fn created_ms(&self) -> i64 {
        0
    }

    fn last_modified_ms(&self, _fields: &[String]) -> Option<i64> {
        None
    }

    fn now_ms(&self) -> i64 {
        0
    }
}

/// Text a user might type, or an attacker might: formula syntax, both
/// quotes, backslashes (also before quotes), braces, unicode, newlines.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-c'\"\\\\{}(),=&+ \n\t]{0,16}",
        prop::collection::vec(
            prop::sample::select(vec![
                "'",
                "\"",
                "\\",
                "\\'",
                "\\\\",
                "\\n",
                "', TRUE(), '",
                "') OR (1=1",
                "{",
                "}",
                "}",
                "TRUE()",
                " ",
                "\n",
                "\u{0}",
                "\u{1F600}",
                "é",
                "x",
            ]),
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// A field name `formula::field` accepts: not empty, no `}`.
fn field_name() -> impl Strategy<Value = String> {
    hostile_text()
        .prop_map(|name| name.replace('}', ""))
        .prop_filter("a name", |name| !name.is_empty())
}

/// A value, and the values of the records it is searched among: some
/// equal, some close to it (a prefix, a quote or backslash more or less).
fn value_and_cells() -> impl Strategy<Value = (String, Vec<String>)> {
    (hostile_text(), prop::collection::vec(hostile_text(), 0..4)).prop_map(|(value, others)| {
        let mut cells = vec![
            value.clone(),
            format!("{value}'"),
            format!("\\{value}"),
            value.replace('\\', ""),
            value.replace('\'', "\\'"),
            value.chars().skip(1).collect(),
            String::new(),
        ];
        cells.extend(others);
        (value, cells)
    })
}

#[test]
fn an_equality_filter_finds_exactly_the_records_holding_the_value() {
    fuzz::run(
        "formula builder equality",
        file!(),
        2_000,
        (field_name(), value_and_cells()),
        |(name, (value, cells))| {
            let built = field(&name)
                .map_err(|e| TestCaseError::fail(format!("{name:?} refused: {e}")))?
                .equals(text(&value));
            let parsed = emulator::parse(built.as_str())
                .map_err(|e| TestCaseError::fail(format!("{built} does not parse: {e}")))?;
            prop_assert_eq!(
                &parsed,
                &Expr::Binary(
                    BinOp::Eq,
                    Box::new(Expr::Field(name.clone())),
                    Box::new(Expr::Text(value.clone()))
                ),
                "{}",
                built
            );
            for (i, cell) in cells.iter().enumerate() {
                let row = [(name.clone(), cell.clone())];
                let record = Record {
                    id: format!("rec{i}"),
                    cells: &row,
                };
                let kept = emulator::is_truthy(&emulator::evaluate(&parsed, &record));
                prop_assert_eq!(kept, cell == &value, "{} on {:?}", built, cell);
            }
            Ok(())
        },
    );
}

#[test]
fn combined_filters_keep_their_structure_whatever_the_values() {
    fuzz::run(
        "formula builder composition",
        file!(),
        1_000,
        (
            field_name(),
            hostile_text(),
            field_name(),
            hostile_text(),
            prop::collection::vec(hostile_text(), 1..4),
        ),
        |(a, va, b, vb, ids)| {
            let comparison = |name: &str, value: &str, op: BinOp| {
                Expr::Binary(
                    op,
                    Box::new(Expr::Field(name.to_owned())),
                    Box::new(Expr::Text(value.to_owned())),
                )
            };
            let built = formula::and([
                field(&a)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .equals(text(&va)),
                formula::not(
                    field(&b)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?
                        .not_equals(text(&vb)),
                ),
                formula::record_id_in(&ids),
            ]);
            let parsed = emulator::parse(built.as_str())
                .map_err(|e| TestCaseError::fail(format!("{built} does not parse: {e}")))?;
            let ids_expr = Expr::Call(
                emulator::Function::Or,
                ids.iter()
                    .map(|id| {
                        Expr::Binary(
                            BinOp::Eq,
                            Box::new(Expr::Call(emulator::Function::RecordId, vec![])),
                            Box::new(Expr::Text(id.clone())),
                        )
                    })
                    .collect(),
            );
            let expected = Expr::Call(
                emulator::Function::And,
                vec![
                    comparison(&a, &va, BinOp::Eq),
                    Expr::Call(
                        emulator::Function::Not,
                        vec![comparison(&b, &vb, BinOp::Ne)],
                    ),
                    ids_expr,
                ],
            );
            prop_assert_eq!(&parsed, &expected, "{}", built);
            // And it keeps a record holding exactly those values.
            let row = [(a.clone(), va.clone()), (b.clone(), vb.clone())];
            if a != b || va == vb {
                let record = Record {
                    id: ids[0].clone(),
                    cells: &row,
                };
                prop_assert!(
                    emulator::is_truthy(&emulator::evaluate(&parsed, &record)),
                    "{}",
                    built
                );
            }
            Ok(())
        },
    );
}

#[test]
fn number_and_time_literals_read_back_as_the_same_value() {
    fuzz::run(
        "formula builder literals",
        file!(),
        1_000,
        (
            any::<f64>(),
            any::<i64>(),
            -8_000_000_000_000i64..250_000_000_000_000,
        ),
        |(n, i, ms)| {
            let record = Record {
                id: "rec".into(),
                cells: &[],
            };
            let read = |f: &formula::Formula| -> Result<Value, TestCaseError> {
                let parsed = emulator::parse(f.as_str())
                    .map_err(|e| TestCaseError::fail(format!("{f} does not parse: {e}")))?;
                Ok(emulator::evaluate(&parsed, &record))
            };
            match formula::number(n) {
                Ok(f) => prop_assert_eq!(read(&f)?, Value::Number(n), "{}", f),
                Err(_) => prop_assert!(!n.is_finite()),
            }
            let f = formula::int(i);
            prop_assert_eq!(read(&f)?, Value::Number(i as f64), "{}", f);
            if let Some(at) = DateTime::<Utc>::from_timestamp_millis(ms) {
                let f = formula::date_time(at);
                prop_assert_eq!(read(&f)?, Value::Date(ms), "{}", f);
            }
            Ok(())
        },
    );
}
