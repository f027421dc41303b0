//! A PostgreSQL database, an emulated Airtable base bootstrapped from the
//! default mapping, and a client pointed at it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig, Fields, WriteOptions};
use airsync_emulator::{Emulator, EmulatorConfig, RateLimits};
use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::id_map;
use airsync_sync::mapping::Mapping;
use airsync_sync::worker::{Worker, WorkerSettings};
use airsync_testkit::TestDb;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub const TOKEN: &str = "patTESTTESTTESTTE.0123456789";
pub const BASE: BaseId = BaseId::from_static("appSYNCTESTBASE01");

pub struct Harness {
    pub db: TestDb,
    pub emulator: Emulator,
    pub client: AirtableClient,
    pub mapping: Arc<Mapping>,
}

/// Rows of reference data present on both sides, as the inbound sync would
/// have left them.
pub struct Reference {
    pub company: Uuid,
    pub goal: Uuid,
    pub monday: Uuid,
    pub method: Uuid,
    pub habit: Uuid,
    pub overtuiging: Uuid,
}

impl Harness {
    /// With Airtable's real limits (5 requests/s per base, 429 penalty).
    pub async fn start() -> Harness {
        Self::start_with(EmulatorConfig::new()).await
    }

    pub async fn start_with(config: EmulatorConfig) -> Harness {
        let db = TestDb::new().await;
        let emulator = config
            .with_token(TOKEN)
            .with_base(BASE.as_str())
            .start()
            .await
            .expect("start emulator");
        // Set-up (bootstrap, reference rows) makes many requests: it uses an
        // unpaced client with the emulator's limits off for a moment.
        let client = unpaced_client_for(&emulator);
        let mapping = Arc::new(Mapping::default_mapping().expect("mapping"));
        emulator.set_limits(RateLimits::off());
        bootstrap(&client.base(&BASE), &mapping)
            .await
            .expect("bootstrap");
        emulator.set_limits(RateLimits::default());
        emulator.reset_stats();
        Harness {
            db,
            emulator,
            client,
            mapping,
        }
    }

    pub fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    pub fn settings(&self) -> WorkerSettings {
        let mut settings = WorkerSettings::new(BASE);
        settings.tuning.poll_interval = Duration::from_millis(100);
        settings.tuning.retry_base = Duration::from_millis(50);
        settings.tuning.retry_max = Duration::from_millis(500);
        settings.tuning.link_wait = Duration::from_millis(50);
        settings.tuning.unseen_edit_wait = Duration::from_millis(50);
        settings
    }

    pub fn worker(&self) -> Worker<AirtableWriter> {
        self.worker_with(self.settings())
    }

    pub fn worker_with(&self, settings: WorkerSettings) -> Worker<AirtableWriter> {
        Worker::new(
            self.pool().clone(),
            self.mapping.clone(),
            AirtableWriter::new(client_for(&self.emulator), BASE),
            settings,
        )
    }

    /// Runs the worker step by step until the outbox is empty.
    pub async fn drain(&self, worker: &Worker<AirtableWriter>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            worker.run_once().await.expect("worker step");
            if self.outbox_len().await == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the outbox did not drain");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn outbox_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
            .fetch_one(self.pool())
            .await
            .expect("count outbox")
    }

    pub async fn dead_letters(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter")
            .fetch_one(self.pool())
            .await
            .expect("count dead letters")
    }

    /// Every record of an Airtable table, as the emulator holds them.
    pub fn records(&self, table: &str) -> Vec<Value> {
        self.emulator
            .dump_table(BASE.as_str(), table)
            .expect("dump table")
    }

    /// The one record whose pg_id is `row`.
    pub fn record_of(&self, table: &str, row: Uuid) -> Value {
        let found: Vec<Value> = self
            .records(table)
            .into_iter()
            .filter(|r| r["fields"]["pg_id"] == json!(row.to_string()))
            .collect();
        assert_eq!(found.len(), 1, "records of {row} in {table}: {found:#?}");
        found.into_iter().next().unwrap_or_default()
    }

    pub async fn record_id(&self, entity: &str, row: Uuid) -> String {
        id_map::airtable_ids(self.pool(), entity, &[row])
            .await
            .expect("id map")
            .remove(&row)
            .unwrap_or_else(|| panic!("{entity} {row} has no record"))
    }

    pub fn requests(&self) -> u64 {
        self.emulator.stats().base(BASE.as_str()).total
    }

    pub fn rate_limited(&self) -> u64 {
        self.emulator.stats().base(BASE.as_str()).rate_limited
    }

