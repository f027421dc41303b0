//! The validated mapping: entities, fields, how values convert, and the
//! rules a mapping keeps within itself.

use std::collections::HashSet;

use serde::Deserialize;

use super::{MappingError, ProblemList};

/// Who owns the truth of an entity (docs/architecture.md, "Conflicts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Reference data: the team edits it in Airtable, and Airtable wins.
    Airtable,
    /// The app's data: written through the API, mirrored to Airtable.
    Postgres,
    /// Shared (users): the later change wins, per field.
    Both,
}

/// What an Airtable delete does to the row (inbound sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    /// Delete the row.
    #[default]
    Delete,
    /// Keep the row (usages point at it) and set its `active` column false.
    Deactivate,
    /// Keep the row unchanged.
    Ignore,
}

/// Which way a field's values flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both ways.
    #[default]
    Both,
    /// Derived in PostgreSQL, shown in Airtable; Airtable edits are ignored.
    ToAirtable,
    /// Kept from Airtable; never written to Airtable.
    FromAirtable,
}

/// How a column's value converts to a field's cell and back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A text column as a single-line text field.
    Text,
    /// A text column as a long text field.
    LongText,
    /// A numeric column as a number field with decimals.
    Number,
    /// An integer column as a number field without decimals.
    Integer,
    /// A boolean column as a checkbox (absent in Airtable means false).
    Boolean,
    /// A date column as a date field.
    Date,
    /// A timestamptz column as a dateTime field (UTC).
    #[serde(rename = "datetime")]
    DateTime,
    /// A text column as a single select.
    SingleSelect,
    /// A text[] column as a multiple select.
    MultiSelect,
    /// A text[] column as a long text with one item per line.
    List,
    /// A foreign-key column as a link field holding at most one record.
    Link,
    /// A join table as a link field holding many records.
    Links,
    /// The row's UUID in a text field; creates are upserts on it.
    PgId,
}

impl FieldKind {
    /// Every kind.
    pub const ALL: [FieldKind; 13] = [
        FieldKind::Text,
        FieldKind::LongText,
        FieldKind::Number,
        FieldKind::Integer,
        FieldKind::Boolean,
        FieldKind::Date,
        FieldKind::DateTime,
        FieldKind::SingleSelect,
        FieldKind::MultiSelect,
        FieldKind::List,
        FieldKind::Link,
        FieldKind::Links,
        FieldKind::PgId,
    ];

    /// The Airtable field type `airtable bootstrap` creates for this kind.
    pub fn airtable_type(self) -> &'static str {
        match self {
            FieldKind::Text | FieldKind::PgId => "singleLineText",
            FieldKind::LongText | FieldKind::List => "multilineText",
            FieldKind::Number | FieldKind::Integer => "number",
            FieldKind::Boolean => "checkbox",
            FieldKind::Date => "date",
            FieldKind::DateTime => "dateTime",
            FieldKind::SingleSelect => "singleSelect",
            FieldKind::MultiSelect => "multipleSelects",
            FieldKind::Link | FieldKind::Links => "multipleRecordLinks",
        }
    }

    /// Airtable field types that can hold this kind's values (a team's base
    /// may use e.g. a long text where the default mapping makes a short one).
    pub fn accepted_airtable_types(self) -> &'static [&'static str] {
        match self {
            FieldKind::Text | FieldKind::LongText | FieldKind::PgId => &[
                "singleLineText",
                "multilineText",
                "richText",
                "email",
                "url",
                "phoneNumber",
            ],
            FieldKind::List => &["multilineText", "richText", "singleLineText"],
            FieldKind::Number | FieldKind::Integer => {
                &["number", "currency", "percent", "rating", "duration"]
            }
            FieldKind::Boolean => &["checkbox"],
            FieldKind::Date => &["date"],
            FieldKind::DateTime => &["dateTime"],
            FieldKind::SingleSelect => &["singleSelect"],
            FieldKind::MultiSelect => &["multipleSelects"],
            FieldKind::Link | FieldKind::Links => &["multipleRecordLinks"],
        }
    }

    /// Whether the kind links to another entity.
    pub fn is_link(self) -> bool {
        matches!(self, FieldKind::Link | FieldKind::Links)
    }
}

/// A join table behind a `links` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTable {
    /// The join table.
    pub table: String,
    /// Its column that points at this entity's row.
    pub column: String,
    /// Its column that points at the linked row.
    pub target: String,
    /// Its position column, when the links' order matters.
    pub order: Option<String>,
}

/// One column (or join table) and its Airtable field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// The column; `None` for a `links` field, which lives in a join table.
    pub column: Option<String>,
    /// The Airtable field, by name or `fld...` id.
    pub field: String,
    /// How values convert.
    pub kind: FieldKind,
    /// The linked entity of a link field.
    pub target: Option<String>,
    /// The join table of a `links` field.
    pub join: Option<JoinTable>,
    /// Select options, for bootstrap.
    pub choices: Vec<String>,
    /// Which way values flow.
    pub direction: Direction,
}

impl FieldMapping {
    /// Whether values of this field are written to Airtable.
    pub fn flows_to_airtable(&self) -> bool {
        self.direction != Direction::FromAirtable
    }

    /// Whether Airtable's values of this field are applied to PostgreSQL.
    pub fn flows_from_airtable(&self) -> bool {
        self.direction != Direction::ToAirtable
    }
}

