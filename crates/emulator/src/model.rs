//! The emulator's state: bases, tables, fields, views and records.
//!
//! All of it lives in memory behind one lock (see `server::App`); nothing
//! here awaits. Records are kept per table in creation order, keyed by a
//! sequence number, with an id index beside them; cells are keyed by a
//! per-table field slot rather than the field id, which keeps 100,000
//! records small.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;

/// Every base the emulator holds, in creation order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub bases: Vec<Base>,
}

impl State {
    pub fn base(&self, id: &str) -> Option<&Base> {
        self.bases.iter().find(|b| b.id == id)
    }

    pub fn base_mut(&mut self, id: &str) -> Option<&mut Base> {
        self.bases.iter_mut().find(|b| b.id == id)
    }

    /// Rebuilds the indexes that are not persisted.
    pub fn rebuild_indexes(&mut self) {
        for base in &mut self.bases {
            for table in &mut base.tables {
                table.by_id = table
                    .records
                    .iter()
                    .map(|(seq, r)| (r.id.clone(), *seq))
                    .collect();
            }
        }
    }
}

/// One Airtable base.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Base {
    pub id: String,
    pub name: String,
    pub tables: Vec<Table>,
    /// Number of the last change transaction (webhook `baseTransactionNumber`).
    pub transaction_number: u64,
    pub webhooks: Vec<crate::webhooks::Webhook>,
}

impl Base {
    pub fn new(id: String, name: String) -> Self {
        Base {
            id,
            name,
            tables: Vec::new(),
            transaction_number: 0,
            webhooks: Vec::new(),
        }
    }

    /// The index of a table given its id or its name (ids win, as in Airtable).
    pub fn table_index(&self, id_or_name: &str) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.id == id_or_name)
            .or_else(|| self.tables.iter().position(|t| t.name == id_or_name))
    }

    pub fn table_by_id(&self, id: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// The table holding a record, whichever table the request named: record
    /// ids are unique per base and Airtable resolves them from any table.
    pub fn table_of_record(&self, record_id: &str) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.by_id.contains_key(record_id))
    }
}

/// One table: schema and records.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Table {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub primary_field_id: String,
    pub fields: Vec<Field>,
    pub views: Vec<View>,
    /// Records by sequence number, i.e. in creation order.
    pub records: BTreeMap<u64, Record>,
    #[serde(skip)]
    pub by_id: HashMap<String, u64>,
    pub next_seq: u64,
    pub next_auto_number: u64,
    pub next_slot: u32,
}

impl Table {
    pub fn field_by_id(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    /// A field by id or by exact name.
    pub fn field(&self, id_or_name: &str) -> Option<&Field> {
        self.field_by_id(id_or_name)
            .or_else(|| self.fields.iter().find(|f| f.name == id_or_name))
    }

    pub fn field_index(&self, id_or_name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.id == id_or_name)
            .or_else(|| self.fields.iter().position(|f| f.name == id_or_name))
    }

    pub fn field_by_slot(&self, slot: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.slot == slot)
    }

    pub fn primary_field(&self) -> Option<&Field> {
        self.field_by_id(&self.primary_field_id)
    }

    pub fn record(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).and_then(|seq| self.records.get(seq))
    }

    pub fn record_mut(&mut self, id: &str) -> Option<&mut Record> {
        match self.by_id.get(id) {
            Some(seq) => self.records.get_mut(seq),
            None => None,
        }
    }

    pub fn view(&self, id_or_name: &str) -> Option<&View> {
        self.views
            .iter()
            .find(|v| v.id == id_or_name)
            .or_else(|| self.views.iter().find(|v| v.name == id_or_name))
    }

    /// Adds a record and returns its id.
    pub fn insert_record(&mut self, id: String, created_ms: Millis) -> String {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.next_auto_number += 1;
        self.records.insert(
            seq,
            Record {
                id: id.clone(),
                created_ms,
                auto_number: self.next_auto_number,
                cells: Vec::new(),
            },
        );
        self.by_id.insert(id.clone(), seq);
        id
    }

    pub fn remove_record(&mut self, id: &str) -> Option<Record> {
        let seq = self.by_id.remove(id)?;
        self.records.remove(&seq)
    }
}

/// A field (column).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Field {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub kind: FieldType,
    pub options: Option<Map<String, Value>>,
    /// Key of this field's cells inside records.
    pub slot: u32,
}

impl Field {
    pub fn option(&self, key: &str) -> Option<&Value> {
        self.options.as_ref().and_then(|o| o.get(key))
    }

    pub fn option_str(&self, key: &str) -> Option<&str> {
        self.option(key).and_then(Value::as_str)
    }

    /// The select choices, as `{id, name, color?}` objects.
    pub fn choices(&self) -> &[Value] {
        self.option("choices")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// A view. Views show every record of their table unless given a filter
/// formula, in creation order unless given a sort.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct View {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub sort: Vec<SortSpec>,
}

/// One sort key: a field id or name and a direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    /// Field name or id.
    pub field: String,
    /// True for `desc`.
    #[serde(default)]
    pub descending: bool,
}