    /// Creates a reference record in Airtable and its row in PostgreSQL.
    async fn reference_row(&self, entity: &str, table: &str, fields: Value, insert: &str) -> Uuid {
        let Value::Object(map) = fields else {
            unreachable!("fields are an object")
        };
        let record = self
            .client
            .table(&BASE, table)
            .create(&[Fields::from(map)], WriteOptions::default())
            .await
            .expect("create reference record")
            .remove(0);
        let mut tx = self.pool().begin().await.expect("begin");
        sqlx::query("SET LOCAL airsync.origin = 'inbound'")
            .execute(&mut *tx)
            .await
            .expect("mark");
        let id: Uuid = sqlx::query_scalar(insert)
            .fetch_one(&mut *tx)
            .await
            .expect(insert);
        id_map::record_mapping(&mut *tx, entity, id, &record.id)
            .await
            .expect("id map");
        tx.commit().await.expect("commit");
        id
    }

    pub async fn seed_reference(&self) -> Reference {
        self.emulator.set_limits(RateLimits::off());
        let reference = Reference {
            company: self
                .reference_row("company", "Companies", json!({"Name": "Acme", "Code": "ACME", "Active": true}),
                    "INSERT INTO companies_pg (name, code) VALUES ('Acme', 'ACME') RETURNING id")
                .await,
            goal: self
                .reference_row("goal", "Goals", json!({"Name": "Calm"}),
                    "INSERT INTO reference_goals_pg (name) VALUES ('Calm') RETURNING id")
                .await,
            monday: self
                .reference_row("day", "Days", json!({"Name": "Monday", "Weekday": 1}),
                    "INSERT INTO reference_days_pg (name, weekday) VALUES ('Monday', 1) RETURNING id")
                .await,
            method: self
                .reference_row("method", "Methods", json!({"Name": "Breathing"}),
                    "INSERT INTO reference_methods_pg (name) VALUES ('Breathing') RETURNING id")
                .await,
            habit: self
                .reference_row("method", "Methods", json!({"Name": "Walk", "Is habit": true}),
                    "INSERT INTO reference_methods_pg (name, is_habit) VALUES ('Walk', true) RETURNING id")
                .await,
            overtuiging: self
                .reference_row("overtuiging", "Overtuigingen", json!({"Name": "I can", "Level": 1}),
                    "INSERT INTO reference_overtuigingen_pg (name, level) VALUES ('I can', 1) RETURNING id")
                .await,
        };
        self.emulator.set_limits(RateLimits::default());
        self.emulator.reset_stats();
        reference
    }

    pub async fn insert_user(&self, email: &str) -> Uuid {
        sqlx::query_scalar("INSERT INTO users_pg (email, name) VALUES ($1, 'Test') RETURNING id")
            .bind(email)
            .fetch_one(self.pool())
            .await
            .expect("insert user")
    }
}

pub fn client_for(emulator: &Emulator) -> AirtableClient {
    let config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("emulator URL");
    AirtableClient::new(config).expect("client")
}

/// A client that does not pace itself, for test set-up only.
pub fn unpaced_client_for(emulator: &Emulator) -> AirtableClient {
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("emulator URL");
    config.rate_limits.per_base = 10_000;
    config.rate_limits.per_token = 10_000;
    AirtableClient::new(config).expect("client")
}

/// Inbound settings for tests: the timers are long unless a test shortens
/// them, so tests drive the inbound steps themselves.
pub fn inbound_settings() -> airsync_sync::inbound::InboundSettings {
    airsync_sync::inbound::InboundSettings {
        reader_interval: Duration::from_secs(3600),
        webhook_check_interval: Duration::from_secs(3600),
        poll_interval: Duration::from_secs(3600),
        reconcile_enabled: false,
        deferred_retry_interval: Duration::from_secs(3600),
        ..Default::default()
    }
}

impl Harness {
    /// An inbound context on this harness's database and emulator, with a
    /// client at Airtable's real pace.
    pub fn inbound(
        &self,
        settings: airsync_sync::inbound::InboundSettings,
    ) -> airsync_sync::inbound::InboundContext {
        airsync_sync::inbound::InboundContext::new(
            self.pool().clone(),
            client_for(&self.emulator),
            BASE,
            self.mapping.clone(),
            settings,
        )
    }

    /// An edit as a person in Airtable's UI makes it.
    pub fn edit(
        &self,
        table: &str,
        edit: airsync_emulator::ClientEdit,
    ) -> airsync_emulator::EditOutcome {
        self.emulator
            .edit_as_user(BASE.as_str(), table, edit)
            .expect("edit as a user")
    }

