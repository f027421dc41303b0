//! Airtable's change time for conflicts seen in a listing: the question
//! ([`TimeCheck`]), its answers ([`LaterAnswers`]) and the listing that
//! asks it ([`airtable_later`]). A listing shows
//! records as they are, not when their cells changed; for the few records
//! whose fields changed on both sides, one filtered listing asks Airtable
//! whether `LAST_MODIFIED_TIME()` of each field is later than the row's
//! change time of that field, and reads the field with the answer: a
//! change later than the listing answers for the value it made, not for
//! the value the listing showed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use airsync_airtable::{formula, ListOptions};

use super::context::InboundContext;
use super::merge::LaterAnswer;
use super::observe::from_record;
use super::schema::ResolvedEntity;
use crate::Result;

/// Conditions per request: each names a record, its fields and an instant,
/// so a request stays well under Airtable's URL limit (the client switches
/// to a POST listing beyond it anyway).
const CHECKS_PER_REQUEST: usize = 25;

/// A record whose conflicts need Airtable's change time: whether each field
/// (by id) changed after the instant given with it (the row's change time
/// of that field).
#[derive(Debug, Clone)]
pub(crate) struct TimeCheck {
    pub record_id: String,
    pub fields: Vec<(String, DateTime<Utc>)>,
}

/// Answers to [`TimeCheck`]s: by record, by field id, whether Airtable
/// changed the field after the row's time, and to what.
pub(crate) type LaterAnswers = HashMap<String, HashMap<String, LaterAnswer>>;

/// For each check's record and field: whether Airtable changed the field
/// after the check's instant for it (the row's time of the field), and its
/// cell now if so. One listing per field asked about (records of one field
/// per request), so that each answer names its field.
pub(crate) async fn airtable_later(
    ctx: &InboundContext,
    entity: &ResolvedEntity,
    checks: &[TimeCheck],
) -> Result<LaterAnswers> {
    let mut answers = LaterAnswers::new();
    let mut by_field: BTreeMap<&str, Vec<(&str, DateTime<Utc>)>> = BTreeMap::new();
    for check in checks {
        for (field, since) in &check.fields {
            answers.entry(check.record_id.clone()).or_default().insert(
                field.clone(),
                LaterAnswer {
                    since: *since,
                    changed_to: None,
                },
            );
            by_field
                .entry(field.as_str())
                .or_default()
                .push((check.record_id.as_str(), *since));
        }
    }
    let table = ctx.client().table(ctx.base_id(), entity.table_id.as_str());
    for (field, records) in by_field {
        let Ok(field_ref) = formula::field_id(field) else {
            continue;
        };
        let Some(key) = entity
            .fields
            .iter()
            .find(|f| f.id == field)
            .map(|f| f.key())
        else {
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
                .fields(vec![field.to_owned()])
                .by_field_id();
            let read_at = Utc::now();
            for record in table.list_all(options).await? {
                let now = from_record(entity, &record, read_at).cell(entity, key);
                if let Some(answer) = answers
                    .get_mut(&record.id)
                    .and_then(|fields| fields.get_mut(field))
                {
                    answer.changed_to = Some(now);
                }
            }
        }
    }
    Ok(answers)
}
