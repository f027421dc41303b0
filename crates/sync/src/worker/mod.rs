//! The outbound worker: claims due outbox events, sends each record's current
//! state to Airtable in batches of ten, and records the outcome
//! (docs/architecture.md, "Outbound").
//!
//! [`Worker::run`] is the long-running loop of `airsync worker` and
//! `airsync serve`: it holds the base's request lane, wakes on
//! `LISTEN airsync_outbox` (polling as a fallback), keeps up to
//! `max_batches_in_flight` batches going so the lane never idles between
//! batches, rescues expired leases, and on shutdown finishes or releases
//! what it holds. [`Worker::run_once`] processes one batch: tests drive the
//! worker step by step with it.

mod batch;
mod lane;
mod metrics;
mod prepare;
mod send;
mod unseen;

pub use lane::LaneGuard;
pub use metrics::{WorkerMetrics, WorkerMetricsSnapshot};
pub use send::{ReadRecord, RecordWriter, SendError, Upserted};

use std::sync::Arc;
use std::time::Duration;

use airsync_airtable::BaseId;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::mapping::Mapping;
use crate::outbox;
use crate::{Error, Result};

/// Which worker this is and how it behaves.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This worker's name in leases; unique per process.
    pub owner: String,
    /// The base whose lane this worker takes.
    pub base_id: BaseId,
    /// How it behaves.
    pub tuning: WorkerTuning,
}

impl WorkerSettings {
    /// A worker of `base_id`, named after this process, with the default
    /// tuning.
    pub fn new(base_id: BaseId) -> Self {
        WorkerSettings {
            owner: format!(
                "worker-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
            base_id,
            tuning: WorkerTuning::default(),
        }
    }
}

/// How the worker behaves: its batches, leases, retries and pauses. The
/// defaults are written here once; the configuration reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerTuning {
    /// Events claimed at once.
    pub batch_size: u32,
    /// Batches in flight at once (they share the base's rate budget).
    pub max_batches_in_flight: usize,
    /// Requests in flight at once within a batch.
    pub max_requests_in_flight: usize,
    /// How long a claim is leased; renewed while a batch runs.
    pub lease: Duration,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// First back-off after a transient failure.
    pub retry_base: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// After a push, the record waits this long before its next push, so a
    /// burst of edits to one row costs two requests.
    pub hold_after_push: Duration,
    /// How long an event waits for a linked row that is on its way.
    pub link_wait: Duration,
    /// How long events wait after Airtable's 429 outlasted the client's
    /// retries.
    pub rate_limit_pause: Duration,
    /// How long events wait after Airtable refused the base or table
    /// itself (401, 403, a missing base or table): a person must act, and
    /// retrying sooner would only spend the base's requests.
    pub access_pause: Duration,
    /// How long a worker that just took the lane waits before its first
    /// request: the previous holder may have used the base's whole window
    /// moments ago, and Airtable counts requests per second, whoever sends.
    pub lane_takeover_pause: Duration,
    /// While no webhook has recorded the base's history since a record's
    /// last agreement, read the record before updating it, and hold the
    /// update while Airtable shows a team edit the inbound sync has not
    /// applied (`worker::unseen`). Off only where no inbound sync runs.
    pub read_before_update_without_history: bool,
    /// How long such an update waits before it reads the record again.
    pub unseen_edit_wait: Duration,
}

impl Default for WorkerTuning {
    fn default() -> Self {
        WorkerTuning {
            batch_size: 100,
            max_batches_in_flight: 2,
            max_requests_in_flight: 8,
            lease: Duration::from_secs(30),
            max_attempts: 12,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            hold_after_push: Duration::from_secs(1),
            link_wait: Duration::from_millis(300),
            rate_limit_pause: Duration::from_secs(30),
            access_pause: Duration::from_secs(60),
            lane_takeover_pause: Duration::from_secs(2),
            read_before_update_without_history: true,
            unseen_edit_wait: Duration::from_secs(5),
        }
    }
}

/// What a batch task needs, shared by all of them.
pub(crate) struct WorkerContext<W> {
    pub pool: PgPool,
    pub mapping: Arc<Mapping>,
    pub writer: W,
    pub settings: WorkerSettings,
    pub metrics: Arc<WorkerMetrics>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// Events claimed.
    pub claimed: u64,
    /// Records written to (or deleted from) Airtable.
    pub sent: u64,
    /// Requests made to Airtable.
    pub requests: u64,
    /// Events put back for a later attempt (transient failures).
    pub retried: u64,
    /// Events waiting for a linked row.
    pub deferred: u64,
    /// Events moved to the dead-letter queue.
    pub dead: u64,
    /// Events with nothing to send.
    pub finished: u64,
}

/// A check run each time the worker takes the base's lane, before it sends:
/// e.g. that the base still matches the mapping. Run under the lane, its
/// requests share the lane's rate budget instead of competing with it.
pub type LaneCheck =
    Box<dyn Fn() -> futures_util::future::BoxFuture<'static, Result<()>> + Send + Sync>;

/// The outbound worker of one base.
pub struct Worker<W> {
    context: Arc<WorkerContext<W>>,
    lane_check: Option<LaneCheck>,
}

