//! A session advisory lock held on a connection of its own, taken out of the
//! pool: a pooled connection would keep the lock once returned. When the
//! holder's process dies its connection closes and the server releases the
//! lock, so another process can take over.

use sqlx::{Connection, PgConnection, PgPool};

use crate::Result;

#[derive(Debug)]
pub(crate) struct SessionLock {
    connection: PgConnection,
    key: String,
}

impl SessionLock {
    /// Takes the lock named `key` if no other session holds it.
    pub(crate) async fn try_acquire(pool: &PgPool, key: String) -> Result<Option<SessionLock>> {
        let mut conn = pool.acquire().await?;
        let acquired: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut *conn)
                .await?;
        Ok(acquired.then(|| SessionLock {
            connection: conn.detach(),
            key,
        }))
    }

    /// Whether the lock is still held: false when the connection was lost
    /// (e.g. PostgreSQL restarted), after which another session may hold it.
    pub(crate) async fn still_held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }

    /// Unlocks, then closes: the server ends a closed session a moment
    /// later, and until then the lock would still look taken.
    pub(crate) async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.key)
            .execute(&mut self.connection)
            .await;
        let _ = self.connection.close().await;
    }
}
