//! The per-field merge of docs/sync.md's "The sync model": per field, the
//! later change wins.
//!
//! Each side's value of a field carries the time it was made: the row's from
//! `sync_row_version.changed_at` (the app's write, or Airtable's change time
//! when the inbound sync took it), Airtable's from the payload's time or,
//! for a listing, `LAST_MODIFIED_TIME()` of the field. A value Airtable
//! shows that one of our pushes sent (`sync_row_version.sent`) is our own
//! push, an echo: it carries the time of the value it sent, not the time it
//! reached Airtable. The later of the two times wins; a tie goes to
//! PostgreSQL, the primary store. Reference data (owner `airtable`) and
//! `from_airtable` fields take Airtable's value.
//!
//! The value last agreed (`base`, `airtable_id_map.synced_fields`) saves a
//! listing the question of times: a field that differs from it on one side
//! only was changed on that side. It also tells the worker what Airtable
//! holds, so that a push sends only the fields that differ.
//!
//! A payload may be older than a push that left after it (a push of the
//! field sent less than [`flight_margin`] before the payload's time, or
//! later): Airtable may hold that push's value now. Taking the payload's
//! value then keeps the base at what was pushed, so the value is sent back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::observe::Observation;
use super::schema::ResolvedEntity;
use crate::mapping::{Direction, FieldKind, Owner};
use crate::versions::RowVersions;

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
    /// Fields of conflicts that need Airtable's change time, which the
    /// observation lacks (a listing), by field id, with the row's time of
    /// the field: the caller asks Airtable and merges again.
    pub needs_time: Vec<(String, DateTime<Utc>)>,
}

/// The row's side of a merge.
pub(crate) struct RowSide<'a> {
    /// Canonical cells of the row.
    pub ours: &'a Map<String, Value>,
    /// `synced_fields`, as stored (`None`: never agreed).
    pub base: Option<&'a Map<String, Value>>,
    /// When the row's values were made, and what was sent of them.
    pub versions: &'a RowVersions,
    /// The row's `updated_at`: the time of a value made before change
    /// times were kept.
    pub updated_at: DateTime<Utc>,
}

/// Airtable's answer, for one field of a record seen in a listing, to
/// "did the field change after `since`?".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LaterAnswer {
    /// The row's change time of the field that the question named.
    pub since: DateTime<Utc>,
    /// The field's canonical cell when Airtable changed it after `since`
    /// (read with the answer); `None` when Airtable did not.
    pub changed_to: Option<Value>,
}

