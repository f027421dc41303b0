//! The connection pool.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::{redact_url, Error, Result};

/// Sizing and timeouts of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a connection (and a new connection for the
    /// server) before giving up.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a pool and checks that the server answers, so that a wrong URL fails
/// here with the URL named (password hidden) rather than at the first query.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool> {
    let connect_error = |source| Error::Connect {
        url: redact_url(url),
        source,
    };
    let options: PgConnectOptions = url.parse().map_err(connect_error)?;
    let options = options.application_name("airsync");
    // One direct connection first: the pool would retry until its timeout and
    // then report only that it timed out, hiding e.g. "connection refused".
    let probe = tokio::time::timeout(settings.acquire_timeout, options.connect())
        .await
        .map_err(|_| Error::ConnectTimeout {
            url: redact_url(url),
            after: settings.acquire_timeout,
        })?
        .map_err(connect_error)?;
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(connect_error)
}
