//! The chaos test's PostgreSQL: a cluster of its own, so that it can be
//! restarted without disturbing the other tests, or the `DATABASE_URL`
//! server (through testkit), which the test cannot restart.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use airsync_pgtemp::{Cluster, ClusterOptions};
use airsync_testkit::TestDb;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};

enum Order {
    Restart(mpsc::Sender<Result<(), String>>),
    Stop,
}

/// The thread that owns the cluster: the server is a child of the thread
/// that started it, so one thread starts, restarts and stops it.
pub struct Holder {
    orders: mpsc::Sender<Order>,
    thread: Option<JoinHandle<()>>,
}

impl Holder {
    fn start() -> (Holder, String) {
        let (orders, inbox) = mpsc::channel();
        let (ready, started) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut cluster = match Cluster::start(&ClusterOptions::default()) {
                Ok(cluster) => cluster,
                Err(err) => {
                    let _ = ready.send(Err(err.to_string()));
                    return;
                }
            };
            let _ = ready.send(Ok(cluster.url("postgres")));
            while let Ok(order) = inbox.recv() {
                match order {
                    Order::Restart(done) => {
                        let _ = done.send(cluster.restart().map_err(|e| e.to_string()));
                    }
                    Order::Stop => break,
                }
            }
            cluster.stop();
        });
        let admin_url = started
            .recv()
            .expect("cluster thread")
            .expect("start the chaos test's cluster");
        (
            Holder {
                orders,
                thread: Some(thread),
            },
            admin_url,
        )
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.orders.send(Order::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub enum Database {
    Own {
        holder: Holder,
        url: String,
        pool: PgPool,
    },
    Shared(TestDb),
}

impl Database {
    pub async fn start() -> Database {
        if std::env::var_os("DATABASE_URL").is_some() {
            return Database::Shared(TestDb::new().await);
        }
        let (holder, admin_url) = tokio::task::spawn_blocking(Holder::start)
            .await
            .expect("join");
        let mut admin = PgConnection::connect(&admin_url).await.expect("admin");
        admin
            .execute("CREATE DATABASE airsync_chaos")
            .await
            .expect("create database");
        let _ = admin.close().await;
        let server = admin_url.rsplit_once('/').map_or("", |(server, _)| server);
        let url = format!("{server}/airsync_chaos");
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .expect("pool");
        airsync_db::migrate(&pool).await.expect("migrate");
        Database::Own { holder, url, pool }
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Own { url, .. } => url,
            Database::Shared(db) => db.url(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        match self {
            Database::Own { pool, .. } => pool,
            Database::Shared(db) => db.pool(),
        }
    }

    /// Restarts the server as after a crash; false when the server is not
    /// the test's own.
    pub async fn restart(&self) -> bool {
        let Database::Own { holder, .. } = self else {
            return false;
        };
        let (done, result) = mpsc::channel();
        holder
            .orders
            .send(Order::Restart(done))
            .expect("cluster thread");
        tokio::task::spawn_blocking(move || result.recv())
            .await
            .expect("join")
            .expect("cluster thread")
            .expect("restart PostgreSQL");
        true
    }
}
