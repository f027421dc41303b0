//! The TOML shape of a mapping file.

use serde::Deserialize;

use super::model::{DeletePolicy, Direction, FieldKind, Owner};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingFile {
    #[serde(default)]
    pub entity: Vec<EntityFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntityFile {
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
pub(super) struct FieldFile {
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
pub(super) struct JoinFile {
    pub table: String,
    pub column: String,
    pub target: String,
    #[serde(default)]
    pub order: Option<String>,
}
