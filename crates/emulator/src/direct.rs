//! Operations that bypass the Web API: what the in-process handle and the
//! control endpoints do (schema set-up, edits "as a person in the UI",
//! dumps, reset).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::changes::{ChangeSet, Source};
use crate::error::ApiError;
use crate::ids;
use crate::model::{Base, SortSpec, View};
use crate::records::write::{self, WriteOptions};
use crate::schema::{self, FieldSpec, TableSpec};

/// An edit made as a person in Airtable's UI would (webhook source
/// `client`): no batch limit, one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientEdit {
    /// Records to create: cell values by field name or id.
    pub create: Vec<Map<String, Value>>,
    /// Records to update (merge): id and cell values.
    pub update: Vec<RecordPatch>,
    /// Records to delete.
    pub delete: Vec<String>,
    /// Convert values as the UI does when pasting (new choices etc.).
    pub typecast: bool,
}

/// One record update of a [`ClientEdit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordPatch {
    /// The record.
    pub id: String,
    /// Cell values by field name or id; `null` clears.
    pub fields: Map<String, Value>,
}

/// What a [`ClientEdit`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EditOutcome {
    /// Ids of the created records, in order.
    pub created: Vec<String>,
    /// Ids of the updated records.
    pub updated: Vec<String>,
    /// Ids of the deleted records.
    pub deleted: Vec<String>,
}

/// A table's ids, as tests need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Table id (`tbl…`).
    pub id: String,
    /// Table name.
    pub name: String,
    /// The primary field's id.
    pub primary_field_id: String,
    /// Fields in order.
    pub fields: Vec<FieldInfo>,
    /// View ids in order (the first is "Grid view").
    pub view_ids: Vec<String>,
}

impl TableInfo {
    /// The id of the field with this name.
    pub fn field_id(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.id.as_str())
    }
}

/// A field's id, name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// Field id (`fld…`).
    pub id: String,
    /// Field name.
    pub name: String,
    /// Airtable type name.
    #[serde(rename = "type")]
    pub kind: String,
}

fn table_info(base: &Base, t: usize) -> TableInfo {
    let table = &base.tables[t];
    TableInfo {
        id: table.id.clone(),
        name: table.name.clone(),
        primary_field_id: table.primary_field_id.clone(),
        fields: table
            .fields
            .iter()
            .map(|f| FieldInfo {
                id: f.id.clone(),
                name: f.name.clone(),
                kind: f.kind.as_str().to_owned(),
            })
            .collect(),
        view_ids: table.views.iter().map(|v| v.id.clone()).collect(),
    }
}

impl App {
    /// Runs `f` on a base under the lock as one transaction from `source`.
    pub(crate) fn transact<T>(
        &self,
        base_id: &str,
        source: Source,
        f: impl FnOnce(&mut Base, &mut ChangeSet) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let now = self.now();
        let (out, ping) = {
            let mut state = self.state.write();
            let base = state
                .base_mut(base_id)
                .ok_or_else(ApiError::model_not_found)?;
            let mut changes = ChangeSet::new(source, now);
            let out = f(base, &mut changes)?;
            (out, App::commit(base, &changes))
        };
        self.after_write(ping);
        Ok(out)
    }

    /// Creates an empty base; a random id unless one is given.
    pub(crate) fn add_base(&self, id: Option<&str>, name: &str) -> Result<String, ApiError> {
        let id = match id {
            Some(id) if ids::is_id(id, ids::BASE) => id.to_owned(),
            Some(_) => {
                return Err(ApiError::invalid_request_because(
                    "a base id is app followed by 14 letters or digits",
                ))
            }
            None => ids::new_id(ids::BASE),
        };
        let mut state = self.state.write();
        if state.base(&id).is_none() {
            state.bases.push(Base::new(id.clone(), name.to_owned()));
        }
        drop(state);
        self.after_write(false);
        Ok(id)
    }

    pub(crate) fn add_table(&self, base_id: &str, spec: &TableSpec) -> Result<TableInfo, ApiError> {
        self.transact(base_id, Source::Client, |base, changes| {
            let t = schema::create_table(base, spec, changes)?;
            Ok(table_info(base, t))
        })
    }

    pub(crate) fn table(&self, base_id: &str, table: &str) -> Result<TableInfo, ApiError> {
        let state = self.state.read();
        let base = state.base(base_id).ok_or_else(ApiError::model_not_found)?;
        let t = base
            .table_index(table)
            .ok_or_else(ApiError::model_not_found)?;
        Ok(table_info(base, t))
    }

    pub(crate) fn add_field(
        &self,
        base_id: &str,
        table: &str,
        spec: &FieldSpec,
    ) -> Result<FieldInfo, ApiError> {
        self.transact(base_id, Source::Client, |base, changes| {
            let t = base
                .table_index(table)
                .ok_or_else(ApiError::model_not_found)?;
            let f = schema::create_field(base, t, spec, changes)?;
            let field = &base.tables[t].fields[f];
            Ok(FieldInfo {
                id: field.id.clone(),
                name: field.name.clone(),
                kind: field.kind.as_str().to_owned(),
            })
        })
    }

