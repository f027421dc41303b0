//! One request lane per base, shared by every worker process: a session
//! advisory lock held on a connection of its own. Only the holder sends to
//! the base, so adding workers adds standbys, never 429s; when the holder
//! dies its connection closes, the lock is released, and a standby takes
//! over.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

use crate::Result;

/// The advisory-lock key of a base's lane.
fn lane_key(base_id: &str) -> String {
    format!("airsync:outbound-lane:{base_id}")
}

/// A held lane. Dropping it closes its connection, which releases the lock.
#[derive(Debug)]
pub struct LaneGuard {
    connection: PgConnection,
}

impl LaneGuard {
    /// Takes the base's lane if no other process holds it.
    pub async fn try_acquire(pool: &PgPool, base_id: &str) -> Result<Option<LaneGuard>> {
        let mut conn: PoolConnection<Postgres> = pool.acquire().await?;
        let acquired: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(lane_key(base_id))
                .fetch_one(&mut *conn)
                .await?;
        if !acquired {
            return Ok(None);
        }
        // Detached from the pool: a pooled connection would keep the lock
        // after it is returned.
        Ok(Some(LaneGuard {
            connection: conn.detach(),
        }))
    }

    /// Whether the lock is still held: false when the connection was lost
    /// (e.g. PostgreSQL restarted), after which another worker may hold it.
    pub async fn still_held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }

    /// Gives the lane up.
    pub async fn release(self) {
        let _ = self.connection.close().await;
    }
}