/// One entity: a PostgreSQL table and its Airtable table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityMapping {
    /// The entity's name, as the id map and the outbox know it.
    pub name: String,
    /// The PostgreSQL table.
    pub table: String,
    /// The Airtable table, by name or `tbl...` id.
    pub airtable_table: String,
    /// Who owns the truth.
    pub owner: Owner,
    /// A column that matches an Airtable record to an existing row.
    pub natural_key: Option<String>,
    /// What an Airtable delete does.
    pub on_airtable_delete: DeletePolicy,
    /// The fields, in Airtable's order.
    pub fields: Vec<FieldMapping>,
}

impl EntityMapping {
    /// The `pg_id` field, on which creates are upserted.
    pub fn pg_id_field(&self) -> Option<&FieldMapping> {
        self.fields.iter().find(|f| f.kind == FieldKind::PgId)
    }

    /// Whether PostgreSQL's changes of this entity are sent to Airtable.
    pub fn syncs_outbound(&self) -> bool {
        self.owner != Owner::Airtable
    }

    /// The field mapped to `column`.
    pub fn field_for_column(&self, column: &str) -> Option<&FieldMapping> {
        self.fields
            .iter()
            .find(|f| f.column.as_deref() == Some(column))
    }
}

/// A checked mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub(super) entities: Vec<EntityMapping>,
}

impl Mapping {
    /// A mapping of `entities`, checked against the rules within a mapping
    /// (names, tables and fields mapped once, links to mapped entities,
    /// a `pg_id` field where creates are upserts).
    pub(super) fn new(entities: Vec<EntityMapping>) -> Result<Mapping, MappingError> {
        let mapping = Mapping { entities };
        mapping.check_structure()?;
        Ok(mapping)
    }

    /// Every entity, in the file's order.
    pub fn entities(&self) -> &[EntityMapping] {
        &self.entities
    }

    /// The entity named `name`.
    pub fn entity(&self, name: &str) -> Option<&EntityMapping> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// The entity stored in PostgreSQL table `table`.
    pub fn entity_by_table(&self, table: &str) -> Option<&EntityMapping> {
        self.entities.iter().find(|e| e.table == table)
    }

    /// Rules within the file.
    fn check_structure(&self) -> Result<(), MappingError> {
        let mut problems = ProblemList::new("its own rules");
        if self.entities.is_empty() {
            problems.problems.push("no [[entity]] is mapped".to_owned());
        }
        let mut names = HashSet::new();
        let mut tables = HashSet::new();
        let mut airtable_tables = HashSet::new();
        for entity in &self.entities {
            if !names.insert(entity.name.as_str()) {
                problems.entity(&entity.name, "is mapped twice");
            }
            if !tables.insert(entity.table.as_str()) {
                problems.entity(
                    &entity.name,
                    format!("table {} is mapped twice", entity.table),
                );
            }
            if !airtable_tables.insert(entity.airtable_table.as_str()) {
                problems.entity(
                    &entity.name,
                    format!("Airtable table {:?} is mapped twice", entity.airtable_table),
                );
            }
            self.check_entity(entity, &mut problems);
        }
        problems.finish()
    }

    fn check_entity(&self, entity: &EntityMapping, problems: &mut ProblemList) {
        if entity.fields.is_empty() {
            problems.entity(&entity.name, "has no fields");
        }
        let mut fields = HashSet::new();
        let mut columns = HashSet::new();
        for field in &entity.fields {
            if !fields.insert(field.field.as_str()) {
                problems.field(&entity.name, &field.field, "is mapped twice");
            }
            if let Some(column) = &field.column {
                if !columns.insert(column.as_str()) {
                    problems.field(
                        &entity.name,
                        &field.field,
                        format!("column {column} is mapped twice"),
                    );
                }
            }
            check_field(self, entity, field, problems);
        }
        let pg_ids = entity
            .fields
            .iter()
            .filter(|f| f.kind == FieldKind::PgId)
            .count();
        if pg_ids > 1 {
            problems.entity(&entity.name, "has more than one pg_id field");
        }
        if entity.syncs_outbound() && pg_ids == 0 {
            problems.entity(
                &entity.name,
                "is written to Airtable but has no pg_id field; creates must be upserts on it",
            );
        }
    }
}

fn check_field(
    mapping: &Mapping,
    entity: &EntityMapping,
    field: &FieldMapping,
    problems: &mut ProblemList,
) {
    let name = (&entity.name, &field.field);
    match field.kind {
        FieldKind::Links => {
            if field.join.is_none() {
                problems.field(
                    name.0,
                    name.1,
                    "a links field needs join = { table, column, target }",
                );
            }
            if field.column.is_some() {
                problems.field(
                    name.0,
                    name.1,
                    "a links field lives in its join table and takes no column",
                );
            }
        }
        _ => {
            if field.column.is_none() {
                problems.field(name.0, name.1, "needs a column");
            }
            if field.join.is_some() {
                problems.field(name.0, name.1, "only a links field takes a join table");
            }
        }
    }
    match (&field.target, field.kind.is_link()) {
        (None, true) => problems.field(name.0, name.1, "a link field needs entity = \"...\""),
        (Some(target), true) if mapping.entity(target).is_none() => {
            problems.field(
                name.0,
                name.1,
                format!("links to entity {target}, which is not mapped"),
            );
        }
        (Some(_), false) => problems.field(name.0, name.1, "only link fields take an entity"),
        _ => {}
    }
    if !field.choices.is_empty()
        && !matches!(field.kind, FieldKind::SingleSelect | FieldKind::MultiSelect)
    {
        problems.field(name.0, name.1, "only select fields take choices");
    }
    if field.kind == FieldKind::PgId {
        if field.column.as_deref() != Some("id") {
            problems.field(name.0, name.1, "the pg_id field maps column \"id\"");
        }
        if field.direction != Direction::Both {
            problems.field(name.0, name.1, "the pg_id field flows both ways");
        }
    }
}
