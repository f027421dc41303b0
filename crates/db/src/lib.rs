//! airsync's PostgreSQL schema and connections.
//!
//! The schema lives in numbered SQL files under `migrations/`, embedded in the
//! binary at compile time. [`migrate`] applies the ones a database lacks under
//! an advisory lock, so concurrent starts are safe and a second run is a no-op.

#![forbid(unsafe_code)]

mod constraint;
mod pool;

pub use constraint::{constraint_violation, ConstraintKind, ConstraintViolation};
pub use pool::{connect, connect_patiently, PoolSettings};
pub use sqlx::PgPool;

use std::collections::HashSet;

/// The embedded migrations, in order.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or refused the connection.
    #[error("could not connect to the database at {url}: {source}")]
    Connect {
        /// The URL with its password hidden.
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The server did not answer in time.
    #[error("could not connect to the database at {url}: no answer within {after:?}")]
    ConnectTimeout {
        /// The URL with its password hidden.
        url: String,
        /// How long it waited.
        after: std::time::Duration,
    },
    /// A migration failed, or the database holds migrations this build does
    /// not know (a newer build ran against it), or one was edited after it ran.
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run, as `version_description`, in order.
    pub applied: Vec<String>,
    /// How many migrations the database holds now.
    pub total: usize,
}

/// Applies every embedded migration the database does not have yet.
///
/// Running it again changes nothing; two processes running it at once are
/// serialised by the migrator's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<MigrationReport> {
    let before = applied_versions(pool).await?;
    MIGRATOR.run(pool).await?;
    let applied = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
        .map(|m| format!("{:04}_{}", m.version, m.description.replace(' ', "_")))
        .collect();
    let total = applied_versions(pool).await?.len();
    Ok(MigrationReport { applied, total })
}

/// Versions recorded in the migrations table; empty when it does not exist yet.
async fn applied_versions(pool: &PgPool) -> Result<HashSet<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(HashSet::new());
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(versions.into_iter().collect())
}

/// Hides the password of a database URL, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                if userinfo.contains(':') {
                    format!("{scheme}://{user}:***@{host}")
                } else {
                    format!("{scheme}://{user}@{host}")
                }
            }
            None => url.to_owned(),
        },
        None => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_hides_the_password_only() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/airsync"),
            "postgres://app:***@db:5432/airsync"
        );
        assert_eq!(
            redact_url("postgres://app@db/airsync"),
            "postgres://app@db/airsync"
        );
        assert_eq!(redact_url("postgres://db/airsync"), "postgres://db/airsync");
        assert_eq!(redact_url("p:a@ss@word"), "(not a URL)");
    }
}
