//! The formula builder against the emulator's formula evaluator: whatever a
//! value holds (quotes, braces, backslashes, newlines, formula syntax), an
//! equality filter built from it finds exactly the records holding it.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use airsync_airtable::formula::{field, text};
use airsync_airtable::{AirtableClient, Fields, ListOptions, ManualClock, WriteOptions};
use airsync_emulator::{Emulator, EmulatorConfig, FieldSpec, TableSpec};
use common::{client_on, drive, emulator_with, BASE};
use proptest::prelude::*;

/// A field name that is itself hostile (quotes, an opening brace).
const ODD_FIELD: &str = "Odd 'field' \"name\" {x";

struct Harness {
    runtime: tokio::runtime::Runtime,
    emulator: Emulator,
    clock: Arc<ManualClock>,
    client: AirtableClient,
}

/// One emulator (real limits, frozen clock) and client for every case.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let emulator = runtime.block_on(emulator_with(
            EmulatorConfig::new().with_frozen_clock(1_714_521_600_000),
        ));
        let clock = Arc::new(ManualClock::new());
        let client = client_on(&emulator, Arc::clone(&clock));
        Harness {
            runtime,
            emulator,
            clock,
            client,
        }
    })
}

/// Writes `values` to a fresh table, then filters on each distinct value by
/// name and by the odd field; returns, per value, the values of the records
/// found.
async fn found_by_filters(h: &Harness, values: Vec<String>) -> HashMap<String, Vec<Vec<String>>> {
    static CASES: AtomicUsize = AtomicUsize::new(0);
    let case = CASES.fetch_add(1, Ordering::Relaxed);
    let table = h
        .emulator
        .create_table(
            BASE.as_str(),
            TableSpec::new(
                format!("Values {case}"),
                vec![
                    FieldSpec::new("Name", "singleLineText"),
                    FieldSpec::new("Value", "multilineText"),
                    FieldSpec::new(ODD_FIELD, "multilineText"),
                ],
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let people = h.client.table(&BASE, &table.id);
    let task = tokio::spawn(async move {
        let rows: Vec<Fields> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Fields::new()
                    .with("Name", format!("row {i}"))
                    .with("Value", v.as_str())
                    .with(ODD_FIELD, v.as_str())
            })
            .collect();
        people.create(&rows, WriteOptions::default()).await?;
        let mut found = HashMap::new();
        for value in values.iter().collect::<BTreeSet<_>>() {
            let mut per_filter = Vec::new();
            for name in ["Value", ODD_FIELD] {
                let filter = field(name)?.equals(text(value));
                let records = people.list_all(ListOptions::new().filter(filter)).await?;
                let mut got: Vec<String> = records
                    .iter()
                    .map(|r| {
                        r.fields
                            .text("Value")
                            .ok()
                            .flatten()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                got.sort();
                per_filter.push(got);
            }
            found.insert(value.clone(), per_filter);
        }
        Ok::<_, airsync_airtable::Error>(found)
    });
    let tasks = [task];
    drive(&h.clock, &h.emulator, &[&h.client], &tasks).await;
    let [task] = tasks;
    match task.await {
        Ok(Ok(found)) => found,
        other => panic!("the case failed: {other:?}"),
    }
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 '\"{}()\\\\\n,=&<>!.-]{0,16}",
        Just("x', TRUE(), '".to_owned()),
        Just("x\", TRUE(), \"".to_owned()),
        Just("\\".to_owned()),
        Just("\\'".to_owned()),
        Just("'".to_owned()),
        Just("}".to_owned()),
        Just("{Value}".to_owned()),
        Just("') & ('".to_owned()),
        Just("a\\nb".to_owned()),
        Just("line\nbreak".to_owned()),
        Just("OR(1, 1)".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn an_equality_filter_finds_exactly_the_records_holding_the_value(
        mut values in proptest::collection::vec(hostile_value(), 1..6)
    ) {
        // A repeated value: both of its records must be found.
        values.push(values[0].clone());
        let h = harness();
        let found = h.runtime.block_on(found_by_filters(h, values.clone()));
        for (value, per_filter) in found {
            let expected: Vec<String> = {
                let mut same: Vec<String> =
                    values.iter().filter(|v| **v == value).cloned().collect();
                same.sort();
                same
            };
            for got in per_filter {
                prop_assert_eq!(&got, &expected, "filter on {:?}", value);
            }
        }
    }
}
