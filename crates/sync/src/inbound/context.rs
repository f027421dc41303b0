//! What every inbound step needs: the database, the client, the base, the
//! mapping, the settings, the counters, and the base's schema as resolved
//! against the mapping.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use airsync_airtable::{AirtableClient, BaseId};
use sqlx::PgPool;
use tokio::sync::Notify;

use super::metrics::InboundMetrics;
use super::schema::{resolve, ResolvedBase};
use crate::mapping::Mapping;
use crate::Result;

/// How the inbound sync behaves. [`InboundSettings::default`] holds the
/// production values; tests shorten the intervals.
#[derive(Clone)]
pub struct InboundSettings {
    /// Keep a webhook on the base (create, refresh, recreate). Without one,
    /// the incremental poll carries the inbound sync.
    pub webhooks_enabled: bool,
    /// The users' fast lane (`USER_FAST_LANE_ENABLED`): the webhook watches
    /// the Users table, so a user the team creates arrives within seconds.
    /// Off, the webhook leaves Users out: users arrive with the incremental
    /// poll, and the worker reads a user's record before updating it, as
    /// it does for every table without a webhook.
    pub user_fast_lane: bool,
    /// The public URL of `POST /api/sync/inbound` that Airtable pings; `None`
    /// creates a webhook without pings, read by the timer alone.
    pub notification_url: Option<String>,
    /// `AIRTABLE_WEBHOOK_SECRET`: the base64 MAC secret of a webhook created
    /// outside airsync, accepted besides the secret of the webhook airsync
    /// keeps itself.
    pub webhook_secret: Option<String>,
    /// How often the payload reader runs without a ping, so that a lost ping
    /// delays a change by this much, not forever.
    pub reader_interval: Duration,
    /// How often the webhook's state is checked (refresh, recreate).
    pub webhook_check_interval: Duration,
    /// A webhook whose expiry is nearer than this is refreshed (webhooks
    /// live seven days).
    pub refresh_before_expiry: Duration,
    /// Run the incremental poll on its interval.
    pub poll_enabled: bool,
    /// How often the incremental poll runs.
    pub poll_interval: Duration,
    /// How far back before its watermark a poll looks again: Airtable's
    /// modification times are coarse, clocks differ, and a write in flight
    /// may land with an earlier time.
    pub poll_overlap: Duration,
    /// Run the full reconcile on its interval.
    pub reconcile_enabled: bool,
    /// How often the full reconcile runs.
    pub reconcile_interval: Duration,
    /// How long the scheduled reconcile waits after a failed run before
    /// the next, doubled after each further failure (up to six hours or the
    /// interval); also how often a process whose reconcile is running
    /// elsewhere looks again.
    pub reconcile_retry_after: Duration,
    /// A reconcile refuses to delete more than this share of a table
    /// (a failed page or a wrong view looks like a mass delete) unless
    /// forced...
    pub max_delete_share: f64,
    /// ...once it would delete more than this many rows.
    pub max_unguarded_deletes: u64,
    /// How often records that could not be applied yet are tried again.
    pub deferred_retry_interval: Duration,
    /// Where a reconcile or a validation reports its progress, table by
    /// table (the command line's bar); `None` in the background.
    pub progress: Option<std::sync::Arc<dyn crate::progress::ProgressSink>>,
}

impl Default for InboundSettings {
    fn default() -> Self {
        InboundSettings {
            webhooks_enabled: true,
            user_fast_lane: true,
            notification_url: None,
            webhook_secret: None,
            reader_interval: Duration::from_secs(10),
            webhook_check_interval: Duration::from_secs(600),
            refresh_before_expiry: Duration::from_secs(5 * 24 * 3600),
            poll_enabled: true,
            poll_interval: Duration::from_secs(60),
            poll_overlap: Duration::from_secs(60),
            reconcile_enabled: true,
            reconcile_interval: Duration::from_secs(24 * 3600),
            reconcile_retry_after: Duration::from_secs(60),
            max_delete_share: 0.1,
            max_unguarded_deletes: 10,
            deferred_retry_interval: Duration::from_secs(30),
            progress: None,
        }
    }
}

impl std::fmt::Debug for InboundSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSettings")
            .field("webhooks_enabled", &self.webhooks_enabled)
            .field("user_fast_lane", &self.user_fast_lane)
            .field("notification_url", &self.notification_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("reader_interval", &self.reader_interval)
            .field("poll_interval", &self.poll_interval)
            .field("reconcile_interval", &self.reconcile_interval)
            .finish_non_exhaustive()
    }
}

/// Everything the inbound steps share. Cheap to clone; build one per
/// process and hand clones to the API's notification route and to [`run`].
///
/// [`run`]: super::run
#[derive(Clone)]
pub struct InboundContext {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    client: AirtableClient,
    base_id: BaseId,
    mapping: Arc<Mapping>,
    settings: InboundSettings,
    metrics: Arc<InboundMetrics>,
    wake: Notify,
    wake_reconcile: Notify,
    schema: RwLock<Option<Arc<ResolvedBase>>>,
}

impl InboundContext {
    /// A context for `base_id`, reading through `client`.
    pub fn new(
        pool: PgPool,
        client: AirtableClient,
        base_id: BaseId,
        mapping: Arc<Mapping>,
        settings: InboundSettings,
    ) -> Self {
        InboundContext {
            inner: Arc::new(Inner {
                pool,
                client,
                base_id,
                mapping,
                settings,
                metrics: Arc::new(InboundMetrics::default()),
                wake: Notify::new(),
                wake_reconcile: Notify::new(),
                schema: RwLock::new(None),
            }),
        }
    }

    /// The database.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The Airtable client.
    pub fn client(&self) -> &AirtableClient {
        &self.inner.client
    }

    /// The base kept in step.
    pub fn base_id(&self) -> &BaseId {
        &self.inner.base_id
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.inner.mapping
    }

    /// The settings.
    pub fn settings(&self) -> &InboundSettings {
        &self.inner.settings
    }

    /// The counters, for the metrics endpoint and tests.
    pub fn metrics(&self) -> Arc<InboundMetrics> {
        self.inner.metrics.clone()
    }

    /// Wakes the payload reader of [`run`](super::run) (a notification
    /// arrived).
    pub fn wake_reader(&self) {
        self.inner.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Wakes the scheduled reconcile to look at its due time again (a
    /// webhook gap whose deletes no poll can see made it due).
    pub(crate) fn wake_reconciler(&self) {
        self.inner.wake_reconcile.notify_one();
    }

    pub(crate) async fn reconciler_woken(&self) {
        self.inner.wake_reconcile.notified().await;
    }

    /// The base's tables and fields as the mapping uses them, read once and
    /// kept until [`InboundContext::forget_schema`].
    pub(crate) async fn schema(&self) -> Result<Arc<ResolvedBase>> {
        if let Some(schema) = self.cached_schema() {
            return Ok(schema);
        }
        let schema =
            Arc::new(resolve(self.client(), self.base_id(), self.mapping(), self.pool()).await?);
        if let Ok(mut slot) = self.inner.schema.write() {
            *slot = Some(schema.clone());
        }
        Ok(schema)
    }

    fn cached_schema(&self) -> Option<Arc<ResolvedBase>> {
        self.inner.schema.read().ok().and_then(|s| s.clone())
    }

    /// Drops the resolved schema, so that the next step reads it again
    /// (the base changed, or a payload named a field we did not know).
    pub(crate) fn forget_schema(&self) {
        if let Ok(mut slot) = self.inner.schema.write() {
            *slot = None;
        }
    }
}
