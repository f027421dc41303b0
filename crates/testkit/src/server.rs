//! The PostgreSQL server that tests use: `DATABASE_URL`'s, or a throwaway
//! cluster owned by this process.

use std::sync::{mpsc, Mutex, OnceLock};

use airsync_pgtemp::{Cluster, ClusterOptions};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

/// The server the tests of this process use.
#[derive(Debug)]
pub struct Server {
    /// URL of the maintenance database, through which databases are created.
    admin_url: String,
    /// Whether the server is an outside one (`DATABASE_URL`).
    external: bool,
    template: OnceCell<String>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);

impl Server {
    /// The server of this process, started on first use.
    ///
    /// # Panics
    /// When no server can be started.
    pub fn get() -> &'static Server {
        SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Server {
                admin_url: url,
                external: true,
                template: OnceCell::new(),
            },
            _ => {
                let admin_url = start_cluster().unwrap_or_else(|err| panic!("{err}"));
                Server {
                    admin_url,
                    external: false,
                    template: OnceCell::new(),
                }
            }
        })
    }

    /// The URL of `database` on this server.
    pub fn database_url(&self, database: &str) -> String {
        replace_database(&self.admin_url, database)
    }

    /// The migrated template database, created on first use.
    pub async fn template(&'static self) -> &'static str {
        self.template
            .get_or_init(|| async { self.create_template().await })
            .await
    }

    /// Runs one statement on the maintenance database.
    pub async fn execute_admin(&self, statement: &str) {
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|err| panic!("connecting to the test server: {err}"));
        conn.execute(statement)
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
        let _ = conn.close().await;
    }

    /// Drops a test database from a thread of its own.
    pub fn drop_database_blocking(&'static self, name: &str) {
        let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let admin_url = self.admin_url.clone();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                conn.execute(statement.as_str()).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = handle.join();
    }

    /// Creates the template under an advisory lock, so that concurrent test
    /// processes sharing an outside server build it once; it is built under a
    /// temporary name and renamed when complete, so a half-built template is
    /// never used.
    async fn create_template(&self) -> String {
        let name = template_name();
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|err| panic!("connecting to the test server: {err}"));
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind(&name)
            .execute(&mut admin)
            .await
            .unwrap_or_else(|err| panic!("locking the template: {err}"));
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap_or_else(|err| panic!("looking up the template: {err}"));
        if !exists {
            let building = format!("{name}_building");
            for statement in [
                format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
                format!("CREATE DATABASE \"{building}\" TEMPLATE template0"),
            ] {
                admin
                    .execute(statement.as_str())
                    .await
                    .unwrap_or_else(|err| panic!("{statement}: {err}"));
            }
            let pool = sqlx::PgPool::connect(&self.database_url(&building))
                .await
                .unwrap_or_else(|err| panic!("connecting to the template: {err}"));
            airsync_db::migrate(&pool)
                .await
                .unwrap_or_else(|err| panic!("migrating the template: {err}"));
            pool.close().await;
            // A closed connection's server process may still be exiting;
            // the rename waits until the database is free.
            let rename = format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"");
            let mut attempts = 0;
            while let Err(err) = admin.execute(rename.as_str()).await {
                attempts += 1;
                if attempts > 300 {
                    panic!("{rename}: {err}");
                }
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                      WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&building)
                .execute(&mut admin)
                .await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&name)
            .execute(&mut admin)
            .await;
        let _ = admin.close().await;
        name
    }

    /// Whether this is an outside server (`DATABASE_URL`).
    pub fn is_external(&self) -> bool {
        self.external
    }
}

/// `airsync_template_<hash of every migration's version and checksum>`.
fn template_name() -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in airsync_db::MIGRATOR.iter() {
        let bytes = migration.version.to_le_bytes();
        for byte in bytes.iter().chain(migration.checksum.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("airsync_template_{hash:016x}")
}

/// Replaces the database part of a PostgreSQL URL.
fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Starts the process's cluster on a thread that lives until the process
/// exits (the server quits when the thread that started it is gone), and
/// registers its removal at exit.
fn start_cluster() -> Result<String, String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("airsync-test-postgres".into())
        .spawn(move || {
            let started = Cluster::start(&ClusterOptions::default());
            let message = match started {
                Ok(cluster) => {
                    let url = cluster.url("postgres");
                    if let Ok(mut slot) = CLUSTER.lock() {
                        *slot = Some(cluster);
                    }
                    Ok(url)
                }
                Err(err) => Err(err.to_string()),
            };
            let _ = sender.send(message);
            loop {
                std::thread::park();
            }
        })
        .map_err(|err| format!("spawning the test server's thread: {err}"))?;
    let url = receiver
        .recv()
        .map_err(|err| format!("starting the test server: {err}"))??;
    // SAFETY: registering a plain extern "C" function with atexit.
    #[allow(unsafe_code)]
    unsafe {
        libc::atexit(stop_cluster_at_exit);
    }
    Ok(url)
}

extern "C" fn stop_cluster_at_exit() {
    if let Ok(mut slot) = CLUSTER.lock() {
        if let Some(mut cluster) = slot.take() {
            cluster.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replace_database_keeps_host_and_options() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "t1"),
            "postgres://h:5432/t1"
        );
    }
}
