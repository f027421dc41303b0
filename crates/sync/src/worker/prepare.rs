//! Turning claimed events into what to send: read each record's row as it is
//! now, resolve its links through the id map, and sort the events into
//! creates, updates, deletes, events with nothing to send, events that must
//! wait for a linked row, and events that can never be sent.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cells::{to_airtable_fields, CellError, LinkIds, DELETED_RECORD};
use crate::id_map;
use crate::inbound::canonical_cell;
use crate::mapping::{EntityMapping, Mapping};
use crate::outbox::{enqueue_change, DeadLetterReason, Operation, OutboxEvent};
use crate::rows::load_rows;
use crate::versions::{self, DeletedBy, RowVersions};
use crate::Result;

/// What to do with one event.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// The row has no Airtable record yet: upsert on its pg_id field.
    Create {
        event: OutboxEvent,
        fields: Map<String, Value>,
        /// When each sent value was made (by Airtable field).
        made_at: HashMap<String, DateTime<Utc>>,
    },
    /// The row has a record: update it by id.
    Update {
        event: OutboxEvent,
        record_id: String,
        fields: Map<String, Value>,
        made_at: HashMap<String, DateTime<Utc>>,
    },
    /// The row is gone and has a record: delete it.
    Delete {
        event: OutboxEvent,
        record_id: String,
    },
}

impl Action {
    pub(crate) fn event(&self) -> &OutboxEvent {
        match self {
            Action::Create { event, .. }
            | Action::Update { event, .. }
            | Action::Delete { event, .. } => event,
        }
    }
}

/// An event that waits for a linked row to reach Airtable.
#[derive(Debug, Clone)]
pub(crate) struct Deferred {
    pub event: OutboxEvent,
    pub reason: String,
    /// The linked row is on its way (it has its own event): waiting costs no
    /// attempt. A link to a row that nothing will send does.
    pub count_attempt: bool,
    /// A linked row is among the events being prepared now, so this event
    /// can go as soon as that one is sent.
    pub in_this_batch: bool,
}

/// The events of one entity, sorted.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub actions: Vec<Action>,
    pub deferred: Vec<Deferred>,
    pub dead: Vec<(OutboxEvent, DeadLetterReason, String)>,
    /// Nothing to send (a row deleted before it ever reached Airtable).
    pub finished: Vec<OutboxEvent>,
    /// The row is gone and no record is known, but an earlier attempt may
    /// have created one before its worker died: look it up by `pg_id`.
    pub lookups: Vec<OutboxEvent>,
}

/// Prepares the events of one entity. `in_batch` holds every (entity, row)
/// being prepared in the same batch, so that a link to one of them waits for
/// it instead of for the next claim.
pub(crate) async fn prepare_entity(
    pool: &PgPool,
    mapping: &Mapping,
    entity: &EntityMapping,
    events: Vec<OutboxEvent>,
    in_batch: &HashSet<(String, Uuid)>,
) -> Result<Prepared> {
    let mut prepared = Prepared::default();
    let ids: Vec<Uuid> = events.iter().map(|e| e.row_id).collect();
    let rows = load_rows(pool, entity, &ids).await?;
    let records = id_map::known_records(pool, &entity.name, &ids).await?;
    let versions = versions::load(pool, &entity.name, &ids).await?;
    let links = resolve_links(pool, entity, rows.values()).await?;

    for event in events {
        let record = records.get(&event.row_id).cloned();
        let row_versions = versions.get(&event.row_id);
        let Some(row) = rows.get(&event.row_id) else {
            // A create that left may have made a record even when its answer
            // never came (a worker killed, a shutdown or a dead-letter replay
            // that put the event back): look it up by pg_id.
            let maybe_created =
                event.attempts > 0 || row_versions.is_some_and(RowVersions::ever_sent);
            match record.map(|r| r.airtable_id) {
                Some(record_id) => prepared.actions.push(Action::Delete { event, record_id }),
                None if maybe_created => prepared.lookups.push(event),
                None => prepared.finished.push(event),
            }
            continue;
        };
        match to_airtable_fields(entity, row, &links) {
            Ok(fields) => {
                let made_at = made_at(entity, row, row_versions, &fields);
                match record {
                    Some(record) => {
                        let record_id = record.airtable_id;
                        let fields = match record.synced_fields {
                            Some(agreed) => changed_fields(entity, fields, &agreed),
                            None => fields,
                        };
                        if fields.is_empty() {
                            prepared.finished.push(event);
                        } else {
                            prepared.actions.push(Action::Update {
                                event,
                                record_id,
                                fields,
                                made_at,
                            });
                        }
                    }
                    None => prepared.actions.push(Action::Create {
                        event,
                        fields,
                        made_at,
                    }),
                }
            }
            Err(CellError::MissingLink {
                entity: target,
                row_id,
            }) => {
                let deferred =
                    defer_for_link(pool, mapping, event, &target, row_id, in_batch).await?;
                match deferred {
                    Ok(deferred) => prepared.deferred.push(deferred),
                    Err(dead) => prepared.dead.push(dead),
                }
            }
            Err(err @ CellError::Unconvertible { .. }) => {
                prepared
                    .dead
                    .push((event, DeadLetterReason::Mapping, err.to_string()));
            }
        }
    }
    Ok(prepared)
}

