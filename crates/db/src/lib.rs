//! airsync's PostgreSQL schema and connections.
//!
//! The schema lives in numbered SQL files under `migrations/`, embedded in the
//! binary at compile time. [`migrate`] applies the ones a database lacks under
//! an advisory lock, so concurrent starts are safe and a second run is a no-op.
//! A landed migration's statements never change; where only its comments were
//! reworded, [`migrate`] records the new text's checksum in place of the one
//! it knows the earlier text had (see [`REWORDED`]).

#![forbid(unsafe_code)]

mod constraint;
mod pool;

pub use constraint::{constraint_violation, ConstraintKind, ConstraintViolation};
pub use pool::{connect, connect_patiently, PoolSettings};
pub use sqlx::PgPool;

use std::collections::HashSet;

/// The embedded migrations, in order.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Migrations whose comments were reworded after they landed, each with the
/// checksum (SHA-384, in hex) of the text a database that ran it recorded.
/// Only comments changed: the statements are, byte for byte, the ones that
/// ran. [`migrate`] replaces exactly these checksums with the current ones;
/// any other difference still stops the run.
///
/// The comments of 0003 to 0008 once cited the design notes the project
/// started from, which are not in the repository; they now cite `docs/`.
pub const REWORDED: [(i64, &str); 5] = [
    (
        3,
        "b1fe6ee0bd230104871a30f473c02e9e0d8c88b06b43662e784d8d99f06d422b4cf15619047042e894763c48c9380cb2",
    ),
    (
        4,
        "0e28012bcf1b49956f24dc17806f8fb80743e1b5ff4efba161b10fe7c063cbfdc705d02bb7342af74d93938f61dfb309",
    ),
    (
        5,
        "b28bf6c12b70e9e2beb4204ab722ab7e8335be79c988da909cffc96639448831c79f336ca163c97e328e843678d253ac",
    ),
    (
        6,
        "f9ac67b6abaca8abefccc01a7f4e9a22a7d60edc9a1609e6a855a109979e0fefe80deeeb3025cd35fbca868f105db5b9",
    ),
    (
        8,
        "f5e58ac5dbe2108b4dd5f4994b9c5af9499c1295b11ac6b6a52733ea3e1977cbfa0bb242ac767e4b7fb8c60795b8a9ac",
    ),
];

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
    /// Migrations whose reworded comments this run accepted (see
    /// [`REWORDED`]), as `version_description`.
    pub reworded: Vec<String>,
    /// How many migrations the database holds now.
    pub total: usize,
}

/// Applies every embedded migration the database does not have yet.
///
/// Running it again changes nothing; two processes running it at once are
/// serialised by the migrator's advisory lock.
pub async fn migrate(pool: &PgPool) -> Result<MigrationReport> {
    let before = applied_versions(pool).await?;
    let reworded = if before.is_empty() {
        Vec::new()
    } else {
        accept_reworded(pool).await?
    };
    run_migrator(pool).await?;
    let applied = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !before.contains(&m.version))
        .map(name)
        .collect();
    let total = applied_versions(pool).await?.len();
    Ok(MigrationReport {
        applied,
        reworded,
        total,
    })
}

/// Runs the migrator on a connection of its own. The migrator holds a
/// session-level advisory lock while it works and does not release it when it
/// fails (a migration edited after it ran, one this build does not know).
/// After a failure the lock is released on the same session before `migrate`
/// returns, so the next run never waits for it; the connection is then closed,
/// not handed back to the pool. Closing alone would not do: the server ends
/// the session, and with it the lock, only some time after the client has
/// hung up.
async fn run_migrator(pool: &PgPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    match MIGRATOR.run_direct(&mut *conn).await {
        Ok(()) => Ok(()),
        Err(err) => {
            // If the unlock fails the connection is broken, and closing or
            // dropping it ends the session and its lock all the same.
            if let Err(unlock) = sqlx::migrate::Migrate::unlock(&mut *conn).await {
                tracing::warn!(error = %unlock, "could not release the migrator's lock after a failed run");
            }
            let _ = sqlx::Connection::close(conn.detach()).await;
            Err(err.into())
        }
    }
}

/// Records the current checksum of each [`REWORDED`] migration the database
/// holds with its earlier text's checksum. The update names the old checksum,
/// so two processes doing it at once change each row once.
async fn accept_reworded(pool: &PgPool) -> Result<Vec<String>> {
    let mut accepted = Vec::new();
    for (version, earlier) in REWORDED {
        let Some(migration) = MIGRATOR
            .iter()
            .find(|m| m.version == version && !m.migration_type.is_down_migration())
        else {
            continue;
        };
        let changed = sqlx::query(
            "UPDATE _sqlx_migrations SET checksum = $1 \
             WHERE version = $2 AND checksum = decode($3, 'hex')",
        )
        .bind(migration.checksum.as_ref())
        .bind(version)
        .bind(earlier)
        .execute(pool)
        .await?
        .rows_affected();
        if changed > 0 {
            accepted.push(name(migration));
        }
    }
    Ok(accepted)
}

/// A migration as `version_description`, e.g. `0004_sync`.
fn name(migration: &sqlx::migrate::Migration) -> String {
    format!(
        "{:04}_{}",
        migration.version,
        migration.description.replace(' ', "_")
    )
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
    use super::{redact_url, MIGRATOR, REWORDED};

    #[test]
    fn each_reworded_migration_exists_and_its_text_has_changed() {
        for (version, earlier) in REWORDED {
            let migration = MIGRATOR
                .iter()
                .find(|m| m.version == version)
                .unwrap_or_else(|| panic!("no migration {version}"));
            let current: String = migration
                .checksum
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(earlier.len(), 96, "migration {version}: not a SHA-384");
            assert_ne!(current, earlier, "migration {version} was not reworded");
        }
    }

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
