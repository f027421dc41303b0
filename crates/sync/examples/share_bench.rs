//! Sharing the base: airsync beside another client of the same base, at
//! Airtable's real limits (5 requests/s per base counted over every
//! client, the 30 s penalty after a 429) with 100..300 ms of latency on
//! every answer, against the emulator and a throwaway PostgreSQL.
//!
//! A request counts against the base when it arrives; the 100..300 ms is
//! Airtable's work on it and the way back (see docs/benchmarks.md).
//!
//! The other client is a script that reads one record of the base once a
//! second, on a fixed schedule, with its own HTTP client: no two of its
//! reads leave less than a second (and the emulator's clock's millisecond)
//! apart.
//!
//! airsync's clients are built as its processes build theirs: the budget
//! kept in PostgreSQL (`PgBudgetStore`), one row per base.
//!
//! Parts (run all, or name some):
//! - `budget80`: `AIRTABLE_RATE_BUDGET_PERCENT=80` and the script, a backlog
//!   of CHANGES (2,000) app changes: 429s for either, airsync's records/s.
//! - `budget100`: 100% and the script, with the outbox kept full: the 429
//!   episodes until airsync adapts, then WATCH seconds (300) in which every
//!   429 counts, and airsync's records/s over them.
//! - `both`: 100%, no script: CHANGES app changes and as many team edits
//!   through the UI path (edits of goals, the webhook path bringing them
//!   in) at once, on one client: all arrive, the 429s, the combined request
//!   rate.
//! - `processes`: as `both`, but as Compose runs airsync: the inbound sync
//!   on one client and the worker on another (two processes), each at
//!   100%, sharing the base's budget through PostgreSQL.
//! - `alone`: 100%, no script, the backlog alone: records/s.
//!
//! Run: `cargo run --release -p airsync-sync --example share_bench [PARTS...] [--changes N] [--watch SECS]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId};
use airsync_emulator::{ClientEdit, Emulator, RecordPatch};
use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::inbound::{run, InboundContext, InboundSettings};
use airsync_sync::worker::{Worker, WorkerMetrics, WorkerSettings};
use airsync_testkit::TestDb;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

mod support;

use support::{outbox_len, Failure};

const TOKEN: &str = "patSHAREBENCH0000.0123";
const BASE: BaseId = BaseId::from_static("appSHAREBENCH0001");

/// The emulator's latency on every answer.
const ANSWER_LATENCY: std::ops::RangeInclusive<u64> = 100..=300;

struct Settings {
    parts: Vec<String>,
    changes: usize,
    watch: Duration,
}

fn settings() -> Result<Settings, Failure> {
    let mut settings = Settings {
        parts: Vec::new(),
        changes: 2_000,
        watch: Duration::from_secs(300),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--changes" => {
                settings.changes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--changes takes a number")?;
            }
            "--watch" => {
                let secs: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--watch takes seconds")?;
                settings.watch = Duration::from_secs(secs);
            }
            "budget80" | "budget100" | "both" | "processes" | "alone" => settings.parts.push(arg),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if settings.parts.is_empty() {
        settings.parts = ["alone", "budget80", "budget100", "both", "processes"]
            .map(str::to_owned)
            .to_vec();
    }
    Ok(settings)
}

/// A client as a process of airsync builds it: its budget kept in the
/// database, shared with every other such client of `db`.
fn client(
    emulator: &Emulator,
    db: &TestDb,
    budget_percent: u32,
) -> Result<AirtableClient, Failure> {
    support::deployment_client(emulator, TOKEN, db, budget_percent)
}

/// What the script saw.
#[derive(Default)]
struct ScriptCounts {
    reads: AtomicU64,
    rate_limited: AtomicU64,
    other_failures: AtomicU64,
}

