//! Load benchmark of the API in `postgres_primary`: `GET /api/programs` and
//! `POST /api/habit-usage` at a fixed rate, open loop (requests leave on
//! schedule whether or not earlier ones have answered, and latency counts
//! from the scheduled time, so a stall is not hidden). Each route first gets
//! one second of the same rate as a warm-up (new pool connections, first
//! statements), reported on its own line and left out of the percentiles.
//!
//! It starts a throwaway PostgreSQL and the API in-process on a loopback
//! port, seeds users, programs and habits, then drives each route in turn:
//!
//! ```text
//! cargo run --release -p airsync-api --example load -- [--rate 500] [--secs 30] [--users 50]
//! cargo run --release -p airsync-api --example load -- --airtable-only [--rate 1] [--secs 30] [--users 5]
//! cargo run --release -p airsync-api --example load -- --post-only --rate 4000 --secs 10
//! ```
//!
//! Past what the machine sustains, the server refuses the excess with 503
//! and `Retry-After`; a second line per route gives the admitted requests'
//! latency apart, and the refusals.
//!
//! With `--airtable-only` the same data is pushed to an in-process Airtable
//! emulator (by the outbound worker) and the routes are driven with every
//! group in `airtable_only`, the emulator answering in 100..300 ms under
//! Airtable's limit of 5 requests/s per base.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_airtable::BaseId;
use airsync_api::{ApiConfig, AppState, HashCost};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

struct Options {
    rate: f64,
    secs: u64,
    users: usize,
    airtable_only: bool,
    post_only: bool,
    /// Measure what the machine sustains, then offer twice that.
    overload: bool,
}

fn options() -> Options {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let airtable_only = args.iter().any(|a| a == "--airtable-only");
    let overload = args.iter().any(|a| a == "--overload");
    let post_only = overload || args.iter().any(|a| a == "--post-only");
    args.retain(|a| a != "--airtable-only" && a != "--post-only" && a != "--overload");
    let mut options = Options {
        rate: if airtable_only { 1.0 } else { 500.0 },
        secs: 30,
        users: if airtable_only { 5 } else { 50 },
        airtable_only,
        post_only,
        overload,
    };
    for pair in args.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0);
        match (pair[0].as_str(), value) {
            ("--rate", Some(v)) => options.rate = v,
            ("--secs", Some(v)) => options.secs = v as u64,
            ("--users", Some(v)) => options.users = v as usize,
            _ => {
                eprintln!(
                    "usage: load [--airtable-only] [--post-only | --overload] [--rate N] [--secs N] [--users N]"
                );
                std::process::exit(2);
            }
        }
    }
    options
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    /// Latencies of the requests answered 2xx: those the server admitted.
    admitted: Vec<Duration>,
    refused_without_retry_after: u64,
    /// The slowest request: when it was scheduled (from the start) and how
    /// long it took, to tell a stall at the start from one later.
    slowest: (Duration, Duration),
    errors: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn drive<F>(name: &str, options: &Options, make: F)
