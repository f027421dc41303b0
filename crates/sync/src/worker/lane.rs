//! One request lane per base, shared by every worker process: a session
//! advisory lock held on a connection of its own. Only the holder sends to
//! the base, so adding workers adds standbys, never 429s; when the holder
//! dies its connection closes, the lock is released, and a standby takes
//! over.

use airsync_airtable::BaseId;
use sqlx::PgPool;

use crate::session_lock::SessionLock;
use crate::Result;

/// A held lane. Dropping it closes its connection, which releases the lock.
#[derive(Debug)]
pub struct LaneGuard(SessionLock);

impl LaneGuard {
    /// Takes the base's lane if no other process holds it.
    pub async fn try_acquire(pool: &PgPool, base_id: &BaseId) -> Result<Option<LaneGuard>> {
        let key = format!("airsync:outbound-lane:{base_id}");
        Ok(SessionLock::try_acquire(pool, key).await?.map(LaneGuard))
    }

    /// Whether the lock is still held: false when the connection was lost
    /// (e.g. PostgreSQL restarted), after which another worker may hold it.
    pub async fn still_held(&mut self) -> bool {
        self.0.still_held().await
    }

    /// Gives the lane up.
    pub async fn release(self) {
        self.0.release().await;
    }
}
