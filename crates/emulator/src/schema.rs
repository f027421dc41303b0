//! Bases, tables and fields: creation with Airtable's option rules,
//! updates, and the schema JSON of the metadata API.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::changes::{ChangeSet, SchemaChange};
use crate::error::ApiError;
use crate::ids;
use crate::model::{Base, Field, FieldType, Table, View};

/// A table to create, in the metadata API's shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Table name, unique in the base.
    pub name: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields; the first is the primary field.
    pub fields: Vec<FieldSpec>,
}

impl TableSpec {
    /// A table with these fields.
    pub fn new(name: impl Into<String>, fields: Vec<FieldSpec>) -> Self {
        TableSpec {
            name: name.into(),
            description: None,
            fields,
        }
    }
}

/// A field to create, in the metadata API's shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Field name, unique in the table.
    pub name: String,
    /// Airtable type name, e.g. `singleLineText`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type options, e.g. `{"precision": 2}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

impl FieldSpec {
    /// A field of this type without options.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        FieldSpec {
            name: name.into(),
            kind: kind.into(),
            description: None,
            options: None,
        }
    }

    /// The same field with these options.
    pub fn with_options(mut self, options: Value) -> Self {
        self.options = Some(options);
        self
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_request_because(message)
}

/// Creates a table in `base`; answers its index.
pub(crate) fn create_table(
    base: &mut Base,
    spec: &TableSpec,
    changes: &mut ChangeSet,
) -> Result<usize, ApiError> {
    let name = spec.name.trim();
    if name.is_empty()
        || base
            .tables
            .iter()
            .any(|t| t.name.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::unprocessable(
            "DUPLICATE_TABLE_NAME",
            format!("A table named \"{name}\" already exists or the name is empty"),
        ));
    }
    let Some(primary) = spec.fields.first() else {
        return Err(invalid("A table needs at least one field"));
    };
    let primary_kind = FieldType::parse(&primary.kind);
    if matches!(
        primary_kind,
        Some(
            FieldType::MultipleRecordLinks
                | FieldType::Checkbox
                | FieldType::MultipleAttachments
                | FieldType::SingleSelect
                | FieldType::MultipleSelects
                | FieldType::Rating
        )
    ) {
        return Err(invalid(format!(
            "Field type {} cannot be the primary field",
            primary.kind
        )));
    }
    let table = Table {
        id: ids::new_id(ids::TABLE),
        name: name.to_owned(),
        description: spec.description.clone(),
        primary_field_id: String::new(),
        fields: Vec::new(),
        views: vec![View {
            id: ids::new_id(ids::VIEW),
            name: "Grid view".into(),
            kind: "grid".into(),
            filter: None,
            sort: Vec::new(),
        }],
        records: Default::default(),
        by_id: Default::default(),
        next_seq: 0,
        next_auto_number: 0,
        next_slot: 0,
    };
    let table_id = table.id.clone();
    base.tables.push(table);
    let t = base.tables.len() - 1;
    // Validate every field before keeping the table; a bad field drops it.
    let mut scratch = ChangeSet::new(changes.source, changes.at);
    for spec in &spec.fields {
        if let Err(e) = create_field(base, t, spec, &mut scratch) {
            drop_inverse_fields(base, &table_id);
            base.tables.pop();
            return Err(e);
        }
    }
    base.tables[t].primary_field_id = base.tables[t].fields[0].id.clone();
    changes.schema.push(SchemaChange::TableCreated { table_id });
    // Inverse link fields created on other tables are schema changes there.
    changes.schema.extend(
        scratch
            .schema
            .into_iter()
            .filter(|c| !matches!(c, SchemaChange::FieldCreated { table_id: tid, .. } if *tid == base.tables[t].id)),
    );
    Ok(t)
}

/// Removes the inverse fields a half-created table left on other tables.
fn drop_inverse_fields(base: &mut Base, table_id: &str) {
    for table in &mut base.tables {
        table.fields.retain(|f| {
            !(f.kind == FieldType::MultipleRecordLinks
                && f.option_str("linkedTableId") == Some(table_id)
                && table.id != table_id)
        });
    }
}

/// Creates a field in table `t`; answers its index.
pub(crate) fn create_field(
    base: &mut Base,
    t: usize,
    spec: &FieldSpec,
    changes: &mut ChangeSet,
) -> Result<usize, ApiError> {
    let name = spec.name.trim().to_owned();
    if name.is_empty()
        || base.tables[t]
            .fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::unprocessable(
            "DUPLICATE_OR_EMPTY_FIELD_NAME",
            format!("Field name \"{name}\" is empty or already used in this table"),
        ));
    }
    let kind = FieldType::parse(&spec.kind).ok_or_else(|| {
        ApiError::unprocessable(
            "INVALID_FIELD_TYPE",
            format!("Unsupported field type: {}", spec.kind),
        )
    })?;
    let given = match &spec.options {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(invalid("Field options must be an object")),
    };
    let options = crate::field_options::normalize(base, t, kind, given)?;
    let table = &mut base.tables[t];
    let slot = table.next_slot;
    table.next_slot += 1;
    let field = Field {
        id: ids::new_id(ids::FIELD),
        name,
        description: spec.description.clone(),
        kind,
        options,
        slot,
    };
    let field_id = field.id.clone();
    table.fields.push(field);
    let index = table.fields.len() - 1;
    let table_id = table.id.clone();
    changes.schema.push(SchemaChange::FieldCreated {
        table_id: table_id.clone(),
        field_id: field_id.clone(),
    });
    if kind == FieldType::MultipleRecordLinks {
        crate::field_options::create_inverse(base, t, index, changes);
    }
    Ok(index)
}

