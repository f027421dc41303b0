//! Reading the rows a batch of records maps to, locked for the transaction
//! that applies the batch, so that the merge decides on what it writes over.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::mapping::{EntityMapping, FieldKind};
use crate::rows::{quote_ident, RowState};
use crate::versions::{self, RowVersions};
use crate::Result;

/// A row as it is now, and when it last changed.
#[derive(Debug, Clone)]
pub(crate) struct LockedRow {
    pub state: RowState,
    pub updated_at: DateTime<Utc>,
    /// When its values were made, and what was sent of them.
    pub versions: RowVersions,
}

/// The rows `ids` of `entity` with their links, locked `FOR UPDATE` (in id
/// order, so that two appliers lock in the same order); a row that does not
/// exist is absent.
pub(crate) async fn lock_rows(
    conn: &mut PgConnection,
    entity: &EntityMapping,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, LockedRow>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Value, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT t.id, to_jsonb(t), t.updated_at FROM {} t WHERE t.id = ANY($1) ORDER BY t.id FOR UPDATE",
        quote_ident(&entity.table)
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<Uuid, LockedRow> = rows
        .into_iter()
        .map(|(id, json, updated_at)| {
            let columns = match json {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let state = RowState {
                id,
                columns,
                links: HashMap::new(),
            };
            let versions = RowVersions::default();
            (
                id,
                LockedRow {
                    state,
                    updated_at,
                    versions,
                },
            )
        })
        .collect();
    let present: Vec<Uuid> = out.keys().copied().collect();
    for (id, found) in versions::load(&mut *conn, &entity.name, &present).await? {
        if let Some(row) = out.get_mut(&id) {
            row.versions = found;
        }
    }
    for field in entity.fields.iter().filter(|f| f.kind == FieldKind::Links) {
        let Some(join) = &field.join else { continue };
        let order = join
            .order
            .as_deref()
            .map(|o| format!("{}, ", quote_ident(o)))
            .unwrap_or_default();
        let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
            "SELECT {owner}, {target} FROM {table} WHERE {owner} = ANY($1) ORDER BY {owner}, {order}{target}",
            owner = quote_ident(&join.column),
            target = quote_ident(&join.target),
            table = quote_ident(&join.table),
        ))
        .bind(&present)
        .fetch_all(&mut *conn)
        .await?;
        for row in out.values_mut() {
            row.state.links.insert(field.field.clone(), Vec::new());
        }
        for (owner, target) in pairs {
            if let Some(row) = out.get_mut(&owner) {
                row.state
                    .links
                    .entry(field.field.clone())
                    .or_default()
                    .push(target);
            }
        }
    }
    Ok(out)
}
