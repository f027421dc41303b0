//! Finding the row of a record the id map does not know: by a remembered
//! delete of the row it had, as an earlier record of a row, by its pg_id,
//! then by the entity's natural key (a user's email); otherwise it becomes a
//! new row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Mode;
use crate::id_map;
use crate::inbound::observe::Observation;
use crate::inbound::schema::ResolvedEntity;
use crate::mapping::FieldKind;
use crate::rows::quote_ident;
use crate::versions::{self, DeletedBy};
use crate::Result;

/// Where an unknown record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// An existing row that no record maps to yet.
    Row(Uuid),
    /// A new row with this id.
    New(Uuid),
    /// Its natural key belongs to a row that another record maps to.
    Duplicate(String),
    /// It is the record of a row PostgreSQL deleted, by its id or its pg_id
    /// (a tombstone remembers both): the delete wins, and the record is
    /// deleted.
    DeletedInPostgres(Uuid),
    /// A payload about a record the team has deleted since, read late: left
    /// alone (a listing, which shows the record only if it exists again,
    /// brings it back).
    DeletedInAirtable(Uuid),
    /// A payload's record whose pg_id names a row PostgreSQL does not have
    /// and does not remember deleting: left alone (a listing of such a
    /// record, e.g. a backfill from an earlier database, creates the row).
    UnknownRow(Uuid),
    /// A record that carries the pg_id of a row whose record was created
    /// after it: the first try of a create whose answer was lost. Noted
    /// (`sync_earlier_record`) and left alone: its delete is the team
    /// deleting the row (docs/sync.md, "A create tried again").
    Earlier(Uuid),
}

/// The text a natural key is compared by, case-insensitively.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decides where each unknown record goes.
pub(crate) async fn match_unknown(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    unknown: &[&Observation],
    mode: Mode,
) -> Result<HashMap<String, Match>> {
    let mut out = HashMap::new();
    if unknown.is_empty() {
        return Ok(out);
    }
    let table = quote_ident(&entity.mapping.table);
    let pg_ids: HashMap<&str, Uuid> = match entity.pg_id() {
        Some(field) => unknown
            .iter()
            .filter_map(|o| {
                let id = o.cell(entity, field.key());
                let id = Uuid::parse_str(id.as_str()?).ok()?;
                Some((o.record_id.as_str(), id))
            })
            .collect(),
        None => HashMap::new(),
    };
    let wanted: Vec<Uuid> = pg_ids.values().copied().collect();
    // Each row named: whether a record maps to it, and when Airtable
    // created that record, where a push of ours learnt it.
    let by_id: HashMap<Uuid, (bool, Option<DateTime<Utc>>)> = if wanted.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (Uuid, bool, Option<DateTime<Utc>>)>(&format!(
            "SELECT t.id, m.row_id IS NOT NULL, m.record_created_at
               FROM {table} t
               LEFT JOIN airtable_id_map m ON m.entity = $1 AND m.row_id = t.id
              WHERE t.id = ANY($2)"
        ))
        .bind(entity.name())
        .bind(&wanted)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, mapped, created)| (id, (mapped, created)))
        .collect()
    };

    let missing: Vec<Uuid> = wanted
        .iter()
        .filter(|id| !by_id.contains_key(id))
        .copied()
        .collect();
    let buried = versions::tombstones(&mut *conn, entity.name(), &missing).await?;
    let records: Vec<String> = unknown.iter().map(|o| o.record_id.clone()).collect();
    let buried_records =
        versions::tombstones_of_records(&mut *conn, entity.name(), &records).await?;
    let noted_earlier = id_map::earlier_records(&mut *conn, entity.name(), &records).await?;

    let natural = entity.natural_key();
    let keys: HashMap<&str, String> = match natural {
        Some(field) => unknown
            .iter()
            .filter_map(|o| {
                Some((
                    o.record_id.as_str(),
                    key_text(&o.cell(entity, field.key()))?,
                ))
            })
            .collect(),
        None => HashMap::new(),
    };
    let by_key: HashMap<String, (Uuid, bool)> = match natural
        .and_then(|f| f.mapping.column.as_deref())
    {
        Some(column) if !keys.is_empty() => {
            let column = quote_ident(column);
            // Text keys compare with lower(), which the unique indexes on
            // lower(email) and lower(code) serve; other keys as text.
            let expression = match natural.map(|f| f.kind()) {
                Some(FieldKind::Text | FieldKind::LongText | FieldKind::SingleSelect) => {
                    format!("lower(t.{column})")
                }
                _ => format!("t.{column}::text"),
            };
            let wanted: Vec<&String> = keys.values().collect();
            sqlx::query_as::<_, (Uuid, String, bool)>(&format!(
                "SELECT t.id, {expression},
                        EXISTS (SELECT 1 FROM airtable_id_map m WHERE m.entity = $1 AND m.row_id = t.id)
                   FROM {table} t WHERE {expression} = ANY($2)"
            ))
            .bind(entity.name())
            .bind(&wanted)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(id, key, mapped)| (key, (id, mapped)))
            .collect()
        }
        _ => HashMap::new(),
    };

    let mut claimed: HashSet<Uuid> = HashSet::new();
    for observation in unknown {
        let record = observation.record_id.as_str();
        let mut decided = match buried_records.get(record) {
            Some((id, DeletedBy::Postgres)) if entity.mapping.syncs_outbound() => {
                Some(Match::DeletedInPostgres(*id))
            }
            Some((id, DeletedBy::Airtable)) if mode == Mode::Payload => {
                Some(Match::DeletedInAirtable(*id))
            }
            _ => noted_earlier.get(record).map(|id| Match::Earlier(*id)),
        };
        if let (None, Some(id)) = (&decided, pg_ids.get(record)) {
            match by_id.get(id) {
                Some((false, _)) if !claimed.contains(id) => decided = Some(Match::Row(*id)),
                // Another record maps to that row, one a push of ours created
                // after this one: this is the first try of that create.
                Some((true, Some(current)))
                    if entity.mapping.syncs_outbound()
                        && observation.created_at.is_some_and(|at| at < *current) =>
                {
                    decided = Some(Match::Earlier(*id));
                }
                // Another record maps to that row: this one is a copy.
                Some(_) => {}
                None if buried.get(id) == Some(&DeletedBy::Postgres)
                    && entity.mapping.syncs_outbound() =>
                {
                    decided = Some(Match::DeletedInPostgres(*id));
                }
                None if mode == Mode::Payload && entity.mapping.syncs_outbound() => {
                    decided = Some(Match::UnknownRow(*id));
                }
                None if !claimed.contains(id) => decided = Some(Match::New(*id)),
                None => {}
            }
        }
        if decided.is_none() {
            if let Some((id, mapped)) = keys.get(record).and_then(|k| by_key.get(k)) {
                decided = Some(if *mapped || claimed.contains(id) {
                    Match::Duplicate(format!(
                        "its {} matches row {id}, which another record maps to",
                        entity.mapping.natural_key.as_deref().unwrap_or("key")
                    ))
                } else {
                    Match::Row(*id)
                });
            }
        }
        let decided = decided.unwrap_or_else(|| Match::New(Uuid::new_v4()));
        if let Match::Earlier(id) = &decided {
            id_map::note_earlier(&mut *conn, entity.name(), record, *id).await?;
        }
        if let Match::Row(id) | Match::New(id) = &decided {
            claimed.insert(*id);
        }
        out.insert(record.to_owned(), decided);
    }
    Ok(out)
}
