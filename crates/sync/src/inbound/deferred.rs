//! Records set aside: ones that could not be applied yet (a linked record
//! PostgreSQL does not have, a row the schema refuses). They wait in
//! `sync_inbound_deferred` and are tried again by reading them afresh from
//! Airtable, with a growing pause, until they apply or are deleted.

use chrono::Utc;
use std::collections::BTreeMap;

use airsync_airtable::GetOptions;
use sqlx::PgConnection;

use super::context::InboundContext;
use super::listing::apply_listing;
use super::observe::from_record;
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

/// What one retry round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeferredReport {
    /// Records tried again.
    pub tried: u64,
    /// Records that no longer exist in Airtable, forgotten.
    pub gone: u64,
}

/// Tries the due records again: claims up to 50 (one statement, so that two
/// processes never try the same record at once), reads each from Airtable
/// and applies it like a listing.
pub async fn retry_deferred(ctx: &InboundContext) -> Result<DeferredReport> {
    let due: Vec<(String, String)> = sqlx::query_as(
        "UPDATE sync_inbound_deferred d
            SET next_attempt_at = now() + interval '1 minute'
          WHERE d.airtable_id IN (SELECT airtable_id FROM sync_inbound_deferred
                                   WHERE next_attempt_at <= now()
                                   ORDER BY next_attempt_at
                                   LIMIT 50
                                   FOR UPDATE SKIP LOCKED)
          RETURNING d.entity, d.airtable_id",
    )
    .fetch_all(ctx.pool())
    .await?;
    let mut report = DeferredReport::default();
    if due.is_empty() {
        return Ok(report);
    }
    let base = ctx.schema().await?;
    let mut by_entity: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (entity, record) in due {
        by_entity
            .entry(base.position(&entity))
            .or_default()
            .push(record);
    }
    let options = GetOptions {
        return_fields_by_field_id: true,
        ..GetOptions::default()
    };
    for (position, records) in by_entity {
        let Some(entity) = base.entities.get(position) else {
            continue;
        };
        let table = ctx.client().table(ctx.base_id(), entity.table_id.as_str());
        let mut observations = Vec::new();
        let mut gone = Vec::new();
        for record in &records {
            report.tried += 1;
            let read_at = Utc::now();
            match table.get(record, &options).await {
                Ok(found) => observations.push(from_record(entity, &found, read_at)),
                Err(err) if matches!(err.status(), Some(404)) => gone.push(record.as_str()),
                Err(err) => return Err(err.into()),
            }
        }
        if !gone.is_empty() {
            let mut conn = ctx.pool().acquire().await?;
            clear(&mut conn, &gone).await?;
            report.gone += gone.len() as u64;
        }
        apply_listing(ctx, &base, entity, observations, true).await?;
    }
    Ok(report)
}
