//! Webhook payloads: what changed in a base, as Airtable reports it.
//!
//! Every key is optional or defaulted and unknown keys are ignored, because
//! which keys appear depends on the webhook's specification and Airtable
//! adds new ones; unknown change sources are kept by name. Cell values are
//! Airtable's V2 cell format (selects as `{id, name}` objects, links as
//! `[{id, name}]`), keyed by field id, and may be `null` for a cleared cell.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::metadata::FieldType;

/// One payload: the changes of one base transaction (or part of one).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// When the change happened.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// The base's transaction number; payloads split from one action share it.
    #[serde(default)]
    pub base_transaction_number: u64,
    /// The payload format (`v0`).
    #[serde(default)]
    pub payload_format: String,
    /// Who or what made the change.
    #[serde(default)]
    pub action_metadata: Option<ActionMetadata>,
    /// Changes to existing tables, by table id.
    #[serde(default)]
    pub changed_tables_by_id: BTreeMap<String, TableChanged>,
    /// Tables created, by table id.
    #[serde(default)]
    pub created_tables_by_id: BTreeMap<String, TableCreated>,
    /// Ids of tables deleted.
    #[serde(default)]
    pub destroyed_table_ids: Vec<String>,
    /// True for an error payload: the webhook's specification became
    /// invalid and the webhook must be recreated.
    #[serde(default)]
    pub error: bool,
    /// The error payload's code (`INVALID_FILTERS`, `INVALID_HOOK`,
    /// `INTERNAL_ERROR`).
    #[serde(default)]
    pub code: Option<String>,
}

/// Who or what made a change.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionMetadata {
    /// The source of the change.
    pub source: ChangeSource,
    /// Details of the source (e.g. the user), as Airtable sends them.
    #[serde(default)]
    pub source_metadata: Option<Value>,
}

macro_rules! sources {
    ($($variant:ident = $name:literal,)*) => {
        /// Where a change came from. Sources this client does not know are
        /// kept as [`ChangeSource::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ChangeSource {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A source this client does not know, by its wire name.
            Other(String),
        }

        impl ChangeSource {
            /// The source's name on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ChangeSource::$variant => $name,)*
                    ChangeSource::Other(name) => name,
                }
            }

            /// The source with this wire name.
            pub fn from_name(name: &str) -> ChangeSource {
                match name {
                    $($name => ChangeSource::$variant,)*
                    other => ChangeSource::Other(other.to_owned()),
                }
            }
        }
    };
}

sources! {
    Client = "client",
    PublicApi = "publicApi",
    FormSubmission = "formSubmission",
    FormPageSubmission = "formPageSubmission",
    Automation = "automation",
    System = "system",
    Sync = "sync",
    AnonymousUser = "anonymousUser",
    Unknown = "unknown",
}

impl fmt::Display for ChangeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChangeSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChangeSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ChangeSource::from_name(&name))
    }
}

/// The changes to one existing table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TableChanged {
    /// A new name or description.
    pub changed_metadata: Option<MetadataChange>,
    /// Fields created, by field id.
    pub created_fields_by_id: BTreeMap<String, FieldDefinition>,
    /// Fields changed, by field id.
    pub changed_fields_by_id: BTreeMap<String, FieldChange>,
    /// Ids of fields deleted.
    pub destroyed_field_ids: Vec<String>,
    /// Records created, by record id.
    pub created_records_by_id: BTreeMap<String, CreatedRecord>,
    /// Records changed, by record id.
    pub changed_records_by_id: BTreeMap<String, ChangedRecord>,
    /// Ids of records deleted.
    pub destroyed_record_ids: Vec<String>,
    /// Changes seen through views (when the webhook watches a view).
    pub changed_views_by_id: BTreeMap<String, ViewChanged>,
}

/// A table's name and description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TableMetadata {
    /// The name.
    pub name: Option<String>,
    /// The description.
    pub description: Option<String>,
}

