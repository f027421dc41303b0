//! Records set aside: ones that could not be applied yet (a linked record
//! PostgreSQL does not have, a row the schema refuses). They wait in
//! `sync_inbound_deferred`, with a growing pause before each next attempt,
//! until they apply or are deleted; [`super::deferred_retry`] tries them
//! again.

use sqlx::{PgConnection, PgExecutor};

use crate::Result;

/// Sets a record aside with the reason it could not be applied.
pub(crate) async fn park(
    conn: &mut PgConnection,
    entity: &str,
    record_id: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_inbound_deferred (airtable_id, entity, reason, next_attempt_at)
         VALUES ($1, $2, $3, now() + interval '5 seconds')
         ON CONFLICT (airtable_id) DO UPDATE
            SET entity = EXCLUDED.entity,
                reason = EXCLUDED.reason,
                attempts = sync_inbound_deferred.attempts + 1,
                next_attempt_at = now() + least(3600, 5 * 2 ^ least(sync_inbound_deferred.attempts, 12))
                                          * interval '1 second'",
    )
    .bind(record_id)
    .bind(entity)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets records that were applied or deleted.
pub(crate) async fn clear(conn: &mut PgConnection, record_ids: &[&str]) -> Result<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM sync_inbound_deferred WHERE airtable_id = ANY($1)")
        .bind(record_ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Claims up to 50 records whose next attempt is due, as (entity, record),
/// putting their next attempt a minute off. One statement, so that two
/// processes never try the same record at once.
pub(crate) async fn claim_due<'e>(executor: impl PgExecutor<'e>) -> Result<Vec<(String, String)>> {
    let due = sqlx::query_as(
        "UPDATE sync_inbound_deferred d
            SET next_attempt_at = now() + interval '1 minute'
          WHERE d.airtable_id IN (SELECT airtable_id FROM sync_inbound_deferred
                                   WHERE next_attempt_at <= now()
                                   ORDER BY next_attempt_at
                                   LIMIT 50
                                   FOR UPDATE SKIP LOCKED)
          RETURNING d.entity, d.airtable_id",
    )
    .fetch_all(executor)
    .await?;
    Ok(due)
}
