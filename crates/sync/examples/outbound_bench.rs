//! Outbound benchmark at Airtable's real limits, against the emulator and a
//! throwaway PostgreSQL:
//!
//! 1. throughput: 2,000 changes across three tables (users, personal goals,
//!    programs, the last two linking the first), records/s until the outbox
//!    is empty, and the 429s it caused;
//! 2. latency: one change a second with the emulator answering in
//!    100..300 ms; the time from commit to the record being readable in the
//!    emulator, p50 and p99.
//!
//! Both parts measure a running worker: it is started, takes the base's lane
//! and sends one warm-up change before the clock starts, so the figures
//! leave out the one-off pause a worker makes when it takes the lane
//! (`lane_takeover_pause`, 2 s), which a process pays once at start.
//!
//! Run: `cargo run --release -p airsync-sync --example outbound_bench [CHANGES] [LATENCY_SAMPLES]`

use airsync_airtable::BaseId;
use std::time::{Duration, Instant};

use airsync_emulator::Emulator;
use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::worker::{Worker, WorkerSettings};
use airsync_testkit::TestDb;
use serde_json::json;
use uuid::Uuid;

mod support;

use support::{outbox_len, Failure};

const TOKEN: &str = "patOUTBOUNDBENCH0.0123";
const BASE: BaseId = BaseId::from_static("appOUTBOUNDBENCH1");

async fn setup() -> Result<(TestDb, Emulator, Worker<AirtableWriter>), Failure> {
    let (db, emulator, mapping) = support::start(TOKEN, &BASE).await?;
    let mut settings = WorkerSettings::new(BASE);
    settings.tuning.poll_interval = Duration::from_millis(200);
    let worker = Worker::new(
        db.pool().clone(),
        mapping,
        AirtableWriter::new(
            support::deployment_client(&emulator, TOKEN, &db, 100)?,
            BASE,
        ),
        settings,
    );
    Ok((db, emulator, worker))
}

type Running = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<airsync_sync::Result<()>>,
);

/// Starts `worker` and returns once it has taken the lane and sent a warm-up
/// change, with the emulator's counts reset.
async fn start_warm(
    db: &TestDb,
    emulator: &Emulator,
    worker: Worker<AirtableWriter>,
) -> Result<Running, Failure> {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { worker.run(shutdown, Duration::from_secs(10)).await });
    support::warm_up(db).await?;
    emulator.reset_stats();
    Ok((stop, running))
}

async fn throughput(changes: usize) -> Result<(), Failure> {
    let (db, emulator, worker) = setup().await?;
    let metrics = worker.metrics();
    let (stop, running) = start_warm(&db, &emulator, worker).await?;
    let warm_up = metrics.snapshot().sent;
    let users = changes * 35 / 100;
    let goals = (changes - users) / 2;
    let programs = changes - users - goals;
    let mut tx = db.pool().begin().await?;
    let mut user_ids = Vec::new();
    for i in 0..users {
        let id: Uuid =
            sqlx::query_scalar("INSERT INTO users_pg (email, name) VALUES ($1, $2) RETURNING id")
                .bind(format!("bench{i}@example.com"))
                .bind(format!("Bench user {i}"))
                .fetch_one(&mut *tx)
                .await?;
        user_ids.push(id);
    }
    for i in 0..goals {
        sqlx::query("INSERT INTO personal_goals_pg (user_id, name, active) VALUES ($1, $2, false)")
            .bind(user_ids[i % users])
            .bind(format!("Goal {i}"))
            .execute(&mut *tx)
            .await?;
    }
    for i in 0..programs {
        sqlx::query(
            "INSERT INTO programs_pg (user_id, name, start_date, end_date) VALUES ($1, $2, '2026-01-01', '2026-03-31')",
        )
        .bind(user_ids[i % users])
        .bind(format!("Program {i}"))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let started = Instant::now();
    while outbox_len(&db).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    running.await??;
    let stats = emulator.stats().base(BASE.as_str());
    let sent = metrics.snapshot();
    println!(
        "throughput: {changes} changes ({users} users, {goals} personal goals, {programs} programs) in {:.1} s = {:.1} records/s; {} requests, {} answered 429",
        elapsed.as_secs_f64(),
        (sent.sent - warm_up) as f64 / elapsed.as_secs_f64(),
        stats.total,
        stats.rate_limited
    );
    Ok(())
}

async fn latency(samples: usize) -> Result<(), Failure> {
    let (db, emulator, worker) = setup().await?;
    emulator.set_latency_ms(Some(100..=300));
    let (stop, running) = start_warm(&db, &emulator, worker).await?;
    let mut waits = Vec::new();
    for i in 0..samples {
        let tick = Instant::now();
        let email = format!("latency{i}@example.com");
        sqlx::query("INSERT INTO users_pg (email, name) VALUES ($1, 'Latency')")
            .bind(&email)
            .execute(db.pool())
            .await?;
        let committed = Instant::now();
        loop {
            let found = emulator
                .dump_table(BASE.as_str(), "Users")?
                .iter()
                .any(|r| r["fields"]["Email"] == json!(email));
            if found {
                break;
            }
            if committed.elapsed() > Duration::from_secs(30) {
                return Err(format!("change {i} never arrived").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        waits.push(committed.elapsed());
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let _ = stop.send(true);
    running.await??;
    waits.sort();
    let pick = |q: f64| waits[((waits.len() as f64 * q).ceil() as usize).clamp(1, waits.len()) - 1];
    println!(
        "latency: {samples} changes at 1/s, emulator latency 100..300 ms: commit to readable p50 {} ms, p99 {} ms, max {} ms; {} answered 429",
        pick(0.50).as_millis(),
        pick(0.99).as_millis(),
        waits.last().map(Duration::as_millis).unwrap_or_default(),
        emulator.stats().base(BASE.as_str()).rate_limited
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(120);
    throughput(changes).await?;
    latency(samples).await?;
    Ok(())
}
