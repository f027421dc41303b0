//! The mapping resolved against the base and the database: each entity's
//! table id, each field's id (payloads and `returnFieldsByFieldId` listings
//! key cells by id), and whether each column takes NULL.

use std::collections::HashMap;

use airsync_airtable::{AirtableClient, BaseId};
use serde_json::Value;
use sqlx::PgPool;

use super::cells::canonical_cell;
use crate::bootstrap::schema_view;
use crate::mapping::{check_against_base, EntityMapping, FieldKind, FieldMapping, Mapping};
use crate::Result;

/// Every mapped entity, in the mapping's order.
#[derive(Debug)]
pub(crate) struct ResolvedBase {
    pub entities: Vec<ResolvedEntity>,
    by_table_id: HashMap<String, usize>,
}

/// One entity and its Airtable table.
#[derive(Debug)]
pub(crate) struct ResolvedEntity {
    pub mapping: EntityMapping,
    pub table_id: String,
    /// In the mapping's order.
    pub fields: Vec<ResolvedField>,
    by_field_id: HashMap<String, usize>,
}

/// One mapped field.
#[derive(Debug)]
pub(crate) struct ResolvedField {
    pub mapping: FieldMapping,
    /// `fld...`.
    pub id: String,
    /// Whether the column takes NULL (a cleared cell clears it); false for
    /// `links` fields, which live in join tables.
    pub nullable: bool,
    /// What an empty cell means for a column that takes no NULL but has a
    /// constant default (a user's role, a level): that default, canonical.
    /// An empty Airtable cell and the default then compare equal, and
    /// clearing the cell sets the default.
    pub empty_as: Option<Value>,
}

impl ResolvedField {
    /// The key of this field in `synced_fields` and in every cell map of the
    /// inbound sync: the mapping's name (or id) of the field, as the worker
    /// writes it.
    pub fn key(&self) -> &str {
        &self.mapping.field
    }

    pub fn kind(&self) -> FieldKind {
        self.mapping.kind
    }

    /// The canonical value of an Airtable cell of this field (`None`:
    /// absent), an empty one standing for the column's default.
    pub fn airtable_value(&self, raw: Option<&Value>) -> Value {
        let value = canonical_cell(self.kind(), raw);
        let empty = match &value {
            Value::Null => true,
            Value::Array(items) => items.is_empty(),
            _ => false,
        };
        match &self.empty_as {
            Some(default) if empty => default.clone(),
            _ => value,
        }
    }
}

impl ResolvedBase {
    /// The entity of Airtable table `table_id`.
    pub fn by_table_id(&self, table_id: &str) -> Option<&ResolvedEntity> {
        self.by_table_id
            .get(table_id)
            .and_then(|i| self.entities.get(*i))
    }

    /// The entity named `name`.
    pub fn entity(&self, name: &str) -> Option<&ResolvedEntity> {
        self.entities.iter().find(|e| e.mapping.name == name)
    }

    /// The entity's place in the mapping (linked entities come first).
    pub fn position(&self, name: &str) -> usize {
        self.entities
            .iter()
            .position(|e| e.mapping.name == name)
            .unwrap_or(usize::MAX)
    }

    /// Every field id the inbound sync reads, across all tables.
    pub fn inbound_field_ids(&self) -> Vec<String> {
        self.entities
            .iter()
            .flat_map(|e| e.inbound_fields().map(|f| f.id.clone()))
            .collect()
    }
}

impl ResolvedEntity {
    pub fn name(&self) -> &str {
        &self.mapping.name
    }

    /// The field with id `field_id`.
    pub fn field_by_id(&self, field_id: &str) -> Option<&ResolvedField> {
        self.by_field_id
            .get(field_id)
            .and_then(|i| self.fields.get(*i))
    }

    /// Fields whose Airtable values are applied to PostgreSQL.
    pub fn inbound_fields(&self) -> impl Iterator<Item = &ResolvedField> {
        self.fields
            .iter()
            .filter(|f| f.mapping.flows_from_airtable())
    }

