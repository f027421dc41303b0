//! `airsync worker`: the outbound worker as a process of its own, with
//! `/metrics` and `/api/health` on `--metrics-listen` when asked.

use std::net::SocketAddr;
use std::sync::Arc;

use airsync_sync::mapping::check_against_database;
use clap::Args;

use super::{connect_patiently, shutdown_signal, CliError};
use crate::config::Config;
use crate::server::{worker_router, HttpMetrics, WorkerEndpoints};

/// Options of `airsync worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Serve `/metrics` and `/api/health` on this address (e.g.
    /// 0.0.0.0:9091; port 0 picks a free one). Default:
    /// `WORKER_METRICS_LISTEN`, else none.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

pub async fn run(config: &Config, args: WorkerArgs) -> Result<(), CliError> {
    let mapping = Arc::new(config.load_mapping()?);
    crate::airtable::check_client(config)?;
    let base_id = crate::airtable::base_id(config)?;
    let pool = connect_patiently(config).await?;
    let client = crate::airtable::shared_client(config, &pool)?;
    check_against_database(&mapping, &pool).await?;

    let metrics_token = config
        .http
        .metrics_token
        .as_ref()
        .map(|token| token.expose().to_owned());
    let metrics_listener = match args.metrics_listen.or(config.worker.metrics_listen) {
        Some(_) if metrics_token.is_none() => {
            return Err(crate::config::ConfigError::missing(
                "METRICS_TOKEN",
                "a random token of at least 24 bytes, which the worker's /metrics asks scrapers for",
            )
            .into());
        }
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|err| {
                    CliError::Usage(format!("cannot serve metrics on {address}: {err}"))
                })?,
        ),
        None => None,
    };
    let worker = crate::app::outbound_worker(config, &pool, &mapping, &client, base_id);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let address = listener
                .local_addr()
                .map_err(|err| CliError::Usage(err.to_string()))?;
            let endpoints = Arc::new(WorkerEndpoints {
                pool: pool.clone(),
                mapping,
                worker: worker.metrics(),
                airtable: client,
                http: Arc::new(HttpMetrics::default()),
                metrics_token,
            });
            let mut stopped = shutdown.clone();
            let server = axum::serve(listener, worker_router(endpoints)).with_graceful_shutdown(
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
            );
            tracing::info!(%address, "serving the worker's metrics");
            println!("airsync worker metrics on http://{address}/metrics");
            Some(tokio::spawn(async move {
                if let Err(err) = server.await {
                    tracing::error!(error = %err, "the metrics endpoint failed");
                }
            }))
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop requested; finishing what is in flight");
        let _ = stop.send(true);
    });
    let result = worker.run(shutdown, crate::app::WORKER_GRACE).await;
    if let Some(server) = metrics_server {
        // After a stop the endpoint is shutting down already; a worker that
        // failed takes it down with it.
        if result.is_err() {
            server.abort();
        }
        let _ = server.await;
    }
    result?;
    pool.close().await;
    tracing::info!("outbound worker stopped");
    Ok(())
}