where
    F: Fn(u64) -> reqwest::RequestBuilder,
{
    let tally = Arc::new(Mutex::new(Tally::default()));
    let warm_up = Arc::new(Mutex::new(Tally::default()));
    let interval = Duration::from_secs_f64(1.0 / options.rate);
    let total = (options.rate * options.secs as f64).round() as u64;
    // The first second at the same rate warms the route up (the pool's
    // connections, their prepared statements) and is reported apart.
    let warm = options.rate.round() as u64;
    let mut started = Instant::now();
    let mut handles = Vec::with_capacity((warm + total) as usize);
    for n in 0..warm + total {
        if n == warm {
            started = Instant::now();
        }
        let scheduled = if n < warm {
            started + interval.mul_f64(n as f64)
        } else {
            started + interval.mul_f64((n - warm) as f64)
        };
        tokio::time::sleep_until(scheduled.into()).await;
        let request = make(n);
        let tally = if n < warm {
            warm_up.clone()
        } else {
            tally.clone()
        };
        handles.push(tokio::spawn(async move {
            let outcome = request.send().await;
            let latency = scheduled.elapsed();
            let mut tally = tally.lock().await;
            tally.latencies.push(latency);
            if latency > tally.slowest.1 {
                tally.slowest = (scheduled - started, latency);
            }
            match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    *tally.statuses.entry(status).or_default() += 1;
                    if response.status().is_success() {
                        tally.admitted.push(latency);
                    }
                    if status == 503 && !response.headers().contains_key("retry-after") {
                        tally.refused_without_retry_after += 1;
                    }
                    if !response.status().is_success() {
                        tally.errors += 1;
                    }
                }
                Err(_) => tally.errors += 1,
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
    let elapsed = started.elapsed();
    let warm_up = warm_up.lock().await;
    println!(
        "{name}: warm-up of {warm} requests, max {:.2} ms, errors {}",
        warm_up.slowest.1.as_secs_f64() * 1e3,
        warm_up.errors
    );
    let mut tally = tally.lock().await;
    tally.latencies.sort();
    tally.admitted.sort();
    let sorted = &tally.latencies;
    println!(
        "{name}: {} requests in {:.1}s ({:.0}/s), p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (sent at {:.1} s), errors {}, statuses {:?}",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        percentile(sorted, 0.50).as_secs_f64() * 1e3,
        percentile(sorted, 0.90).as_secs_f64() * 1e3,
        percentile(sorted, 0.99).as_secs_f64() * 1e3,
        sorted.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        tally.slowest.0.as_secs_f64(),
        tally.errors,
        tally.statuses,
    );
    let refused = tally.statuses.get(&503).copied().unwrap_or(0);
    let faults: u64 = tally
        .statuses
        .iter()
        .filter(|(status, _)| **status >= 500 && **status != 503)
        .map(|(_, count)| count)
        .sum();
    println!(
        "{name}: admitted (2xx) {}, p50 {:.2} ms, p99 {:.2} ms; refused (503) {refused}, of them without Retry-After {}; other 5xx {faults}",
        tally.admitted.len(),
        percentile(&tally.admitted, 0.50).as_secs_f64() * 1e3,
        percentile(&tally.admitted, 0.99).as_secs_f64() * 1e3,
        tally.refused_without_retry_after,
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let db = airsync_testkit::TestDb::new().await;
    let settings = airsync_db::PoolSettings {
        max_connections: 16,
        ..airsync_db::PoolSettings::default()
    };
    let pool = airsync_db::connect(db.url(), &settings)
        .await
        .expect("pool");
    let mut config = ApiConfig::new("load-benchmark-secret-load-benchmark-secret");
    config.password_hash_cost = HashCost::InsecureFastForTests;
    // As `airsync serve` does: four requests at once per core, at most as
    // many as the pool has connections.
    config.admission.in_flight =
        (settings.max_connections as usize).min(airsync_api::AdmissionLimits::default().in_flight);
    config.admission.queued = 4 * config.admission.in_flight;
    // Every post a new (user, habit, day), so days go back further than the
    // week a client may backdate.
    config.usage_max_days_back = 1_000_000;
    let state = AppState::new(pool.clone(), config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(airsync_api::serve(listener, state, std::future::pending()));

    // Reference data: the week, two methods, two habits.
    let mut days = Vec::new();
    for weekday in 1..=7i16 {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_days_pg (name, weekday) VALUES ('d', $1) RETURNING id",
        )
        .bind(weekday)
        .fetch_one(&pool)
        .await
        .expect("day");
        days.push(id);
    }
    let method = |habit: bool| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "INSERT INTO reference_methods_pg (name, is_habit) VALUES ('m', $1) RETURNING id",
            )
            .bind(habit)
            .fetch_one(&pool)
            .await
            .expect("method")
        }
    };
    let methods = [method(false).await, method(false).await];
    let habits = [method(true).await, method(true).await];
    let hash =
        airsync_api::accounts::hash_password("load test password", HashCost::InsecureFastForTests)
            .await
            .expect("hash");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client");
    let mut tokens = Vec::new();
    for n in 0..options.users {
        let email = format!("user{n}@example.com");
        sqlx::query("INSERT INTO users_pg (email, password_hash) VALUES ($1, $2)")
            .bind(&email)
            .bind(&hash)
            .execute(&pool)
            .await
            .expect("user");
        let session: serde_json::Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({ "email": email, "password": "load test password" }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("session");
        let token = session["accessToken"].as_str().expect("token").to_owned();
        // Three programs each, so the list has something to page through.
        for (start, end) in [
            ("2024-01-01", "2024-03-31"),
            ("2024-04-01", "2024-06-30"),
            ("2024-07-01", "2024-09-30"),
        ] {
            let status = client
                .post(format!("{base}/api/programs"))
                .bearer_auth(&token)
                .json(&json!({ "name": "P", "methodIds": methods, "dayIds": [days[0], days[2], days[4]], "startDate": start, "endDate": end }))
                .send()
                .await
                .expect("program")
                .status();
            assert!(status.is_success(), "seeding a program answered {status}");
        }
        tokens.push(token);
    }
    println!(
        "seeded {} users; rate {}/s for {} s per route",
        options.users, options.rate, options.secs
    );

    // In airtable_only the emulator must outlive the run.
    let (base, _emulator) = if options.airtable_only {
        let (url, emulator) = airtable_only_server(&pool).await;
        (url, Some(emulator))
    } else {
        (base, None)
    };

    let today = chrono::Utc::now().date_naive();
    let users = options.users as u64;
    if !options.post_only {
        drive("GET /api/programs", &options, |n| {
            client
                .get(format!("{base}/api/programs"))
                .bearer_auth(&tokens[(n % users) as usize])
        })
        .await;
    }
    // Every request a new (user, habit, day): a real insert each time.
    let post = |n: u64| {
        let user = (n % users) as usize;
        let habit = habits[((n / users) % 2) as usize];
        let day = today - chrono::Duration::days((n / (users * 2)) as i64);
        client
            .post(format!("{base}/api/habit-usage"))
            .bearer_auth(&tokens[user])
            .json(&json!({ "methodId": habit, "usedOn": day.to_string() }))
    };
    let mut options = options;
    // The capacity run takes numbers far above the driven ones, so its rows
    // never collide with theirs.
    const CAPACITY_FROM: u64 = 10_000_000;
    if options.overload {
        let sustained = capacity(|n| post(CAPACITY_FROM + n)).await;
        if sustained < 1.0 {
            eprintln!("the capacity run had no request answered 2xx");
            std::process::exit(1);
        }
        options.rate = (2.0 * sustained).round();
        println!(
            "POST /api/habit-usage: sustained {sustained:.0}/s (64 clients back to back for 3 s); offering {:.0}/s",
            options.rate
        );
    }
    drive("POST /api/habit-usage", &options, post).await;
}

/// What the machine sustains: 64 clients posting back to back for 3 s,
/// after a second of the same as a warm-up; answers per second that were
/// not refused.
async fn capacity<F>(make: F) -> f64
where
    F: Fn(u64) -> reqwest::RequestBuilder + Sync,
{
    let next = std::sync::atomic::AtomicU64::new(0);
    let served = std::sync::atomic::AtomicU64::new(0);
    let run = |secs: f64, count: bool| {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let (make, next, served) = (&make, &next, &served);
        async move {
            let clients = (0..64).map(|_| async move {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let answer = make(n).send().await;
                    if count && answer.is_ok_and(|a| a.status().is_success()) {
                        served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
            futures_join(clients).await;
        }
    };
    run(1.0, false).await;
    run(3.0, true).await;
    served.load(std::sync::atomic::Ordering::Relaxed) as f64 / 3.0
}

/// Runs every future to its end, all at once, on this task.
async fn futures_join<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|future| future.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

const TOKEN: &str = "patLOADBENCHTOKEN.0123456789";
const BASE: BaseId = BaseId::from_static("appLOADBENCHBASE1");

/// Mirrors the reference rows into an emulated base, pushes everything else
/// there with the outbound worker, then starts a server with every group in
/// `airtable_only` and turns on Airtable's latency and limits.
async fn airtable_only_server(pool: &sqlx::PgPool) -> (String, airsync_emulator::Emulator) {
    use airsync_airtable::{AirtableClient, ClientConfig, Fields, WriteOptions};
    use airsync_api::{AirtableAccess, DataBackendMode, EndpointGroup};

    let emulator = airsync_emulator::EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .without_limits()
        .start()
        .await
        .expect("emulator");
    let client_with = |per_base: u32| {
        let mut config = ClientConfig::new(TOKEN)
            .with_api_url(&emulator.url())
            .expect("url");
        config.rate_limits.per_base = per_base;
        config.rate_limits.per_token = per_base.max(50);
        AirtableClient::new(config).expect("client")
    };
    let setup = client_with(10_000);
    let mapping = airsync_sync::mapping::Mapping::default_mapping().expect("mapping");
    airsync_sync::bootstrap::bootstrap(&setup.base(&BASE), &mapping)
        .await
        .expect("bootstrap");
    let days: Vec<(Uuid, i16)> = sqlx::query_as("SELECT id, weekday FROM reference_days_pg")
        .fetch_all(pool)
        .await
        .expect("days");
    let methods: Vec<(Uuid, bool)> =
        sqlx::query_as("SELECT id, is_habit FROM reference_methods_pg")
            .fetch_all(pool)
            .await
            .expect("methods");
    let rows = days
        .iter()
        .map(|(id, weekday)| {
            (
                "Days",
                "day",
                *id,
                Fields::new().with("Name", "d").with("Weekday", *weekday),
            )
        })
        .chain(methods.iter().map(|(id, habit)| {
            (
                "Methods",
                "method",
                *id,
                Fields::new()
                    .with("Name", "m")
                    .with("Is habit", *habit)
                    .with("Active", true),
            )
        }));
    for (table, entity, id, fields) in rows {
        let record = setup
            .table(&BASE, table)
            .create(&[fields], WriteOptions::default())
            .await
            .expect("reference record");
        airsync_sync::id_map::record_mapping(pool, entity, id, &record[0].id)
            .await
            .expect("id map");
    }
    let worker = airsync_sync::worker::Worker::new(
        pool.clone(),
        Arc::new(mapping.clone()),
        airsync_sync::airtable_writer::AirtableWriter::new(setup.clone(), BASE),
        airsync_sync::worker::WorkerSettings::new(BASE),
    );
    loop {
        worker.run_once().await.expect("worker");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
            .fetch_one(pool)
            .await
            .expect("outbox");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emulator.set_latency_ms(Some(100..=300));
    emulator.set_limits(airsync_emulator::RateLimits::default());
    let mut config = ApiConfig::new("load-benchmark-secret-load-benchmark-secret");
    config.password_hash_cost = HashCost::InsecureFastForTests;
    config.airtable = Some(AirtableAccess {
        client: client_with(5),
        base_id: BASE,
        mapping,
    });
    config.backends = EndpointGroup::ALL
        .into_iter()
        .map(|group| (group, DataBackendMode::AirtableOnly))
        .collect();
    let state = AppState::new(pool.clone(), config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(airsync_api::serve(listener, state, std::future::pending()));
    println!("pushed the data to the emulated base; airtable_only, 100..300 ms per Airtable request, 5 requests/s");
    (url, emulator)
}
