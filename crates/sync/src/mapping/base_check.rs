//! Checking a mapping against the Airtable base's schema (metadata API).
//!
//! The check works on a small view of the schema so that it does not depend
//! on how the client models the metadata API's answer.

use super::model::{EntityMapping, Mapping};
use super::{MappingError, ProblemList};

/// The parts of a base's schema the mapping refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseSchemaView {
    /// The base's tables.
    pub tables: Vec<BaseTable>,
}

/// One table of the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseTable {
    /// `tbl...`.
    pub id: String,
    /// The table's name.
    pub name: String,
    /// Its fields.
    pub fields: Vec<BaseField>,
}

/// One field of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseField {
    /// `fld...`.
    pub id: String,
    /// The field's name.
    pub name: String,
    /// Airtable's type, e.g. `singleLineText`.
    pub field_type: String,
    /// For a link field, the linked table's id.
    pub linked_table_id: Option<String>,
}

impl BaseSchemaView {
    /// The table named or identified by `name_or_id`.
    pub fn table(&self, name_or_id: &str) -> Option<&BaseTable> {
        self.tables
            .iter()
            .find(|t| t.id == name_or_id || t.name == name_or_id)
    }
}

impl BaseTable {
    /// The field named or identified by `name_or_id`.
    pub fn field(&self, name_or_id: &str) -> Option<&BaseField> {
        self.fields
            .iter()
            .find(|f| f.id == name_or_id || f.name == name_or_id)
    }
}

/// Checks that every table and field of the mapping exists in the base with
/// a type its conversion can use, and that link fields link the right table.
pub fn check_against_base(mapping: &Mapping, base: &BaseSchemaView) -> Result<(), MappingError> {
    let mut problems = ProblemList::new("the Airtable base");
    for entity in mapping.entities() {
        check_entity(mapping, entity, base, &mut problems);
    }
    problems.finish()
}

fn check_entity(
    mapping: &Mapping,
    entity: &EntityMapping,
    base: &BaseSchemaView,
    problems: &mut ProblemList,
) {
    let Some(table) = base.table(&entity.airtable_table) else {
        problems.entity(
            &entity.name,
            format!(
                "Airtable table {:?} does not exist (airsync airtable bootstrap creates it)",
                entity.airtable_table
            ),
        );
        return;
    };
    for field in &entity.fields {
        let Some(found) = table.field(&field.field) else {
            problems.field(
                &entity.name,
                &field.field,
                format!("does not exist in Airtable table {:?}", table.name),
            );
            continue;
        };
        if !field
            .kind
            .accepted_airtable_types()
            .contains(&found.field_type.as_str())
        {
            problems.field(
                &entity.name,
                &field.field,
                format!(
                    "is a {} field in Airtable; {:?} needs one of {:?}",
                    found.field_type,
                    field.kind,
                    field.kind.accepted_airtable_types()
                ),
            );
        }
        if let Some(target) = field.target.as_deref().and_then(|t| mapping.entity(t)) {
            let expected = base.table(&target.airtable_table).map(|t| t.id.as_str());
            if expected.is_some() && found.linked_table_id.as_deref() != expected {
                problems.field(
                    &entity.name,
                    &field.field,
                    format!("links another table than {:?}", target.airtable_table),
                );
            }
        }
    }
}