    /// Creates one record as a person would; answers its id.
    pub fn create_as_user(&self, table: &str, fields: Value) -> String {
        let Value::Object(fields) = fields else {
            unreachable!("fields are an object")
        };
        self.edit(
            table,
            airsync_emulator::ClientEdit {
                create: vec![fields],
                ..Default::default()
            },
        )
        .created
        .remove(0)
    }

    /// Changes one record as a person would.
    pub fn update_as_user(&self, table: &str, record: &str, fields: Value) {
        let Value::Object(fields) = fields else {
            unreachable!("fields are an object")
        };
        self.edit(
            table,
            airsync_emulator::ClientEdit {
                update: vec![airsync_emulator::RecordPatch {
                    id: record.to_owned(),
                    fields,
                }],
                ..Default::default()
            },
        );
    }

    /// Deletes one record as a person would.
    pub fn delete_as_user(&self, table: &str, record: &str) {
        self.edit(
            table,
            airsync_emulator::ClientEdit {
                delete: vec![record.to_owned()],
                ..Default::default()
            },
        );
    }

    /// A worker that shares `ctx`'s client, as one process does: a single
    /// pacer keeps both under the base's 5 requests/s.
    pub fn worker_sharing(
        &self,
        ctx: &airsync_sync::inbound::InboundContext,
    ) -> Worker<AirtableWriter> {
        Worker::new(
            self.pool().clone(),
            self.mapping.clone(),
            AirtableWriter::new(ctx.client().clone(), BASE),
            self.settings(),
        )
    }

    /// Notifications recorded in the inbox.
    pub async fn inbox_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sync_inbox_events")
            .fetch_one(self.pool())
            .await
            .expect("count inbox")
    }

    /// Waits until the inbox holds `count` notifications.
    pub async fn wait_for_inbox(&self, count: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.inbox_len().await < count {
            assert!(Instant::now() < deadline, "no notification arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The row of an Airtable record, through the id map.
    pub async fn row_of(&self, entity: &str, record: &str) -> Option<Uuid> {
        id_map::row_id(self.pool(), entity, record)
            .await
            .expect("id map")
    }
}

/// A tiny HTTP server of the test itself that mounts the inbound sync's
/// notification entry point, as the API crate does, so the emulator's
/// signed pings reach it. Pings can be "lost" on demand.
pub struct Receiver {
    pub url: String,
    lose: Arc<std::sync::atomic::AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
struct ReceiverState {
    ctx: airsync_sync::inbound::InboundContext,
    lose: Arc<std::sync::atomic::AtomicBool>,
}

async fn receive(
    axum::extract::State(state): axum::extract::State<ReceiverState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    if state.lose.load(std::sync::atomic::Ordering::SeqCst) {
        // Lost on the way: Airtable believes it delivered it.
        return axum::http::StatusCode::OK;
    }
    let mac = headers
        .get("x-airtable-content-mac")
        .and_then(|v| v.to_str().ok());
    match airsync_sync::inbound::receive_notification(&state.ctx, mac, &body).await {
        Ok(outcome) => axum::http::StatusCode::from_u16(outcome.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Receiver {
    /// Listens on a free local port; answers the inbound context whose
    /// webhook pings it.
    pub async fn start(
        h: &Harness,
        settings: airsync_sync::inbound::InboundSettings,
    ) -> (airsync_sync::inbound::InboundContext, Receiver) {
        Self::start_with_client(h, settings, client_for(&h.emulator)).await
    }

    /// [`Self::start`] with `client`: a process restarted with other
    /// settings, whose requests count against the same pace as before.
    pub async fn start_with_client(
        h: &Harness,
        mut settings: airsync_sync::inbound::InboundSettings,
        client: AirtableClient,
    ) -> (airsync_sync::inbound::InboundContext, Receiver) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        settings.notification_url = Some(format!("http://{addr}/api/sync/inbound"));
        let ctx = airsync_sync::inbound::InboundContext::new(
            h.pool().clone(),
            client,
            BASE,
            h.mapping.clone(),
            settings,
        );
        let lose = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = axum::Router::new()
            .route("/api/sync/inbound", axum::routing::post(receive))
            .with_state(ReceiverState {
                ctx: ctx.clone(),
                lose: lose.clone(),
            });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let receiver = Receiver {
            url: format!("http://{addr}/api/sync/inbound"),
            lose,
            stop: Some(stop),
        };
        (ctx, receiver)
    }

    /// Loses every ping from now on (or stops losing them).
    pub fn lose_pings(&self, lose: bool) {
        self.lose.store(lose, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
