//! The metadata API: bases, base schemas, and creating tables and fields.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::metrics::RequestKind;
use crate::transport::{Call, Transport};

/// A base the token can reach.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BaseInfo {
    /// The base's id (`app…`).
    pub id: String,
    /// The base's name.
    pub name: String,
    /// The token's user's role: `none`, `read`, `comment`, `edit` or `create`.
    #[serde(rename = "permissionLevel")]
    pub permission_level: String,
}

/// The tables of a base, with their fields and views.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BaseSchema {
    /// The tables, in the base's order.
    pub tables: Vec<TableSchema>,
}

impl BaseSchema {
    /// The table with this id or name.
    pub fn table(&self, id_or_name: &str) -> Option<&TableSchema> {
        self.tables
            .iter()
            .find(|t| t.id == id_or_name || t.name == id_or_name)
    }
}

/// A table's schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TableSchema {
    /// The table's id (`tbl…`).
    pub id: String,
    /// The table's name.
    pub name: String,
    /// The table's description.
    #[serde(default)]
    pub description: Option<String>,
    /// The primary field's id.
    #[serde(rename = "primaryFieldId")]
    pub primary_field_id: String,
    /// The fields, in the table's order.
    pub fields: Vec<FieldSchema>,
    /// The views.
    #[serde(default)]
    pub views: Vec<ViewSchema>,
}

impl TableSchema {
    /// The field with this id or name.
    pub fn field(&self, id_or_name: &str) -> Option<&FieldSchema> {
        self.fields
            .iter()
            .find(|f| f.id == id_or_name || f.name == id_or_name)
    }
}

/// A field's schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldSchema {
    /// The field's id (`fld…`).
    pub id: String,
    /// The field's name.
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The field's description.
    #[serde(default)]
    pub description: Option<String>,
    /// The type's options (choices, precision, linked table…), as Airtable
    /// sends them.
    #[serde(default)]
    pub options: Option<Value>,
}

/// A view's schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ViewSchema {
    /// The view's id (`viw…`).
    pub id: String,
    /// The view's name.
    pub name: String,
    /// `grid`, `form`, `calendar`, `gallery`, `kanban`, `timeline`, `block`…
    #[serde(rename = "type")]
    pub view_type: String,
    /// The visible fields of a grid view, when asked for.
    #[serde(default, rename = "visibleFieldIds")]
    pub visible_field_ids: Option<Vec<String>>,
}

macro_rules! field_types {
    ($($variant:ident = $name:literal,)*) => {
        /// A field type. Airtable adds types over time; one this client
        /// does not know is kept as [`FieldType::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum FieldType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A type this client does not know, by its wire name.
            Other(String),
        }

        impl FieldType {
            /// The type's name on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(FieldType::$variant => $name,)*
                    FieldType::Other(name) => name,
                }
            }

            /// The type with this wire name.
            pub fn from_name(name: &str) -> FieldType {
                match name {
                    $($name => FieldType::$variant,)*
                    other => FieldType::Other(other.to_owned()),
                }
            }
        }
    };
}

field_types! {
    SingleLineText = "singleLineText",
    MultilineText = "multilineText",
    RichText = "richText",
    Email = "email",
    Url = "url",
    PhoneNumber = "phoneNumber",
    Number = "number",
    Currency = "currency",
    Percent = "percent",
    Duration = "duration",
    Rating = "rating",
    Checkbox = "checkbox",
    Date = "date",
    DateTime = "dateTime",
    SingleSelect = "singleSelect",
    MultipleSelects = "multipleSelects",
    MultipleRecordLinks = "multipleRecordLinks",
    MultipleLookupValues = "multipleLookupValues",
    Rollup = "rollup",
    Count = "count",
    Formula = "formula",
    AutoNumber = "autoNumber",
    CreatedTime = "createdTime",
    LastModifiedTime = "lastModifiedTime",
    CreatedBy = "createdBy",
    LastModifiedBy = "lastModifiedBy",
    SingleCollaborator = "singleCollaborator",
    MultipleCollaborators = "multipleCollaborators",
    MultipleAttachments = "multipleAttachments",
    Barcode = "barcode",
    Button = "button",
    AiText = "aiText",
    ExternalSyncSource = "externalSyncSource",
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FieldType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(FieldType::from_name(&name))
    }
}

/// A field to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewField {
    /// The field's name.
    pub name: String,
    /// The field's type.
    pub field_type: FieldType,
    /// A description.
    pub description: Option<String>,
    /// The type's options, in Airtable's JSON (e.g. `{"precision": 0}` for
    /// a number, `{"choices": [{"name": "A"}]}` for a select).
    pub options: Option<Value>,
}

impl NewField {
    /// A field of a type that needs no options.
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        NewField {
            name: name.into(),
            field_type,
            description: None,
            options: None,
        }
    }

    /// Sets the type's options.
    pub fn with_options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }

    fn to_json(&self) -> Value {
        let mut field = Map::new();
        field.insert("name".into(), json!(self.name));
        field.insert("type".into(), json!(self.field_type.as_str()));
        if let Some(description) = &self.description {
            field.insert("description".into(), json!(description));
        }
        if let Some(options) = &self.options {
            field.insert("options".into(), options.clone());
        }
        Value::Object(field)
    }
}

