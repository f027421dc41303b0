//! Applying records read from a listing or one by one (poll, reconcile,
//! deferred retries): the records as they are now, a batch per transaction.

use std::collections::{HashMap, HashSet};

use super::apply::{apply_upserts, begin_inbound, BatchInput, Counts, Mode};
use super::context::InboundContext;
use super::links::prefetch_links;
use super::observe::Observation;
use super::schema::{ResolvedBase, ResolvedEntity};
use super::times::airtable_later;
use crate::Result;

/// Applies one batch of records of `entity` (a page), with the linked
/// records they need first. Conflicts that need Airtable's change time are
/// asked about after the first commit and applied in a second transaction,
/// so that no row stays locked across a request; a record that either side
/// changed again meanwhile is left to the payload or listing that shows the
/// change. `measures_provisioning`:
/// see [`BatchInput::measures_provisioning`].
pub(crate) async fn apply_listing(
    ctx: &InboundContext,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
    observations: Vec<Observation>,
    measures_provisioning: bool,
) -> Result<Counts> {
    let mut counts = Counts::default();
    if observations.is_empty() {
        return Ok(counts);
    }
    let position = base.position(entity.name());
    let batch: Vec<(usize, &Observation)> = observations.iter().map(|o| (position, o)).collect();
    let prefetched = prefetch_links(ctx, base, &batch).await?;
    counts.links_fetched += prefetched.fetched;
    let no_answers = HashMap::new();

    let mut tx = begin_inbound(ctx.pool()).await?;
    let mut start = 0;
    while start < prefetched.extra.len() {
        let extra_position = prefetched.extra[start].0;
        let end = prefetched.extra[start..]
            .iter()
            .position(|(p, _)| *p != extra_position)
            .map_or(prefetched.extra.len(), |n| start + n);
        if let Some(extra_entity) = base.entities.get(extra_position) {
            let group: Vec<Observation> = prefetched.extra[start..end]
                .iter()
                .map(|(_, o)| o.clone())
                .collect();
            let input = BatchInput {
                entity: extra_entity,
                mode: Mode::Listing,
                airtable_later: &no_answers,
                gone: &prefetched.gone,
                measures_provisioning,
            };
            // A linked record's own conflicts wait for its next listing.
            apply_upserts(&mut tx, &input, &group, &mut counts).await?;
        }
        start = end;
    }
    let input = BatchInput {
        entity,
        mode: Mode::Listing,
        airtable_later: &no_answers,
        gone: &prefetched.gone,
        measures_provisioning,
    };
    let checks = apply_upserts(&mut tx, &input, &observations, &mut counts).await?;
    tx.commit().await?;
    counts.committed(&ctx.metrics());

    if !checks.is_empty() {
        let answers = airtable_later(ctx, entity, &checks).await?;
        let wanted: HashSet<&str> = checks.iter().map(|c| c.record_id.as_str()).collect();
        let retry: Vec<Observation> = observations
            .into_iter()
            .filter(|o| wanted.contains(o.record_id.as_str()))
            .collect();
        let input = BatchInput {
            airtable_later: &answers,
            ..input
        };
        let mut tx = begin_inbound(ctx.pool()).await?;
        let overtaken = apply_upserts(&mut tx, &input, &retry, &mut counts).await?;
        tx.commit().await?;
        for check in &overtaken {
            // Either side changed the field after the listing or the
            // question: the listing is stale for it. The payload or the
            // listing that shows the later change brings it.
            tracing::debug!(entity = %entity.name(), record = %check.record_id,
                "a listing overtaken by a later change while Airtable's time was asked; not applied");
            counts.stale_listings_skipped += 1;
        }
        counts.committed(&ctx.metrics());
    }
    ctx.metrics().add(&counts);
    Ok(counts)
}
