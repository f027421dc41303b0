//! The HTTP surface of `airsync serve`: health, metrics, request ids and the
//! ops page's endpoints, against a real PostgreSQL (and the emulator where
//! the sync is involved).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync::server::Services;
use airsync_airtable::BaseId;
use airsync_sync::inbound::{reconcile, InboundContext, ReconcileOptions};
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

const SECRET: &str = "serve-test-secret-serve-test-secret-0000";
const METRICS_TOKEN: &str = "serve-test-metrics-token-0000";

struct Running {
    url: String,
    http: reqwest::Client,
    services: Arc<Services>,
    config: airsync::config::Config,
    stop_signal: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), airsync::cli::CliError>>,
}

/// The process as `serve` builds it (`airsync::app::App`), without
/// Airtable, on a free port.
async fn start(pool: PgPool) -> Running {
    start_with(pool, &[]).await
}

/// [`start`] with more configuration; the first of two values given for a
/// variable counts.
async fn start_with(pool: PgPool, vars: &[(&str, String)]) -> Running {
    start_parts(pool, vars, airsync::app::Parts::default()).await
}

/// [`start_with`], running only `parts` beside the API.
async fn start_parts(pool: PgPool, vars: &[(&str, String)], parts: airsync::app::Parts) -> Running {
    let config = airsync::config::Config::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .or(match name {
                "JWT_SECRET" => Some(SECRET.into()),
                "METRICS_TOKEN" => Some(METRICS_TOKEN.into()),
                _ => None,
            })
    })
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = airsync::app::App::build(&config, pool, listener, parts)
        .await
        .expect("the process");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    Running {
        url: format!("http://{}", app.address()),
        http: reqwest::Client::new(),
        services: app.services().clone(),
        config,
        stop_signal: stop,
        serving: tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        })),
    }
}

/// [`start_parts`], syncing with the emulator's base [`BASE`]. Answers the
/// process and its inbound sync.
async fn start_synced(
    pool: PgPool,
    emulator: &airsync_emulator::Emulator,
    vars: &[(&str, String)],
    parts: airsync::app::Parts,
) -> (Running, InboundContext) {
    let mut vars = vars.to_vec();
    vars.extend([
        ("AIRTABLE_TOKEN", TOKEN.to_owned()),
        ("AIRTABLE_BASE_ID", BASE.to_string()),
        ("AIRTABLE_API_URL", emulator.url()),
    ]);
    let running = start_parts(pool, &vars, parts).await;
    let inbound = running.services.inbound.clone().expect("the inbound sync");
    (running, inbound)
}

/// A TCP relay between a process and the test's database, which the test
/// can cut: to the process, the database then stops answering.
struct DatabaseRelay {
    address: SocketAddr,
    relaying: tokio::task::JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DatabaseRelay {
    async fn to(db: &TestDb) -> DatabaseRelay {
        let options: PgConnectOptions = db.url().parse().expect("database url");
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let relaying = tokio::spawn({
            let connections = connections.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let target = target.clone();
                    let connection = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections
                        .lock()
                        .expect("connections")
                        .push(connection.abort_handle());
                }
            }
        });
        DatabaseRelay {
            address,
            relaying,
            connections,
        }
    }

    /// A pool of the test's database, through the relay.
    fn pool(&self, db: &TestDb) -> PgPool {
        let options: PgConnectOptions = db.url().parse().expect("database url");
        PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(
                options
                    .host(&self.address.ip().to_string())
                    .port(self.address.port()),
            )
    }

    /// Closes every connection and refuses new ones.
    async fn cut(self) {
        self.relaying.abort();
        let _ = self.relaying.await;
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }
}

impl Running {
    /// Stops the process as a signal would, and waits until it has.
    async fn stop(self) {
        let _ = self.stop_signal.send(());
        self.serving
            .await
            .expect("join")
            .expect("served and stopped");
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("request");
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let text = answer.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    /// The process's metrics, as a scraper with the metrics token reads them.
    async fn scrape(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    }

    async fn admin_token(&self, pool: &PgPool) -> String {
        self.token_of(pool, "ops@example.com", true).await
    }

    /// Makes a user (an admin or not) and answers its access token.
    async fn token_of(&self, pool: &PgPool, email: &str, admin: bool) -> String {
        airsync_api::create_user(pool, email, "Ops", "correct horse battery staple", admin)
            .await
            .expect("user");
        let answer: Value = self
            .http
            .post(format!("{}/api/auth/login", self.url))
            .json(&json!({ "email": email, "password": "correct horse battery staple" }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        answer["accessToken"].as_str().expect("token").to_owned()
    }
}

async fn plant_dead_letter(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, http_status, airtable_error_type, airtable_error_message, first_enqueued_at)
         VALUES (1, 'user', gen_random_uuid(), 'upsert', 'k', 1, 'rejected', 'PATCH answered 422', 422,
                 'INVALID_VALUE_FOR_COLUMN', 'Field \"Level\" cannot accept the provided value', now())
         RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("dead letter")
}

#[tokio::test]
async fn health_is_200_while_postgres_answers_and_503_within_a_second_when_it_does_not() {
    let db = TestDb::new().await;
    let up = start(db.pool().clone()).await;
    let (status, body, _) = up.get("/api/health", None).await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));

