//! Trying the records set aside in `sync_inbound_deferred` again (see
//! [`super::deferred`]): each due record is read afresh from Airtable and
//! applied like a listing, until it applies or is deleted.

use chrono::Utc;
use std::collections::BTreeMap;

use airsync_airtable::GetOptions;

use super::context::InboundContext;
use super::deferred::{claim_due, clear};
use super::listing::apply_listing;
use super::observe::from_record;
use crate::Result;

/// What one retry round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeferredReport {
    /// Records tried again.
    pub tried: u64,
    /// Records that no longer exist in Airtable, forgotten.
    pub gone: u64,
}

/// Tries the due records again: claims up to 50 ([`claim_due`]), reads
/// each from Airtable and applies it like a listing.
pub async fn retry_deferred(ctx: &InboundContext) -> Result<DeferredReport> {
    let due = claim_due(ctx.pool()).await?;
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
