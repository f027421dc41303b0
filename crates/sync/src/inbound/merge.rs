//! The per-field three-way merge of DESIGN.md's "Conflicts".
//!
//! Three values meet for each field: Airtable's (`theirs`), the row's
//! (`ours`) and the value last agreed between both sides (`base`, from
//! `airtable_id_map.synced_fields`: what the worker last pushed or the
//! inbound sync last applied). A field that differs from the base on one
//! side only was changed on that side, which wins. A field changed on both
//! sides is a conflict: Airtable wins for reference data (owner `airtable`)
//! and for `from_airtable` fields; otherwise the later change wins, judged
//! by Airtable's change time against the row's `updated_at`, and a tie goes
//! to PostgreSQL, the primary store. When PostgreSQL wins, its value is
//! pushed again.
//!
//! One case needs more than three values. The worker pushes every field of
//! a row, so a push overwrites whatever Airtable held, including a person's
//! edit made a moment before it. A payload older than the record's last push
//! (`at <= last_pushed_at`) therefore does not show what Airtable holds now,
//! and the base already is what that push sent: its changes are judged as
//! conflicts by time, and a value taken from it is pushed back, because
//! Airtable lost it to our push.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::observe::Observation;
use super::schema::ResolvedEntity;
use crate::mapping::{Direction, FieldKind, Owner};

/// Whether and how PostgreSQL's state must be sent to Airtable after the
/// merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Push {
    /// Airtable has, or will have, what PostgreSQL has.
    #[default]
    None,
    /// PostgreSQL changed since the last agreement; its outbox event is
    /// normally on its way, enqueue one only if there is none.
    IfNoEvent,
    /// Airtable holds something else than PostgreSQL: enqueue a push.
    Always,
}

/// Which side a conflict kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Winner {
    Airtable,
    Postgres,
}

/// A field changed on both sides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conflict {
    pub field: String,
    pub winner: Winner,
    pub airtable: Value,
    pub postgres: Value,
}

/// What the merge of one record decided.
#[derive(Debug, Default)]
pub(crate) struct MergeOutcome {
    /// Indexes (into the entity's fields) of the fields whose Airtable value
    /// is written to the row.
    pub take: Vec<usize>,
    /// New `synced_fields` entries (canonical).
    pub synced: Map<String, Value>,
    pub push: Push,
    pub conflicts: Vec<Conflict>,
    /// Ids of the fields of conflicts that need Airtable's change time, which
    /// the observation lacks (a listing): the caller asks Airtable and merges
    /// again.
    pub needs_time: Vec<String>,
}

/// The row's side of a merge.
pub(crate) struct RowSide<'a> {
    /// Canonical cells of the row.
    pub ours: &'a Map<String, Value>,
    /// `synced_fields`, as stored (`None`: never agreed).
    pub base: Option<&'a Map<String, Value>>,
    pub updated_at: DateTime<Utc>,
    pub last_pushed_at: Option<DateTime<Utc>>,
}

/// Merges Airtable's observation of a record into its existing row.
/// `airtable_later` answers, for a listing, whether Airtable's change of the
/// conflicting fields is later than the row's `updated_at`.
pub(crate) fn merge_record(
    entity: &ResolvedEntity,
    observation: &Observation,
    row: &RowSide<'_>,
    airtable_later: Option<bool>,
) -> MergeOutcome {
    let mut out = MergeOutcome::default();
    let outbound = entity.mapping.syncs_outbound();
    for (index, field) in entity.fields.iter().enumerate() {
        let key = field.key();
        if !field.mapping.flows_from_airtable() || !observation.reports(key) {
            continue;
        }
        let theirs = observation.cell(entity, key);
        let ours = row.ours.get(key).cloned().unwrap_or(Value::Null);
        let base = row
            .base
            .and_then(|b| b.get(key))
            .map(|v| field.airtable_value(Some(v)));
        if field.kind() == FieldKind::PgId {
            // The row's id never changes; Airtable gets it back if it lost it.
            if theirs != ours && outbound {
                out.push = out.push.max(Push::Always);
            }
            out.synced.insert(key.to_owned(), theirs);
            continue;
        }
        let pushed_after = outbound
            && field.mapping.flows_to_airtable()
            && observation
                .at
                .zip(row.last_pushed_at)
                .is_some_and(|(at, pushed)| at <= pushed);
        if theirs == ours {
            if !pushed_after {
                out.synced.insert(key.to_owned(), theirs);
            }
            continue;
        }
        let airtable_owns = entity.mapping.owner == Owner::Airtable
            || field.mapping.direction == Direction::FromAirtable;
        if airtable_owns {
            out.take.push(index);
            out.synced.insert(key.to_owned(), theirs);
            continue;
        }
        if pushed_after {
            if base.as_ref() == Some(&theirs) {
                // Our later push sent this very value; the row moved on since.
                out.push = out.push.max(Push::Always);
                continue;
            }
            match later_side(observation, row, airtable_later) {
                None => out.needs_time.push(field.id.clone()),
                Some(Winner::Airtable) => {
                    // Airtable lost this value to our push: send it back.
                    out.take.push(index);
                    out.push = out.push.max(Push::Always);
                    out.conflicts
                        .push(conflict(key, Winner::Airtable, theirs, ours));
                }
                Some(Winner::Postgres) => {
                    out.push = out.push.max(Push::Always);
                    out.conflicts
                        .push(conflict(key, Winner::Postgres, theirs, ours));
                }
            }
            continue;
        }
        match base {
            Some(base) if base == theirs => {
                // Only PostgreSQL changed: its event carries the change.
                out.push = out.push.max(Push::IfNoEvent);
            }
            Some(base) if base == ours => {
                out.take.push(index);
                out.synced.insert(key.to_owned(), theirs);
            }
            _ => match later_side(observation, row, airtable_later) {
                None => out.needs_time.push(field.id.clone()),
                Some(Winner::Airtable) => {
                    out.take.push(index);
                    out.synced.insert(key.to_owned(), theirs.clone());
                    out.conflicts
                        .push(conflict(key, Winner::Airtable, theirs, ours));
                }
                Some(Winner::Postgres) => {
                    // Airtable keeps its value until the push lands: that is
                    // what both sides last saw of it.
                    out.synced.insert(key.to_owned(), theirs.clone());
                    out.push = out.push.max(Push::Always);
                    out.conflicts
                        .push(conflict(key, Winner::Postgres, theirs, ours));
                }
            },
        }
    }
    out
}

fn conflict(field: &str, winner: Winner, airtable: Value, postgres: Value) -> Conflict {
    Conflict {
        field: field.to_owned(),
        winner,
        airtable,
        postgres,
    }
}

/// Which change is later: Airtable's (the payload's time, or the answer for
/// a listing) or the row's. A tie goes to PostgreSQL, the primary store.
fn later_side(
    observation: &Observation,
    row: &RowSide<'_>,
    airtable_later: Option<bool>,
) -> Option<Winner> {
    let airtable = match observation.at {
        Some(at) => at > row.updated_at,
        None => airtable_later?,
    };
    Some(if airtable {
        Winner::Airtable
    } else {
        Winner::Postgres
    })
}

#[cfg(test)]
mod tests;