/// When each value to send was made: the row's change time of its column,
/// else (a row written before change times were kept) the row's
/// `updated_at`.
fn made_at(
    entity: &EntityMapping,
    row: &crate::rows::RowState,
    versions: Option<&RowVersions>,
    fields: &Map<String, Value>,
) -> HashMap<String, DateTime<Utc>> {
    let fallback = row
        .columns
        .get("updated_at")
        .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
        .unwrap_or_else(Utc::now);
    entity
        .fields
        .iter()
        .filter(|f| fields.contains_key(&f.field))
        .map(|f| {
            let at = versions.and_then(|v| v.changed_at(f)).unwrap_or(fallback);
            (f.field.clone(), at)
        })
        .collect()
}

/// Of an update, the fields whose value differs from the one last agreed
/// with Airtable. A field the app did not change is left out, so that a
/// change the team made to it in Airtable meanwhile is not overwritten with
/// the row's older value (it reaches the row through the inbound sync
/// instead). This holds for every owner: a cell the team changed by hand in
/// a table the app owns is repaired by the inbound merge, which pushes the
/// row's value back when the row's change is the later one.
fn changed_fields(
    entity: &EntityMapping,
    fields: Map<String, Value>,
    agreed: &Map<String, Value>,
) -> Map<String, Value> {
    fields
        .into_iter()
        .filter(|(key, value)| {
            let Some(field) = entity.fields.iter().find(|f| &f.field == key) else {
                return true;
            };
            if !field.flows_from_airtable() {
                return true;
            }
            let last = agreed.get(key).map(|v| canonical_cell(field.kind, Some(v)));
            last != Some(canonical_cell(field.kind, Some(value)))
        })
        .collect()
}

/// Record ids of every row that `rows` link to.
async fn resolve_links<'a>(
    pool: &PgPool,
    entity: &EntityMapping,
    rows: impl Iterator<Item = &'a crate::rows::RowState>,
) -> Result<LinkIds> {
    let mut wanted: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for row in rows {
        for (target, id) in row.linked_rows(entity) {
            wanted.entry(target).or_default().push(id);
        }
    }
    let mut links = LinkIds::new();
    for (target, ids) in wanted {
        for (row_id, record) in id_map::airtable_ids(pool, target, &ids).await? {
            links.insert((target.to_owned(), row_id), record);
        }
        let unknown: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| !links.contains_key(&(target.to_owned(), *id)))
            .collect();
        for (row_id, side) in versions::tombstones(pool, target, &unknown).await? {
            if side == DeletedBy::Airtable {
                links.insert((target.to_owned(), row_id), DELETED_RECORD.to_owned());
            }
        }
    }
    Ok(links)
}

/// Decides how an event whose linked row has no record yet waits, and makes
/// sure the linked row is on its way when it can be: docs/architecture.md
/// ("Outbound") says a link is resolved by sending the linked row first or
/// by deferring, never by sending a broken link.
async fn defer_for_link(
    pool: &PgPool,
    mapping: &Mapping,
    event: OutboxEvent,
    target: &str,
    target_row: Uuid,
    in_batch: &HashSet<(String, Uuid)>,
) -> Result<std::result::Result<Deferred, (OutboxEvent, DeadLetterReason, String)>> {
    let reason = format!("waiting for linked {target} {target_row} to reach Airtable");
    if in_batch.contains(&(target.to_owned(), target_row)) {
        return Ok(Ok(Deferred {
            event,
            reason,
            count_attempt: false,
            in_this_batch: true,
        }));
    }
    let target_syncs_outbound = mapping
        .entity(target)
        .is_some_and(EntityMapping::syncs_outbound);
    if !target_syncs_outbound {
        // Reference rows come from Airtable; one without a record will only
        // arrive through the inbound sync, if ever: count the attempts.
        return Ok(Ok(Deferred {
            event,
            reason,
            count_attempt: true,
            in_this_batch: false,
        }));
    }
    let (queued, dead): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM sync_outbox WHERE entity = $1 AND row_id = $2),
                EXISTS (SELECT 1 FROM sync_dead_letter WHERE entity = $1 AND row_id = $2)",
    )
    .bind(target)
    .bind(target_row)
    .fetch_one(pool)
    .await?;
    if dead {
        let message =
            format!("linked {target} {target_row} is in the dead-letter queue; replay it first");
        return Ok(Err((event, DeadLetterReason::MissingLink, message)));
    }
    if !queued {
        // The linked row changed while its capture was off (e.g. an inbound
        // write) and was never pushed: send it first.
        enqueue_change(pool, target, target_row, Operation::Upsert).await?;
    }
    Ok(Ok(Deferred {
        event,
        reason,
        count_attempt: false,
        in_this_batch: false,
    }))
}
