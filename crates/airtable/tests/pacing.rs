//! Pacing against the emulator's real limits: concurrent writers never see
//! a 429, a 429 pauses the whole base, and a budget share leaves room for
//! another client of the same base.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use airsync_airtable::{
    AirtableClient, BudgetStore, Clock, Fields, ManualClock, MemoryBudgetStore, SystemClock,
    UpdateMode, WriteOptions,
};
use airsync_emulator::{EmulatorConfig, FaultBurst, FaultKind};
use common::{
    advance, client, client_on, client_with, config, drive, dump, emulator, emulator_with,
    people_table, BASE, TOKEN,
};

/// An instant for frozen emulator clocks (2024-05-01T00:00:00Z).
const FROZEN_AT_MS: i64 = 1_714_521_600_000;

fn rows(task: usize, count: usize) -> Vec<Fields> {
    (0..count)
        .map(|i| {
            Fields::new()
                .with("Name", format!("Task {task} row {i}"))
                .with("pg_id", format!("{task}-{i}"))
        })
        .collect()
}

/// `tasks` writers of 20 records each, spread over `clients` in turn, all
/// at once; answers how many records they wrote.
async fn write_concurrently(clients: &[AirtableClient], table: &str, tasks: usize) -> usize {
    let tasks: Vec<_> = (0..tasks)
        .map(|task| {
            let people = clients[task % clients.len()].table(&BASE, table);
            tokio::spawn(async move {
                people
                    .create(&rows(task, 20), WriteOptions::default())
                    .await
                    .map(|records| records.len())
            })
        })
        .collect();
    let mut written = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(count)) => written += count,
            other => panic!("a writer failed: {other:?}"),
        }
    }
    written
}

/// A client configuration for the real-time tests against an emulator that
/// adds up to 20 ms to each request before counting it. The default 40 ms
/// margin is spent whole on that jitter and the late wake-up the pacer
/// allows (half the margin), so a request held up a few more milliseconds
/// by a busy test machine would draw a 429; 120 ms leaves these tests
/// 40 ms of scheduling delay. The default margin is measured by the
/// benchmarks, at Airtable's real limits.
fn jittered_config(emulator: &airsync_emulator::Emulator) -> airsync_airtable::ClientConfig {
    let mut config = config(emulator);
    config.rate_limits.safety_margin = Duration::from_millis(120);
    config
}