    // A process whose database stops answering.
    let relay = DatabaseRelay::to(&db).await;
    let down = start(relay.pool(&db)).await;
    let (status, _, _) = down.get("/api/health", None).await;
    assert_eq!(status, 200, "through the relay, before the cut");
    relay.cut().await;
    for path in ["/api/health", "/api/health/detailed"] {
        let started = Instant::now();
        let (status, body, _) = down.get(path, Some(METRICS_TOKEN)).await;
        assert_eq!(status, 503, "{path}: {body}");
        if path == "/api/health" {
            // Public: it says nothing of why.
            assert_eq!(body, json!({ "status": "unavailable" }));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn metrics_and_detailed_health_answer_the_metrics_token_or_an_admin_only() {
    let db = TestDb::new().await;
    let running = start(db.pool().clone()).await;
    let user_token = running.token_of(db.pool(), "ann@example.com", false).await;
    let admin_token = running.admin_token(db.pool()).await;
    for path in ["/metrics", "/api/health/detailed"] {
        for refused in [None, Some("a-wrong-token"), Some(user_token.as_str())] {
            let (status, body, _) = running.get(path, refused).await;
            assert_eq!(status, 401, "{path} with {refused:?}: {body}");
            assert_eq!(body["error"]["code"], json!("unauthorized"));
        }
        for allowed in [METRICS_TOKEN, admin_token.as_str()] {
            let answer = running
                .http
                .get(format!("{}{path}", running.url))
                .bearer_auth(allowed)
                .send()
                .await
                .expect("request");
            assert_eq!(answer.status().as_u16(), 200, "{path}");
        }
    }
    // Liveness stays public.
    let (status, _, _) = running.get("/api/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn detailed_health_reports_a_planted_dead_letter_and_the_outbox() {
    let db = TestDb::new().await;
    plant_dead_letter(db.pool()).await;
    sqlx::query("INSERT INTO users_pg (email) VALUES ('waiting@example.com')")
        .execute(db.pool())
        .await
        .expect("user");
    let running = start(db.pool().clone()).await;
    let (status, body, _) = running
        .get("/api/health/detailed", Some(METRICS_TOKEN))
        .await;
    // Degraded is not ready: 503, as the legacy endpoint answered.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], json!("degraded"));
    assert_eq!(
        body["reasons"],
        json!(["1 change(s) in the dead-letter queue"])
    );
    assert_eq!(body["sync"]["deadLetters"], json!(1));
    assert_eq!(body["sync"]["outbox"]["pending"], json!(1));
    assert!(
        body["sync"]["outbox"]["oldestPendingSeconds"].is_number(),
        "{body}"
    );
    assert_eq!(body["database"]["ok"], json!(true));
    assert_eq!(body["dead_letter_count"], json!(1));
    // Liveness does not care.
    let (status, _, _) = running.get("/api/health", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn detailed_health_serves_the_legacy_backends_keys_beside_its_own() {
    let db = TestDb::new().await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        sqlx::query("INSERT INTO users_pg (email) VALUES ($1)")
            .bind(email)
            .execute(db.pool())
            .await
            .expect("user");
    }
    // One of the three events is in a worker's hands, and the oldest is a
    // minute old.
    sqlx::query(
        "UPDATE sync_outbox SET state = 'leased', lease_owner = 'w', lease_expires_at = now() + interval '1 minute'
          WHERE id = (SELECT min(id) FROM sync_outbox)",
    )
    .execute(db.pool())
    .await
    .expect("lease");
    sqlx::query("UPDATE sync_outbox SET created_at = now() - interval '60 seconds' WHERE id = (SELECT max(id) FROM sync_outbox)")
        .execute(db.pool())
        .await
        .expect("age");
    let running = start(db.pool().clone()).await;
    let (status, body, _) = running
        .get("/api/health/detailed", Some(METRICS_TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], json!("ok"));
    assert_eq!(body["reasons"], json!([]));
    assert_eq!(body["db"], json!("ok"));
    assert_eq!(
        body["outbox_pending"],
        json!(2),
        "leased events are not pending"
    );
    assert_eq!(body["sync"]["outbox"]["inFlight"], json!(1));
    let oldest = body["outbox_oldest_seconds"].as_f64().expect("a number");
    assert!((60.0..120.0).contains(&oldest), "{oldest}");
    assert_eq!(body["dead_letter_count"], json!(0));
    assert_eq!(body["last_full_sync"], Value::Null, "no reconcile yet");

    // Every table reconciled: the earliest end is the last full sync.
    let tables = Mapping::default_mapping().expect("mapping");
    for (n, entity) in tables.entities().iter().enumerate() {
        let finished = format!("2026-01-0{}T10:00:00Z", 1 + n % 2);
        sqlx::query("INSERT INTO sync_checkpoint (name, value) VALUES ($1, $2)")
            .bind(format!("inbound:reconcile:{}", entity.name))
            .bind(json!({
                "started_at": "2026-01-01T09:00:00Z", "finished_at": finished,
                "records": 0, "deleted": 0, "refused_deletes": 0,
            }))
            .execute(db.pool())
            .await
            .expect("checkpoint");
    }
    let (_, body, _) = running
        .get("/api/health/detailed", Some(METRICS_TOKEN))
        .await;
    assert_eq!(body["last_full_sync"], json!("2026-01-01T10:00:00Z"));
    assert_eq!(
        body["sync"]["inbound"]["lastFullReconcileAt"],
        json!("2026-01-01T10:00:00Z")
    );
    // A table made due again (after a webhook's gap): no full sync to show.
    sqlx::query(
        "UPDATE sync_checkpoint SET value = jsonb_set(value, '{finished_at}', '\"1970-01-01T00:00:00Z\"')
          WHERE name = 'inbound:reconcile:user'",
    )
    .execute(db.pool())
    .await
    .expect("due");
    let (_, body, _) = running
        .get("/api/health/detailed", Some(METRICS_TOKEN))
        .await;
    assert_eq!(body["last_full_sync"], Value::Null);

    // The database gone: 503 and the legacy key says so.
    db.pool().close().await;
    let (status, body, _) = running
        .get("/api/health/detailed", Some(METRICS_TOKEN))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["db"], json!("unavailable"));
}

#[tokio::test]
async fn every_answer_carries_the_request_id_given_or_made() {
    let db = TestDb::new().await;
    let running = start(db.pool().clone()).await;
    let given = running
        .http
        .get(format!("{}/api/health", running.url))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    let (_, _, headers) = running.get("/api/programs", None).await;
    let made = headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(made.len(), 36, "a UUID is made when none is given: {made}");
}

#[tokio::test]
async fn ops_endpoints_answer_admins_only_and_replay_a_dead_letter() {
    let db = TestDb::new().await;
    let letter = plant_dead_letter(db.pool()).await;
    let running = start(db.pool().clone()).await;
    let (status, _, _) = running.get("/ops/api/state", None).await;
    assert_eq!(status, 401);
    let (status, page, _) = running.get("/ops", None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("airsync ops")));

    let token = running.admin_token(db.pool()).await;
    let (status, state, _) = running.get("/ops/api/state", Some(&token)).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["deadLetters"][0]["id"], json!(letter));
    assert_eq!(
        state["deadLetters"][0]["airtableErrorType"],
        json!("INVALID_VALUE_FOR_COLUMN")
    );
    assert!(state["backends"].is_array() && state["tables"].is_array());

    let replay = running
        .http
        .post(format!(
            "{}/ops/api/dead-letters/{letter}/replay",
            running.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 200);
    let (_, state, _) = running.get("/ops/api/state", Some(&token)).await;
    assert_eq!(state["deadLetters"], json!([]));
    let again = running
        .http
        .post(format!(
            "{}/ops/api/dead-letters/{letter}/purge",
            running.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("purge");
    assert_eq!(again.status().as_u16(), 404);
    let bad = running
        .http
        .post(format!("{}/ops/api/dead-letters/nope/replay", running.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("bad id");
    assert_eq!(bad.status().as_u16(), 400);
}

const TOKEN: &str = "patMETRICSTEST000.0123";
const BASE: BaseId = BaseId::from_static("appMETRICSTEST001");

/// A database and an emulator whose base was bootstrapped; from then on the
/// emulator keeps Airtable's real limits.
async fn synced_setup() -> (TestDb, airsync_emulator::Emulator) {
    use airsync_airtable::{AirtableClient, ClientConfig};
    use airsync_emulator::{EmulatorConfig, RateLimits};

    let db = TestDb::new().await;
    let emulator = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .start()
        .await
        .expect("emulator");
    emulator.set_limits(RateLimits::off());
    let mut fast = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("url");
    fast.rate_limits.per_base = 10_000;
    airsync_sync::bootstrap::bootstrap(
        &AirtableClient::new(fast).expect("client").base(&BASE),
        &Mapping::default_mapping().expect("mapping"),
    )
    .await
    .expect("bootstrap");
    emulator.set_limits(RateLimits::default());
    (db, emulator)
}

/// Waits until `query` (a count) answers `want`.
async fn wait_for_count(pool: &PgPool, query: &str, want: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count: i64 = sqlx::query_scalar(query)
            .fetch_one(pool)
            .await
            .expect("count");
        if count == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {count}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the process's outbox is empty: its worker has pushed every
/// change.
async fn wait_until_pushed(pool: &PgPool) {
    wait_for_count(
        pool,
        "SELECT count(*) FROM sync_outbox",
        0,
        "changes still wait",
    )
    .await;
}

/// The configuration under which the inbound sync runs only what a test
/// asks of it: the first incremental poll at start (which, with no
/// checkpoint yet, only marks where the next would begin), then none for an
/// hour, and no scheduled reconcile.
fn inbound_on_demand() -> Vec<(&'static str, String)> {
    vec![
        ("SYNC_INCREMENTAL_POLL_INTERVAL_SECS", "3600".into()),
        ("FULL_AIRTABLE_POLL_SYNC_ENABLED", "false".into()),
    ]
}

/// Waits until the first incremental poll of the process has marked every
/// table.
async fn wait_for_first_poll(pool: &PgPool) {
    let tables = Mapping::default_mapping()
        .expect("mapping")
        .entities()
        .len() as i64;
    wait_for_count(
        pool,
        "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:poll:%'",
        tables,
        "tables polled",
    )
    .await;
}

/// A process syncing with the emulator's base without its own worker, as
/// `serve --no-worker` runs beside an `airsync worker`: the test pushes the
/// app's changes with [`push`] when it wants them sent.
const NO_WORKER: airsync::app::Parts = airsync::app::Parts { worker: false };

/// One batch of the outbox pushed by the worker `airsync worker` would run
/// beside `running`.
async fn push(db: &TestDb, running: &Running) {
    let base = running.config.airtable.base_id.clone().expect("a base");
    let worker = airsync::app::outbound_worker(
        &running.config,
        db.pool(),
        &running.services.mapping,
        running.services.airtable.as_ref().expect("a client"),
        &base,
    );
    worker.run_once().await.expect("push");
}

/// A user that both sides rename, in a process it starts with
/// [`start_synced`] and [`NO_WORKER`] (its inbound sync on demand): pushed
/// to Airtable and backfilled, then renamed to `names.0` in the app and,
/// before that is pushed and a second later, to `names.1` by the team (with
/// `creates` made in the same edit); a reconcile of the users then keeps
/// Airtable's later name and logs the conflict. Answers the process, its
/// inbound context, the row and its record.
async fn user_renamed_on_both_sides(
    db: &TestDb,
    emulator: &airsync_emulator::Emulator,
    names: (&str, &str),
    creates: Vec<Value>,
) -> (Running, InboundContext, uuid::Uuid, String) {
    use airsync_emulator::{ClientEdit, RecordPatch};

    let (running, ctx) =
        start_synced(db.pool().clone(), emulator, &inbound_on_demand(), NO_WORKER).await;
    wait_for_first_poll(db.pool()).await;

    let row: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO users_pg (email, name) VALUES ('both@example.com', 'Before') RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .expect("user");
    push(db, &running).await;
    let record: String = sqlx::query_scalar(
        "SELECT airtable_id FROM airtable_id_map WHERE entity = 'user' AND row_id = $1",
    )
    .bind(row)
    .fetch_one(db.pool())
    .await
    .expect("record");
    let users = ReconcileOptions {
        table: Some("user".into()),
        force: false,
    };
    reconcile(&ctx, &users).await.expect("backfill");
    sqlx::query("UPDATE users_pg SET name = $2 WHERE id = $1")
        .bind(row)
        .bind(names.0)
        .execute(db.pool())
        .await
        .expect("rename");
    // Airtable's modification times are compared by the second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fields = |value: Value| value.as_object().cloned().expect("object");
    emulator
        .edit_as_user(
            BASE.as_str(),
            "Users",
            ClientEdit {
                update: vec![RecordPatch {
                    id: record.clone(),
                    fields: fields(json!({ "Name": names.1 })),
                }],
                create: creates.into_iter().map(fields).collect(),
                ..Default::default()
            },
        )
        .expect("team edits");
    reconcile(&ctx, &users).await.expect("reconcile");
    (running, ctx, row, record)
}

#[tokio::test]
async fn a_worker_stopped_by_a_base_without_the_mapped_tables_shows_in_the_detailed_health() {
    use airsync_emulator::EmulatorConfig;

    let db = TestDb::new().await;
    // A base nobody bootstrapped: none of the mapped tables is there.
    let emulator = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .start()
        .await
        .expect("emulator");
    let (running, _) = start_synced(
        db.pool().clone(),
        &emulator,
        &inbound_on_demand(),
        Default::default(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body, _) = running
            .get("/api/health/detailed", Some(METRICS_TOKEN))
            .await;
        if body["stoppedParts"]["outbound worker"].is_string() {
            assert_eq!(status, 503, "{body}");
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "the worker never stopped: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let error = body["stoppedParts"]["outbound worker"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("Users"), "names what is missing: {error}");
    assert_eq!(body["status"], json!("degraded"));
    assert_eq!(
        body["reasons"],
        json!([format!("the outbound worker stopped: {error}")])
    );
    // The process keeps serving, and its ops page says the same.
    let token = running.admin_token(db.pool()).await;
    let (status, state, _) = running.get("/ops/api/state", Some(&token)).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["stoppedParts"], body["stoppedParts"]);
    running.stop().await;
}

#[tokio::test]
async fn metrics_after_a_sync_show_every_family_with_plausible_values() {
    let (db, emulator) = synced_setup().await;
    for i in 0..12 {
        sqlx::query("INSERT INTO users_pg (email) VALUES ($1)")
            .bind(format!("m{i}@example.com"))
            .execute(db.pool())
            .await
            .expect("user");
    }
    plant_dead_letter(db.pool()).await;
    let (running, _) = start_synced(
        db.pool().clone(),
        &emulator,
        &inbound_on_demand(),
        Default::default(),
    )
    .await;
    wait_until_pushed(db.pool()).await;
    wait_for_first_poll(db.pool()).await;
    // The users' last poll, 42 s ago (written anew: an update stamps the
    // time of the update); a reconcile just done.
    sqlx::query(
        "WITH polled AS (DELETE FROM sync_checkpoint WHERE name = 'inbound:poll:user' RETURNING value)
         INSERT INTO sync_checkpoint (name, value, updated_at)
         SELECT 'inbound:poll:user', value, now() - interval '42 seconds' FROM polled",
    )
    .execute(db.pool())
    .await
    .expect("poll checkpoint");
    sqlx::query(
        "INSERT INTO sync_checkpoint (name, value, updated_at)
         VALUES ('inbound:reconcile:user', '{}', now())",
    )
    .execute(db.pool())
    .await
    .expect("reconcile checkpoint");
    running.get("/api/health", None).await;

    // The worker counts a batch once its answer is recorded, a moment after
    // the outbox shows it sent: scrape until the count is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = running.scrape().await;
        if text
            .lines()
            .any(|l| l == "airsync_outbox_events_sent_total 12")
            || Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let value = |sample: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    };
    assert_eq!(value("airsync_database_up "), 1.0);
    assert_eq!(value("airsync_outbox_events_sent_total "), 12.0);
    assert_eq!(value("airsync_dead_letters{entity=\"user\"} "), 1.0);
    assert_eq!(value("airsync_outbox_pending{entity=\"user\"} "), 0.0);
    assert!(value(&format!("airsync_airtable_requests_total{{base=\"{BASE}\"")) >= 2.0);
    assert_eq!(value("airsync_airtable_rate_limited_total "), 0.0);
    let lag = value("airsync_inbound_lag_seconds{table=\"user\"} ");
    assert!((41.0..120.0).contains(&lag), "lag {lag}");
    assert!(value("airsync_reconcile_last_completed_timestamp_seconds{table=\"user\"} ") > 1.7e9);
    assert!(
        value("airsync_http_requests_total{method=\"GET\",route=\"/api/health\",status=\"200\"} ")
            >= 1.0
    );
    for family in [
        "airsync_http_request_duration_seconds",
        "airsync_outbox_oldest_pending_seconds",
        "airsync_outbox_events_retried_total",
        "airsync_outbox_events_dead_lettered_total",
        "airsync_airtable_token_waits_total",
        "airsync_airtable_request_duration_seconds",
        "airsync_shadow_read_differences_total",
        "airsync_inbound_conflicts_total",
        "airsync_inbound_echoes_suppressed_total",
    ] {
        // OpenMetrics: a counter's family is named without `_total`.
        let family = family.strip_suffix("_total").unwrap_or(family);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    assert_eq!(value("airsync_user_provisioning_seconds_count "), 0.0);
    assert_eq!(
        value("airsync_user_provisioning_seconds_bucket{le=\"15.0\"} "),
        0.0,
        "a bucket bound at the 15 s objective"
    );
    assert_eq!(
        value("airsync_reconcile_records_seen_total{table=\"user\"} "),
        0.0
    );
    assert_eq!(value("airsync_reconcile_running{table=\"user\"} "), 0.0);
    every_referenced_metric_is_exported(&text);
}

#[tokio::test]
async fn an_inbound_conflict_and_a_provisioned_user_show_on_the_ops_endpoints_and_in_metrics() {
    let (db, emulator) = synced_setup().await;
    // The app renames the user, then the team does, later: a conflict that
    // Airtable's later change wins. And the team creates a user.
    let (running, _ctx, row, record) = user_renamed_on_both_sides(
        &db,
        &emulator,
        ("App", "Team"),
        vec![json!({"Email": "new@example.com", "Name": "New"})],
    )
    .await;
    let name: String = sqlx::query_scalar("SELECT name FROM users_pg WHERE id = $1")
        .bind(row)
        .fetch_one(db.pool())
        .await
        .expect("name");
    assert_eq!(name, "Team");

    let (status, _, _) = running.get("/ops/api/conflicts", None).await;
    assert_eq!(status, 401);
    let token = running.admin_token(db.pool()).await;
    let (status, body, _) = running.get("/ops/api/conflicts", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let conflicts = body["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{body}");
    let conflict = &conflicts[0];
    assert_eq!(
        (
            &conflict["entity"],
            &conflict["rowId"],
            &conflict["airtableId"],
            &conflict["field"],
            &conflict["postgresValue"],
            &conflict["airtableValue"],
            &conflict["winner"],
        ),
        (
            &json!("user"),
            &json!(row),
            &json!(record),
            &json!("Name"),
            &json!("App"),
            &json!("Team"),
            &json!("airtable"),
        )
    );
    let (_, state, _) = running.get("/ops/api/state", Some(&token)).await;
    assert_eq!(state["recentConflicts"][0], *conflict);
    // The base's share of Airtable's requests: whole, no 429 episode.
    let pace = &state["airtableBases"][0];
    assert_eq!(
        (
            &pace["baseId"],
            &pace["sharePercent"],
            &pace["requestsPerWindow"],
            &pace["episodesByOthers"],
            &pace["recentEpisodes"],
            &pace["budgetKeptBy"],
        ),
        (
            &json!(BASE),
            &json!(100.0),
            &json!(5),
            &json!(0),
            &json!([]),
            &json!("deployment"),
        ),
        "{state}"
    );
    for bad in ["0", "501", "ten", "-1"] {
        let (status, body, _) = running
            .get(&format!("/ops/api/conflicts?limit={bad}"), Some(&token))
            .await;
        assert_eq!(status, 400, "limit {bad}: {body}");
        assert_eq!(body["error"]["code"], json!("invalid_limit"));
    }

    let text = running.scrape().await;
    let value = |sample: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    };
    assert_eq!(
        value("airsync_user_provisioning_seconds_count "),
        1.0,
        "the new user only: not the backfill, not the renamed user"
    );
    let provisioning = value("airsync_user_provisioning_seconds_sum ");
    assert!((0.0..3600.0).contains(&provisioning), "{provisioning}");
    assert_eq!(
        value("airsync_user_provisioning_seconds_bucket{le=\"+Inf\"} "),
        1.0
    );
    assert_eq!(
        value("airsync_reconcile_records_seen_total{table=\"user\"} "),
        3.0,
        "one record, then two"
    );
    assert_eq!(value("airsync_reconcile_running{table=\"user\"} "), 0.0);
    assert_eq!(
        value("airsync_inbound_conflicts_total{winner=\"airtable\"} "),
        1.0
    );
    let base = format!("{{base=\"{BASE}\"}} ");
    assert_eq!(
        value(&format!("airsync_airtable_rate_share_ratio{base}")),
        1.0
    );
    assert_eq!(
        value(&format!("airsync_airtable_rate_budget_ratio{base}")),
        1.0
    );
    assert_eq!(
        value(&format!(
            "airsync_airtable_rate_limit_episodes_total{{base=\"{BASE}\",cause=\"others\"}} "
        )),
        0.0
    );
}

/// Every `airsync_*` name that the alert rules and their tests, the
/// dashboard, the runbooks, deploy/README.md and deploy/check.py's list of
/// families mention is a family of `text` (a histogram's series included).
fn every_referenced_metric_is_exported(text: &str) {
    let exported: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    // OpenMetrics names a counter's family without the `_total` its
    // samples carry.
    let known = |name: &str| {
        exported.iter().any(|(family, kind)| {
            name == *family
                || (*kind == "counter" && name.strip_suffix("_total") == Some(family))
                || (*kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family)))
        })
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join("deploy/prometheus/alerts.yml"),
        root.join("deploy/prometheus/alerts.test.yml"),
        root.join("deploy/grafana/airsync-dashboard.json"),
        root.join("deploy/README.md"),
        root.join("deploy/check.py"),
    ];
    for entry in std::fs::read_dir(root.join("docs/runbooks")).expect("runbooks") {
        files.push(entry.expect("entry").path());
    }
    let mut unknown = Vec::new();
    let mut checked = 0;
    for file in &files {
        let content =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (start, _) in content.match_indices("airsync_") {
            if start > 0 && content.as_bytes()[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let name: String = content[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let after = content[start + name.len()..].chars().next();
            // `airsync_outbox_events_*` names a group of families;
            // `RUST_LOG=airsync_airtable=debug` a crate.
            if name.ends_with('_') || after == Some('=') {
                continue;
            }
            checked += 1;
            if !known(&name) {
                unknown.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(checked > 50, "only {checked} references found");
    assert!(
        unknown.is_empty(),
        "referenced but not exported:\n{}",
        unknown.join("\n")
    );
}

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    process: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // ChromeDriver and the Chromium it started share a process group:
        // ending the group leaves no browser behind, also when a test fails
        // before it closed its session.
        // SAFETY: kill with a negative pid signals that process group.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.process.id() as i32), libc::SIGKILL);
        }
        let _ = self.process.wait();
    }
}

async fn start_chromedriver(http: &reqwest::Client) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let process = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver is not installed: run scripts/ensure-browser.sh (Debian's chromium and chromium-driver)");
    let driver = Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("{}/status", driver.url)).send().await.ok();
        if let Some(answer) = ready {
            let status: Value = answer.json().await.unwrap_or_default();
            if status["value"]["ready"] == json!(true) {
                return driver;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver session in headless Chromium, with its own ChromeDriver
/// and profile, 1280 px wide.
struct Browser {
    http: reqwest::Client,
    session: String,
    profile: std::path::PathBuf,
    // Dropped last: ends ChromeDriver and its browser.
    _driver: Driver,
}

impl Browser {
    async fn open(http: &reqwest::Client) -> Browser {
        let driver = start_chromedriver(http).await;
        let profile = std::env::temp_dir().join(format!(
            "airsync-ops-browser-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let session: Value = http
            .post(format!("{}/session", driver.url))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--disable-quic", "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             format!("--user-data-dir={}", profile.display())]
                }
            }}}))
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"));
        let browser = Browser {
            http: http.clone(),
            session: format!("{}/session/{id}", driver.url),
            profile,
            _driver: driver,
        };
        browser
            .call(
                reqwest::Method::POST,
                "/window/rect",
                json!({"width": 1280, "height": 900}),
            )
            .await;
        browser
    }

    /// Opens the ops page and signs in as `email`.
    async fn sign_in(&self, base: &str, email: &str, password: &str) {
        self.call(
            reqwest::Method::POST,
            "/url",
            json!({"url": format!("{base}/ops")}),
        )
        .await;
        self.type_into("#email", email).await;
        self.type_into("#password", password).await;
        self.click("#sign-in").await;
        self.wait_for("#tables tbody tr").await;
    }

    /// Loads the page again (still signed in): lists folded again.
    async fn reload_page(&self) {
        self.call(reqwest::Method::POST, "/refresh", json!({}))
            .await;
        self.wait_for("#tables tbody tr").await;
    }

    async fn close(self) {
        self.call(reqwest::Method::DELETE, "", json!({})).await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let answer: Value = self
            .http
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("webdriver json");
        answer["value"].clone()
    }

    /// Runs `script` in the page and answers what it returns.
    async fn run(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Fetches the state again and draws it, now rather than at the next
    /// 3 s tick.
    async fn refresh(&self) {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            json!({"script": "refresh().then(arguments[arguments.length - 1])", "args": []}),
        )
        .await;
    }

    async fn text_of(&self, id: &str) -> Value {
        self.run(&format!(
            "return document.getElementById('{id}').textContent;"
        ))
        .await
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|e| {
                        e["element-6066-11e4-a52e-4f735466cecf"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_until_gone(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.find_all(css).await.is_empty() {
            assert!(Instant::now() < deadline, "{css} is still shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// The text of each row of a table's body, as the page shows it.
    async fn rows(&self, table: &str) -> Vec<String> {
        let rows = self
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                json!({
                    "script": "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map(r => r.innerText)",
                    "args": [table],
                }),
            )
            .await;
        rows.as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The row of `#tables` for `entity`.
    async fn table_row(&self, entity: &str) -> String {
        let rows = self.rows("#tables").await;
        rows.iter()
            .find(|row| row.split('\t').next() == Some(entity))
            .cloned()
            .unwrap_or_else(|| panic!("no row for {entity}: {rows:?}"))
    }

    async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// Saves a picture of the whole page as `name` under the test's output
    /// and answers its path.
    async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        let height = self
            .run("window.scrollTo(0, 0); return document.documentElement.scrollHeight;")
            .await
            .as_i64()
            .unwrap_or(900);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": 1280, "height": height + 100}),
        )
        .await;
        let shot = self
            .call(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a screenshot"))
            .expect("base64");
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, &png).expect("write the screenshot");
        eprintln!("ops page screenshot: {}", path.display());
        path
    }
}

/// Each chart's lines, as `figure:series:points`.
async fn chart_lines(browser: &Browser) -> Value {
    browser
        .run("return [...document.querySelectorAll('#charts polyline')].map(l => l.closest('figure').id + ':' + l.dataset.series + ':' + l.getAttribute('points').split(' ').length);")
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_signs_in_to_the_ops_page_sees_a_dead_letter_replays_it_and_sees_it_gone() {
    let db = TestDb::new().await;
    let letter = plant_dead_letter(db.pool()).await;
    let letter_row: uuid::Uuid =
        sqlx::query_scalar("SELECT row_id FROM sync_dead_letter WHERE id = $1")
            .bind(letter)
            .fetch_one(db.pool())
            .await
            .expect("row");
    // Two inbound conflicts, an older and a newer one.
    sqlx::query(
        "INSERT INTO sync_conflicts (entity, row_id, airtable_id, field, postgres_value, airtable_value, winner, at)
         VALUES ('program', gen_random_uuid(), 'recOLDERCONFLICT01', 'Name', '\"Old app\"', '\"Old team\"', 'postgres', now() - interval '3 hours'),
                ('program', gen_random_uuid(), 'recNEWERCONFLICT01', 'Notes', '\"From the app\"', '\"From the team\"', 'airtable', now())",
    )
    .execute(db.pool())
    .await
    .expect("conflicts");
    let running = start(db.pool().clone()).await;
    airsync_api::create_user(
        db.pool(),
        "ops@example.com",
        "Ops",
        "correct horse battery staple",
        true,
    )
    .await
    .expect("admin");
    // The last hour as the sampler leaves it: the point taken now from the
    // database, after two earlier ones of a busier sync.
    let now = airsync::server::history::sample(&running.services)
        .await
        .expect("a point");
    for (minutes, pending, counters) in [(20, 40, 100), (10, 12, 700)] {
        running
            .services
            .history
            .record(airsync::server::history::Point {
                at: now.at - chrono::Duration::minutes(minutes),
                outbox_pending: pending,
                oldest_pending_seconds: pending * 3,
                sent: Some(counters),
                received: Some(counters / 2),
                airtable_requests: Some(counters * 2),
                rate_limited: Some(0),
                inbound_lag_seconds: Some(5.0),
            });
    }
    running
        .services
        .history
        .record(airsync::server::history::Point {
            sent: Some(1000),
            received: Some(500),
            airtable_requests: Some(2000),
            rate_limited: Some(1),
            inbound_lag_seconds: Some(2.0),
            ..now
        });
    let browser = Browser::open(&running.http).await;
    browser
        .sign_in(
            &running.url,
            "ops@example.com",
            "correct horse battery staple",
        )
        .await;
    let replay = format!("button[data-action=\"replay\"][data-id=\"{letter}\"]");
    browser.wait_for(&replay).await;
    let rows = browser.rows("#conflicts").await;
    assert_eq!(rows.len(), 2, "recent conflicts are listed: {rows:?}");
    assert!(
        rows[0].contains("recNEWERCONFLICT01")
            && rows[0].contains("\"From the app\"")
            && rows[0].contains("\"From the team\"")
            && rows[0].contains("Airtable's"),
        "the newest conflict first, with both values and the one kept: {rows:?}"
    );
    assert!(rows[1].contains("recOLDERCONFLICT01"), "{rows:?}");
    // Three hours back reads "3 h ago" for half an hour after the insert,
    // however slowly the browser starts.
    assert!(
        rows[1].contains("3 h ago"),
        "times in human units: {rows:?}"
    );
    // Signed in, the sign-in form is gone; at 1280 px nothing scrolls
    // sideways.
    let page = browser
        .run("const root = document.documentElement; return [getComputedStyle(document.getElementById('login')).display, root.scrollWidth, root.clientWidth];")
        .await;
    assert_eq!(page[0], "none", "the sign-in form is still shown: {page}");
    assert!(
        page[1].as_i64() <= page[2].as_i64(),
        "the page scrolls sideways at 1280 px: {page}"
    );
    // Per table: the admin just made waits to be pushed, and the dead
    // letter counts against users.
    let users = browser.table_row("user").await;
    let cells: Vec<&str> = users.split('\t').collect();
    assert!(
        cells[1..3] == ["1", "0"] && cells[3].ends_with(" s") && cells[4] == "1",
        "pending, in flight, oldest, dead letters: {users:?}"
    );
    // The status line: the dead letter makes the outbound side failing.
    browser.wait_for("#outbound.failing").await;
    assert_eq!(
        browser.text_of("outbound").await,
        "To Airtable: 1 change(s) in the dead-letter queue"
    );
    assert_eq!(
        browser.text_of("inbound-state").await,
        "From Airtable: no inbound sync has run yet"
    );
    assert_eq!(
        browser.text_of("webhook").await,
        "Webhook: none (the incremental poll carries the inbound sync)."
    );
    // Each chart draws its series from the points: the three above, and
    // for the outbox also the process's own sampler's (one at the start,
    // one every 10 s).
    let lines = chart_lines(&browser).await;
    let outbox_points = |series: &str| {
        lines
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|line| line.strip_prefix(&format!("chart-outbox:{series}:")))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_default()
    };
    assert!(
        outbox_points("waiting") >= 4 && outbox_points("oldest (s)") >= 4,
        "{lines}"
    );
    assert_eq!(
        lines.as_array().map(|l| l[2..].to_vec()),
        Some(vec![
            json!("chart-records:sent / min:2"),
            json!("chart-records:received / min:2"),
            json!("chart-airtable:requests / min:2"),
            json!("chart-airtable:429s / min:2"),
            json!("chart-lag:lag (s):3"),
        ])
    );
    browser.screenshot("ops-dashboard.png").await;
    browser.click(&replay).await;
    // Replayed, the change waits in the outbox: behind, not failing.
    browser.wait_for("#outbound.behind").await;
    browser
        .wait_until_gone("button[data-action=\"replay\"]")
        .await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(left, 0);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE row_id = $1")
        .bind(letter_row)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(queued, 1, "the replayed event is back in the outbox");

    // A webhook that records: when it expires and the last notification,
    // in human units; the inbound side is in step.
    sqlx::query(
        "INSERT INTO sync_checkpoint (name, value) VALUES ('inbound:webhook:appOPSPAGE0000001', jsonb_build_object(
             'webhook_id', 'achOPSPAGE000001', 'mac_secret_base64', 'c2VjcmV0', 'cursor', 7,
             'expiration_time', to_jsonb(now() + interval '6 days 1 hour'), 'notification_url', null,
             'specification', '{}'::jsonb, 'created_at', to_jsonb(now() - interval '1 day'),
             'last_read_at', to_jsonb(now() - interval '5 seconds'), 'broken', false))",
    )
    .execute(db.pool())
    .await
    .expect("webhook");
    sqlx::query(
        "INSERT INTO sync_inbox_events (event_key, source, base_id, webhook_id, body, received_at)
         VALUES ('ping-1', 'webhook', 'appOPSPAGE0000001', 'achOPSPAGE000001', '{}', now() - interval '5 seconds')",
    )
    .execute(db.pool())
    .await
    .expect("notification");
    browser.refresh().await;
    let webhook = browser.text_of("webhook").await;
    assert!(
        webhook.as_str().is_some_and(|text| text
            .starts_with("Webhook: recording; expires in 6 d; last notification ")
            && (text.ends_with(" s ago."))),
        "{webhook}"
    );
    assert_eq!(
        browser.text_of("inbound-state").await,
        "From Airtable: in step"
    );
    let secret = browser.rows("#inbound").await;
    assert!(
        secret.iter().all(|row| !row.contains("c2VjcmV0")),
        "the webhook's secret is not shown: {secret:?}"
    );
    browser.close().await;
}

/// A sync that really runs, as the ops page shows it: the worker pushing
/// the app's writes in bursts, a reconcile reading the team's new records
/// (its progress shown while it runs), a conflict between the two, and a
/// dead letter purged from the page. The charts are drawn from points the
/// sampler took of this run, one a second; the screenshot is the one the
/// README shows (`AIRSYNC_OPS_SCREENSHOT=docs/images/ops-dashboard.png`
/// writes it there).
#[tokio::test(flavor = "multi_thread")]
async fn the_ops_dashboard_follows_a_real_sync_run_a_reconcile_a_conflict_and_a_purge() {
    use airsync_emulator::ClientEdit;

    let (db, emulator) = synced_setup().await;
    let fields = |value: Value| value.as_object().cloned().expect("object");
    // A real conflict: the app renames a user the team renames a second
    // later; Airtable's later change wins, and both values are logged. Made
    // while `serve --no-worker` runs beside a worker the test drives.
    let (first, ctx, _, record) = user_renamed_on_both_sides(
        &db,
        &emulator,
        ("Renamed in the app", "Renamed by the team"),
        Vec::new(),
    )
    .await;
    drop(ctx);
    first.stop().await;
    let users = ReconcileOptions {
        table: Some("user".into()),
        force: false,
    };

    // From here the process runs as `serve` builds it, with every part: the
    // worker, the inbound sync, and the sampler (at 1 s rather than 10 s).
    let (running, ctx) = start_synced(
        db.pool().clone(),
        &emulator,
        &[("OPS_CHART_STEP_SECS", "1".into())],
        Default::default(),
    )
    .await;
    let url = running.url.clone();
    let http = reqwest::Client::new();
    airsync_api::create_user(
        db.pool(),
        "ops@example.com",
        "Ops",
        "correct horse battery staple",
        true,
    )
    .await
    .expect("admin");
    let letter = plant_dead_letter(db.pool()).await;
    let letter_row: uuid::Uuid =
        sqlx::query_scalar("SELECT row_id FROM sync_dead_letter WHERE id = $1")
            .bind(letter)
            .fetch_one(db.pool())
            .await
            .expect("row");

    // The app's writes come in three bursts; the worker pushes each at
    // Airtable's pace.
    let mut made = 0;
    for burst in [30, 10, 30] {
        for _ in 0..burst {
            made += 1;
            sqlx::query("INSERT INTO users_pg (email, name) VALUES ($1, $2)")
                .bind(format!("app{made}@example.com"))
                .bind(format!("App user {made}"))
                .execute(db.pool())
                .await
                .expect("user");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let drained = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
            .fetch_one(db.pool())
            .await
            .expect("outbox");
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < drained, "{waiting} changes still wait");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The team adds 250 users in Airtable; a reconcile reads them while the
    // base is slow to list, and the page shows how far it has read.
    emulator
        .edit_as_user(
            BASE.as_str(),
            "Users",
            ClientEdit {
                create: (0..250)
                    .map(|i| {
                        fields(json!({"Email": format!("team{i}@example.com"), "Name": format!("Team user {i}")}))
                    })
                    .collect(),
                ..Default::default()
            },
        )
        .expect("team users");
    let browser = Browser::open(&http).await;
    browser
        .sign_in(&url, "ops@example.com", "correct horse battery staple")
        .await;
    emulator.set_listing_answer_latency_ms(Some(1500..=1500));
    let reconciling = tokio::spawn({
        let ctx = ctx.clone();
        async move { reconcile(&ctx, &users).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let progress = loop {
        browser.refresh().await;
        let row = browser.table_row("user").await;
        let read = row
            .split("running: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(read) = read.filter(|read| *read > 0) {
            break (read, row);
        }
        assert!(
            Instant::now() < deadline,
            "the reconcile's progress never showed: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        progress
            .1
            .ends_with(&format!("running: {} records read", progress.0)),
        "{progress:?}"
    );
    reconciling.await.expect("join").expect("reconcile");
    emulator.set_listing_answer_latency_ms(None);
    browser.refresh().await;
    let done = browser.table_row("user").await;
    let cells: Vec<&str> = done.split('\t').collect();
    assert!(
        cells.len() == 9 && cells[5..].iter().all(|cell| cell.ends_with(" s ago")),
        "the last push, the last change from Airtable, the last read and the \
         finished reconcile, in seconds: {done:?}"
    );
    let team: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users_pg WHERE email LIKE 'team%@example.com'")
            .fetch_one(db.pool())
            .await
            .expect("count");
    assert_eq!(team, 250, "the reconcile brought every team user in");

    // The conflict, with both values and the one kept.
    let conflicts = browser.rows("#conflicts").await;
    assert!(
        conflicts.len() == 1
            && conflicts[0].contains(&record)
            && conflicts[0].contains("\"Renamed in the app\"")
            && conflicts[0].contains("\"Renamed by the team\"")
            && conflicts[0].contains("Airtable's"),
        "{conflicts:?}"
    );

    // 321 users wait for a password (the app's and the team's): the page
    // lists the 10 newest until asked for more.
    assert_eq!(
        browser.text_of("waiting-count").await,
        "321 user(s) wait for a password; the 10 newest are listed (`airsync users invite` reaches every one)."
    );
    assert_eq!(browser.rows("#waiting").await.len(), 10);
    browser.click("#waiting-all").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.rows("#waiting").await.len() != 100 {
        assert!(
            Instant::now() < deadline,
            "Show all listed did not list 100"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.reload_page().await;

    // A few more seconds of sampling after the run, then the charts: every
    // series drawn from this run's points, none of them flat.
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser.refresh().await;
    let series = browser
        .run("return [...document.querySelectorAll('#charts polyline')].map(l => [l.closest('figure').id + ':' + l.dataset.series, new Set(l.getAttribute('points').split(' ').map(p => p.split(',')[1])).size, l.getAttribute('points').split(' ').length]);")
        .await;
    let drawn: BTreeMap<String, (u64, u64)> = series
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            (
                line[0].as_str().unwrap_or_default().to_owned(),
                (line[1].as_u64().unwrap_or(0), line[2].as_u64().unwrap_or(0)),
            )
        })
        .collect();
    for name in [
        "chart-outbox:waiting",
        "chart-records:sent / min",
        "chart-records:received / min",
        "chart-airtable:requests / min",
    ] {
        let (heights, points) = drawn.get(name).copied().unwrap_or_default();
        assert!(
            points >= 15 && heights >= 2,
            "{name}: {points} points at {heights} heights: {drawn:?}"
        );
    }

    // The dead letter, purged from the page: gone, and not sent again.
    let purge = format!("button[data-action=\"purge\"][data-id=\"{letter}\"]");
    browser.click(&purge).await;
    browser.wait_until_gone(&purge).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter WHERE id = $1")
        .bind(letter)
        .fetch_one(db.pool())
        .await
        .expect("count");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE row_id = $1")
        .bind(letter_row)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!((left, queued), (0, 0), "purged, not replayed");
    browser.wait_for("#outbound.in-step").await;

    let widths = browser
        .run("const root = document.documentElement; return [root.scrollWidth, root.clientWidth];")
        .await;
    assert!(
        widths[0].as_i64() <= widths[1].as_i64(),
        "the page scrolls sideways at 1280 px: {widths}"
    );
    let shot = browser.screenshot("ops-dashboard-sync.png").await;
    if let Ok(target) = std::env::var("AIRSYNC_OPS_SCREENSHOT") {
        std::fs::copy(&shot, &target).expect("copy the screenshot");
        eprintln!("copied to {target}");
    }
    browser.close().await;
    running.stop().await;
}

/// What the relay received: each post's Authorization header and body.
type Received = Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// A mail relay of the test: records every invitation posted to it, and
/// answers `status`.
struct Relay {
    url: String,
    received: Received,
    status: Arc<std::sync::atomic::AtomicU16>,
}

async fn relay() -> Relay {
    let received: Received = Arc::default();
    let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
    let (seen, answer) = (received.clone(), status.clone());
    let app = axum::Router::new().route(
        "/invitations",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let (seen, answer) = (seen.clone(), answer.clone());
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().push((auth, body));
                    axum::http::StatusCode::from_u16(
                        answer.load(std::sync::atomic::Ordering::SeqCst),
                    )
                    .unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/invitations", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Relay {
        url,
        received,
        status,
    }
}

fn relayed_invitations(relay: &Relay) -> airsync::invitations::Invitations {
    let config = airsync::config::Config::from_lookup(|name| match name {
        "INVITE_TRANSPORT" => Some("webhook".into()),
        "INVITE_WEBHOOK_URL" => Some(relay.url.clone()),
        "INVITE_WEBHOOK_TOKEN" => Some("relay-token".into()),
        "INVITE_SETUP_URL" => Some("https://app.example.com/set-password?token={token}".into()),
        _ => None,
    })
    .expect("valid");
    airsync::invitations::Invitations::new(config.invitations)
}

async fn user_without_password(pool: &PgPool, email: &str, age_days: i32) -> uuid::Uuid {
    sqlx::query_scalar(
        "INSERT INTO users_pg (email, name, created_at) VALUES ($1, 'Team Made', now() - make_interval(days => $2))
         RETURNING id",
    )
    .bind(email)
    .bind(age_days)
    .fetch_one(pool)
    .await
    .expect("user")
}

#[tokio::test]
async fn an_admin_invites_a_user_without_a_password_from_the_ops_page_through_the_relay() {
    let db = TestDb::new().await;
    let relay = relay().await;
    let running = start_with(
        db.pool().clone(),
        &[
            ("INVITE_TRANSPORT", "webhook".into()),
            ("INVITE_WEBHOOK_URL", relay.url.clone()),
            ("INVITE_WEBHOOK_TOKEN", "relay-token".into()),
            (
                "INVITE_SETUP_URL",
                "https://app.example.com/set-password?token={token}".into(),
            ),
            // Invited by hand here; the automatic loop has a test of its own.
            ("INVITE_AUTOMATIC", "false".into()),
        ],
    )
    .await;
    let admin = running.admin_token(db.pool()).await;
    let user = user_without_password(db.pool(), "new@example.com", 0).await;
    let state: Value = running
        .http
        .get(format!("{}/ops/api/state", running.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let waiting: Vec<&str> = state["usersWithoutPassword"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["new@example.com"], "the admin has a password");
    assert_eq!(state["invitations"]["transport"], "webhook");

    let post = |path: String, token: Option<String>| {
        let request = running.http.post(format!("{}{path}", running.url));
        async move {
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let answer = request.send().await.unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap(),
            )
        }
    };
    let path = format!("/ops/api/users/{user}/invite");
    let (status, made) = post(path.clone(), Some(admin.clone())).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["sent"], true);
    let token = made["setupToken"].as_str().unwrap().to_owned();
    assert_eq!(
        made["setupUrl"],
        json!(format!(
            "https://app.example.com/set-password?token={token}"
        ))
    );
    let received = relay.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0.as_deref(), Some("Bearer relay-token"));
    assert_eq!(received[0].1["email"], "new@example.com");
    assert_eq!(received[0].1["setupUrl"], made["setupUrl"]);

    // The link works: the user sets a password and is signed in.
    let (status, session) = async {
        let answer = running
            .http
            .post(format!("{}/api/auth/set-password", running.url))
            .json(&json!({ "setupToken": token, "newPassword": "a password of my own" }))
            .send()
            .await
            .unwrap();
        (
            answer.status().as_u16(),
            answer.json::<Value>().await.unwrap(),
        )
    }
    .await;
    assert_eq!(status, 200, "{session}");
    // Then there is nobody to invite.
    let (status, body) = post(path.clone(), Some(admin.clone())).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );

    // Bad input and strangers.
    let other = user_without_password(db.pool(), "other@example.com", 0).await;
    let (status, _) = post(
        "/ops/api/users/not-a-uuid/invite".into(),
        Some(admin.clone()),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(format!("/ops/api/users/{other}/invite"), None).await;
    assert_eq!(status, 401);
    let user_token = running.token_of(db.pool(), "ann@example.com", false).await;
    let (status, _) = post(format!("/ops/api/users/{other}/invite"), Some(user_token)).await;
    assert_eq!(status, 403);
    // A relay that fails: no link is made, so none is left to leak.
    relay.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = post(format!("/ops/api/users/{other}/invite"), Some(admin)).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "invitation_not_sent");
    let tokens: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth_setup_tokens WHERE user_id = $1")
            .bind(other)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(tokens, 0);
}

#[tokio::test]
async fn new_users_without_a_password_are_invited_once_by_themselves_and_old_ones_are_not() {
    let db = TestDb::new().await;
    let relay = relay().await;
    let invitations = relayed_invitations(&relay);
    let new = user_without_password(db.pool(), "new@example.com", 0).await;
    user_without_password(db.pool(), "legacy@example.com", 30).await;
    airsync_api::create_user(
        db.pool(),
        "set@example.com",
        "Set",
        "a password already",
        false,
    )
    .await
    .unwrap();
    assert_eq!(invitations.invite_new_users(db.pool()).await.unwrap(), 1);
    assert_eq!(
        invitations.invite_new_users(db.pool()).await.unwrap(),
        0,
        "invited once"
    );
    let received = relay.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1["userId"], json!(new));
    assert_eq!(received[0].1["email"], "new@example.com");

    // A failed send is tried again, later, not at once.
    let failing = user_without_password(db.pool(), "failing@example.com", 0).await;
    relay.status.store(503, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(invitations.invite_new_users(db.pool()).await.unwrap(), 0);
    relay.status.store(200, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(invitations.invite_new_users(db.pool()).await.unwrap(), 0);
    let tokens: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth_setup_tokens WHERE user_id = $1")
            .bind(failing)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(tokens, 0, "the failed invitation left no link");
    assert_eq!(
        relay.received.lock().unwrap().len(),
        2,
        "one try; the next round waits before trying again"
    );
}
