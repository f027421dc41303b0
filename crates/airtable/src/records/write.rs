//! Writing records: create, update (merge or replace), upsert and delete,
//! any number at a time, sent ten to a request in input order.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::metrics::RequestKind;
use crate::records::{Fields, Record};
use crate::transport::{Call, Replay, Transport};

/// The most records Airtable takes in one write request.
pub const MAX_RECORDS_PER_REQUEST: usize = 10;

/// Options shared by every write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Let Airtable convert text to the field's type (and create missing
    /// select choices).
    pub typecast: bool,
    /// Key the returned records' cells by field id.
    pub return_fields_by_field_id: bool,
}

/// How an update treats the fields it does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpdateMode {
    /// `PATCH`: unlisted fields keep their values.
    #[default]
    Merge,
    /// `PUT`: unlisted fields are cleared.
    Replace,
}

impl UpdateMode {
    fn method(self) -> Method {
        match self {
            UpdateMode::Merge => Method::PATCH,
            UpdateMode::Replace => Method::PUT,
        }
    }
}

/// New cell values for one existing record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    /// The record's id.
    pub id: String,
    /// The cells to write (`null` clears a cell).
    pub fields: Fields,
}

impl RecordUpdate {
    /// An update of one record.
    pub fn new(id: impl Into<String>, fields: Fields) -> Self {
        RecordUpdate {
            id: id.into(),
            fields,
        }
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpsertOutcome {
    /// The records written, in input order.
    pub records: Vec<Record>,
    /// Ids of the records created.
    pub created: Vec<String>,
    /// Ids of the existing records updated.
    pub updated: Vec<String>,
}

#[derive(Deserialize)]
struct RecordsAnswer {
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct UpsertAnswer {
    records: Vec<Record>,
    #[serde(default, rename = "createdRecords")]
    created_records: Vec<String>,
    #[serde(default, rename = "updatedRecords")]
    updated_records: Vec<String>,
}

#[derive(Deserialize)]
struct DeletedRecord {
    id: String,
}

#[derive(Deserialize)]
struct DeleteAnswer {
    records: Vec<DeletedRecord>,
}

/// An error for a batch after earlier batches went through.
fn after(applied: Vec<String>, error: Error) -> Error {
    if applied.is_empty() {
        error
    } else {
        Error::PartiallyApplied {
            applied,
            source: Box::new(error),
        }
    }
}

fn ids(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

fn write_body(records: Vec<Value>, options: WriteOptions) -> Value {
    json!({
        "records": records,
        "typecast": options.typecast,
        "returnFieldsByFieldId": options.return_fields_by_field_id,
    })
}

/// Creates records. Not replayed after an ambiguous failure: see
/// [`Table::create`](crate::Table::create).
pub(crate) async fn create(
    transport: &Transport,
    base: &str,
    table: &str,
    records: &[Fields],
    options: WriteOptions,
) -> Result<Vec<Record>> {
    let mut written = Vec::with_capacity(records.len());
    for chunk in records.chunks(MAX_RECORDS_PER_REQUEST) {
        let body = write_body(
            chunk.iter().map(|f| json!({ "fields": f })).collect(),
            options,
        );
        let call = Call::new(
            RequestKind::CreateRecords,
            Method::POST,
            transport.url(&["v0", base, table]),
        )
        .on(base, Some(table))
        .json(&body)?
        .replay(Replay::OnlyIfUnapplied);
        match transport.send_json::<RecordsAnswer>(&call).await {
            Ok(answer) => written.extend(answer.records),
            Err(e) => return Err(after(ids(&written), e)),
        }
    }
    Ok(written)
}

/// Updates records by id.
pub(crate) async fn update(
    transport: &Transport,
    base: &str,
    table: &str,
    updates: &[RecordUpdate],
    mode: UpdateMode,
    options: WriteOptions,
) -> Result<Vec<Record>> {
    if let Some(bad) = updates.iter().find(|u| u.id.is_empty()) {
        return Err(Error::InvalidInput(format!(
            "an update has no record id (fields {:?})",
            bad.fields.iter().map(|(k, _)| k).collect::<Vec<_>>()
        )));
    }
    let mut written = Vec::with_capacity(updates.len());
    for chunk in updates.chunks(MAX_RECORDS_PER_REQUEST) {
        let body = write_body(
            chunk
                .iter()
                .map(|u| json!({"id": u.id, "fields": u.fields}))
                .collect(),
            options,
        );
        let call = Call::new(
            RequestKind::UpdateRecords,
            mode.method(),
            transport.url(&["v0", base, table]),
        )
        .on(base, Some(table))
        .json(&body)?;
        match transport.send_json::<RecordsAnswer>(&call).await {
            Ok(answer) => written.extend(answer.records),
            Err(e) => return Err(after(ids(&written), e)),
        }
    }
    Ok(written)
}

/// Creates or updates records matched on `merge_on`.
pub(crate) async fn upsert(
    transport: &Transport,
    base: &str,
    table: &str,
    records: &[Fields],
    merge_on: &[String],
    mode: UpdateMode,
    options: WriteOptions,
) -> Result<UpsertOutcome> {
    check_upsert(records, merge_on)?;
    let mut outcome = UpsertOutcome::default();
    for chunk in records.chunks(MAX_RECORDS_PER_REQUEST) {
        let mut body = write_body(
            chunk.iter().map(|f| json!({ "fields": f })).collect(),
            options,
        );
        body["performUpsert"] = json!({ "fieldsToMergeOn": merge_on });
        let call = Call::new(
            RequestKind::UpsertRecords,
            mode.method(),
            transport.url(&["v0", base, table]),
        )
        .on(base, Some(table))
        .json(&body)?;
        match transport.send_json::<UpsertAnswer>(&call).await {
            Ok(answer) => {
                outcome.records.extend(answer.records);
                outcome.created.extend(answer.created_records);
                outcome.updated.extend(answer.updated_records);
            }
            Err(e) => return Err(after(ids(&outcome.records), e)),
        }
    }
    Ok(outcome)
}

/// Refuses an upsert that Airtable would refuse mid-way, leaving earlier
/// batches applied: every record must carry every merge field.
fn check_upsert(records: &[Fields], merge_on: &[String]) -> Result<()> {
    if merge_on.is_empty() || merge_on.len() > 3 {
        return Err(Error::InvalidInput(format!(
            "an upsert merges on 1 to 3 fields, not {}",
            merge_on.len()
        )));
    }
    for (i, record) in records.iter().enumerate() {
        for field in merge_on {
            if record.get(field).is_none_or(Value::is_null) {
                return Err(Error::InvalidInput(format!(
                    "record {i} of the upsert has no value for the merge field {field:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Deletes records by id; returns the ids deleted.
pub(crate) async fn delete(
    transport: &Transport,
    base: &str,
    table: &str,
    record_ids: &[String],
) -> Result<Vec<String>> {
    let mut deleted = Vec::with_capacity(record_ids.len());
    for chunk in record_ids.chunks(MAX_RECORDS_PER_REQUEST) {
        let mut url = transport.url(&["v0", base, table]);
        url.query_pairs_mut()
            .extend_pairs(chunk.iter().map(|id| ("records[]", id.as_str())));
        let call = Call::new(RequestKind::DeleteRecords, Method::DELETE, url).on(base, Some(table));
        match transport.send_json::<DeleteAnswer>(&call).await {
            Ok(answer) => deleted.extend(answer.records.into_iter().map(|r| r.id)),
            Err(e) => return Err(after(deleted, e)),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_needs_one_to_three_merge_fields_present_in_every_record() {
        let good = [Fields::new().with("pg_id", "1").with("Name", "Ada")];
        assert!(check_upsert(&good, &["pg_id".into()]).is_ok());
        assert!(check_upsert(&good, &[]).is_err());
        let four: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert!(check_upsert(&good, &four).is_err());
        let missing = [
            Fields::new().with("pg_id", "1"),
            Fields::new().with("Name", "Bo"),
        ];
        assert!(check_upsert(&missing, &["pg_id".into()]).is_err());
        let null = [Fields::new().with("pg_id", Value::Null)];
        assert!(check_upsert(&null, &["pg_id".into()]).is_err());
    }

    #[test]
    fn a_failure_after_applied_batches_keeps_their_ids() {
        let source = Error::InvalidInput("x".into());
        assert!(matches!(after(vec![], source), Error::InvalidInput(_)));
        let source = Error::InvalidInput("x".into());
        let err = after(vec!["recA".into()], source);
        assert!(matches!(err, Error::PartiallyApplied { ref applied, .. } if applied.len() == 1));
    }
}