/// Adds a select choice named `name` if the field lacks it.
pub(crate) fn ensure_choice(field: &mut Field, name: &str) {
    if field
        .choices()
        .iter()
        .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
    {
        return;
    }
    let options = field.options.get_or_insert_with(Map::new);
    let choices = options.entry("choices").or_insert_with(|| json!([]));
    if let Value::Array(list) = choices {
        list.push(json!({"id": ids::new_id(ids::CHOICE), "name": name}));
    }
}

/// Renames or re-describes a field.
pub(crate) fn update_field(
    base: &mut Base,
    t: usize,
    f: usize,
    name: Option<&str>,
    description: Option<Option<String>>,
    changes: &mut ChangeSet,
) -> Result<(), ApiError> {
    if let Some(name) = name {
        let name = name.trim();
        let clash = base.tables[t]
            .fields
            .iter()
            .enumerate()
            .any(|(i, other)| i != f && other.name.eq_ignore_ascii_case(name));
        if name.is_empty() || clash {
            return Err(ApiError::unprocessable(
                "DUPLICATE_OR_EMPTY_FIELD_NAME",
                format!("Field name \"{name}\" is empty or already used in this table"),
            ));
        }
    }
    let table = &mut base.tables[t];
    let previous = field_json(&table.fields[f]);
    let field = &mut table.fields[f];
    if let Some(name) = name {
        field.name = name.trim().to_owned();
    }
    if let Some(description) = description {
        field.description = description;
    }
    changes.schema.push(SchemaChange::FieldChanged {
        table_id: table.id.clone(),
        field_id: table.fields[f].id.clone(),
        previous,
    });
    Ok(())
}

/// Deletes a field (as a person can in the UI; the Web API cannot), with
/// its cells and, for a link, its inverse field.
pub(crate) fn delete_field(
    base: &mut Base,
    t: usize,
    f: usize,
    changes: &mut ChangeSet,
) -> Result<(), ApiError> {
    let table = &base.tables[t];
    let field = table.fields[f].clone();
    if field.id == table.primary_field_id {
        return Err(invalid("The primary field cannot be deleted"));
    }
    let mut doomed = vec![(table.id.clone(), field.id.clone())];
    if let (Some(lt), Some(inv)) = (
        field.option_str("linkedTableId"),
        field.option_str("inverseLinkFieldId"),
    ) {
        doomed.push((lt.to_owned(), inv.to_owned()));
    }
    for (table_id, field_id) in doomed {
        let Some(table) = base.tables.iter_mut().find(|x| x.id == table_id) else {
            continue;
        };
        let Some(slot) = table.field_by_id(&field_id).map(|x| x.slot) else {
            continue;
        };
        table.fields.retain(|x| x.id != field_id);
        for record in table.records.values_mut() {
            record.cells.retain(|c| c.slot != slot);
        }
        changes
            .schema
            .push(SchemaChange::FieldDestroyed { table_id, field_id });
    }
    Ok(())
}

/// The metadata API's field object.
pub(crate) fn field_json(field: &Field) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(field.id));
    out.insert("name".into(), json!(field.name));
    out.insert("type".into(), json!(field.kind.as_str()));
    if let Some(d) = &field.description {
        out.insert("description".into(), json!(d));
    }
    if let Some(o) = &field.options {
        out.insert("options".into(), Value::Object(o.clone()));
    }
    Value::Object(out)
}

/// The metadata API's table object.
pub(crate) fn table_json(table: &Table, visible_field_ids: bool) -> Value {
    let views: Vec<Value> = table
        .views
        .iter()
        .map(|v| {
            let mut view = json!({"id": v.id, "name": v.name, "type": v.kind});
            if visible_field_ids && v.kind == "grid" {
                view["visibleFieldIds"] =
                    json!(table.fields.iter().map(|f| &f.id).collect::<Vec<_>>());
            }
            view
        })
        .collect();
    let mut out = json!({
        "id": table.id,
        "name": table.name,
        "primaryFieldId": table.primary_field_id,
        "fields": table.fields.iter().map(field_json).collect::<Vec<_>>(),
        "views": views,
    });
    if let Some(d) = &table.description {
        out["description"] = json!(d);
    }
    out
}