/// A change of a table's name or description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MetadataChange {
    /// The values now.
    pub current: TableMetadata,
    /// The values before, when the webhook includes them.
    pub previous: Option<TableMetadata>,
}

/// A field's definition as payloads carry it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FieldDefinition {
    /// The name.
    pub name: Option<String>,
    /// The type.
    #[serde(rename = "type")]
    pub field_type: Option<FieldType>,
    /// The type's options.
    pub options: Option<Value>,
}

/// A change of a field's definition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FieldChange {
    /// The definition now (only what changed).
    pub current: FieldDefinition,
    /// The definition before, when the webhook includes it.
    pub previous: Option<FieldDefinition>,
}

/// A record created (or, in a view, entered).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreatedRecord {
    /// When it was created.
    pub created_time: Option<DateTime<Utc>>,
    /// Its cells, by field id, in the V2 cell format.
    pub cell_values_by_field_id: Map<String, Value>,
}

/// Cells by field id, in the V2 cell format.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CellValues {
    /// The cells.
    pub cell_values_by_field_id: Map<String, Value>,
}

/// A record whose cells changed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChangedRecord {
    /// The changed cells' new values.
    pub current: CellValues,
    /// Their old values, when the webhook includes them.
    pub previous: Option<CellValues>,
    /// Unchanged cells the webhook asked to include.
    pub unchanged: Option<CellValues>,
}

/// Record changes seen through a view.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ViewChanged {
    /// Records created in or entering the view.
    pub created_records_by_id: BTreeMap<String, CreatedRecord>,
    /// Records changed in the view.
    pub changed_records_by_id: BTreeMap<String, ChangedRecord>,
    /// Records deleted or leaving the view.
    pub destroyed_record_ids: Vec<String>,
}

/// A table created.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TableCreated {
    /// Its name and description.
    pub metadata: Option<TableMetadata>,
    /// Its fields, by id.
    pub fields_by_id: BTreeMap<String, FieldDefinition>,
    /// Its records, by id.
    pub records_by_id: BTreeMap<String, CreatedRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_with_unknown_keys_and_sources_still_reads() {
        let payload: WebhookPayload = serde_json::from_value(json!({
            "timestamp": "2022-02-01T21:25:05.663Z",
            "baseTransactionNumber": 4,
            "payloadFormat": "v0",
            "someFutureKey": {"x": 1},
            "actionMetadata": {"source": "aiAgent", "sourceMetadata": {}},
            "changedTablesById": {"tblA": {
                "changedRecordsById": {"recA": {
                    "current": {"cellValuesByFieldId": {"fldA": "hello world"}},
                    "previous": {"cellValuesByFieldId": {"fldA": "hello"}},
                    "brandNew": true
                }},
                "createdRecordsById": {"recB": {"createdTime": "2022-02-01T21:25:05.663Z",
                    "cellValuesByFieldId": {"fldB": {"id": "selA", "name": "Open"}}}},
                "destroyedRecordIds": ["recC"],
                "createdFieldsById": {"fldZ": {"name": "Z", "type": "quantumField"}}
            }}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let source = payload.action_metadata.map(|m| m.source);
        assert_eq!(source, Some(ChangeSource::Other("aiAgent".into())));
        let table = &payload.changed_tables_by_id["tblA"];
        assert_eq!(
            table.changed_records_by_id["recA"]
                .current
                .cell_values_by_field_id["fldA"],
            json!("hello world")
        );
        assert_eq!(table.destroyed_record_ids, vec!["recC"]);
        assert_eq!(
            table.created_fields_by_id["fldZ"].field_type,
            Some(FieldType::Other("quantumField".into()))
        );
    }

    #[test]
    fn an_error_payload_reads_with_its_code() {
        let payload: WebhookPayload = serde_json::from_value(json!({
            "error": true, "code": "INVALID_FILTERS",
            "timestamp": "2022-02-01T21:25:05.663Z", "baseTransactionNumber": 9
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(payload.error);
        assert_eq!(payload.code.as_deref(), Some("INVALID_FILTERS"));
    }
}
