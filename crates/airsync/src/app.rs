//! The composition root: the one place where a process's parts are wired
//! from the configuration. `airsync serve` and `airsync demo` run an
//! [`App`]; `airsync worker` builds its worker with [`outbound_worker`]; the
//! integration tests of the HTTP surface build the same [`App`] (and drive a
//! worker made by [`outbound_worker`] where they play `serve --no-worker`
//! beside `airsync worker`), so what they run is what ships.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use airsync_airtable::{AirtableClient, BaseId};
use airsync_api::{AirtableAccess, ApiConfig, AppState, ServerLimits};
use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::bootstrap::schema_view;
use airsync_sync::mapping::{check_against_base, check_against_database, Mapping};
use airsync_sync::worker::{LaneCheck, Worker};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::CliError;
use crate::config::Config;
use crate::server::{self, HttpMetrics, Services, StoppedParts};

/// How long the outbound worker's running batches may take to finish after
/// a stop.
pub const WORKER_GRACE: Duration = Duration::from_secs(20);

/// What runs beside the API in the process.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    /// The outbound worker (when Airtable is configured). Off when
    /// `airsync worker` runs apart (`serve --no-worker`).
    pub worker: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Parts { worker: true }
    }
}

/// The process behind `airsync serve`, built and not yet serving: the API,
/// the operations endpoints and the webhook receiver on one listener; the
/// outbound worker, the inbound sync, the invitation loop and the charts'
/// sampler beside them.
pub struct App {
    services: Arc<Services>,
    listener: TcpListener,
    address: SocketAddr,
    limits: ServerLimits,
    background: JoinSet<()>,
    stop_background: watch::Sender<bool>,
}

