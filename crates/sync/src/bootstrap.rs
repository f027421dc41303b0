//! `airsync airtable bootstrap`: creates in a base every table and field the
//! mapping needs and the base lacks. Running it again changes nothing.

use airsync_airtable::{Base, BaseSchema, FieldType, NewField, NewTable};
use serde_json::{json, Value};

use crate::mapping::{
    check_against_base, BaseField, BaseSchemaView, BaseTable, EntityMapping, FieldKind,
    FieldMapping, Mapping, MappingError,
};

/// What went wrong in a bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Airtable refused or failed a request.
    #[error("Airtable: {0}")]
    Airtable(#[from] airsync_airtable::Error),
    /// The mapping names something bootstrap cannot create, or the base
    /// still disagrees with the mapping afterwards.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// A table the mapping names by id does not exist; only tables named by
    /// name can be created.
    #[error("entity {entity}: Airtable table {table} does not exist, and a table named by id cannot be created")]
    MissingTableId {
        /// The entity.
        entity: String,
        /// The table id.
        table: String,
    },
}

/// What a bootstrap created.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// Tables created, by name.
    pub tables: Vec<String>,
    /// Fields created in tables that existed, as (table, field).
    pub fields: Vec<(String, String)>,
}

impl BootstrapReport {
    /// Whether the base already had everything.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.fields.is_empty()
    }
}

/// The schema as the mapping checks see it.
pub fn schema_view(schema: &BaseSchema) -> BaseSchemaView {
    BaseSchemaView {
        tables: schema
            .tables
            .iter()
            .map(|table| BaseTable {
                id: table.id.clone(),
                name: table.name.clone(),
                fields: table
                    .fields
                    .iter()
                    .map(|field| BaseField {
                        id: field.id.clone(),
                        name: field.name.clone(),
                        field_type: field.field_type.as_str().to_owned(),
                        linked_table_id: field
                            .options
                            .as_ref()
                            .and_then(|o| o.get("linkedTableId"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Creates the missing tables (their plain fields first, the mapping's first
/// field becoming the primary field), then the missing fields, links last
/// because they need the linked table's id. Then checks the base against the
/// mapping.
pub async fn bootstrap(base: &Base, mapping: &Mapping) -> Result<BootstrapReport, BootstrapError> {
    let mut report = BootstrapReport::default();
    let schema = base.schema().await?;
    for entity in mapping.entities() {
        if schema.table(&entity.airtable_table).is_some() {
            continue;
        }
        if looks_like_id(&entity.airtable_table, "tbl") {
            return Err(BootstrapError::MissingTableId {
                entity: entity.name.clone(),
                table: entity.airtable_table.clone(),
            });
        }
        let fields: Vec<NewField> = entity
            .fields
            .iter()
            .filter(|f| !f.kind.is_link())
            .map(|f| new_field(f, None))
            .collect();
        base.create_table(&NewTable {
            name: entity.airtable_table.clone(),
            description: Some(format!(
                "Synced by airsync from PostgreSQL table {}",
                entity.table
            )),
            fields,
        })
        .await?;
        report.tables.push(entity.airtable_table.clone());
    }

    let schema = base.schema().await?;
    for entity in mapping.entities() {
        let Some(table) = schema.table(&entity.airtable_table) else {
            continue;
        };
        let created_with_table = report.tables.contains(&entity.airtable_table);
        for field in &entity.fields {
            if table.field(&field.field).is_some() || looks_like_id(&field.field, "fld") {
                continue;
            }
            let linked_table = link_target_id(mapping, entity, field, &schema);
            base.create_field(&table.id, &new_field(field, linked_table))
                .await?;
            if !created_with_table || field.kind.is_link() {
                report
                    .fields
                    .push((table.name.clone(), field.field.clone()));
            }
        }
    }

    let schema = base.schema().await?;
    check_against_base(mapping, &schema_view(&schema))?;
    Ok(report)
}

fn looks_like_id(name: &str, prefix: &str) -> bool {
    name.len() == 17
        && name.starts_with(prefix)
        && name[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

fn link_target_id(
    mapping: &Mapping,
    _entity: &EntityMapping,
    field: &FieldMapping,
    schema: &BaseSchema,
) -> Option<String> {
    let target = mapping.entity(field.target.as_deref()?)?;
    schema.table(&target.airtable_table).map(|t| t.id.clone())
}

/// The field Airtable should create for a mapped field, with the options
/// Airtable requires for its type.
fn new_field(field: &FieldMapping, linked_table_id: Option<String>) -> NewField {
    let options = match field.kind {
        FieldKind::Integer => Some(json!({ "precision": 0 })),
        FieldKind::Number => Some(json!({ "precision": 2 })),
        FieldKind::Boolean => Some(json!({ "icon": "check", "color": "greenBright" })),
        FieldKind::Date => Some(json!({ "dateFormat": { "name": "iso" } })),
        FieldKind::DateTime => Some(json!({
            "timeZone": "utc",
            "dateFormat": { "name": "iso" },
            "timeFormat": { "name": "24hour" }
        })),
        FieldKind::SingleSelect | FieldKind::MultiSelect => Some(json!({
            "choices": field.choices.iter().map(|c| json!({ "name": c })).collect::<Vec<_>>()
        })),
        FieldKind::Link | FieldKind::Links => {
            linked_table_id.map(|id| json!({ "linkedTableId": id }))
        }
        FieldKind::Text | FieldKind::LongText | FieldKind::List | FieldKind::PgId => None,
    };
    let mut new = NewField::new(
        field.field.clone(),
        FieldType::from_name(field.kind.airtable_type()),
    );
    new.options = options;
    new
}