    pub(crate) fn remove_field(
        &self,
        base_id: &str,
        table: &str,
        field: &str,
    ) -> Result<(), ApiError> {
        self.transact(base_id, Source::Client, |base, changes| {
            let t = base
                .table_index(table)
                .ok_or_else(ApiError::model_not_found)?;
            let f = base.tables[t]
                .field_index(field)
                .ok_or_else(ApiError::model_not_found)?;
            schema::delete_field(base, t, f, changes)
        })
    }

    pub(crate) fn add_view(
        &self,
        base_id: &str,
        table: &str,
        name: &str,
        filter: Option<String>,
        sort: Vec<SortSpec>,
    ) -> Result<String, ApiError> {
        let mut state = self.state.write();
        let base = state
            .base_mut(base_id)
            .ok_or_else(ApiError::model_not_found)?;
        let t = base
            .table_index(table)
            .ok_or_else(ApiError::model_not_found)?;
        if let Some(f) = &filter {
            crate::records::filter::compile(&base.tables[t], f)?;
        }
        crate::records::filter::resolve_sort(&base.tables[t], &sort)?;
        let id = ids::new_id(ids::VIEW);
        base.tables[t].views.push(View {
            id: id.clone(),
            name: name.to_owned(),
            kind: "grid".into(),
            filter,
            sort,
        });
        drop(state);
        self.after_write(false);
        Ok(id)
    }

    /// Applies an edit as a person in the UI would.
    pub(crate) fn client_edit(
        &self,
        base_id: &str,
        table: &str,
        edit: &ClientEdit,
    ) -> Result<EditOutcome, ApiError> {
        let now = self.now();
        self.transact(base_id, Source::Client, |base, changes| {
            let t = base
                .table_index(table)
                .ok_or_else(ApiError::model_not_found)?;
            let opts = WriteOptions {
                typecast: edit.typecast,
                now,
            };
            // Validate the updates and deletes before the creates change
            // anything, so that a bad edit changes nothing.
            for patch in &edit.update {
                if !base.tables[t].by_id.contains_key(&patch.id) {
                    return Err(crate::cells::row_does_not_exist(&patch.id));
                }
            }
            for id in &edit.delete {
                if !base.tables[t].by_id.contains_key(id) {
                    return Err(ApiError::record_not_found());
                }
            }
            let created = write::create_records(base, t, &edit.create, opts, changes)?;
            let updates: Vec<(String, Map<String, Value>)> = edit
                .update
                .iter()
                .map(|p| (p.id.clone(), p.fields.clone()))
                .collect();
            write::update_records(base, t, &updates, false, opts, changes)?;
            write::delete_records(base, t, &edit.delete, now, changes)?;
            Ok(EditOutcome {
                created,
                updated: edit.update.iter().map(|p| p.id.clone()).collect(),
                deleted: edit.delete.clone(),
            })
        })
    }

    /// Ends the life of every webhook of a base now, as seven days without a
    /// refresh would, without moving the clock: the webhooks stop recording
    /// and show `isHookEnabled: false`, and their payloads stay readable.
    pub(crate) fn expire_webhooks(&self, base_id: &str) -> Result<usize, ApiError> {
        let now = self.clock.now_ms();
        let mut state = self.state.write();
        let base = state
            .base_mut(base_id)
            .ok_or_else(ApiError::model_not_found)?;
        for hook in &mut base.webhooks {
            hook.expiration_ms = hook.expiration_ms.min(now);
        }
        Ok(base.webhooks.len())
    }

    /// Every record of a table, as the records API renders them (by name).
    pub(crate) fn dump(&self, base_id: &str, table: &str) -> Result<Vec<Value>, ApiError> {
        let state = self.state.read();
        let base = state.base(base_id).ok_or_else(ApiError::model_not_found)?;
        let t = base
            .table_index(table)
            .ok_or_else(ApiError::model_not_found)?;
        let ids: Vec<String> = base.tables[t]
            .records
            .values()
            .map(|r| r.id.clone())
            .collect();
        Ok(crate::records::render(base, t, &ids, false))
    }

    /// Some records of a table, as the records API renders them.
    pub(crate) fn render(
        &self,
        base_id: &str,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, ApiError> {
        let state = self.state.read();
        let base = state.base(base_id).ok_or_else(ApiError::model_not_found)?;
        let t = base
            .table_index(table)
            .ok_or_else(ApiError::model_not_found)?;
        Ok(crate::records::render(base, t, ids, false))
    }

    /// Back to the start: the configured bases, empty; counters, offsets,
    /// penalties and fault bursts cleared.
    pub(crate) fn reset(&self) {
        {
            let mut state = self.state.write();
            state.bases.clear();
            for id in &self.config.bases {
                state.bases.push(Base::new(id.clone(), id.clone()));
            }
        }
        self.iterators.lock().clear();
        self.limiter.reset();
        self.faults.reset();
        self.counters.reset();
        self.after_write(false);
    }
}
