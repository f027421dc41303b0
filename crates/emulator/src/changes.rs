//! What one change transaction did, gathered while it runs and handed to
//! the webhooks afterwards.

use std::collections::HashMap;

use serde_json::Value;

use crate::clock::Millis;

/// Who made a change, as webhook payloads name it (`actionMetadata.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A request to the Web API.
    PublicApi,
    /// A person in Airtable's UI (the emulator's control API and in-process
    /// edits).
    Client,
    /// An automation.
    Automation,
    /// Airtable itself.
    System,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::PublicApi => "publicApi",
            Source::Client => "client",
            Source::Automation => "automation",
            Source::System => "system",
        }
    }
}

/// A change to one record within a transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RecordChange {
    Created,
    /// Changed cells: slot and the value before the transaction.
    Changed(Vec<(u32, Value)>),
    Destroyed,
    /// Created and destroyed within the same transaction: nothing to tell.
    Nothing,
}

/// A change to the schema within a transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SchemaChange {
    TableCreated {
        table_id: String,
    },
    TableMetadataChanged {
        table_id: String,
        previous_name: String,
        previous_description: Option<String>,
    },
    FieldCreated {
        table_id: String,
        field_id: String,
    },
    FieldChanged {
        table_id: String,
        field_id: String,
        previous: Value,
    },
    FieldDestroyed {
        table_id: String,
        field_id: String,
    },
}

/// Everything one request (or one UI edit) changed in a base.
#[derive(Debug, Clone)]
pub(crate) struct ChangeSet {
    pub source: Source,
    pub at: Millis,
    /// (table id, record id, change), in order of first touch.
    pub records: Vec<(String, String, RecordChange)>,
    pub schema: Vec<SchemaChange>,
    /// Position in `records` by record id (ids are unique in a base), so
    /// that large UI edits stay linear.
    index: HashMap<String, usize>,
}

impl ChangeSet {
    pub fn new(source: Source, at: Millis) -> Self {
        ChangeSet {
            source,
            at,
            records: Vec::new(),
            schema: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.schema.is_empty()
    }

    fn find(&mut self, record_id: &str) -> Option<&mut RecordChange> {
        let i = *self.index.get(record_id)?;
        self.records.get_mut(i).map(|(_, _, c)| c)
    }

    fn push(&mut self, table_id: &str, record_id: &str, change: RecordChange) {
        self.index.insert(record_id.to_owned(), self.records.len());
        self.records
            .push((table_id.to_owned(), record_id.to_owned(), change));
    }

    pub fn created(&mut self, table_id: &str, record_id: &str) {
        self.push(table_id, record_id, RecordChange::Created);
    }

    /// Notes a changed cell; the first previous value of a cell wins.
    pub fn changed(&mut self, table_id: &str, record_id: &str, slot: u32, previous: Value) {
        match self.find(record_id) {
            Some(RecordChange::Created | RecordChange::Destroyed | RecordChange::Nothing) => {}
            Some(RecordChange::Changed(cells)) => {
                if !cells.iter().any(|(s, _)| *s == slot) {
                    cells.push((slot, previous));
                }
            }
            None => self.push(
                table_id,
                record_id,
                RecordChange::Changed(vec![(slot, previous)]),
            ),
        }
    }

    pub fn destroyed(&mut self, table_id: &str, record_id: &str) {
        match self.find(record_id) {
            Some(change @ RecordChange::Created) => *change = RecordChange::Nothing,
            Some(change) => *change = RecordChange::Destroyed,
            None => self.push(table_id, record_id, RecordChange::Destroyed),
        }
    }
}
