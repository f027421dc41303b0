//! Which failures are retried, how often, and what a caller learns from one
//! that is not: against the emulator's injected faults.

mod common;

use std::time::Duration;

use airsync_airtable::{Error, Fields, RetryPolicy, UpdateMode, WriteOptions};
use airsync_emulator::{FaultBurst, FaultKind};
use common::{config, dump, emulator, people_table, BASE};

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn client(emulator: &airsync_emulator::Emulator) -> airsync_airtable::AirtableClient {
    let mut config = config(emulator);
    config.retry = quick_retries();
    airsync_airtable::AirtableClient::new(config).unwrap_or_else(|e| panic!("{e}"))
}

fn burst(count: u32, kind: FaultKind) -> FaultBurst {
    FaultBurst {
        count,
        kind,
        base: Some(BASE.to_string()),
    }
}

fn row(i: usize) -> Fields {
    Fields::new()
        .with("Name", format!("Row {i}"))
        .with("pg_id", i.to_string())
}

#[tokio::test]
async fn a_503_is_retried_until_the_write_goes_through() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    emulator.inject_faults(burst(2, FaultKind::Unavailable));

    let created = client
        .table(&BASE, &table.id)
        .create(&[row(1)], WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(created.len(), 1);
    assert_eq!(emulator.stats().count(BASE.as_str(), 503), 2);
    assert_eq!(emulator.stats().count(BASE.as_str(), 200), 1);
    assert_eq!(client.metrics().retries, 2);
    assert_eq!(dump(&emulator, &table.id).len(), 1);
}

#[tokio::test]
async fn a_422_is_not_retried_and_keeps_airtables_type_and_message() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);

    let result = client
        .table(&BASE, &table.id)
        .create(&[row(1).with("Nope", "x")], WriteOptions::default())
        .await;

    let err = result
        .err()
        .unwrap_or_else(|| panic!("an unknown field was accepted"));
    assert_eq!(err.status(), Some(422));
    assert_eq!(err.error_type(), Some("UNKNOWN_FIELD_NAME"));
    assert!(err.message().is_some_and(|m| m.contains("Nope")));
    assert_eq!(err.method(), Some("POST"));
    assert_eq!(
        err.path(),
        Some(format!("/v0/{BASE}/{}", table.id).as_str())
    );
    assert!(!err.is_retryable());
    assert_eq!(emulator.stats().base(BASE.as_str()).total, 1);
    assert_eq!(client.metrics().retries, 0);
}

#[tokio::test]
async fn a_500_on_a_create_is_not_replayed_but_an_upsert_is() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);

    emulator.inject_faults(burst(1, FaultKind::ServerError));
    let create = people.create(&[row(1)], WriteOptions::default()).await;
    let err = create.err().unwrap_or_else(|| panic!("the 500 was hidden"));
    assert!(err.is_retryable());
    assert!(err.may_have_been_applied());
    assert_eq!(emulator.stats().base(BASE.as_str()).total, 1);

    emulator.inject_faults(burst(1, FaultKind::ServerError));
    let upsert = people
        .upsert(
            &[row(1)],
            &["pg_id"],
            UpdateMode::Merge,
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(upsert.created.len(), 1);
    assert_eq!(emulator.stats().count(BASE.as_str(), 500), 2);
}

#[tokio::test]
async fn a_connection_dropped_mid_answer_is_retried_for_an_idempotent_write() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    emulator.inject_faults(burst(1, FaultKind::Drop));

    let outcome = client
        .table(&BASE, &table.id)
        .upsert(
            &[row(3)],
            &["pg_id"],
            UpdateMode::Merge,
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(outcome.records.len(), 1);
    assert_eq!(client.metrics().retries, 1);
    assert_eq!(dump(&emulator, &table.id).len(), 1);
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    emulator.inject_faults(burst(10, FaultKind::BadGateway));

    let result = client
        .table(&BASE, &table.id)
        .list_all(Default::default())
        .await;

    let err = result
        .err()
        .unwrap_or_else(|| panic!("the 502s were hidden"));
    assert_eq!(err.status(), Some(502));
    assert_eq!(emulator.stats().base(BASE.as_str()).total, 4);
}

#[tokio::test]
async fn a_batch_that_fails_after_others_went_through_names_the_records_written() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let mut rows: Vec<Fields> = (0..25).map(row).collect();
    rows[14] = row(14).with("Nope", "x");

    let result = client
        .table(&BASE, &table.id)
        .create(&rows, WriteOptions::default())
        .await;

    match result {
        Err(Error::PartiallyApplied { applied, source }) => {
            assert_eq!(applied.len(), 10);
            assert_eq!(source.error_type(), Some("UNKNOWN_FIELD_NAME"));
        }
        other => panic!("expected a partial failure, got {other:?}"),
    }
    // The failed batch is all-or-nothing and the third was never sent.
    assert_eq!(dump(&emulator, &table.id).len(), 10);
}
