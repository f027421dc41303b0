//! Starting an emulator and the handle that tests hold.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{App, Shared};
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::direct::{ClientEdit, EditOutcome, FieldInfo, TableInfo};
use crate::error::{Error, Result};
use crate::faults::{FaultBurst, Faults};
use crate::ids;
use crate::limits::{RateLimiter, RateLimits};
use crate::model::{Base, SortSpec, State};
use crate::schema::{FieldSpec, TableSpec};
use crate::stats::{Counters, Stats};

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`]
/// also waits for it and writes the final snapshot.
pub struct Emulator {
    app: Shared,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorConfig {
    /// Binds the listener, loads the data directory and starts serving.
    pub async fn start(self) -> Result<Emulator> {
        for id in &self.bases {
            if !ids::is_id(id, ids::BASE) {
                return Err(Error::Config(format!(
                    "base id {id:?} is not \"app\" followed by 14 letters or digits"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(Error::Config(
                "the fault rate must be between 0 and 1".into(),
            ));
        }
        let mut state = match &self.data_dir {
            Some(dir) => crate::persist::load(dir)?.unwrap_or_default(),
            None => State::default(),
        };
        for id in &self.bases {
            if state.base(id).is_none() {
                state.bases.push(Base::new(id.clone(), id.clone()));
            }
        }
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(Error::Serve)?;
        let app = Arc::new(App {
            state: RwLock::new(state),
            clock: Clock::new(self.clock),
            iterators: Mutex::new(Default::default()),
            limiter: RateLimiter::new(self.limits),
            faults: Faults::new(
                self.latency_ms.clone(),
                self.answer_latency_ms.clone(),
                self.fault_rate,
            ),
            counters: Counters::default(),
            pings: tokio::sync::Notify::new(),
            dirty: tokio::sync::Notify::new(),
            http: reqwest::Client::new(),
            config: self,
        });
        let (stop, stop_rx) = watch::channel(false);
        let service = tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                app.clone(),
                crate::server::gate,
            ))
            .service(crate::server::router(app.clone()));
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.changed().await;
            };
            let served = axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(service),
            )
            .with_graceful_shutdown(shutdown)
            .await;
            if let Err(e) = served {
                tracing::error!("the emulator's server stopped: {e}");
            }
        });
        let notifier = tokio::spawn(crate::webhooks::notify::run(app.clone(), stop_rx.clone()));
        let persister = tokio::spawn(crate::persist::run(app.clone(), stop_rx));
        tracing::info!(%addr, "Airtable emulator listening");
        Ok(Emulator {
            app,
            addr,
            stop,
            tasks: vec![server, notifier, persister],
        })
    }
}

impl Emulator {
    /// Starts an emulator with this configuration (same as
    /// [`EmulatorConfig::start`]).
    pub async fn start(config: EmulatorConfig) -> Result<Emulator> {
        config.start().await
    }

    /// The base URL to use instead of `https://api.airtable.com`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates an empty base with a random id; answers the id.
    pub fn create_base(&self, name: &str) -> Result<String> {
        self.app.add_base(None, name).map_err(Error::Refused)
    }

    /// Creates an empty base with this id (no-op if it exists).
    pub fn create_base_with_id(&self, id: &str, name: &str) -> Result<String> {
        self.app.add_base(Some(id), name).map_err(Error::Refused)
    }

    /// Creates a table (as in the UI; webhook source `client`).
    pub fn create_table(&self, base_id: &str, spec: TableSpec) -> Result<TableInfo> {
        self.app.add_table(base_id, &spec).map_err(Error::Refused)
    }

    /// The ids of a table, by id or name.
    pub fn table(&self, base_id: &str, table: &str) -> Result<TableInfo> {
        self.app.table(base_id, table).map_err(Error::Refused)
    }

    /// Adds a field to a table.
    pub fn create_field(&self, base_id: &str, table: &str, spec: FieldSpec) -> Result<FieldInfo> {
        self.app
            .add_field(base_id, table, &spec)
            .map_err(Error::Refused)
    }

    /// Deletes a field, as a person can in the UI (the Web API cannot);
    /// webhooks watching it go into the error state.
    pub fn delete_field(&self, base_id: &str, table: &str, field: &str) -> Result<()> {
        self.app
            .remove_field(base_id, table, field)
            .map_err(Error::Refused)
    }

    /// Adds a grid view, optionally with a filter formula and a sort.
    pub fn create_view(
        &self,
        base_id: &str,
        table: &str,
        name: &str,
        filter: Option<&str>,
        sort: Vec<SortSpec>,
    ) -> Result<String> {
        self.app
            .add_view(base_id, table, name, filter.map(str::to_owned), sort)
            .map_err(Error::Refused)
    }

    /// Makes an edit as a person in Airtable's UI would (source `client`).
    pub fn edit_as_user(
        &self,
        base_id: &str,
        table: &str,
        edit: ClientEdit,
    ) -> Result<EditOutcome> {
        self.app
            .client_edit(base_id, table, &edit)
            .map_err(Error::Refused)
    }

    /// Every record of a table as the records API renders it.
    pub fn dump_table(&self, base_id: &str, table: &str) -> Result<Vec<Value>> {
        self.app.dump(base_id, table).map_err(Error::Refused)
    }

    /// Moves the clock forward (offsets, penalties, webhook expiry, retries).
    pub fn advance_clock(&self, by: Duration) {
        self.app.clock.advance(by);
        self.app.pings.notify_one();
    }

    /// Expires every webhook of `base` now, as seven days without a refresh
    /// would, without moving the clock (payloads stay readable); answers
    /// how many.
    pub fn expire_webhooks(&self, base: &str) -> Result<usize> {
        self.app.expire_webhooks(base).map_err(Error::Refused)
    }

    /// The emulator's current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.app.clock.now()
    }

    /// Makes the next requests fail.
    pub fn inject_faults(&self, burst: FaultBurst) {
        self.app.faults.inject(burst);
    }

    /// A 429 storm: every request to `base` answers 429 for `duration`, as
    /// after it exceeded its rate (the penalty's length is Airtable's 30 s).
    pub fn penalize_base(&self, base: &str, duration: Duration) {
        let until = self
            .app
            .clock
            .now_ms()
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4));
        self.app.limiter.penalize(base, until);
    }

    /// Changes the random fault rate.
    pub fn set_fault_rate(&self, rate: f64) {
        self.app.faults.set_rate(rate);
    }

    /// Changes the added latency (`None`: none).
    pub fn set_latency_ms(&self, range: Option<std::ops::RangeInclusive<u64>>) {
        self.app.faults.set_latency(range);
    }

    /// Changes the latency added after a request is handled, before its
    /// answer leaves (`None`: none): a write is made and its answer is still
    /// on its way, as on a real network.
    pub fn set_answer_latency_ms(&self, range: Option<std::ops::RangeInclusive<u64>>) {
        self.app.faults.set_answer_latency(range);
    }

    /// Changes the latency added to the answer of a record listing on top
    /// of the answer latency (`None`: none): a page comes back slower than
    /// a write's answer, and a write made meanwhile may be answered first.
    pub fn set_listing_answer_latency_ms(&self, range: Option<std::ops::RangeInclusive<u64>>) {
        self.app.faults.set_listing_answer_latency(range);
    }

    /// Changes the rate limits.
    pub fn set_limits(&self, limits: RateLimits) {
        self.app.limiter.set_limits(limits);
    }

    /// Request counters per base and status.
    pub fn stats(&self) -> Stats {
        self.app.counters.snapshot()
    }

    /// How many pages of records have listed a record so far, counted as
    /// each page is made (before its answer's way back): a test can act
    /// while a page showing the record is on its way.
    pub fn pages_listing(&self, base_id: &str, record_id: &str) -> u64 {
        self.app.counters.pages_listing(base_id, record_id)
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        self.app.counters.reset();
    }

    /// Back to the configured bases, empty, with counters and penalties
    /// cleared.
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Stops serving, waits for in-flight requests, and writes the final
    /// snapshot when a data directory is set.
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        crate::persist::save(&self.app)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
