//! Airtable's change time for conflicts seen in a listing. A listing shows
//! records as they are, not when their cells changed; for the few records
//! whose fields changed on both sides, one filtered listing asks Airtable
//! whether `LAST_MODIFIED_TIME()` of those fields is later than the row's
//! `updated_at`.

use std::collections::HashMap;

use airsync_airtable::{formula, ListOptions};

use super::apply::TimeCheck;
use super::context::InboundContext;
use super::schema::ResolvedEntity;
use crate::Result;

/// Conditions per request: each names a record, its fields and an instant,
/// so a request stays well under Airtable's URL limit (the client switches
/// to a POST listing beyond it anyway).
const CHECKS_PER_REQUEST: usize = 25;

/// For each check's record: whether Airtable changed its fields after the
/// check's instant.
pub(crate) async fn airtable_later(
    ctx: &InboundContext,
    entity: &ResolvedEntity,
    checks: &[TimeCheck],
) -> Result<HashMap<String, bool>> {
    let mut answers: HashMap<String, bool> = checks
        .iter()
        .map(|c| (c.record_id.clone(), false))
        .collect();
    let table = ctx.client().table(ctx.base_id(), entity.table_id.as_str());
    let projection: Vec<String> = entity
        .fields
        .first()
        .map(|f| f.id.clone())
        .into_iter()
        .collect();
    for chunk in checks.chunks(CHECKS_PER_REQUEST) {
        let conditions = chunk.iter().map(|check| {
            let fields: Vec<_> = check
                .field_ids
                .iter()
                .filter_map(|id| formula::field_id(id).ok())
                .collect();
            formula::and([
                formula::record_id().equals(formula::text(&check.record_id)),
                formula::fields_modified_since(fields, check.since),
            ])
        });
        let options = ListOptions::new()
            .filter(formula::or(conditions))
            .fields(projection.clone())
            .by_field_id();
        for record in table.list_all(options).await? {
            answers.insert(record.id, true);
        }
    }
    Ok(answers)
}
