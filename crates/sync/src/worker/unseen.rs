//! Team edits that no payload will show. While a webhook of ours records
//! the base's history, a push may go over a team edit that the inbound sync
//! has not applied yet: the edit's payload still comes, and the merge
//! decides by time (docs/sync.md, "The sync model"). Without that history
//! (no webhook yet or webhooks off, one gone, expired or in error, and until
//! a new one's history reaches back to the record's last agreement) the
//! edit would be gone for good once overwritten. So an update of such a
//! record reads the record first. A field about to be sent whose cell in
//! Airtable is neither the value last agreed, nor the value being sent, nor
//! one that a push of ours sent, holds a team edit the inbound sync has not
//! applied: the update waits, without using an attempt, until the inbound
//! sync (a poll, a reconcile, the new webhook) has merged that edit, which
//! decides per field which change is the later one.
//!
//! What stays open: a team edit made between the read and the update, at a
//! time no webhook records; and one made after a webhook stopped recording
//! and before airsync learns of it (the reader finds a deleted webhook at
//! its next read, the webhook check an expired one).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::inbound::{canonical_cell, history_since};
use crate::mapping::EntityMapping;
use crate::outbox::{self, OutboxEvent, Requeue};
use crate::versions::{self, RowVersions};
use crate::Result;

use super::prepare::Action;
use super::send::{fail_events, ChunkOutcome, RecordWriter};
use super::WorkerContext;

/// Records read per request.
const READ_CHUNK: usize = 10;

/// Of `actions`, the ones to send now. Updates of records whose team edits
/// may be unseen are read first; those holding one are put back to wait,
/// and those whose read failed are retried as a failed send would be. What
/// the reads did is added to `outcome`.
pub(crate) async fn hold_unseen_edits<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &EntityMapping,
    actions: Vec<Action>,
    outcome: &mut ChunkOutcome,
) -> Result<Vec<Action>> {
    if !ctx.settings.tuning.read_before_update_without_history {
        return Ok(actions);
    }
    let (updates, mut send): (Vec<Action>, Vec<Action>) = actions
        .into_iter()
        .partition(|a| matches!(a, Action::Update { .. }));
    if updates.is_empty() {
        return Ok(send);
    }
    let since = history_since(&ctx.pool, &ctx.settings.base_id, &entity.name).await?;
    let ids: Vec<Uuid> = updates.iter().map(|a| a.event().row_id).collect();
    let agreed = agreements(ctx, &entity.name, &ids).await?;
    let (unsure, sure): (Vec<Action>, Vec<Action>) = updates.into_iter().partition(|a| {
        let agreed_at = agreed.get(&a.event().row_id).and_then(|a| a.at);
        match (agreed_at, since) {
            (Some(agreed_at), Some(since)) => agreed_at < since,
            _ => true,
        }
    });
    send.extend(sure);
    if unsure.is_empty() {
        return Ok(send);
    }
    let unsure_ids: Vec<Uuid> = unsure.iter().map(|a| a.event().row_id).collect();
    let versions = versions::load(&ctx.pool, &entity.name, &unsure_ids).await?;
    let mut rest = unsure;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(READ_CHUNK));
        let chunk = std::mem::replace(&mut rest, tail);
        outcome.requests += 1;
        let (record_ids, fields) = wanted(&chunk);
        let records = match ctx
            .writer
            .read(&entity.airtable_table, record_ids, fields)
            .await
        {
            Ok(records) => records.into_iter().collect::<HashMap<_, _>>(),
            Err(mut err) => {
                // A read refuses no record: whatever went wrong, the updates
                // are tried again.
                err.retryable = true;
                outcome.add(fail_events(ctx, chunk.iter().map(Action::event), &err).await?);
                continue;
            }
        };
        for action in chunk {
            let Action::Update {
                event,
                record_id,
                fields,
                ..
            } = &action
            else {
                continue;
            };
            // A record the team deleted: the update is answered as done, and
            // the delete wins.
            let Some(cells) = records.get(record_id) else {
                send.push(action);
                continue;
            };
            let row_agreed = agreed.get(&event.row_id).and_then(|a| a.fields.as_ref());
            match unseen_field(
                entity,
                fields,
                cells,
                row_agreed,
                versions.get(&event.row_id),
            ) {
                None => send.push(action),
                Some(field) => {
                    hold(ctx, event, &field).await?;
                    outcome.retried += 1;
                }
            }
        }
    }
    Ok(send)
}

/// A record's last agreement with Airtable.
struct Agreement {
    at: Option<DateTime<Utc>>,
    fields: Option<Map<String, Value>>,
}

async fn agreements<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    entity: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Agreement>> {
    let rows: Vec<(Uuid, Option<Value>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT row_id, synced_fields, agreed_at FROM airtable_id_map
          WHERE entity = $1 AND row_id = ANY($2)",
    )
    .bind(entity)
    .bind(ids)
    .fetch_all(&ctx.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, fields, at)| {
            let fields = match fields {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            };
            (id, Agreement { at, fields })
        })
        .collect())
}

/// The record ids of a chunk of updates and the fields they send.
fn wanted(chunk: &[Action]) -> (Vec<String>, Vec<String>) {
    let mut record_ids = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for action in chunk {
        if let Action::Update {
            record_id,
            fields: sent,
            ..
        } = action
        {
            record_ids.push(record_id.clone());
            for key in sent.keys() {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
        }
    }
    (record_ids, fields)
}

/// The first field about to be sent whose cell in Airtable is a change
/// that the inbound sync has not applied: neither the value last agreed,
/// nor the value being sent, nor a value one of our pushes sent.
pub(crate) fn unseen_field(
    entity: &EntityMapping,
    sending: &Map<String, Value>,
    cells: &Map<String, Value>,
    agreed: Option<&Map<String, Value>>,
    versions: Option<&RowVersions>,
) -> Option<String> {
    for (key, value) in sending {
        let Some(field) = entity.fields.iter().find(|f| &f.field == key) else {
            continue;
        };
        // The team's changes of a field that flows one way only are not
        // synced: the app's value is the field's.
        if !field.flows_from_airtable() {
            continue;
        }
        let theirs = canonical_cell(field.kind, cells.get(key));
        let known = agreed
            .map(|a| canonical_cell(field.kind, a.get(key)))
            .into_iter()
            .chain([canonical_cell(field.kind, Some(value))])
            .chain(
                versions
                    .map(|v| v.sent(key))
                    .unwrap_or_default()
                    .iter()
                    .map(|s| canonical_cell(field.kind, Some(&s.v))),
            )
            .any(|known| known == theirs);
        if !known {
            return Some(key.clone());
        }
    }
    None
}

/// Puts an update back until the inbound sync has applied the team's edit.
async fn hold<W: RecordWriter>(
    ctx: &WorkerContext<W>,
    event: &OutboxEvent,
    field: &str,
) -> Result<()> {
    tracing::info!(entity = %event.entity, row_id = %event.row_id, %field,
        "Airtable shows a team edit the inbound sync has not applied and no webhook recorded; the update waits for it");
    let requeue = Requeue {
        count_attempt: false,
        delay: ctx.settings.tuning.unseen_edit_wait,
        error: Some(format!(
            "waiting for the inbound sync to apply a team edit of {field}"
        )),
    };
    outbox::requeue(&ctx.pool, &ctx.settings.owner, event.id, &requeue).await?;
    Ok(())
}