/// Merges Airtable's observation of a record into its existing row.
/// `airtable_later` answers, for a listing, whether Airtable changed a
/// field (by field id) after the row's change of it. An answer holds only
/// while the row's time is the one it was asked about, and, where Airtable
/// changed the field, only for the value it changed it to: a listing read
/// before a later change of either side is not merged by it, and the field
/// is asked about again (`needs_time`).
pub(crate) fn merge_record(
    entity: &ResolvedEntity,
    observation: &Observation,
    row: &RowSide<'_>,
    airtable_later: Option<&HashMap<String, LaterAnswer>>,
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
        if field.kind() == FieldKind::PgId {
            // The row's id never changes; Airtable gets it back if it lost it.
            if theirs != ours && outbound {
                out.push = out.push.max(Push::Always);
            }
            out.synced.insert(key.to_owned(), theirs);
            continue;
        }
        let airtable_owns = entity.mapping.owner == Owner::Airtable
            || field.mapping.direction == Direction::FromAirtable
            || !outbound;
        let base = row
            .base
            .and_then(|b| b.get(key))
            .map(|v| field.airtable_value(Some(v)));
        let sent = if outbound && field.mapping.flows_to_airtable() {
            row.versions.sent(key)
        } else {
            &[]
        };
        // Whether a push of this field may have reached Airtable after the
        // payload's change, so that Airtable may hold that push's value now.
        let pushed_after = observation
            .at
            .is_some_and(|at| sent.iter().any(|s| s.may_have_landed_after(at)));
        let decide = Decision {
            index,
            key,
            theirs: &theirs,
            pushed_after,
            listing: observation.at.is_none(),
        };
        if theirs == ours {
            decide.agree(&mut out);
            continue;
        }
        if airtable_owns {
            decide.take(&mut out);
            continue;
        }
        let ours_at = row
            .versions
            .changed_at(&field.mapping)
            .unwrap_or(row.updated_at);
        // Airtable shows a value one of our pushes sent: its time is the
        // time of that value.
        let echo = sent
            .iter()
            .rev()
            .find(|s| field.airtable_value(Some(&s.v)) == theirs);
        if let Some(echo) = echo {
            if echo.at > ours_at {
                decide.take(&mut out);
            } else {
                decide.keep_ours(&mut out, true);
            }
            continue;
        }
        let changed_here = base.as_ref() != Some(&ours);
        let changed_there = base.as_ref() != Some(&theirs);
        let airtable_wins = match observation.at {
            Some(at) => at > ours_at,
            // A listing: a field changed on one side only needs no time.
            None if !changed_there => false,
            None if !changed_here => true,
            None => match airtable_later.and_then(|a| a.get(&field.id)) {
                Some(answer) if answer.since == ours_at => match &answer.changed_to {
                    None => false,
                    Some(now) if *now == theirs => true,
                    // Airtable changed the field again after the listing.
                    Some(_) => {
                        out.needs_time.push((field.id.clone(), ours_at));
                        continue;
                    }
                },
                _ => {
                    out.needs_time.push((field.id.clone(), ours_at));
                    continue;
                }
            },
        };
        // Both sides changed the field: the row since the last agreement,
        // or a push of it that may have reached Airtable after this change.
        let both = changed_there && (changed_here || pushed_after);
        match (airtable_wins, both) {
            (true, conflict) => {
                decide.take(&mut out);
                if conflict {
                    out.conflicts
                        .push(conflict_of(key, Winner::Airtable, theirs, ours));
                }
            }
            (false, conflict) => {
                decide.keep_ours(&mut out, changed_there);
                if conflict {
                    out.conflicts
                        .push(conflict_of(key, Winner::Postgres, theirs, ours));
                }
            }
        }
    }
    out
}

/// One field's outcome.
struct Decision<'a> {
    index: usize,
    key: &'a str,
    theirs: &'a Value,
    pushed_after: bool,
    listing: bool,
}

impl Decision<'_> {
    /// Both sides hold the same value: it is agreed, unless a later push
    /// may have changed Airtable's since.
    fn agree(&self, out: &mut MergeOutcome) {
        if !self.pushed_after {
            out.synced.insert(self.key.to_owned(), self.theirs.clone());
        }
    }

    /// Airtable's value wins. When a later push may have overwritten it in
    /// Airtable, the base stays what was pushed, and the push that follows
    /// sends the value back.
    fn take(&self, out: &mut MergeOutcome) {
        out.take.push(self.index);
        if self.pushed_after {
            out.push = out.push.max(Push::Always);
        } else {
            out.synced.insert(self.key.to_owned(), self.theirs.clone());
        }
    }

    /// The row's value wins. When Airtable still holds the value last
    /// agreed, the row's own outbox event carries the change (one is
    /// enqueued only if none exists); otherwise Airtable holds something
    /// else (what it showed, or a push's value) and the row's value is sent.
    fn keep_ours(&self, out: &mut MergeOutcome, airtable_changed: bool) {
        if !airtable_changed {
            out.push = out.push.max(Push::IfNoEvent);
            return;
        }
        if !self.pushed_after || self.listing {
            out.synced.insert(self.key.to_owned(), self.theirs.clone());
        }
        out.push = out.push.max(Push::Always);
    }
}

fn conflict_of(field: &str, winner: Winner, airtable: Value, postgres: Value) -> Conflict {
    Conflict {
        field: field.to_owned(),
        winner,
        airtable,
        postgres,
    }
}

#[cfg(test)]
mod tests;
