//! Reading a mapping file: its TOML shape and its conversion into a
//! checked [`Mapping`].

use std::path::Path;

use serde::Deserialize;

use super::model::{
    DeletePolicy, Direction, EntityMapping, FieldKind, FieldMapping, JoinTable, Mapping, Owner,
};
use super::{MappingError, DEFAULT_MAPPING_TOML};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    pub entity: Vec<EntityFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityFile {
    pub name: String,
    pub table: String,
    pub airtable_table: String,
    pub owner: Owner,
    #[serde(default)]
    pub natural_key: Option<String>,
    #[serde(default)]
    pub on_airtable_delete: DeletePolicy,
    #[serde(default)]
    pub fields: Vec<FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    #[serde(default)]
    pub column: Option<String>,
    pub field: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub join: Option<JoinFile>,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub direction: Direction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinFile {
    pub table: String,
    pub column: String,
    pub target: String,
    #[serde(default)]
    pub order: Option<String>,
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The default mapping for the base of docs/domain.md.
    pub fn default_mapping() -> Result<Mapping, MappingError> {
        Self::from_toml(DEFAULT_MAPPING_TOML, "(built-in)")
    }

    /// Parses and checks a mapping; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Mapping, MappingError> {
        let file: MappingFile = toml::from_str(text).map_err(|err| MappingError::Parse {
            source_name: source_name.to_owned(),
            message: err.to_string(),
        })?;
        Mapping::new(file.entity.into_iter().map(convert_entity).collect())
    }
}

fn convert_entity(file: EntityFile) -> EntityMapping {
    EntityMapping {
        name: file.name,
        table: file.table,
        airtable_table: file.airtable_table,
        owner: file.owner,
        natural_key: file.natural_key,
        on_airtable_delete: file.on_airtable_delete,
        fields: file.fields.into_iter().map(convert_field).collect(),
    }
}

fn convert_field(file: FieldFile) -> FieldMapping {
    FieldMapping {
        column: file.column,
        field: file.field,
        kind: file.kind,
        target: file.entity,
        join: file.join.map(|j| JoinTable {
            table: j.table,
            column: j.column,
            target: j.target,
            order: j.order,
        }),
        choices: file.choices,
        direction: file.direction,
    }
}
