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

/// Like [`connect`], for the long-running commands (`serve`, `worker`): while
/// the server cannot be reached or is starting up (a restart, a failover, a
/// deployment that starts airsync first), tries again every second for up to
/// `patience`. A URL the server refuses (unknown database or role, wrong
/// password) fails at once.
pub async fn connect_patiently(
    url: &str,
    settings: &PoolSettings,
    patience: Duration,
) -> Result<PgPool> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(url, settings).await {
            Err(err) if is_transient(&err) && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "the database is not reachable yet; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

/// Whether a connection error may pass by itself.
fn is_transient(err: &Error) -> bool {
    match err {
        Error::ConnectTimeout { .. } => true,
        Error::Connect { source, .. } => match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // 57P01..57P03: shut down or starting up; 53300: too many
            // connections.
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("57P") || code == "53300"),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_never_answers_fails_after_the_patience() {
        let started = std::time::Instant::now();
        let err = connect_patiently(
            "postgres://app@127.0.0.1:1/airsync",
            &PoolSettings::default(),
            Duration::from_millis(1500),
        )
        .await
        .expect_err("nobody listens on port 1");
        assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "it tried again"
        );
    }

    #[tokio::test]
    async fn a_malformed_url_fails_at_once() {
        // Retried, it would take the whole minute.
        let err = tokio::time::timeout(
            Duration::from_secs(30),
            connect_patiently(
                "not a url",
                &PoolSettings::default(),
                Duration::from_secs(60),
            ),
        )
        .await
        .expect("no retries")
        .expect_err("malformed");
        assert!(matches!(err, Error::Connect { .. }), "{err}");
    }
}