impl<W: RecordWriter + 'static> Worker<W> {
    /// A worker that writes through `writer`.
    pub fn new(pool: PgPool, mapping: Arc<Mapping>, writer: W, settings: WorkerSettings) -> Self {
        Worker {
            context: Arc::new(WorkerContext {
                pool,
                mapping,
                writer,
                settings,
                metrics: Arc::new(WorkerMetrics::default()),
            }),
            lane_check: None,
        }
    }

    /// Runs `check` each time the worker takes the lane; an error stops
    /// [`Worker::run`] with that error.
    pub fn with_lane_check(mut self, check: LaneCheck) -> Self {
        self.lane_check = Some(check);
        self
    }

    /// The worker's counters.
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        self.context.metrics.clone()
    }

    /// Claims one batch and processes it to the end. Does not take the
    /// base's lane: for tests and tools that drive the worker step by step.
    pub async fn run_once(&self) -> Result<BatchReport> {
        outbox::rescue_expired_leases(&self.context.pool).await?;
        let settings = &self.context.settings;
        let events = outbox::claim_batch(
            &self.context.pool,
            &settings.owner,
            settings.tuning.batch_size,
            settings.tuning.lease,
        )
        .await?;
        batch::process(self.context.clone(), events).await
    }

    /// Runs until `shutdown` turns true: takes the base's lane (waiting as a
    /// standby while another process holds it) and works the outbox off.
    /// On shutdown it stops claiming, lets running batches finish for up to
    /// `grace`, and hands back whatever it still holds.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, grace: Duration) -> Result<()> {
        let ctx = &self.context;
        while !*shutdown.borrow() {
            let lane = match LaneGuard::try_acquire(&ctx.pool, &ctx.settings.base_id).await {
                Ok(lane) => lane,
                Err(err) => {
                    // The database is out of reach (a restart, a failover):
                    // ask again on the next turn rather than end the process.
                    tracing::warn!(error = %err, "could not ask for the base's outbound lane; retrying");
                    None
                }
            };
            let Some(mut lane) = lane else {
                tokio::select! {
                    _ = tokio::time::sleep(ctx.settings.tuning.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            tracing::info!(base = %ctx.settings.base_id, owner = %ctx.settings.owner, "took the base's outbound lane");
            tokio::select! {
                _ = tokio::time::sleep(ctx.settings.tuning.lane_takeover_pause) => {}
                _ = shutdown.changed() => {}
            }
            if let Some(check) = &self.lane_check {
                // The check talks to Airtable, which may be slow or pausing
                // after a 429: a stop request must not wait for it.
                let checked = tokio::select! {
                    checked = check() => Some(checked),
                    _ = shutdown.changed() => None,
                };
                match checked {
                    None => {
                        lane.release().await;
                        continue;
                    }
                    Some(Err(err)) if is_transient(&err) => {
                        // Airtable or the database is down for a while: a
                        // standby, or this worker later, checks again.
                        tracing::warn!(error = %err, "could not check the base; retrying");
                        lane.release().await;
                        tokio::select! {
                            _ = tokio::time::sleep(ctx.settings.tuning.lane_takeover_pause) => {}
                            _ = shutdown.changed() => {}
                        }
                        continue;
                    }
                    Some(Err(err)) => {
                        lane.release().await;
                        return Err(err);
                    }
                    Some(Ok(())) => {}
                }
            }
            let result = self.work_lane(&mut lane, &mut shutdown, grace).await;
            lane.release().await;
            if let Err(err) = result {
                // A lost database connection ends the lane; try again after a
                // pause rather than ending the process.
                tracing::error!(error = %err, "outbound lane stopped; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(ctx.settings.tuning.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        let released = outbox::release_all(&ctx.pool, &ctx.settings.owner).await?;
        if released > 0 {
            tracing::info!(released, "handed back events on shutdown");
        }
        Ok(())
    }

    async fn work_lane(
        &self,
        lane: &mut LaneGuard,
        shutdown: &mut watch::Receiver<bool>,
        grace: Duration,
    ) -> Result<()> {
        let ctx = &self.context;
        let settings = &ctx.settings;
        let mut listener = PgListener::connect_with(&ctx.pool).await?;
        listener.listen("airsync_outbox").await?;
        let mut batches: JoinSet<Result<BatchReport>> = JoinSet::new();
        let mut housekeeping = tokio::time::interval(settings.tuning.lease / 3);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Keep the lane busy: claim while there is room for a batch.
            let mut claimed_full = false;
            if batches.len() < settings.tuning.max_batches_in_flight {
                let events = outbox::claim_batch(
                    &ctx.pool,
                    &settings.owner,
                    settings.tuning.batch_size,
                    settings.tuning.lease,
                )
                .await?;
                claimed_full = events.len() as u32 == settings.tuning.batch_size;
                if !events.is_empty() {
                    batches.spawn(batch::process(ctx.clone(), events));
                }
            }
            if claimed_full && batches.len() < settings.tuning.max_batches_in_flight {
                continue;
            }
            tokio::select! {
                notification = listener.try_recv() => {
                    if notification?.is_none() {
                        // The connection was lost and re-established: poll.
                        tracing::warn!("outbox notifications reconnected");
                    }
                }
                Some(done) = batches.join_next() => log_batch(done),
                _ = tokio::time::sleep(settings.tuning.poll_interval) => {}
                _ = housekeeping.tick() => {
                    outbox::rescue_expired_leases(&ctx.pool).await?;
                    if !lane.still_held().await {
                        tracing::warn!("lost the outbound lane's connection");
                        break;
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
        let finish = async {
            while let Some(done) = batches.join_next().await {
                log_batch(done);
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            batches.abort_all();
        }
        Ok(())
    }
}

/// Whether an error may pass by itself (Airtable unreachable, rate-limited or
/// failing with a 5xx; the database's connection lost), unlike a mapping that
/// does not fit the base.
fn is_transient(err: &Error) -> bool {
    match err {
        Error::Airtable(err) => err.is_retryable(),
        Error::Database(_) => true,
        Error::Mapping(_) | Error::NotFound(_) => false,
    }
}

fn log_batch(done: std::result::Result<Result<BatchReport>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(report)) => tracing::debug!(?report, "batch done"),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "batch failed; its events return when their leases expire")
        }
        Err(err) => tracing::error!(error = %err, "batch task ended abnormally"),
    }
}
