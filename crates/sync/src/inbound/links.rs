//! Linked records PostgreSQL does not know yet. A record is never dropped
//! for a link: before a batch is applied, every record it links to that is
//! neither in the id map nor in the batch is read from Airtable and applied
//! first (and so on for its own links, a few levels deep). A linked record
//! Airtable no longer has is left out of the link, as Airtable itself does;
//! one that cannot be read now leaves its dependents set aside to try again.

use chrono::Utc;
use std::collections::{HashMap, HashSet};

use airsync_airtable::GetOptions;

use super::context::InboundContext;
use super::observe::{from_record, Observation};
use super::schema::ResolvedBase;
use crate::Result;

/// How deep a chain of unknown links is followed in one batch.
const MAX_DEPTH: usize = 3;
/// At most this many linked records are read for one batch; the rest wait.
const MAX_FETCHES: usize = 100;

/// What the prefetch found.
#[derive(Debug, Default)]
pub(crate) struct Prefetched {
    /// Linked records read from Airtable, as (entity's place, observation),
    /// to apply before the batch, in the mapping's order.
    pub extra: Vec<(usize, Observation)>,
    /// Records that no longer exist.
    pub gone: HashSet<String>,
    /// Records read.
    pub fetched: u64,
}

/// Reads the linked records of `batch` (entity's place, observation) that
/// PostgreSQL does not know yet.
pub(crate) async fn prefetch_links(
    ctx: &InboundContext,
    base: &ResolvedBase,
    batch: &[(usize, &Observation)],
) -> Result<Prefetched> {
    let mut out = Prefetched::default();
    let mut present: HashSet<(String, String)> = HashSet::new();
    for (position, observation) in batch {
        if let Some(entity) = base.entities.get(*position) {
            present.insert((entity.name().to_owned(), observation.record_id.clone()));
        }
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (position, observation) in batch {
        if let Some(entity) = base.entities.get(*position) {
            for (target, record) in observation.linked_records(entity) {
                wanted.push((target.to_owned(), record));
            }
        }
    }
    let options = GetOptions {
        return_fields_by_field_id: true,
        ..GetOptions::default()
    };
    for _ in 0..MAX_DEPTH {
        wanted.retain(|w| !present.contains(w));
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            break;
        }
        let unknown = unknown_records(ctx, &wanted).await?;
        let mut next = Vec::new();
        for (target, record) in unknown {
            if out.fetched as usize >= MAX_FETCHES {
                break;
            }
            let Some(entity) = base.entity(&target) else {
                continue;
            };
            present.insert((target.clone(), record.clone()));
            out.fetched += 1;
            let read_at = Utc::now();
            let found = ctx
                .client()
                .table(ctx.base_id(), entity.table_id.as_str())
                .get(&record, &options)
                .await;
            match found {
                Ok(found) => {
                    let observation = from_record(entity, &found, read_at);
                    for (t, r) in observation.linked_records(entity) {
                        next.push((t.to_owned(), r));
                    }
                    out.extra.push((base.position(&target), observation));
                }
                Err(err) if matches!(err.status(), Some(404)) => {
                    out.gone.insert(record);
                }
                Err(err) => return Err(err.into()),
            }
        }
        wanted = next;
    }
    out.extra.sort_by_key(|(position, _)| *position);
    Ok(out)
}

/// The (entity, record) pairs the id map does not know.
async fn unknown_records(
    ctx: &InboundContext,
    wanted: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    let mut by_entity: HashMap<&str, Vec<&str>> = HashMap::new();
    for (entity, record) in wanted {
        by_entity.entry(entity).or_default().push(record);
    }
    let mut unknown = Vec::new();
    for (entity, records) in by_entity {
        let known: HashSet<String> = sqlx::query_scalar(
            "SELECT airtable_id FROM airtable_id_map WHERE entity = $1 AND airtable_id = ANY($2)",
        )
        .bind(entity)
        .bind(&records)
        .fetch_all(ctx.pool())
        .await?
        .into_iter()
        .collect();
        unknown.extend(
            records
                .into_iter()
                .filter(|r| !known.contains(*r))
                .map(|r| (entity.to_owned(), r.to_owned())),
        );
    }
    unknown.sort();
    Ok(unknown)
}
