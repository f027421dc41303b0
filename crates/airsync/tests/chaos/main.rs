//! The chaos test: the API takes writes from several clients and the team
//! edits the base in Airtable, while worker processes are killed without
//! warning, the emulator answers 5xx bursts, a 429 storm and latency spikes,
//! the webhook expires once and PostgreSQL restarts once. After the sync
//! settles, `airsync validate-backfill` must find both sides equal, no
//! Airtable record may be duplicated, and every write the API acknowledged
//! must be there.
//!
//! Bounded for CI: `AIRSYNC_CHAOS_SECS` (default 25) seconds of chaos.
//! `scripts/soak.sh` runs it for longer (e.g. 1800 s) and then also reports
//! memory and the outbox table's size over time and checks both stay flat.
//! `AIRSYNC_CHAOS_SEED` repeats a run's random choices (the timing of a
//! run on a shared machine still differs).
//!
//! The second test (`history.rs`, `checker.rs`) puts the app and the team
//! on the same few personal goals under the same chaos, records every
//! operation, and checks the final state against the history: per field
//! the later change wins, a delete wins, both sides end equal.

mod checker;
mod checks;
mod clients;
mod database;
mod history;
mod processes;
mod schedule;
mod team;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig};
use airsync_emulator::{ClientEdit, Emulator, EmulatorConfig, RateLimits};
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::mapping::Mapping;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use clients::{Ledger, Reference};
use database::Database;
use processes::{free_port, wait_healthy, Process};
use schedule::{Chaos, Expiry};
use team::{Edited, TeamLedger};

pub const TOKEN: &str = "patCHAOSCHAOSCHAO.0123";
pub const BASE: BaseId = BaseId::from_static("appCHAOSCHAOSCHAO");
/// Opens `/metrics` of the processes under test.
pub const METRICS_TOKEN: &str = "chaos-test-metrics-token-0000";
const CLIENTS: usize = 3;
const WORKERS: usize = 2;

struct Settings {
    chaos: Duration,
    seed: u64,
    soak: bool,
}

/// A number from the environment, or `default`.
fn env_number<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `AIRSYNC_CHAOS_SEED`, or a random one.
fn seed_from_env() -> u64 {
    env_number("AIRSYNC_CHAOS_SEED", rand::random())
}

/// The two chaos tests take turns: each needs the machine's cores for its
/// own processes to settle in time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Settings {
    fn from_env() -> Settings {
        let secs: u64 = env_number("AIRSYNC_CHAOS_SECS", 25);
        let seed = seed_from_env();
        Settings {
            chaos: Duration::from_secs(secs.max(10)),
            seed,
            soak: secs >= 300,
        }
    }
}

/// The environment every airsync process of the test gets. Serve (inbound)
/// and the workers (outbound) each take the whole budget: they share the
/// base's 5 requests a second through the database.
fn environment(
    db: &Database,
    emulator: &Emulator,
    api_port: u16,
    budget: u32,
) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", db.url().to_owned()),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "3".into()),
        ("AIRTABLE_API_URL", emulator.url()),
        ("AIRTABLE_TOKEN", TOKEN.into()),
        ("AIRTABLE_BASE_ID", BASE.to_string()),
        ("AIRTABLE_RATE_BUDGET_PERCENT", budget.to_string()),
        ("AIRTABLE_REQUEST_TIMEOUT_SECS", "5".into()),
        (
            "AIRTABLE_WEBHOOK_URL",
            format!("http://127.0.0.1:{api_port}/api/sync/inbound"),
        ),
        (
            "JWT_SECRET",
            "chaos-test-secret-chaos-test-secret-0000".into(),
        ),
        ("JWT_ACCESS_TTL_SECS", "7200".into()),
        ("METRICS_TOKEN", METRICS_TOKEN.into()),
        ("SYNC_PAYLOAD_READER_INTERVAL_SECS", "2".into()),
        ("SYNC_INCREMENTAL_POLL_INTERVAL_SECS", "5".into()),
        ("SYNC_WEBHOOK_CHECK_INTERVAL_SECS", "5".into()),
        ("WORKER_POLL_INTERVAL_MS", "200".into()),
        ("WORKER_LEASE_SECS", "5".into()),
        ("WORKER_RETRY_BASE_MS", "200".into()),
        ("WORKER_RETRY_MAX_SECS", "3".into()),
        ("WORKER_MAX_ATTEMPTS", "100".into()),
        ("AIRSYNC_LOG_FORMAT", "json".into()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The team's reference content in Airtable: goals, days, methods (half of
/// them habits), a company. Returns the methods' records and names.
fn seed_airtable(emulator: &Emulator) -> Vec<Edited> {
    let create = |table: &str, records: Vec<Value>| {
        let edit = ClientEdit {
            create: records.into_iter().map(fields).collect(),
            ..ClientEdit::default()
        };
        emulator
            .edit_as_user(BASE.as_str(), table, edit)
            .expect("seed")
            .created
    };
    let goals = create(
        "Goals",
        (0..3)
            .map(|i| json!({"Name": format!("Goal {i}"), "Description": "Seeded", "Active": true}))
            .collect(),
    );
    let days = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    create(
        "Days",
        days.iter()
            .enumerate()
            .map(|(i, d)| json!({"Name": d, "Weekday": i + 1}))
            .collect(),
    );
    create(
        "Companies",
        vec![json!({"Name": "Chaos Coaching", "Code": "CHAOS", "Active": true})],
    );
    let names: Vec<String> = (0..6).map(|i| format!("Method {i}")).collect();
    let methods = create(
        "Methods",
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({"Name": n, "Duration (min)": 5 + i, "Is habit": i % 2 == 0,
                       "Goals": [goals[i % goals.len()]], "Active": true, "Sort order": i})
            })
            .collect(),
    );
    methods
        .into_iter()
        .zip(names)
        .map(|(record, name)| Edited {
            table: "Methods",
            record,
            name,
        })
        .collect()
}