/// A table to create; its first field becomes the primary field.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTable {
    /// The table's name.
    pub name: String,
    /// A description.
    pub description: Option<String>,
    /// The fields, primary first.
    pub fields: Vec<NewField>,
}

/// Changes to a field's name or description (the only changes Airtable's
/// API allows on an existing field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

#[derive(Deserialize)]
struct BasesAnswer {
    bases: Vec<BaseInfo>,
    #[serde(default)]
    offset: Option<String>,
}

/// Every base the token can reach, following Airtable's pages.
pub(crate) async fn list_bases(transport: &Transport) -> Result<Vec<BaseInfo>> {
    let mut bases = Vec::new();
    let mut offset: Option<String> = None;
    loop {
        let mut url = transport.url(&["v0", "meta", "bases"]);
        if let Some(offset) = &offset {
            url.query_pairs_mut().append_pair("offset", offset);
        }
        let call = Call::new(RequestKind::ReadSchema, Method::GET, url);
        let answer: BasesAnswer = transport.send_json(&call).await?;
        bases.extend(answer.bases);
        match answer.offset {
            Some(next) => offset = Some(next),
            None => return Ok(bases),
        }
    }
}

/// A base's schema.
pub(crate) async fn schema(transport: &Transport, base: &str) -> Result<BaseSchema> {
    let url = transport.url(&["v0", "meta", "bases", base, "tables"]);
    let call = Call::new(RequestKind::ReadSchema, Method::GET, url).on(base, None);
    transport.send_json(&call).await
}

/// Creates a table.
pub(crate) async fn create_table(
    transport: &Transport,
    base: &str,
    table: &NewTable,
) -> Result<TableSchema> {
    let mut body = json!({
        "name": table.name,
        "fields": table.fields.iter().map(NewField::to_json).collect::<Vec<_>>(),
    });
    if let Some(description) = &table.description {
        body["description"] = json!(description);
    }
    let url = transport.url(&["v0", "meta", "bases", base, "tables"]);
    let call = Call::new(RequestKind::WriteSchema, Method::POST, url)
        .on(base, None)
        .json(&body)?;
    transport.send_json(&call).await
}

/// Creates a field in a table.
pub(crate) async fn create_field(
    transport: &Transport,
    base: &str,
    table_id: &str,
    field: &NewField,
) -> Result<FieldSchema> {
    let url = transport.url(&["v0", "meta", "bases", base, "tables", table_id, "fields"]);
    let call = Call::new(RequestKind::WriteSchema, Method::POST, url)
        .on(base, Some(table_id))
        .json(&field.to_json())?;
    transport.send_json(&call).await
}

/// Renames a field or changes its description.
pub(crate) async fn update_field(
    transport: &Transport,
    base: &str,
    table_id: &str,
    field_id: &str,
    changes: &FieldChanges,
) -> Result<FieldSchema> {
    let mut body = Map::new();
    if let Some(name) = &changes.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(description) = &changes.description {
        body.insert("description".into(), json!(description));
    }
    let url = transport.url(&[
        "v0", "meta", "bases", base, "tables", table_id, "fields", field_id,
    ]);
    let call = Call::new(RequestKind::WriteSchema, Method::PATCH, url)
        .on(base, Some(table_id))
        .json(&Value::Object(body))?;
    transport.send_json(&call).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_types_are_kept_by_name() {
        let field: FieldSchema = serde_json::from_value(json!({
            "id": "fldA", "name": "Mood", "type": "hologram", "options": {"x": 1}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(field.field_type, FieldType::Other("hologram".into()));
        assert_eq!(field.field_type.as_str(), "hologram");
    }

    #[test]
    fn a_schema_finds_tables_and_fields_by_id_or_name() {
        let schema: BaseSchema = serde_json::from_value(json!({"tables": [{
            "id": "tblA", "name": "Clients", "primaryFieldId": "fldA",
            "fields": [{"id": "fldA", "name": "Name", "type": "singleLineText"}],
            "views": [{"id": "viwA", "name": "Grid view", "type": "grid"}]
        }]}))
        .unwrap_or_else(|e| panic!("{e}"));
        let table = schema.table("Clients");
        assert_eq!(table.map(|t| t.id.as_str()), Some("tblA"));
        let field = table.and_then(|t| t.field("fldA"));
        assert_eq!(
            field.map(|f| &f.field_type),
            Some(&FieldType::SingleLineText)
        );
    }

    #[test]
    fn a_new_field_serializes_its_type_and_options() {
        let field =
            NewField::new("Sessions", FieldType::Number).with_options(json!({"precision": 0}));
        assert_eq!(
            field.to_json(),
            json!({"name": "Sessions", "type": "number", "options": {"precision": 0}})
        );
    }
}
