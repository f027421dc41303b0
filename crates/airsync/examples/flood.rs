//! Flood benchmark of `airsync serve`: many connections at once sending
//! what an attacker without an account can send, while a monitor polls
//! `GET /api/health`. It starts a throwaway PostgreSQL and the given
//! `airsync` binary (`serve --no-worker`, production password hashing),
//! seeds users with real argon2id hashes, then runs each flood in turn:
//!
//! - `login`: a wrong password for one existing email, on every connection;
//! - `set-password`: made-up setup tokens;
//! - `valid-logins`: every connection signs in correctly as its own user,
//!   so that every request costs a real hash (the throttle does not stop
//!   these: they succeed).
//!
//! For each it prints the answers by status, the server's peak resident
//! memory while it ran, and the health check's latency (every 50 ms).
//!
//! ```text
//! cargo build --release -p airsync --bin airsync --example flood
//! target/release/examples/flood target/release/airsync [--connections 256] [--secs 12]
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

struct Options {
    binary: String,
    connections: usize,
    secs: u64,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!("usage: flood AIRSYNC_BINARY [--connections N] [--secs N]");
        std::process::exit(2);
    };
    let binary = args.next().unwrap_or_else(|| usage());
    let mut options = Options {
        binary,
        connections: 256,
        secs: 12,
    };
    let rest: Vec<String> = args.collect();
    for pair in rest.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| *v > 0);
        match (pair[0].as_str(), value) {
            ("--connections", Some(v)) => options.connections = v as usize,
            ("--secs", Some(v)) => options.secs = v,
            _ => usage(),
        }
    }
    options
}

/// Stops the server when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn start(binary: &str, database_url: &str) -> (Server, String) {
        let mut child = Command::new(binary)
            .args(["serve", "--no-worker", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env(
                "JWT_SECRET",
                "flood-benchmark-secret-flood-benchmark-secret",
            )
            .env("RUST_LOG", "warn")
            .env("AIRSYNC_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start airsync serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's first line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|url| url.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line of serve: {line:?}"))
            .to_owned();
        (Server(child), url)
    }

    /// Resident memory now, in bytes.
    fn resident(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }
}

#[derive(Default)]
struct Outcome {
    statuses: BTreeMap<u16, u64>,
    failed: u64,
    refused_without_retry_after: u64,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Starts a server and runs one flood of `connections` clients against it,
/// each sending the request that `request_to(url)` builds back to back for
/// `secs`, and reports.
async fn flood<M>(
    name: &str,
    database_url: &str,
    options: &Options,
    request_to: impl FnOnce(&str) -> M,
) -> bool
where
    M: Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let (server, url) = Server::start(&options.binary, database_url);
    let url = url.as_str();
    let start_mib = server.resident() as f64 / (1024.0 * 1024.0);
    let make = Arc::new(request_to(url));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let running = Arc::new(AtomicBool::new(true));
    let deadline = Instant::now() + Duration::from_secs(options.secs);
    let mut clients = Vec::new();
    for connection in 0..options.connections {
        let make = make.clone();
        let outcome = outcome.clone();
        // One client per connection, so each keeps its own.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let answer = make(&client, connection, n).send().await;
                n += 1;
                let mut outcome = outcome.lock().expect("outcome");
                match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        *outcome.statuses.entry(status).or_default() += 1;
                        if status == 503 && !response.headers().contains_key("retry-after") {
                            outcome.refused_without_retry_after += 1;
                        }
                    }
                    Err(_) => outcome.failed += 1,
                }
            }
        }));
    }
    // The monitor: health every 50 ms, and the server's memory.
    let monitor = {
        let running = running.clone();
        let health = format!("{url}/api/health");
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let mut latencies = Vec::new();
            let mut unhealthy = 0u64;
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.get(&health).send().await {
                    Ok(response) if response.status().is_success() => {}
                    _ => unhealthy += 1,
                }
                latencies.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (latencies, unhealthy)
        })
    };
    let mut peak = server.resident();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.resident());
    }
    for client in clients {
        let _ = client.await;
        peak = peak.max(server.resident());
    }
    running.store(false, Ordering::Relaxed);
    let (mut latencies, unhealthy) = monitor.await.expect("monitor");
    latencies.sort();
    let outcome = outcome.lock().expect("outcome");
    let total: u64 = outcome.statuses.values().sum();
    let faults: u64 = outcome
        .statuses
        .iter()
        .filter(|(status, _)| **status >= 500 && **status != 503)
        .map(|(_, count)| count)
        .sum();
    let peak_mib = peak as f64 / (1024.0 * 1024.0);
    let health_max = latencies.last().copied().unwrap_or_default();
    println!(
        "{name}: {total} answers in {} s over {} connections ({:.0}/s), statuses {:?}, \
         connection errors {}, 5xx other than 503: {faults}, 503 without Retry-After: {}; \
         server memory {start_mib:.1} MiB at the start, peak {peak_mib:.1} MiB; health: {} checks, p50 {:.1} ms, p99 {:.1} ms, \
         max {:.1} ms, unhealthy {unhealthy}",
        options.secs,
        options.connections,
        total as f64 / options.secs as f64,
        outcome.statuses,
        outcome.failed,
        outcome.refused_without_retry_after,
        latencies.len(),
        millis(percentile(&latencies, 0.5)),
        millis(percentile(&latencies, 0.99)),
        millis(health_max),
    );
    let met = peak_mib < 300.0
        && faults == 0
        && outcome.failed == 0
        && outcome.refused_without_retry_after == 0
        && health_max <= Duration::from_millis(100)
        && unhealthy == 0;
    println!("{name}: targets (< 300 MiB, health <= 100 ms, no 5xx but 503) met: {met}");
    met
}

#[tokio::main]
async fn main() {
    let options = options();
    let db = airsync_testkit::TestDb::new().await;
    let hash =
        airsync_api::accounts::hash_password("flood password 1", airsync_api::HashCost::Standard)
            .await
            .expect("hash");
    for n in 0..options.connections {
        sqlx::query("INSERT INTO users_pg (email, name, password_hash) VALUES ($1, 'Flood', $2)")
            .bind(format!("user{n}@example.com"))
            .bind(&hash)
            .execute(db.pool())
            .await
            .expect("user");
    }
    println!(
        "{} connections, {} s per flood, a fresh server for each",
        options.connections, options.secs
    );
    let mut met = true;
    met &= flood("login, wrong password", db.url(), &options, |url| {
        let login = format!("{url}/api/auth/login");
        move |client: &reqwest::Client, _, _| {
            client
                .post(&login)
                .json(&json!({ "email": "user0@example.com", "password": "a wrong guess" }))
        }
    })
    .await;
    met &= flood("set-password, made-up token", db.url(), &options, |url| {
        let set_password = format!("{url}/api/auth/set-password");
        move |client: &reqwest::Client, c, n| {
            client.post(&set_password).json(&json!({
                "setupToken": format!("guess-{c}-{n}"),
                "newPassword": "a new password 1"
            }))
        }
    })
    .await;
    met &= flood("login, right password", db.url(), &options, |url| {
        let login = format!("{url}/api/auth/login");
        move |client: &reqwest::Client, c, _| {
            client.post(&login).json(
                &json!({ "email": format!("user{c}@example.com"), "password": "flood password 1" }),
            )
        }
    })
    .await;
    if !met {
        std::process::exit(1);
    }
}
