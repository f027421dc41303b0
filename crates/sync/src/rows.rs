//! Reading a mapped row's current state from PostgreSQL: its columns and the
//! rows its link fields point at. The worker sends this state, read at send
//! time, never a copy taken when the change was captured.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::mapping::{EntityMapping, FieldKind};
use crate::Result;

/// One row as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct RowState {
    /// The row's id.
    pub id: Uuid,
    /// Every column, as PostgreSQL's `to_jsonb` renders it.
    pub columns: Map<String, Value>,
    /// For each `links` field (by Airtable field name), the linked rows in order.
    pub links: HashMap<String, Vec<Uuid>>,
}

impl RowState {
    /// The rows this row links to, as (entity, row id), for every link field.
    pub fn linked_rows<'m>(&self, entity: &'m EntityMapping) -> Vec<(&'m str, Uuid)> {
        let mut linked = Vec::new();
        for field in entity.fields.iter().filter(|f| f.flows_to_airtable()) {
            let Some(target) = field.target.as_deref() else {
                continue;
            };
            match field.kind {
                FieldKind::Link => {
                    let id = field
                        .column
                        .as_deref()
                        .and_then(|c| self.columns.get(c))
                        .and_then(Value::as_str)
                        .and_then(|s| Uuid::parse_str(s).ok());
                    if let Some(id) = id {
                        linked.push((target, id));
                    }
                }
                FieldKind::Links => {
                    for id in self.links.get(&field.field).into_iter().flatten() {
                        linked.push((target, *id));
                    }
                }
                _ => {}
            }
        }
        linked
    }
}

/// Quotes an SQL identifier. Table and column names come from the mapping
/// (configuration checked against the schema), never from a request; quoting
/// keeps even an odd name from changing a statement.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The current state of the rows `ids` of `entity`; a row that no longer
/// exists is absent from the answer.
pub async fn load_rows<'c, E>(
    executor: E,
    entity: &EntityMapping,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, RowState>>
where
    E: PgExecutor<'c> + Copy,
{
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(&format!(
        "SELECT t.id, to_jsonb(t) FROM {} t WHERE t.id = ANY($1)",
        quote_ident(&entity.table)
    ))
    .bind(ids)
    .fetch_all(executor)
    .await?;
    let mut states: HashMap<Uuid, RowState> = rows
        .into_iter()
        .map(|(id, json)| {
            let columns = match json {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            (
                id,
                RowState {
                    id,
                    columns,
                    links: HashMap::new(),
                },
            )
        })
        .collect();
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
        .bind(ids)
        .fetch_all(executor)
        .await?;
        for state in states.values_mut() {
            state.links.insert(field.field.clone(), Vec::new());
        }
        for (owner, target) in pairs {
            if let Some(state) = states.get_mut(&owner) {
                state
                    .links
                    .entry(field.field.clone())
                    .or_default()
                    .push(target);
            }
        }
    }
    Ok(states)
}
