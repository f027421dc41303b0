//! `airsync serve`: the API and the operations endpoints, with the outbound
//! worker running beside them unless told otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use airsync_api::{AirtableAccess, ApiConfig, AppState};
use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::mapping::check_against_database;
use airsync_sync::worker::Worker;
use clap::Args;

use super::{connect_patiently, shutdown_signal, CliError};
use crate::config::Config;
use crate::server::{self, HttpMetrics, Services};

/// Options of `airsync serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Do not run the outbound worker in this process (run `airsync worker`
    /// separately).
    #[arg(long)]
    no_worker: bool,
}

/// The API's configuration from the process's.
fn api_config(config: &Config, airtable: Option<AirtableAccess>) -> Result<ApiConfig, CliError> {
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

pub async fn run(config: &Config, args: ServeArgs) -> Result<(), CliError> {
    let pool = connect_patiently(config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| CliError::Usage(format!("cannot listen on {}: {err}", args.listen)))?;
    let result = serve_on(
        config,
        pool.clone(),
        listener,
        !args.no_worker,
        |address| {
            println!("airsync is serving on http://{address}");
        },
        shutdown_signal(),
    )
    .await;
    pool.close().await;
    result
}

/// Serves on `listener` until `stop` completes (or SIGTERM/Ctrl-C), with the
/// outbound worker beside the API when `with_worker` and Airtable is
/// configured; `ready` hears the address once requests are accepted.
pub async fn serve_on(
    config: &Config,
    pool: sqlx::PgPool,
    listener: tokio::net::TcpListener,
    with_worker: bool,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
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
    // Users wait for the API's reads and writes: they go ahead of the sync's.
    let access = airtable.as_ref().map(|(client, base_id)| AirtableAccess {
        client: client.with_priority(airsync_airtable::Priority::Urgent),
        base_id: base_id.as_str().to_owned(),
        mapping: (*mapping).clone(),
    });
    let api = AppState::new(pool.clone(), api_config(config, access)?)
        .map_err(|err| CliError::Usage(format!("the API cannot start: {err}")))?;

    let (stop_background, shutdown) = tokio::sync::watch::channel(false);
    let mut worker_metrics = None;
    let mut background = tokio::task::JoinSet::new();
    if let (Some((client, base_id)), true) = (&airtable, with_worker) {
        let settings = crate::airtable::worker_settings(config, base_id);
        let worker = Worker::new(
            pool.clone(),
            mapping.clone(),
            AirtableWriter::new(client.clone(), base_id.as_str()),
            settings,
        );
        worker_metrics = Some(worker.metrics());
        let shutdown = shutdown.clone();
        background.spawn(async move {
            if let Err(err) = worker.run(shutdown, Duration::from_secs(20)).await {
                tracing::error!(error = %err, "the outbound worker stopped");
            }
        });
    }

    let mut inbound = None;
    if let Some((client, base_id)) = &airtable {
        let context = airsync_sync::inbound::InboundContext::new(
            pool.clone(),
            client.clone(),
            base_id.as_str(),
            mapping.clone(),
            crate::airtable::inbound_settings(config),
        );
        inbound = Some(context.clone());
        let shutdown = shutdown.clone();
        background.spawn(async move {
            if let Err(err) = airsync_sync::inbound::run(context, shutdown).await {
                tracing::error!(error = %err, "the inbound sync stopped");
            }
        });
    }

    let invitations = Arc::new(crate::invitations::Invitations::new(
        config.invitations.clone(),
    ));
    if invitations.automatic() {
        let (invitations, pool, shutdown) = (invitations.clone(), pool.clone(), shutdown.clone());
        background.spawn(async move { invitations.run(pool, shutdown).await });
    }

    let services = Arc::new(Services {
        pool: pool.clone(),
        mapping,
        api,
        airtable: airtable.as_ref().map(|(client, _)| client.clone()),
        base_id: airtable.as_ref().map(|(_, base)| base.as_str().to_owned()),
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
    });
    {
        let (services, shutdown) = (services.clone(), shutdown.clone());
        background.spawn(async move {
            server::history::run(services, server::history::STEP, shutdown).await
        });
    }
    let address = listener
        .local_addr()
        .map_err(|err| CliError::Usage(err.to_string()))?;
    tracing::info!(%address, "serving");
    ready(address);

    let limits = airsync_api::ServerLimits {
        max_connections: config.http.max_connections as usize,
        header_read_timeout: config.http.header_read_timeout,
    };
    airsync_api::serve_router(listener, server::router(services), limits, async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = stop => {}
        }
        tracing::info!("stop requested; finishing requests in flight");
    })
    .await
    .map_err(|err| CliError::Usage(format!("the server failed: {err}")))?;
    let _ = stop_background.send(true);
    while background.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(switches: &[(&str, &str)]) -> Config {
        let mut vars: Vec<(&str, &str)> = vec![
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "AIRTABLE_WEBHOOK_URL",
                "https://sync.example.com/api/sync/inbound",
            ),
        ];
        vars.extend_from_slice(switches);
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
        .expect("valid")
    }

    #[test]
    fn each_incident_switch_turns_off_its_own_path_alone() {
        let on = config(&[]);
        let inbound = crate::airtable::inbound_settings(&on);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.reconcile_enabled);
        assert!(api_config(&on, None).unwrap().user_readthrough_fallback);

        let no_fast_lane = config(&[("USER_FAST_LANE_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_fast_lane);
        assert!(!inbound.user_fast_lane);
        assert!(
            inbound.webhooks_enabled && inbound.reconcile_enabled,
            "the webhook stays for every other table"
        );
        assert!(
            api_config(&no_fast_lane, None)
                .unwrap()
                .user_readthrough_fallback
        );

        let no_read_through = config(&[("USER_READTHROUGH_FALLBACK_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_read_through);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.reconcile_enabled);
        assert!(
            !api_config(&no_read_through, None)
                .unwrap()
                .user_readthrough_fallback
        );

        let no_reconcile = config(&[("FULL_AIRTABLE_POLL_SYNC_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_reconcile);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.poll_enabled);
        assert!(!inbound.reconcile_enabled);
        assert!(
            api_config(&no_reconcile, None)
                .unwrap()
                .user_readthrough_fallback
        );
    }
}