/// The other client: one read a second until `stop`.
fn start_script(emulator: &Emulator, stop: watch::Receiver<bool>) -> Arc<ScriptCounts> {
    let counts = Arc::new(ScriptCounts::default());
    let url = format!("{}/v0/{BASE}/Goals?maxRecords=1", emulator.url());
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let second = Duration::from_secs(1);
        // The emulator counts in whole milliseconds.
        let least_gap = second + Duration::from_millis(1);
        let mut next = tokio::time::Instant::now();
        let mut last: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            let leave = last.map_or(next, |l| next.max(l + least_gap));
            tokio::time::sleep_until(leave).await;
            last = Some(tokio::time::Instant::now());
            next += second;
            let http = http.clone();
            let url = url.clone();
            let seen = Arc::clone(&seen);
            // Each read on its own task, so a slow answer never delays the
            // next read.
            tokio::spawn(async move {
                let status = http
                    .get(url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                seen.reads.fetch_add(1, Ordering::Relaxed);
                match status {
                    Ok(200) => {}
                    Ok(429) => {
                        seen.rate_limited.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        seen.other_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    counts
}

/// Inserts `count` users (one change each) in one transaction.
async fn insert_users(db: &TestDb, from: usize, count: usize) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO users_pg (email, name)
         SELECT 'share' || i || '@example.com', 'Share user ' || i FROM generate_series($1::int, $2::int) AS i",
    )
    .bind(i32::try_from(from)?)
    .bind(i32::try_from(from + count - 1)?)
    .execute(db.pool())
    .await?;
    Ok(())
}

struct Running {
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<airsync_sync::Result<()>>,
    metrics: Arc<WorkerMetrics>,
}

/// Starts a worker on `client` and returns once it has taken the lane and
/// sent a warm-up change.
async fn start_worker(
    db: &TestDb,
    client: &AirtableClient,
    mapping: Arc<airsync_sync::mapping::Mapping>,
) -> Result<Running, Failure> {
    let mut settings = WorkerSettings::new(BASE);
    settings.tuning.poll_interval = Duration::from_millis(200);
    let worker = Worker::new(
        db.pool().clone(),
        mapping,
        AirtableWriter::new(client.clone(), BASE),
        settings,
    );
    let metrics = worker.metrics();
    let (stop, shutdown) = watch::channel(false);
    let worker = tokio::spawn(async move { worker.run(shutdown, Duration::from_secs(10)).await });
    support::warm_up(db).await?;
    Ok(Running {
        stop,
        worker,
        metrics,
    })
}

impl Running {
    async fn finish(self) -> Result<(), Failure> {
        let _ = self.stop.send(true);
        self.worker.await??;
        Ok(())
    }
}

/// A fresh database and base, the emulator answering in 100..300 ms.
async fn start() -> Result<(TestDb, Emulator, Arc<airsync_sync::mapping::Mapping>), Failure> {
    let (db, emulator, mapping) = support::start(TOKEN, &BASE).await?;
    emulator.set_answer_latency_ms(Some(ANSWER_LATENCY));
    Ok((db, emulator, mapping))
}

/// A backlog of `changes` app changes with the budget at `percent`, with
/// or without the script.
async fn backlog(label: &str, percent: u32, script: bool, changes: usize) -> Result<(), Failure> {
    let (db, emulator, mapping) = start().await?;
    let client = client(&emulator, &db, percent)?;
    let running = start_worker(&db, &client, mapping).await?;
    let (stop_script, script_stop) = watch::channel(false);
    let script = script.then(|| start_script(&emulator, script_stop));
    // Let the script settle into its rhythm.
    tokio::time::sleep(Duration::from_secs(2)).await;
    emulator.reset_stats();
    let sent_before = running.metrics.snapshot().sent;
    let airsync_429_before = client.metrics().rate_limited;
    let script_before = script.as_ref().map(|s| {
        (
            s.reads.load(Ordering::Relaxed),
            s.rate_limited.load(Ordering::Relaxed),
        )
    });
    insert_users(&db, 0, changes).await?;
    let started = Instant::now();
    while outbox_len(&db).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop_script.send(true);
    let sent = running.metrics.snapshot().sent - sent_before;
    let airsync_429 = client.metrics().rate_limited - airsync_429_before;
    let stats = emulator.stats().base(BASE.as_str());
    let script_line = match (&script, script_before) {
        (Some(s), Some((reads, limited))) => format!(
            "; the script: {} reads, {} answered 429, {} failed otherwise",
            s.reads.load(Ordering::Relaxed) - reads,
            s.rate_limited.load(Ordering::Relaxed) - limited,
            s.other_failures.load(Ordering::Relaxed),
        ),
        _ => String::new(),
    };
    println!(
        "{label}: budget {percent}%, {changes} changes in {elapsed:.1} s = {:.1} records/s; base: {} requests ({:.2}/s), {} answered 429; airsync: {airsync_429} answered 429{script_line}",
        sent as f64 / elapsed,
        stats.total,
        stats.total as f64 / elapsed,
        stats.rate_limited,
    );
    running.finish().await?;
    emulator.shutdown().await?;
    Ok(())
}

/// 100% with the script: until airsync adapts, then `watch` more.
async fn adapt(watch_for: Duration) -> Result<(), Failure> {
    let (db, emulator, mapping) = start().await?;
    let client = client(&emulator, &db, 100)?;
    let running = start_worker(&db, &client, mapping).await?;
    let (stop_script, script_stop) = watch::channel(false);
    let script = start_script(&emulator, script_stop);
    // Keep the outbox full: a user whenever it falls under 1,000.
    let (stop_feed, feed_stop) = watch::channel(false);
    let feed = {
        let pool = db.pool().clone();
        tokio::spawn(async move {
            let mut next = 0usize;
            while !*feed_stop.borrow() {
                let len: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0);
                if len < 1_000 {
                    let _ = sqlx::query(
                        "INSERT INTO users_pg (email, name)
                         SELECT 'share' || i || '@example.com', 'Share user ' || i
                         FROM generate_series($1::int, $2::int) AS i",
                    )
                    .bind(next as i32)
                    .bind((next + 499) as i32)
                    .execute(&pool)
                    .await;
                    next += 500;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    emulator.reset_stats();
    let started = Instant::now();
    // Until the first 429 episode has passed (or two minutes without one).
    let adapted_at = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pace = client.metrics().bases;
        let episodes = pace
            .first()
            .map_or(0, |p| p.episodes_by_others + p.episodes_by_airsync);
        let paused = pace.first().is_some_and(|p| !p.paused_for.is_zero());
        if episodes > 0 && !paused {
            break Some(started.elapsed());
        }
        if episodes == 0 && started.elapsed() > Duration::from_secs(120) {
            break None;
        }
    };
    let before = client.metrics().bases.first().cloned();
    let base_429_before = emulator.stats().base(BASE.as_str()).rate_limited;
    let script_429_before = script.rate_limited.load(Ordering::Relaxed);
    let reads_before = script.reads.load(Ordering::Relaxed);
    let sent_before = running.metrics.snapshot().sent;
    let watch_started = Instant::now();
    tokio::time::sleep(watch_for).await;
    let watched = watch_started.elapsed().as_secs_f64();
    let sent = running.metrics.snapshot().sent - sent_before;
    let after = client.metrics().bases.first().cloned();
    let base_429 = emulator.stats().base(BASE.as_str()).rate_limited - base_429_before;
    let script_429 = script.rate_limited.load(Ordering::Relaxed) - script_429_before;
    let reads = script.reads.load(Ordering::Relaxed) - reads_before;
    let _ = stop_feed.send(true);
    let _ = stop_script.send(true);
    feed.await?;
    let episodes_after = after
        .as_ref()
        .map_or(0, |p| p.episodes_by_others + p.episodes_by_airsync)
        - before
            .as_ref()
            .map_or(0, |p| p.episodes_by_others + p.episodes_by_airsync);
    println!(
        "budget100: budget 100% and the script: {} before adapting ({} 429 episodes, share {:.0}%); then {watched:.0} s: {:.1} records/s, {episodes_after} more 429 episodes, {base_429} requests answered 429 (the script's: {script_429} of its {reads} reads), share {:.0}% at the end",
        adapted_at.map_or("no 429 in 120 s".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
        before.as_ref().map_or(0, |p| p.episodes_by_others + p.episodes_by_airsync),
        before.as_ref().map_or(100.0, |p| p.share * 100.0),
        sent as f64 / watched,
        after.as_ref().map_or(100.0, |p| p.share * 100.0),
    );
    running.finish().await?;
    emulator.shutdown().await?;
    Ok(())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// App changes and team edits at once, on one client.
async fn both(changes: usize, processes: bool) -> Result<(), Failure> {
    let (db, emulator, mapping) = start().await?;
    let goals = emulator
        .edit_as_user(
            BASE.as_str(),
            "Goals",
            ClientEdit {
                create: (0..100)
                    .map(|i| object(json!({"Name": format!("Goal {i}"), "Active": true})))
                    .collect(),
                ..ClientEdit::default()
            },
        )?
        .created;
    // One client for both directions, or one per process (both on the
    // deployment's budget).
    let client = client(&emulator, &db, 100)?;
    let worker_client = if processes {
        self::client(&emulator, &db, 100)?
    } else {
        client.clone()
    };
    let mut settings = InboundSettings {
        reconcile_enabled: false,
        ..InboundSettings::default()
    };
    let listener = support::bind_notifications(&mut settings).await?;
    let ctx = InboundContext::new(
        db.pool().clone(),
        client.clone(),
        BASE,
        Arc::clone(&mapping),
        settings,
    );
    airsync_sync::inbound::reconcile(&ctx, &Default::default()).await?;
    support::serve_notifications(listener, &ctx);
    let (stop_inbound, shutdown) = watch::channel(false);
    let inbound = tokio::spawn(run(ctx.clone(), shutdown));
    support::wait_for_webhook(&db).await?;
    let running = start_worker(&db, &worker_client, mapping).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    emulator.reset_stats();
    let sent_before = running.metrics.snapshot().sent;
    let clients_429 = || {
        let mut count = client.metrics().rate_limited;
        if processes {
            count += worker_client.metrics().rate_limited;
        }
        count
    };
    let airsync_429_before = clients_429();

    let started = Instant::now();
    insert_users(&db, 0, changes).await?;
    // The team's edits: as fast as people in the UI could, spread over
    // about the time the app's changes take (40 edits a second).
    for i in 0..changes {
        let record = goals[i % goals.len()].clone();
        let edit = ClientEdit {
            update: vec![RecordPatch {
                id: record,
                fields: object(json!({"Name": format!("Edit {i}")})),
            }],
            ..ClientEdit::default()
        };
        emulator
            .edit_as_user(BASE.as_str(), "Goals", edit)
            .map_err(|err| format!("edit {i}: {err}"))?;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let edits_done = started.elapsed();
    // Every goal ends with the name of its last edit.
    let expected: Vec<(String, String)> = goals
        .iter()
        .enumerate()
        .map(|(g, id)| {
            let last = (0..changes)
                .rev()
                .find(|i| i % goals.len() == g)
                .unwrap_or(g);
            (id.clone(), format!("Edit {last}"))
        })
        .collect();
    loop {
        let arrived: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reference_goals_pg g JOIN airtable_id_map m ON m.row_id = g.id
             JOIN unnest($1::text[], $2::text[]) AS e(airtable_id, name)
               ON e.airtable_id = m.airtable_id AND e.name = g.name",
        )
        .bind(
            expected
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(expected.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>())
        .fetch_one(db.pool())
        .await?;
        if arrived as usize == expected.len() && outbox_len(&db).await? == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the changes never all arrived".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = running.metrics.snapshot().sent - sent_before;
    let stats = emulator.stats().base(BASE.as_str());
    let airsync_429 = clients_429() - airsync_429_before;
    let inbound_metrics = ctx.metrics().snapshot();
    let label = if processes {
        "processes (inbound and worker in two processes, one budget)"
    } else {
        "both"
    };
    println!(
        "{label}: {changes} app changes and {changes} team edits (edits made in {:.1} s) all arrived in {elapsed:.1} s; {sent} records pushed, {} payloads applied; base: {} requests = {:.2} requests/s ({:.0}% of 5/s), {} answered 429 (airsync's: {airsync_429})",
        edits_done.as_secs_f64(),
        inbound_metrics.payloads_applied,
        stats.total,
        stats.total as f64 / elapsed,
        stats.total as f64 / elapsed / 5.0 * 100.0,
        stats.rate_limited,
    );
    let _ = stop_inbound.send(true);
    inbound.await??;
    running.finish().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let settings = settings()?;
    for part in &settings.parts {
        match part.as_str() {
            "alone" => backlog("alone", 100, false, settings.changes).await?,
            "budget80" => backlog("budget80", 80, true, settings.changes).await?,
            "budget100" => adapt(settings.watch).await?,
            "both" => both(settings.changes, false).await?,
            "processes" => both(settings.changes, true).await?,
            _ => {}
        }
    }
    Ok(())
}
