//! Write throughput at Airtable's real limits: starts the emulator
//! in-process (5 requests/s per base, 50/s per token, 30 s penalty on a
//! 429), writes records with the client, and reports records/s and 429s.
//!
//! ```text
//! cargo run --release -p airsync-airtable --example write_bench -- \
//!     [--records 1000] [--tasks 4] [--latency-ms 0-0] [--margin-ms 40] [--budget 1.0] [--upsert]
//! ```
//!
//! `--latency-ms` delays each request before the emulator counts it (the
//! network's jitter on the way in); `--margin-ms` is the client's margin for
//! it (`AIRTABLE_RATE_MARGIN_MS`).
//!
//! Airtable's ceiling for one base is 5 requests × 10 records = 50
//! records/s.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig, Fields, UpdateMode, WriteOptions};
use airsync_emulator::{EmulatorConfig, FieldSpec, TableSpec};

const TOKEN: &str = "patBENCHBENCHBENC.0000";
const BASE: BaseId = BaseId::from_static("appBENCHBENCHBEN1");

/// The benchmark's settings.
struct Settings {
    records: usize,
    tasks: usize,
    latency_ms: Option<(u64, u64)>,
    margin_ms: Option<u64>,
    budget: f64,
    upsert: bool,
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        records: 1_000,
        tasks: 4,
        latency_ms: None,
        margin_ms: None,
        budget: 1.0,
        upsert: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => {
                settings.records = value()?.parse().map_err(|e| format!("--records: {e}"))?
            }
            "--tasks" => settings.tasks = value()?.parse().map_err(|e| format!("--tasks: {e}"))?,
            "--budget" => {
                settings.budget = value()?.parse().map_err(|e| format!("--budget: {e}"))?
            }
            "--latency-ms" => {
                let text = value()?;
                let (low, high) = text
                    .split_once('-')
                    .ok_or("--latency-ms takes LOW-HIGH, e.g. 50-150")?;
                let low = low.parse().map_err(|e| format!("--latency-ms: {e}"))?;
                let high = high.parse().map_err(|e| format!("--latency-ms: {e}"))?;
                settings.latency_ms = Some((low, high));
            }
            "--margin-ms" => {
                settings.margin_ms =
                    Some(value()?.parse().map_err(|e| format!("--margin-ms: {e}"))?)
            }
            "--upsert" => settings.upsert = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if settings.tasks == 0 || settings.records == 0 {
        return Err("--records and --tasks must be positive".into());
    }
    Ok(settings)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = parse_args()?;
    let mut emulator_config = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str());
    if let Some((low, high)) = settings.latency_ms {
        emulator_config = emulator_config.with_latency_ms(low..=high);
    }
    let emulator = emulator_config.start().await.map_err(|e| e.to_string())?;
    let table = emulator
        .create_table(
            BASE.as_str(),
            TableSpec::new(
                "Bench",
                vec![
                    FieldSpec::new("Name", "singleLineText"),
                    FieldSpec::new("pg_id", "singleLineText"),
                    FieldSpec::new("Score", "number")
                        .with_options(serde_json::json!({"precision": 2})),
                ],
            ),
        )
        .map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .map_err(|e| e.to_string())?;
    config.rate_limits.budget_share = settings.budget;
    if let Some(margin) = settings.margin_ms {
        config.rate_limits.safety_margin = Duration::from_millis(margin);
    }
    let client = AirtableClient::new(config).map_err(|e| e.to_string())?;

    let rows: Vec<Fields> = (0..settings.records)
        .map(|i| {
            Fields::new()
                .with("Name", format!("Record {i}"))
                .with("pg_id", i.to_string())
                .with("Score", i as f64 / 3.0)
        })
        .collect();
    let share = settings.records.div_ceil(settings.tasks);
    let started = Instant::now();
    let mut writers = Vec::new();
    for chunk in rows.chunks(share) {
        let chunk = chunk.to_vec();
        let bench = client.table(&BASE, &table.id);
        let upsert = settings.upsert;
        writers.push(tokio::spawn(async move {
            if upsert {
                bench
                    .upsert(
                        &chunk,
                        &["pg_id"],
                        UpdateMode::Merge,
                        WriteOptions::default(),
                    )
                    .await
                    .map(|o| o.records.len())
            } else {
                bench
                    .create(&chunk, WriteOptions::default())
                    .await
                    .map(|r| r.len())
            }
        }));
    }
    let mut written = 0;
    for writer in writers {
        match writer.await {
            Ok(Ok(count)) => written += count,
            Ok(Err(e)) => return Err(format!("a writer failed: {e}")),
            Err(e) => return Err(format!("a writer panicked: {e}")),
        }
    }
    let elapsed = started.elapsed();

    let stored = emulator
        .dump_table(BASE.as_str(), &table.id)
        .map_err(|e| e.to_string())?
        .len();
    let stats = emulator.stats();
    let metrics = client.metrics();
    let rate = written as f64 / elapsed.as_secs_f64();
    println!(
        "wrote {written} records ({stored} stored) with {} tasks in {:.2} s",
        settings.tasks,
        elapsed.as_secs_f64()
    );
    let base_stats = stats.base(BASE.as_str());
    println!(
        "requests: {} (by status: {:?})",
        base_stats.total, base_stats.by_status
    );
    println!("throughput: {rate:.1} records/s (Airtable's ceiling: 50)");
    println!(
        "429s: {} seen by the emulator, {} by the client",
        stats.rate_limited, metrics.rate_limited
    );
    println!(
        "mean request latency: {:.1} ms; waits for a pacing slot: {} ({:.1} s in all)",
        1_000.0 * metrics.latency.sum_seconds() / metrics.latency.count().max(1) as f64,
        metrics.token_waits,
        metrics.token_wait_seconds
    );
    let _ = emulator.shutdown().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    if stored != settings.records {
        return Err(format!("{stored} records stored, not {}", settings.records));
    }
    Ok(())
}
