//! Measures the emulator: records held (resident memory with 100,000
//! records) and small list/get requests per second with limits off.
//!
//! Usage: `bench [PATH_TO_airsync] [SECONDS] [CONNECTIONS]`; see
//! `scripts/bench-emulator.sh`, which builds everything in release mode.
//! The emulator runs as its own process so that its memory is measured
//! alone; every address used is on 127.0.0.1 and the load loop stops by
//! itself after SECONDS.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "patBenchmark";
const BASE: &str = "appBenchmark00001";
const RECORDS: usize = 100_000;
const PER_EDIT: usize = 5_000;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Kills the emulator process however the benchmark ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_rss_mib(pid: u32) -> Result<f64, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS line")?;
    Ok(kb / 1024.0)
}

fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn load(url: &str, http: &reqwest::Client) -> Result<Vec<String>, Failure> {
    let table = json!({"name": "People", "fields": [
        {"name": "Name", "type": "singleLineText"},
        {"name": "Email", "type": "email"},
        {"name": "Age", "type": "number", "options": {"precision": 0}},
        {"name": "Active", "type": "checkbox"},
        {"name": "Joined", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
    ]});
    http.post(format!("{url}/v0/meta/bases/{BASE}/tables"))
        .bearer_auth(TOKEN)
        .json(&table)
        .send()
        .await?
        .error_for_status()?;
    let mut ids = Vec::with_capacity(RECORDS);
    for chunk in 0..RECORDS / PER_EDIT {
        let create: Vec<Value> = (0..PER_EDIT)
            .map(|i| {
                let n = chunk * PER_EDIT + i;
                json!({"Name": format!("Person {n}"), "Email": format!("p{n}@example.com"), "Age": n % 90, "Active": n.is_multiple_of(2), "Joined": "2024-05-01"})
            })
            .collect();
        let answer: Value = http
            .post(format!("{url}/_emulator/bases/{BASE}/tables/People/edit"))
            .json(&json!({"create": create}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let created = answer["created"].as_array().ok_or("no created ids")?;
        ids.extend(created.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    Ok(ids)
}

async fn hammer(
    url: String,
    ids: Arc<Vec<String>>,
    seconds: u64,
    connections: usize,
) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap_or_default();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (url, ids, http, ok, failed) = (
            url.clone(),
            ids.clone(),
            http.clone(),
            ok.clone(),
            failed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                i = i.wrapping_mul(31).wrapping_add(7) % ids.len().max(1);
                let target = if i % 2 == 0 {
                    format!("{url}/v0/{BASE}/People/{}", ids[i])
                } else {
                    format!("{url}/v0/{BASE}/People?pageSize=10")
                };
                let answered = match http.get(target).bearer_auth(TOKEN).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                let counter = if answered { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/airsync".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(&binary)
        .args(["airtable", "emulator"])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--token",
            TOKEN,
            "--base",
            BASE,
            "--control",
        ])
        .args(["--rate-limit-per-base", "0", "--rate-limit-per-token", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let guard = Guard(child);
    let pid = guard.0.id();
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{url}/_emulator/stats"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = vm_rss_mib(pid)?;
    let started = Instant::now();
    let ids = load(&url, &http).await?;
    println!(
        "loaded {} records in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let loaded = vm_rss_mib(pid)?;
    println!(
        "VmRSS: {idle:.1} MiB empty, {loaded:.1} MiB with {} records",
        ids.len()
    );
    let (ok, failed) = hammer(url, Arc::new(ids), seconds, connections).await;
    let rate = ok as f64 / seconds as f64;
    println!("{ok} requests in {seconds} s over {connections} connections: {rate:.0} requests/s ({failed} failed)");
    println!("VmRSS after the load: {:.1} MiB", vm_rss_mib(pid)?);
    drop(guard);
    Ok(())
}
