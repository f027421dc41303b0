//! `airsync worker` processes against the emulator with Airtable's real
//! limits: several at once, and killed without warning.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig};
use airsync_emulator::{Emulator, EmulatorConfig, RateLimits};
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;

const TOKEN: &str = "patWORKERPROCESS0.0123";
const BASE: BaseId = BaseId::from_static("appWORKERPROCESS1");
const METRICS_TOKEN: &str = "worker-test-metrics-token-0000";

async fn start_emulator() -> Emulator {
    let emulator = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .start()
        .await
        .expect("emulator");
    emulator.set_limits(RateLimits::off());
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("url");
    config.rate_limits.per_base = 10_000;
    config.rate_limits.per_token = 10_000;
    let client = AirtableClient::new(config).expect("client");
    let mapping = Arc::new(Mapping::default_mapping().expect("mapping"));
    bootstrap(&client.base(&BASE), &mapping)
        .await
        .expect("bootstrap");
    emulator.set_limits(RateLimits::default());
    emulator.reset_stats();
    emulator
}

/// A worker process, killed if the test ends early so that a failed test
/// leaves no process behind.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(db: &TestDb, emulator: &Emulator) -> WorkerProcess {
    spawn_worker_with(db, emulator, &[], Stdio::null())
}

fn spawn_worker_with(
    db: &TestDb,
    emulator: &Emulator,
    args: &[&str],
    stdout: Stdio,
) -> WorkerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_airsync"));
    command
        .arg("worker")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", db.url())
        .env("AIRTABLE_API_URL", emulator.url())
        .env("AIRTABLE_TOKEN", TOKEN)
        .env("AIRTABLE_BASE_ID", BASE.as_str())
        .env("METRICS_TOKEN", METRICS_TOKEN)
        .env("WORKER_POLL_INTERVAL_MS", "100")
        .env("WORKER_LEASE_SECS", "5")
        .env("WORKER_RETRY_BASE_MS", "100")
        .env("AIRSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdout(stdout)
        .stderr(Stdio::null());
    airsync_pgtemp::kill_with_parent(&mut command);
    WorkerProcess(command.spawn().expect("spawn worker"))
}

fn stop(mut worker: WorkerProcess) {
    let child = &mut worker.0;
    // SAFETY: kill with a valid pid and signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "worker exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the worker did not stop within 30 s of SIGTERM");
}

async fn outbox_len(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
        .fetch_one(db.pool())
        .await
        .expect("count")
}

async fn wait_for_empty_outbox(db: &TestDb, within: Duration) {
    let deadline = Instant::now() + within;
    while outbox_len(db).await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn insert_users(db: &TestDb, count: usize, prefix: &str) {
    for i in 0..count {
        sqlx::query("INSERT INTO users_pg (email, name) VALUES ($1, $2)")
            .bind(format!("{prefix}{i}@example.com"))
            .bind(format!("{prefix} {i}"))
            .execute(db.pool())
            .await
            .expect("user");
    }
}

/// pg_ids of the Users table, failing on a duplicate.
fn distinct_pg_ids(emulator: &Emulator) -> HashSet<String> {
    let records = emulator.dump_table(BASE.as_str(), "Users").expect("dump");
    let mut seen = HashSet::new();
    for record in &records {
        let pg_id = record["fields"]["pg_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            seen.insert(pg_id.clone()),
            "record of {pg_id} is duplicated"
        );
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn three_worker_processes_on_one_base_send_every_event_once_without_a_429() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let workers: Vec<WorkerProcess> = (0..3).map(|_| spawn_worker(&db, &emulator)).collect();
    insert_users(&db, 60, "three").await;
    wait_for_empty_outbox(&db, Duration::from_secs(90)).await;
    for worker in workers {
        stop(worker);
    }
    assert_eq!(distinct_pg_ids(&emulator).len(), 60);
    assert_eq!(emulator.stats().base(BASE.as_str()).rate_limited, 0);
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(dead, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_killed_without_warning_leave_no_duplicate_and_lose_no_change() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    emulator.set_latency_ms(Some(150..=400));
    insert_users(&db, 80, "kill").await;
    // Kill each worker as soon as it has written something, mid-flight.
    for round in 0..3 {
        let before = emulator
            .dump_table(BASE.as_str(), "Users")
            .expect("dump")
            .len();
        let mut worker = spawn_worker(&db, &emulator);
        let deadline = Instant::now() + Duration::from_secs(60);
        while emulator
            .dump_table(BASE.as_str(), "Users")
            .expect("dump")
            .len()
            <= before
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: the worker wrote nothing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 * round as u64)).await;
        worker.0.kill().expect("SIGKILL");
        let _ = worker.0.wait();
        // Changes keep coming while no worker runs.
        sqlx::query("UPDATE users_pg SET name = name || ' (edited)' WHERE email LIKE $1")
            .bind(format!("kill{round}%"))
            .execute(db.pool())
            .await
            .expect("edit");
    }
    let survivor = spawn_worker(&db, &emulator);
    wait_for_empty_outbox(&db, Duration::from_secs(120)).await;
    stop(survivor);

    assert_eq!(distinct_pg_ids(&emulator).len(), 80);
    let names: Vec<(String, String)> = sqlx::query_as("SELECT id::text, name FROM users_pg")
        .fetch_all(db.pool())
        .await
        .expect("names");
    let records = emulator.dump_table(BASE.as_str(), "Users").expect("dump");
    for (id, name) in names {
        let record = records
            .iter()
            .find(|r| r["fields"]["pg_id"] == serde_json::json!(id))
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            record["fields"]["Name"],
            serde_json::json!(name),
            "a change was lost"
        );
    }
}

/// The address a worker started with `--metrics-listen` prints.
async fn metrics_address(worker: &mut WorkerProcess) -> String {
    use std::io::BufRead;
    let stdout = worker.0.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        }),
    )
    .await
    .expect("the worker printed no metrics address")
    .expect("reader")
    .expect("stdout");
    line.trim()
        .strip_prefix("airsync worker metrics on ")
        .and_then(|url| url.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_metrics_listen_serves_its_counters_and_health() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let mut worker = spawn_worker_with(
        &db,
        &emulator,
        &["--metrics-listen", "127.0.0.1:0"],
        Stdio::piped(),
    );
    let url = metrics_address(&mut worker).await;
    insert_users(&db, 5, "metrics").await;
    wait_for_empty_outbox(&db, Duration::from_secs(60)).await;

    let http = reqwest::Client::new();
    let health = http
        .get(format!("{url}/api/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let refused = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("scrape without the token");
    assert_eq!(refused.status().as_u16(), 401);
    let text = http
        .get(format!("{url}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let value = |sample: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    };
    assert_eq!(value("airsync_database_up "), 1.0);
    assert_eq!(value("airsync_outbox_events_sent_total "), 5.0);
    assert_eq!(value("airsync_outbox_pending{entity=\"user\"} "), 0.0);
    assert!(value(&format!("airsync_airtable_requests_total{{base=\"{BASE}\"")) >= 1.0);
    assert!(
        value("airsync_http_requests_total{method=\"GET\",route=\"/api/health\",status=\"200\"} ")
            >= 1.0
    );
    // The worker runs no API and no inbound sync.
    assert!(!text.contains("airsync_shadow_reads_compared_total"));
    assert!(!text.contains("airsync_inbound_payloads_applied_total"));
    stop(worker);
}

#[test]
fn a_bad_metrics_address_stops_the_worker_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_airsync"))
        .args(["worker", "--metrics-listen", "nowhere"])
        .env_clear()
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--metrics-listen"), "{stderr}");
}
