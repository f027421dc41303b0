//! Inbound benchmark at Airtable's real limits, against the emulator and a
//! throwaway PostgreSQL:
//!
//! 1. latency: EDITS edits (default 200) made as a person in Airtable's UI
//!    would, one after another, with the emulator answering in 100..300 ms;
//!    the time from the edit to the row changed in PostgreSQL through the
//!    webhook path (signed ping, payload read, applied), p50 and p95;
//! 2. a full reconcile of RECORDS records (default 20,000) into an empty
//!    database (the backfill) and again once both sides agree, in
//!    records/s against the read ceiling of 500 records/s, with the
//!    process's peak memory.
//!
//! Run: `cargo run --release -p airsync-sync --example inbound_bench [EDITS] [RECORDS]`

use airsync_airtable::BaseId;
use std::time::{Duration, Instant};

use airsync_emulator::{ClientEdit, Emulator, RecordPatch};
use airsync_sync::inbound::{reconcile, run, InboundContext, InboundSettings, ReconcileOptions};
use serde_json::{json, Map, Value};

mod support;

use support::Failure;

const TOKEN: &str = "patINBOUNDBENCH00.0123";
const BASE: BaseId = BaseId::from_static("appINBOUNDBENCH01");

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn create(emulator: &Emulator, table: &str, records: Vec<Value>) -> Result<Vec<String>, Failure> {
    Ok(emulator
        .edit_as_user(
            BASE.as_str(),
            table,
            ClientEdit {
                create: records.into_iter().map(object).collect(),
                ..ClientEdit::default()
            },
        )?
        .created)
}

/// `VmHWM` and `VmRSS` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn latency(edits: usize) -> Result<(), Failure> {
    let (db, emulator, mapping) = support::start(TOKEN, &BASE).await?;
    let users = create(
        &emulator,
        "Users",
        (0..50)
            .map(|i| json!({"Email": format!("bench{i}@example.com"), "Name": "Before"}))
            .collect(),
    )?;
    let mut settings = InboundSettings {
        reconcile_enabled: false,
        ..InboundSettings::default()
    };
    let listener = support::bind_notifications(&mut settings).await?;
    let ctx = InboundContext::new(
        db.pool().clone(),
        support::deployment_client(&emulator, TOKEN, &db, 100)?,
        BASE,
        mapping,
        settings,
    );
    reconcile(&ctx, &ReconcileOptions::default()).await?;
    support::serve_notifications(listener, &ctx);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(run(ctx.clone(), shutdown));
    // The runner makes sure of the webhook first.
    support::wait_for_webhook(&db).await?;
    // Airtable's time: a request counts when it arrives, and most of its
    // round trip is Airtable's work (docs/benchmarks.md, Sharing the base).
    emulator.set_answer_latency_ms(Some(100..=300));
    emulator.reset_stats();

    let mut waits = Vec::new();
    for i in 0..edits {
        let record = &users[i % users.len()];
        let name = format!("Edit {i}");
        let edited = Instant::now();
        emulator.edit_as_user(
            BASE.as_str(),
            "Users",
            ClientEdit {
                update: vec![RecordPatch {
                    id: record.clone(),
                    fields: object(json!({"Name": name})),
                }],
                ..ClientEdit::default()
            },
        )?;
        loop {
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM users_pg u JOIN airtable_id_map m ON m.row_id = u.id
                                 WHERE m.airtable_id = $1 AND u.name = $2)",
            )
            .bind(record)
            .bind(&name)
            .fetch_one(db.pool())
            .await?;
            if done {
                break;
            }
            if edited.elapsed() > Duration::from_secs(30) {
                return Err(format!("edit {i} never arrived").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        waits.push(edited.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    running.await??;
    waits.sort();
    let pick = |q: f64| waits[((waits.len() as f64 * q).ceil() as usize).clamp(1, waits.len()) - 1];
    let metrics = ctx.metrics().snapshot();
    println!(
        "latency: {edits} UI edits, emulator latency 100..300 ms: edit to row changed p50 {} ms, p95 {} ms, max {} ms; {} pings, {} payloads, {} answered 429",
        pick(0.50).as_millis(),
        pick(0.95).as_millis(),
        waits.last().map(Duration::as_millis).unwrap_or_default(),
        metrics.notifications_accepted,
        metrics.payloads_applied,
        emulator.stats().base(BASE.as_str()).rate_limited
    );
    Ok(())
}

async fn full_reconcile(records: usize) -> Result<(), Failure> {
    let (db, emulator, mapping) = support::start(TOKEN, &BASE).await?;
    let quarter = records / 4;
    let goals = create(
        &emulator,
        "Goals",
        (0..quarter)
            .map(|i| json!({"Name": format!("Goal {i}"), "Description": "A goal to reach", "Active": true}))
            .collect(),
    )?;
    create(
        &emulator,
        "Methods",
        (0..quarter)
            .map(|i| json!({"Name": format!("Method {i}"), "Description": "How to", "Duration (min)": i % 60,
                           "Is habit": i % 3 == 0, "Goals": [goals[i % goals.len()]], "Active": true, "Sort order": i}))
            .collect(),
    )?;
    create(
        &emulator,
        "Overtuigingen",
        (0..quarter)
            .map(|i| {
                json!({"Name": format!("Belief {i}"), "Goals": [goals[(i * 7) % goals.len()]],
                           "Level": 1 + i % 3, "Active": true})
            })
            .collect(),
    )?;
    create(
        &emulator,
        "Users",
        (0..records - 3 * quarter)
            .map(|i| {
                json!({"Email": format!("user{i}@example.com"), "Name": format!("User {i}"),
                           "Role": "user", "Bonus points": i % 500, "Level": 1 + i % 5,
                           "Badges": ["streak-3"], "pg_id": uuid::Uuid::new_v4().to_string()})
            })
            .collect(),
    )?;
    let ctx = InboundContext::new(
        db.pool().clone(),
        support::deployment_client(&emulator, TOKEN, &db, 100)?,
        BASE,
        mapping,
        InboundSettings::default(),
    );
    let (hwm_before, rss_before) = memory();
    for label in ["backfill into an empty database", "again, both sides equal"] {
        emulator.reset_stats();
        let started = Instant::now();
        let report = reconcile(&ctx, &ReconcileOptions::default()).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let created: u64 = report.tables.iter().map(|t| t.created).sum();
        let (hwm, rss) = memory();
        let stats = emulator.stats().base(BASE.as_str());
        println!(
            "reconcile ({label}): {} records in {elapsed:.1} s = {:.0} records/s ({:.0}% of 500); {created} rows created; {} requests, {} answered 429; memory: peak {hwm:.0} MiB, now {rss:.0} MiB (before: peak {hwm_before:.0}, now {rss_before:.0})",
            report.records(),
            report.records() as f64 / elapsed,
            report.records() as f64 / elapsed / 5.0,
            stats.total,
            stats.rate_limited,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let edits: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    latency(edits).await?;
    full_reconcile(records).await?;
    Ok(())
}
