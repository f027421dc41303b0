//! Airtable's change time for conflicts seen in a listing. A listing shows
//! records as they are, not when their cells changed; for the few records
//! whose fields changed on both sides, one filtered listing asks Airtable
//! whether `LAST_MODIFIED_TIME()` of each field is later than the row's
//! change time of that field.

use std::collections::{BTreeMap, HashMap};

use airsync_airtable::{formula, ListOptions};

use super::apply::TimeCheck;
use super::context::InboundContext;
use super::schema::ResolvedEntity;
use crate::Result;

/// Conditions per request: each names a record, its fields and an instant,
/// so a request stays well under Airtable's URL limit (the client switches
/// to a POST listing beyond it anyway).
const CHECKS_PER_REQUEST: usize = 25;

/// For each check's record and field: whether Airtable changed the field
/// after the check's instant for it (the row's time of the field). One
/// listing per field asked about (records of one field per request), so
/// that each answer names its field.
pub(crate) async fn airtable_later(
    ctx: &InboundContext,
    entity: &ResolvedEntity,
    checks: &[TimeCheck],
) -> Result<HashMap<String, HashMap<String, bool>>> {
    let mut answers: HashMap<String, HashMap<String, bool>> = HashMap::new();
    let mut by_field: BTreeMap<&str, Vec<(&str, chrono::DateTime<chrono::Utc>)>> = BTreeMap::new();
    for check in checks {
        for (field, since) in &check.fields {
            answers
                .entry(check.record_id.clone())
                .or_default()
                .insert(field.clone(), false);
            by_field
                .entry(field.as_str())
                .or_default()
                .push((check.record_id.as_str(), *since));
        }
    }
    let table = ctx.client().table(ctx.base_id(), entity.table_id.as_str());
    let projection: Vec<String> = entity
        .fields
        .first()
        .map(|f| f.id.clone())
        .into_iter()
        .collect();
    for (field, records) in by_field {
        let Ok(field_ref) = formula::field_id(field) else {
            continue;
        };
        for chunk in records.chunks(CHECKS_PER_REQUEST) {
            let conditions = chunk.iter().map(|(record, since)| {
                formula::and([
                    formula::record_id().equals(formula::text(record)),
                    formula::fields_modified_since([field_ref.clone()], *since),
                ])
            });
            let options = ListOptions::new()
                .filter(formula::or(conditions))
                .fields(projection.clone())
                .by_field_id();
            for record in table.list_all(options).await? {
                answers
                    .entry(record.id)
                    .or_default()
                    .insert(field.to_owned(), true);
            }
        }
    }
    Ok(answers)
}