fn unique_names(records: &[serde_json::Value]) -> HashSet<String> {
    records
        .iter()
        .filter_map(|r| r["fields"]["Name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_writers_to_one_base_finish_without_a_429() {
    // Real time on both sides, with up to 20 ms of jitter per request.
    let emulator = emulator_with(EmulatorConfig::new().with_latency_ms(0..=20)).await;
    let table = people_table(&emulator);
    let client = match AirtableClient::new(jittered_config(&emulator)) {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    };

    let written = write_concurrently(std::slice::from_ref(&client), &table.id, 20).await;

    assert_eq!(written, 400);
    let stats = emulator.stats();
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(stats.base(BASE.as_str()).total, 40);
    assert_eq!(client.metrics().rate_limited, 0);
    assert_eq!(unique_names(&dump(&emulator, &table.id)).len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_budget_store_keep_one_base_budget_together() {
    // Two clients stand for two processes of a deployment (the API and
    // the worker): each alone would send 5 requests a second, and
    // together, without the store, they draw 429s.
    let emulator = emulator_with(EmulatorConfig::new().with_latency_ms(0..=20)).await;
    let table = people_table(&emulator);
    let store: Arc<dyn BudgetStore> =
        Arc::new(MemoryBudgetStore::new(Arc::new(SystemClock::new())));
    let processes: Vec<AirtableClient> = (0..2)
        .map(|_| {
            let mut config = jittered_config(&emulator);
            config.budget_store = Some(store.clone());
            match AirtableClient::new(config) {
                Ok(client) => client,
                Err(e) => panic!("{e}"),
            }
        })
        .collect();

    let written = write_concurrently(&processes, &table.id, 12).await;

    assert_eq!(written, 240);
    let stats = emulator.stats();
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(stats.base(BASE.as_str()).total, 24);
    for process in &processes {
        let metrics = process.metrics();
        assert_eq!(metrics.rate_limited, 0);
        assert!(
            metrics.bases.iter().all(|p| p.deployment_wide),
            "{:?}",
            metrics.bases
        );
    }
    assert_eq!(unique_names(&dump(&emulator, &table.id)).len(), 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_burst_pauses_the_whole_base_and_every_write_lands_once() {
    let emulator = emulator_with(EmulatorConfig::new().with_frozen_clock(FROZEN_AT_MS)).await;
    let table = people_table(&emulator);
    let clock = Arc::new(ManualClock::new());
    let client = client_on(&emulator, Arc::clone(&clock));
    emulator.inject_faults(FaultBurst {
        count: 3,
        kind: FaultKind::RateLimited,
        base: Some(BASE.to_string()),
    });

    let creator = {
        let people = client.table(&BASE, &table.id);
        tokio::spawn(async move { people.create(&rows(0, 30), WriteOptions::default()).await })
    };
    // Wait (in real time) for the first 429 to come back.
    for _ in 0..500 {
        if client.metrics().rate_limited > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.metrics().rate_limited, 1);
    let pause = client.metrics().bases[0].paused_for;
    assert_eq!(pause, Duration::from_secs(30));

    // A second writer that never saw a 429 waits out the pause too.
    let upserter = {
        let people = client.table(&BASE, &table.id);
        tokio::spawn(async move {
            people
                .upsert(
                    &rows(1, 10),
                    &["pg_id"],
                    UpdateMode::Merge,
                    WriteOptions::default(),
                )
                .await
                .map(|outcome| outcome.records)
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    advance(&clock, &emulator, Duration::from_millis(29_900));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        emulator.stats().base(BASE.as_str()).total,
        1,
        "a request went out during the pause"
    );

    drive(&clock, &emulator, &[&client], &[creator, upserter]).await;

    let records = dump(&emulator, &table.id);
    assert_eq!(records.len(), 40);
    assert_eq!(unique_names(&records).len(), 40);
    let stats = emulator.stats();
    assert_eq!(stats.count(BASE.as_str(), 429), 3);
    assert_eq!(stats.count(BASE.as_str(), 200), 4);
    assert_eq!(client.metrics().rate_limited, 3);
    assert!(
        clock.now() >= Duration::from_secs(90),
        "three pauses of 30 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_penalty_caused_by_another_script_is_waited_out_once() {
    let emulator = emulator_with(EmulatorConfig::new().with_frozen_clock(FROZEN_AT_MS)).await;
    let table = people_table(&emulator);
    // A team script bursts six requests into one second: Airtable's
    // penalty starts for the whole base.
    let script = reqwest::Client::new();
    let url = format!("{}/v0/{BASE}/{}", emulator.url(), table.id);
    for _ in 0..6 {
        let _ = script.get(&url).bearer_auth(TOKEN).send().await;
    }
    assert_eq!(emulator.stats().count(BASE.as_str(), 429), 1);
    let clock = Arc::new(ManualClock::new());
    let client = client_on(&emulator, Arc::clone(&clock));

    let tasks: Vec<_> = (0..5)
        .map(|task| {
            let people = client.table(&BASE, &table.id);
            tokio::spawn(async move {
                people
                    .create(&rows(task, 10), WriteOptions::default())
                    .await
            })
        })
        .collect();
    drive(&clock, &emulator, &[&client], &tasks).await;

    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(_))));
    }
    // One 429 for the client: the pause held back every other writer.
    assert_eq!(client.metrics().rate_limited, 1);
    assert_eq!(emulator.stats().count(BASE.as_str(), 429), 2);
    assert_eq!(dump(&emulator, &table.id).len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_share_leaves_room_for_another_client_of_the_base() {
    let emulator = emulator_with(EmulatorConfig::new().with_frozen_clock(FROZEN_AT_MS)).await;
    let table = people_table(&emulator);
    let clock = Arc::new(ManualClock::new());
    let with_share = |share: f64| -> AirtableClient {
        let mut config = config(&emulator);
        config.rate_limits.budget_share = share;
        client_with(config, Arc::clone(&clock))
    };
    // Two processes (separate pacers) with 60% and 40% of the same base.
    let sync = with_share(0.6);
    let scripts = with_share(0.4);

    let mut tasks = Vec::new();
    for task in 0..30 {
        let owner = if task % 2 == 0 { &sync } else { &scripts };
        let people = owner.table(&BASE, &table.id);
        tasks.push(tokio::spawn(async move {
            people
                .create(&rows(task, 10), WriteOptions::default())
                .await
        }));
    }
    drive(&clock, &emulator, &[&sync, &scripts], &tasks).await;

    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(_))));
    }
    assert_eq!(emulator.stats().rate_limited, 0);
    assert_eq!(dump(&emulator, &table.id).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_waits_and_latency() {
    // On the manual clock the waits are exact, however slowly the machine
    // answers: the three creates leave at 0, 1 and 2 slots.
    let emulator = emulator_with(EmulatorConfig::new().with_frozen_clock(FROZEN_AT_MS)).await;
    let table = people_table(&emulator);
    let clock = Arc::new(ManualClock::new());
    let client = client_on(&emulator, Arc::clone(&clock));
    let creator = {
        let people = client.table(&BASE, &table.id);
        tokio::spawn(async move { people.create(&rows(0, 30), WriteOptions::default()).await })
    };
    drive(
        &clock,
        &emulator,
        &[&client],
        std::slice::from_ref(&creator),
    )
    .await;
    creator
        .await
        .expect("the task")
        .unwrap_or_else(|e| panic!("{e}"));

    let metrics = client.metrics();
    assert_eq!(metrics.requests_to_base(BASE.as_str()), 3);
    let created = metrics
        .requests
        .iter()
        .find(|r| r.kind == airsync_airtable::RequestKind::CreateRecords && r.outcome == "200");
    assert_eq!(created.map(|r| r.count), Some(3));
    assert_eq!(metrics.latency.count(), 3);
    // The second and third requests each waited one slot for the base.
    let slot = clock.now() / 2;
    assert!(slot >= Duration::from_millis(200), "slot {slot:?}");
    assert_eq!(metrics.token_waits, 2);
    assert!(
        (metrics.token_wait_seconds - 2.0 * slot.as_secs_f64()).abs() < 1e-3,
        "waited {} s for two slots of {slot:?}",
        metrics.token_wait_seconds
    );
    assert_eq!(metrics.in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_read_goes_ahead_of_a_queue_of_background_pages() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let background = client.with_priority(airsync_airtable::Priority::Background);
    // Twenty background listings queue up: four seconds of the base.
    let pages: Vec<_> = (0..20)
        .map(|_| {
            let people = background.table(&BASE, &table.id);
            tokio::spawn(async move {
                people
                    .list_all(airsync_airtable::ListOptions::new())
                    .await
                    .map(|r| r.len())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let urgent = client
        .with_priority(airsync_airtable::Priority::Urgent)
        .table(&BASE, &table.id)
        .list_all(airsync_airtable::ListOptions::new())
        .await;

    assert!(urgent.is_ok(), "{urgent:?}");
    // Only the background requests that had already left went before it.
    let before = emulator.stats().base(BASE.as_str()).total;
    assert!(before <= 3, "{before} requests reached the base first");
    for page in pages {
        assert!(matches!(page.await, Ok(Ok(0))));
    }
    assert_eq!(emulator.stats().base(BASE.as_str()).total, 21);
    assert_eq!(emulator.stats().rate_limited, 0);
}
