//! A PostgreSQL database, an emulated Airtable base bootstrapped from the
//! default mapping, and a client pointed at it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, ClientConfig, Fields, WriteOptions};
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
pub const BASE: &str = "appSYNCTESTBASE01";

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
            .with_base(BASE)
            .start()
            .await
            .expect("start emulator");
        // Set-up (bootstrap, reference rows) makes many requests: it uses an
        // unpaced client with the emulator's limits off for a moment.
        let client = unpaced_client_for(&emulator);
        let mapping = Arc::new(Mapping::default_mapping().expect("mapping"));
        emulator.set_limits(RateLimits::off());
        bootstrap(&client.base(BASE), &mapping)
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
        settings.poll_interval = Duration::from_millis(100);
        settings.retry_base = Duration::from_millis(50);
        settings.retry_max = Duration::from_millis(500);
        settings.link_wait = Duration::from_millis(50);
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
        self.emulator.dump_table(BASE, table).expect("dump table")
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
        self.emulator.stats().base(BASE).total
    }

    pub fn rate_limited(&self) -> u64 {
        self.emulator.stats().base(BASE).rate_limited
    }

    /// Creates a reference record in Airtable and its row in PostgreSQL.
    async fn reference_row(&self, entity: &str, table: &str, fields: Value, insert: &str) -> Uuid {
        let Value::Object(map) = fields else {
            unreachable!("fields are an object")
        };
        let record = self
            .client
            .table(BASE, table)
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