    /// The pg_id field.
    pub fn pg_id(&self) -> Option<&ResolvedField> {
        self.fields.iter().find(|f| f.kind() == FieldKind::PgId)
    }

    /// The field of the natural key column, when the entity has one.
    pub fn natural_key(&self) -> Option<&ResolvedField> {
        let column = self.mapping.natural_key.as_deref()?;
        self.fields
            .iter()
            .find(|f| f.mapping.column.as_deref() == Some(column))
    }

    /// Ids of the fields a listing asks for: every mapped field.
    pub fn field_ids(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.id.clone()).collect()
    }
}

/// Reads the schema of base `base_id` through `client` and the columns of
/// the database behind `pool`, and resolves `mapping` against them; a
/// mapping the base does not match is an error that names every mismatch.
pub(crate) async fn resolve(
    client: &AirtableClient,
    base_id: &BaseId,
    mapping: &Mapping,
    pool: &PgPool,
) -> Result<ResolvedBase> {
    let schema = client.base(base_id).schema().await?;
    check_against_base(mapping, &schema_view(&schema))?;
    let columns: HashMap<(String, String), (bool, Option<String>)> =
        sqlx::query_as::<_, (String, String, bool, Option<String>)>(
            "SELECT table_name::text, column_name::text, is_nullable = 'YES', column_default::text
               FROM information_schema.columns
              WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(table, column, nullable, default)| ((table, column), (nullable, default)))
        .collect();

    let mut entities = Vec::new();
    let mut by_table_id = HashMap::new();
    for entity in mapping.entities() {
        // check_against_base has made sure every table and field exists.
        let Some(table) = schema.table(&entity.airtable_table) else {
            continue;
        };
        let mut fields = Vec::new();
        let mut by_field_id = HashMap::new();
        for field in &entity.fields {
            let Some(found) = table.field(&field.field) else {
                continue;
            };
            let column = field
                .column
                .as_ref()
                .and_then(|c| columns.get(&(entity.table.clone(), c.clone())));
            let nullable = column.is_none_or(|(nullable, _)| *nullable) && field.column.is_some();
            let empty_as = match column {
                Some((false, Some(default)))
                    if field.kind != FieldKind::Boolean && !field.kind.is_link() =>
                {
                    constant_default(pool, default)
                        .await?
                        .map(|v| canonical_cell(field.kind, Some(&v)))
                }
                _ => None,
            };
            by_field_id.insert(found.id.clone(), fields.len());
            fields.push(ResolvedField {
                mapping: field.clone(),
                id: found.id.clone(),
                nullable,
                empty_as,
            });
        }
        by_table_id.insert(table.id.clone(), entities.len());
        entities.push(ResolvedEntity {
            mapping: entity.clone(),
            table_id: table.id.clone(),
            fields,
            by_field_id,
        });
    }
    Ok(ResolvedBase {
        entities,
        by_table_id,
    })
}

/// The value of a column default that is a constant (`'user'::text`, `0`,
/// `'{}'::text[]`); `None` for one that calls a function (`now()`), whose
/// value changes.
async fn constant_default(pool: &PgPool, default: &str) -> Result<Option<Value>> {
    if default.contains('(') {
        return Ok(None);
    }
    // The expression comes from the database's own catalogue.
    let value: Option<Value> = sqlx::query_scalar(&format!("SELECT to_jsonb({default})"))
        .fetch_optional(pool)
        .await?;
    Ok(value)
}

#[cfg(test)]
impl ResolvedEntity {
    /// An entity resolved against made-up ids, for unit tests.
    pub(crate) fn for_tests(mapping: &EntityMapping) -> ResolvedEntity {
        let fields: Vec<ResolvedField> = mapping
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| ResolvedField {
                mapping: f.clone(),
                id: format!("fld{i:014}"),
                nullable: true,
                empty_as: None,
            })
            .collect();
        let by_field_id = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), i))
            .collect();
        ResolvedEntity {
            mapping: mapping.clone(),
            table_id: "tblTESTTESTTESTT".into(),
            fields,
            by_field_id,
        }
    }
}