impl App {
    /// Wires every part from `config`. The mapping is checked against the
    /// database first; the background parts start at once.
    pub async fn build(
        config: &Config,
        pool: PgPool,
        listener: TcpListener,
        parts: Parts,
    ) -> Result<App, CliError> {
        let mapping = Arc::new(config.load_mapping()?);
        check_against_database(&mapping, &pool).await?;
        let airtable = match (&config.airtable.token, &config.airtable.base_id) {
            (Some(_), Some(base_id)) => Some((
                crate::airtable::shared_client(config, &pool)?,
                base_id.clone(),
            )),
            _ => {
                tracing::warn!(
                    "AIRTABLE_TOKEN or AIRTABLE_BASE_ID is not set: nothing is synced with Airtable"
                );
                None
            }
        };
        // Users wait for the API's reads and writes: they go ahead of the
        // sync's.
        let access = airtable.as_ref().map(|(client, base_id)| AirtableAccess {
            client: client.with_priority(airsync_airtable::Priority::Urgent),
            base_id: base_id.clone(),
            mapping: (*mapping).clone(),
        });
        let api = AppState::new(pool.clone(), api_config(config, access)?)
            .map_err(|err| CliError::Usage(format!("the API cannot start: {err}")))?;

        let (stop_background, shutdown) = watch::channel(false);
        let mut background = JoinSet::new();
        let stopped = StoppedParts::default();
        let mut worker_metrics = None;
        if let (Some((client, base_id)), true) = (&airtable, parts.worker) {
            let worker = outbound_worker(config, &pool, &mapping, client, base_id);
            worker_metrics = Some(worker.metrics());
            let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
            background.spawn(async move {
                if let Err(err) = worker.run(shutdown, WORKER_GRACE).await {
                    tracing::error!(error = %err, "the outbound worker stopped");
                    stopped.record("outbound worker", err.to_string());
                }
            });
        }
        let mut inbound = None;
        if let Some((client, base_id)) = &airtable {
            let context = airsync_sync::inbound::InboundContext::new(
                pool.clone(),
                client.clone(),
                base_id.clone(),
                mapping.clone(),
                crate::airtable::inbound_settings(config),
            );
            inbound = Some(context.clone());
            let (shutdown, stopped) = (shutdown.clone(), stopped.clone());
            background.spawn(async move {
                if let Err(err) = airsync_sync::inbound::run(context, shutdown).await {
                    tracing::error!(error = %err, "the inbound sync stopped");
                    stopped.record("inbound sync", err.to_string());
                }
            });
        }
        let invitations = Arc::new(crate::invitations::Invitations::new(
            config.invitations.clone(),
        ));
        if invitations.automatic() {
            let (invitations, pool, shutdown) =
                (invitations.clone(), pool.clone(), shutdown.clone());
            background.spawn(async move { invitations.run(pool, shutdown).await });
        }
        let services = Arc::new(Services {
            pool,
            mapping,
            api,
            airtable: airtable.as_ref().map(|(client, _)| client.clone()),
            base_id: airtable.as_ref().map(|(_, base)| base.clone()),
            worker: worker_metrics,
            inbound,
            backends: config.backends.clone(),
            http: Arc::new(HttpMetrics::default()),
            metrics_token: config
                .http
                .metrics_token
                .as_ref()
                .map(|token| token.expose().to_owned()),
            invitations,
            history: Default::default(),
            stopped,
        });
        {
            let (services, shutdown, step) = (
                services.clone(),
                shutdown.clone(),
                config.http.ops_chart_step,
            );
            background.spawn(async move { server::history::run(services, step, shutdown).await });
        }
        let address = listener
            .local_addr()
            .map_err(|err| CliError::Usage(err.to_string()))?;
        Ok(App {
            services,
            listener,
            address,
            limits: ServerLimits {
                max_connections: config.http.max_connections as usize,
                header_read_timeout: config.http.header_read_timeout,
            },
            background,
            stop_background,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The parts, as the operations endpoints see them.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Serves until `stop` completes, then finishes the requests in flight
    /// and stops the background parts (the worker hands back what it holds).
    pub async fn run_until(
        mut self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CliError> {
        tracing::info!(address = %self.address, "serving");
        let served = airsync_api::serve_router(
            self.listener,
            server::router(self.services),
            self.limits,
            async move {
                stop.await;
                tracing::info!("stop requested; finishing requests in flight");
            },
        )
        .await;
        let _ = self.stop_background.send(true);
        while self.background.join_next().await.is_some() {}
        served.map_err(|err| CliError::Usage(format!("the server failed: {err}")))?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The outbound worker as every process builds it: `WORKER_*` settings,
/// and the base checked against the mapping each time the worker takes the
/// base's lane (so that standby workers' checks never add requests to the
/// lane holder's, and a base that lost a mapped field stops the worker with
/// its name).
pub fn outbound_worker(
    config: &Config,
    pool: &PgPool,
    mapping: &Arc<Mapping>,
    client: &AirtableClient,
    base_id: &BaseId,
) -> Worker<AirtableWriter> {
    let check_base = client.base(base_id);
    let check_mapping = mapping.clone();
    let lane_check: LaneCheck = Box::new(move || {
        let base = check_base.clone();
        let mapping = check_mapping.clone();
        Box::pin(async move {
            let schema = base.schema().await?;
            check_against_base(&mapping, &schema_view(&schema))?;
            Ok(())
        })
    });
    let settings = crate::airtable::worker_settings(config, base_id);
    tracing::info!(base = %base_id, owner = %settings.owner, "outbound worker starting");
    Worker::new(
        pool.clone(),
        mapping.clone(),
        AirtableWriter::new(client.clone(), base_id.clone()),
        settings,
    )
    .with_lane_check(lane_check)
}

/// The API's configuration from the process's.
pub(crate) fn api_config(
    config: &Config,
    airtable: Option<AirtableAccess>,
) -> Result<ApiConfig, CliError> {
    let secret = config.auth.jwt_secret.as_ref().ok_or_else(|| {
        crate::config::ConfigError::missing("JWT_SECRET", "a random key of at least 32 bytes")
    })?;
    let mut api = ApiConfig::new(secret.expose().as_bytes().to_vec());
    api.access_token_ttl = config.auth.access_token_ttl;
    api.refresh_token_ttl = config.auth.refresh_token_ttl;
    api.refresh_family_ttl = config.auth.refresh_family_ttl;
    api.backends = config.backends.clone();
    api.user_readthrough_fallback = config.switches.user_readthrough_fallback;
    api.airtable = airtable;
    api.trusted_proxies = config.http.trusted_proxies.clone();
    api.admission = airsync_api::AdmissionLimits {
        in_flight: config.http.max_in_flight as usize,
        queued: config.http.max_queued as usize,
        request_timeout: config.http.request_timeout,
        ..airsync_api::AdmissionLimits::default()
    };
    Ok(api)
}