async fn reference(db: &Database) -> Reference {
    let ids = |sql: &'static str| async move {
        sqlx::query_scalar::<_, Uuid>(sql)
            .fetch_all(db.pool())
            .await
            .expect("reference")
    };
    Reference {
        habits: ids("SELECT id FROM reference_methods_pg WHERE is_habit ORDER BY sort_order").await,
        methods: ids("SELECT id FROM reference_methods_pg ORDER BY sort_order").await,
        days: ids("SELECT id FROM reference_days_pg ORDER BY weekday").await,
        goals: ids("SELECT id FROM reference_goals_pg ORDER BY name").await,
    }
}

/// What both chaos tests stand on: their own PostgreSQL, the emulator with
/// the bootstrapped base and the team's reference content, brought into
/// PostgreSQL with `airsync sync full`.
pub struct Harness {
    pub logs: PathBuf,
    pub db: Database,
    pub emulator: Arc<Emulator>,
    pub mapping: Arc<Mapping>,
    pub api_port: u16,
    /// The seeded methods, which the team renames.
    pub methods: Vec<Edited>,
}

impl Harness {
    /// `name` names the log folder.
    pub async fn start(name: &str) -> Harness {
        let logs = std::env::temp_dir().join(format!("airsync-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&logs).expect("log folder");
        let db = Database::start().await;
        let emulator = Arc::new(
            EmulatorConfig::new()
                .with_token(TOKEN)
                .with_base(BASE.as_str())
                .without_limits()
                .start()
                .await
                .expect("emulator"),
        );
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
        let methods = seed_airtable(&emulator);
        let harness = Harness {
            logs,
            db,
            emulator,
            mapping,
            api_port: free_port(),
            methods,
        };
        let mut backfill = harness.env(100);
        backfill.push(("AIRTABLE_RATE_LIMIT_PER_BASE".into(), "1000".into()));
        backfill.push(("AIRTABLE_RATE_LIMIT_PER_TOKEN".into(), "1000".into()));
        checks::run_cli(&["sync", "full"], &backfill)
            .await
            .assert_success("sync full");
        harness
    }

    /// The environment of an airsync process with `budget` percent of the
    /// base's rate.
    pub fn env(&self, budget: u32) -> Vec<(String, String)> {
        environment(&self.db, &self.emulator, self.api_port, budget)
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// Airtable as it is (its limits, a little latency) and `serve
    /// --no-worker`, answering.
    pub async fn serve(&self) -> Process {
        self.emulator.set_limits(RateLimits::default());
        schedule::set_latency(&self.emulator, schedule::LATENCY);
        self.emulator.reset_stats();
        let listen = format!("127.0.0.1:{}", self.api_port);
        let args = ["serve", "--no-worker", "--listen", &listen];
        let mut serve = Process::spawn("serve", &args, &self.env(100), &self.logs);
        wait_healthy(&reqwest::Client::new(), &self.api(), &mut serve).await;
        serve
    }

    /// The chaos, with its workers started.
    pub fn chaos(&self, seed: u64, expiry: Expiry) -> Chaos {
        Chaos::new(
            self.emulator.clone(),
            self.env(100),
            self.logs.clone(),
            WORKERS,
            seed,
            expiry,
        )
    }

    /// `airsync validate-backfill`, as an operator would run it.
    pub async fn validate_backfill(&self) -> checks::CliOutput {
        let mut validate = self.env(100);
        validate.retain(|(k, _)| k != "AIRTABLE_WEBHOOK_URL");
        checks::run_cli(&["validate-backfill"], &validate).await
    }
}

/// Runs the chaos for `total` while the load runs; with `samples`, takes
/// a soak's samples too.
pub async fn run_chaos(
    chaos: &mut Chaos,
    total: Duration,
    db: &Database,
    mut samples: Option<(&mut checks::Samples, &Process)>,
) {
    let started = Instant::now();
    while started.elapsed() < total {
        chaos.tick(started.elapsed(), total, db).await;
        if let Some((samples, serve)) = samples.as_mut() {
            samples
                .take(started.elapsed(), serve, chaos.workers(), db)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contended_records_converge_to_per_field_last_writer_wins() {
    let _turn = ONE_AT_A_TIME.lock().await;
    history::run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_or_duplicated_through_kills_faults_an_expiry_and_a_restart() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let settings = Settings::from_env();
    println!(
        "chaos: seed {} (AIRSYNC_CHAOS_SEED), {} s of chaos",
        settings.seed,
        settings.chaos.as_secs()
    );
    // The base, its reference content, and PostgreSQL's copy of it.
    let harness = Harness::start("chaos").await;
    let db = &harness.db;
    let reference = reference(db).await;
    assert_eq!(
        reference.methods.len(),
        6,
        "the backfill brought the methods"
    );
    for i in 0..CLIENTS {
        airsync_api::create_user(
            db.pool(),
            &clients::email(i),
            &format!("Client {i}"),
            clients::PASSWORD,
            false,
        )
        .await
        .expect("client user");
    }

    // Airtable as it is: its limits, a little latency; serve and workers.
    let mut serve = harness.serve().await;
    let mut chaos = harness.chaos(settings.seed, Expiry::ClockJump);

    // Load and chaos.
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let team_ledger = Arc::new(Mutex::new(TeamLedger::default()));
    let mut load = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        load.spawn(clients::run(
            i,
            harness.api(),
            reference.clone(),
            ledger.clone(),
            stop.clone(),
            settings.seed + i as u64,
        ));
    }
    load.spawn(team::run(
        harness.emulator.clone(),
        BASE.to_string(),
        harness.methods.clone(),
        team_ledger.clone(),
        stop.clone(),
        settings.seed,
    ));
    let mut samples = checks::Samples::default();
    let sampling = settings.soak.then_some((&mut samples, &serve));
    run_chaos(&mut chaos, settings.chaos, db, sampling).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = load.join_next().await {
        done.expect("a load task panicked");
    }
    chaos.calm().await;

    // Settling: the outbox drains and the team's edits arrive.
    let settle_started = Instant::now();
    let team = team_ledger.lock().expect("ledger").records.clone();
    checks::wait_until_settled(
        db,
        &harness.emulator,
        &team,
        Duration::from_secs(240),
        &mut serve,
        &chaos,
    )
    .await;
    let settled_in = settle_started.elapsed();
    if settings.soak {
        // Shown even when a check below fails.
        samples.report();
    }
    chaos.stop_workers();
    serve.stop();

    // The proof.
    let report = harness.validate_backfill().await;
    report.assert_success("validate-backfill");
    checks::no_duplicates(&harness.emulator, &harness.mapping);
    // Every load task has ended: the ledgers are complete.
    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    checks::acknowledged_writes_are_there(db, &harness.emulator, &ledger).await;
    checks::no_dead_letters(db).await;
    let team_ledger = std::mem::take(&mut *team_ledger.lock().expect("ledger"));
    println!(
        "chaos: {} API writes acknowledged ({} refused, {} unanswered), {} team creates and {} renames",
        ledger.acknowledged, ledger.refused, ledger.unanswered, team_ledger.creates, team_ledger.renames
    );
    println!("chaos: {}", chaos.summary());
    println!(
        "chaos: settled {:.1} s after the chaos ended; validate-backfill found both sides equal; no duplicates",
        settled_in.as_secs_f64()
    );
    if settings.soak {
        samples.check();
    }
    let _ = std::fs::remove_dir_all(&harness.logs);
}
