//! Test harness: every test gets its own fresh, migrated PostgreSQL database.
//!
//! Without `DATABASE_URL`, the first test of a test process starts a
//! throwaway cluster (see `airsync-pgtemp`) on a thread of its own, migrates
//! a template database once, and every test gets a database copied from that
//! template. The cluster is stopped and its folder removed when the process
//! exits, also after failed tests; if the process is killed, the server quits
//! with it and the next run removes the folder.
//!
//! With `DATABASE_URL`, that server is used instead (the role needs
//! `CREATEDB`): the template is named after the migrations' checksums, so a
//! changed schema gets a new one, and each test's database is dropped when
//! the test ends.
//!
//! ```no_run
//! # async fn example() {
//! let db = airsync_testkit::TestDb::new().await;
//! sqlx::query("SELECT 1").execute(db.pool()).await.unwrap();
//! # }
//! ```

pub mod fuzz;
mod server;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use server::Server;

/// A database of one test, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    pool: PgPool,
    server: &'static Server,
}

impl TestDb {
    /// A fresh database with every migration applied.
    ///
    /// # Panics
    /// When no PostgreSQL can be started or reached: a test cannot run then.
    pub async fn new() -> TestDb {
        let server = Server::get();
        let template = server.template().await;
        Self::create(server, Some(template)).await
    }

    /// A fresh, empty database (no migrations), for testing migrations.
    pub async fn empty() -> TestDb {
        Self::create(Server::get(), None).await
    }

    async fn create(server: &'static Server, template: Option<&str>) -> TestDb {
        let name = format!("airsync_test_{}", uuid::Uuid::new_v4().simple());
        let statement = match template {
            Some(template) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
            None => format!("CREATE DATABASE \"{name}\" TEMPLATE template0"),
        };
        server.execute_admin(&statement).await;
        let url = server.database_url(&name);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .unwrap_or_else(|err| panic!("connecting to test database {name}: {err}"));
        TestDb {
            name,
            url,
            pool,
            server,
        }
    }

    /// A pool of connections to this test's database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The database's URL, e.g. to hand to a child process as `DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Connections of the test's pool are closed by the server (FORCE);
        // the drop runs on its own thread because the test's runtime may be
        // shutting down or blocked on this very thread.
        self.server.drop_database_blocking(&self.name);
    }
}
