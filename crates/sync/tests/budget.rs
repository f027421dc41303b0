//! The deployment's Airtable budget kept in PostgreSQL: clients that stand
//! for the processes of one deployment (the API's and the worker's) share
//! each base's 5 requests a second, a more urgent request of one process
//! goes ahead of another's background queue, and a process whose database
//! fails goes on pacing itself alone.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use airsync_airtable::{AirtableClient, BudgetStore, ClientConfig, Priority};
use airsync_sync::budget::PgBudgetStore;
use support::{Harness, BASE, TOKEN};

/// A client on the deployment's budget, as `airsync serve` and `airsync
/// worker` build theirs.
fn process(h: &Harness, store: Option<Arc<dyn BudgetStore>>) -> AirtableClient {
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&h.emulator.url())
        .expect("emulator URL");
    config.budget_store = store;
    AirtableClient::new(config).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_base_budget_through_postgres() {
    let h = Harness::start().await;
    h.emulator.reset_stats();
    let store: Arc<dyn BudgetStore> = Arc::new(PgBudgetStore::new(h.pool().clone()));
    let api = process(&h, Some(store.clone()));
    let worker = process(&h, Some(store));

    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let base = if i % 2 == 0 { &api } else { &worker }.base(&BASE);
            tokio::spawn(async move { base.schema().await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("read");
    }

    let stats = h.emulator.stats();
    assert_eq!(stats.base(BASE.as_str()).total, 24);
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    for client in [&api, &worker] {
        let metrics = client.metrics();
        assert!(
            metrics.bases.iter().all(|p| p.deployment_wide),
            "{:?}",
            metrics.bases
        );
    }
    let starts: i32 = sqlx::query_scalar(
        "SELECT jsonb_array_length(record->'starts') FROM airtable_budgets WHERE base_id = $1",
    )
    .bind(BASE.as_str())
    .fetch_one(h.pool())
    .await
    .expect("the base's budget row");
    assert_eq!(starts, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_read_of_one_process_goes_ahead_of_another_process_background_queue() {
    let h = Harness::start().await;
    let store: Arc<dyn BudgetStore> = Arc::new(PgBudgetStore::new(h.pool().clone()));
    let api = process(&h, Some(store.clone())).with_priority(Priority::Urgent);
    let reconcile = process(&h, Some(store)).with_priority(Priority::Background);

    // A reconcile's queue of 20 pages: 4 s of the base's budget.
    let done = Arc::new(AtomicUsize::new(0));
    let queue: Vec<_> = (0..20)
        .map(|_| {
            let base = reconcile.base(&BASE);
            let done = done.clone();
            tokio::spawn(async move {
                base.schema().await.expect("background read");
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = done.load(Ordering::SeqCst);
    api.base(&BASE).schema().await.expect("urgent read");
    let after = done.load(Ordering::SeqCst);
    // The urgent read took one of the next starts: only the pages already
    // on their way (and the one granted as it asked) finished meanwhile,
    // not the rest of the queue.
    assert!(
        after <= before + 3,
        "{} pages of the queue went first",
        after - before
    );
    for task in queue {
        task.await.expect("task");
    }
    assert_eq!(h.emulator.stats().rate_limited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_database_fails_paces_itself_alone() {
    let h = Harness::start().await;
    let pool = h.pool().clone();
    let store: Arc<dyn BudgetStore> = Arc::new(PgBudgetStore::new(pool.clone()));
    let client = process(&h, Some(store));
    client.base(&BASE).schema().await.expect("read");
    assert!(client.metrics().bases.iter().all(|p| p.deployment_wide));

    pool.close().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let base = client.base(&BASE);
            tokio::spawn(async move { base.schema().await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("read without the database");
    }
    assert_eq!(h.emulator.stats().rate_limited, 0);
    assert!(client.metrics().bases.iter().all(|p| !p.deployment_wide));
}