/// One record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    pub created_ms: Millis,
    pub auto_number: u64,
    /// Cells by field slot. A cleared cell is kept as `null` so that its
    /// modification time stays known.
    pub cells: Vec<Cell>,
}

/// One stored cell, in the REST (V1) JSON shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub slot: u32,
    pub value: Value,
    pub modified_ms: Millis,
}

impl Record {
    /// The stored value of a cell (`None` when empty).
    pub fn get(&self, slot: u32) -> Option<&Value> {
        self.cells
            .iter()
            .find(|c| c.slot == slot)
            .map(|c| &c.value)
            .filter(|v| !v.is_null())
    }

    /// Sets (or clears, with `null`) a cell; returns the previous value.
    pub fn set(&mut self, slot: u32, value: Value, now: Millis) -> Value {
        match self.cells.iter_mut().find(|c| c.slot == slot) {
            Some(cell) => {
                cell.modified_ms = now;
                std::mem::replace(&mut cell.value, value)
            }
            None => {
                self.cells.push(Cell {
                    slot,
                    value,
                    modified_ms: now,
                });
                Value::Null
            }
        }
    }

    /// The latest write to any of the given slots (all slots when empty).
    pub fn last_modified(&self, slots: &[u32]) -> Option<Millis> {
        self.cells
            .iter()
            .filter(|c| slots.is_empty() || slots.contains(&c.slot))
            .map(|c| c.modified_ms)
            .max()
    }
}

/// The field types the emulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// One line of text.
    SingleLineText,
    /// Long text.
    MultilineText,
    /// Long text with formatting; stored as given.
    RichText,
    /// An email address.
    Email,
    /// A URL.
    Url,
    /// A phone number.
    PhoneNumber,
    /// A number.
    Number,
    /// A number shown with a currency symbol.
    Currency,
    /// A fraction shown as a percentage.
    Percent,
    /// A number of seconds.
    Duration,
    /// A positive whole number up to `max`.
    Rating,
    /// True or absent.
    Checkbox,
    /// A calendar date.
    Date,
    /// An instant, stored in UTC.
    DateTime,
    /// One choice.
    SingleSelect,
    /// Several choices.
    MultipleSelects,
    /// Links to records of another (or the same) table.
    MultipleRecordLinks,
    /// Files, stored as given.
    MultipleAttachments,
    /// Computed: when the record was created.
    CreatedTime,
    /// Computed: when the record (or the referenced fields) was last edited.
    LastModifiedTime,
    /// Computed: a number counting up per table.
    AutoNumber,
}

impl FieldType {
    /// Every type, for parsing and documentation.
    pub const ALL: [FieldType; 21] = [
        FieldType::SingleLineText,
        FieldType::MultilineText,
        FieldType::RichText,
        FieldType::Email,
        FieldType::Url,
        FieldType::PhoneNumber,
        FieldType::Number,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Duration,
        FieldType::Rating,
        FieldType::Checkbox,
        FieldType::Date,
        FieldType::DateTime,
        FieldType::SingleSelect,
        FieldType::MultipleSelects,
        FieldType::MultipleRecordLinks,
        FieldType::MultipleAttachments,
        FieldType::CreatedTime,
        FieldType::LastModifiedTime,
        FieldType::AutoNumber,
    ];

    /// The wire name, e.g. `singleLineText`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::SingleLineText => "singleLineText",
            FieldType::MultilineText => "multilineText",
            FieldType::RichText => "richText",
            FieldType::Email => "email",
            FieldType::Url => "url",
            FieldType::PhoneNumber => "phoneNumber",
            FieldType::Number => "number",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Duration => "duration",
            FieldType::Rating => "rating",
            FieldType::Checkbox => "checkbox",
            FieldType::Date => "date",
            FieldType::DateTime => "dateTime",
            FieldType::SingleSelect => "singleSelect",
            FieldType::MultipleSelects => "multipleSelects",
            FieldType::MultipleRecordLinks => "multipleRecordLinks",
            FieldType::MultipleAttachments => "multipleAttachments",
            FieldType::CreatedTime => "createdTime",
            FieldType::LastModifiedTime => "lastModifiedTime",
            FieldType::AutoNumber => "autoNumber",
        }
    }

    /// The type with this wire name.
    pub fn parse(name: &str) -> Option<FieldType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether Airtable computes the value (writes are refused).
    pub fn is_computed(self) -> bool {
        matches!(
            self,
            FieldType::CreatedTime | FieldType::LastModifiedTime | FieldType::AutoNumber
        )
    }

    /// Whether the value is a number.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Number
                | FieldType::Currency
                | FieldType::Percent
                | FieldType::Duration
                | FieldType::Rating
                | FieldType::AutoNumber
        )
    }

    /// Whether the value is text.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::SingleLineText
                | FieldType::MultilineText
                | FieldType::RichText
                | FieldType::Email
                | FieldType::Url
                | FieldType::PhoneNumber
        )
    }
}
