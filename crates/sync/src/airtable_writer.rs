//! The worker's writes through the Airtable client.

use airsync_airtable::{
    formula, AirtableClient, BaseId, Error as AirtableError, Fields, ListOptions, RecordUpdate,
    UpdateMode, WriteOptions,
};
use serde_json::{Map, Value};

use crate::outbox::FailureDetail;
use crate::worker::{ReadRecord, RecordWriter, SendError, Upserted};

/// Writes the worker's chunks to one base through the client, which paces
/// them under the base's rate limit and retries transient failures first.
#[derive(Clone)]
pub struct AirtableWriter {
    client: AirtableClient,
    base_id: BaseId,
}

impl AirtableWriter {
    /// A writer to `base_id`.
    pub fn new(client: AirtableClient, base_id: BaseId) -> Self {
        AirtableWriter { client, base_id }
    }
}

/// Select choices the bootstrap did not create (a new badge code) are added
/// by Airtable rather than refused.
const OPTIONS: WriteOptions = WriteOptions {
    typecast: true,
    return_fields_by_field_id: false,
};

fn send_error(err: &AirtableError) -> SendError {
    SendError {
        rate_limited: err.is_rate_limited(),
        // A link to a record the team deleted a moment ago: the inbound
        // sync brings that delete soon (the linked row goes, or its link is
        // left out), and the next try succeeds.
        retryable: err.is_retryable() || err.error_type() == Some("ROW_DOES_NOT_EXIST"),
        access_denied: is_access_denied(err),
        detail: FailureDetail {
            message: err.to_string(),
            http_status: err.status(),
            airtable_error_type: err.error_type().map(str::to_owned),
            airtable_error_message: err.message().map(str::to_owned),
        },
    }
}

/// Whether Airtable refused the base or the table rather than a record:
/// a token it does not accept (401), a token without access or a base or
/// table that is gone (403: Airtable answers both alike), a 404 that does
/// not name a record (an unknown route, base or table).
fn is_access_denied(err: &AirtableError) -> bool {
    match err.status() {
        Some(401 | 403) => true,
        Some(404) => !is_missing_record(err),
        _ => false,
    }
}

/// Whether Airtable says that `record` is not there: "Record not found"
/// (404 `MODEL_ID_NOT_FOUND`), or 422 `ROW_DOES_NOT_EXIST` naming that very
/// record (the same type names a linked record that is gone, which is not
/// this record's fault).
fn names_missing(err: &AirtableError, record: &str) -> bool {
    is_missing_record(err)
        || (err.error_type() == Some("ROW_DOES_NOT_EXIST")
            && err.message().is_some_and(|m| m.contains(record)))
}

/// Whether Airtable says the record is not there (deleted in the
/// meantime): `MODEL_ID_NOT_FOUND` ("Record not found"), not a missing
/// table or base.
fn is_missing_record(err: &AirtableError) -> bool {
    let names_other = err.message().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("table") || m.contains("base")
    });
    err.error_type() == Some("MODEL_ID_NOT_FOUND") && !names_other
}

fn answer_count<T>(expected: usize, ids: Vec<T>) -> Result<Vec<T>, SendError> {
    if ids.len() == expected {
        Ok(ids)
    } else {
        Err(SendError {
            rate_limited: false,
            retryable: true,
            access_denied: false,
            detail: FailureDetail {
                message: format!("Airtable answered {} records for {expected}", ids.len()),
                ..Default::default()
            },
        })
    }
}

impl RecordWriter for AirtableWriter {
    async fn upsert(
        &self,
        table: &str,
        merge_field: &str,
        records: Vec<Map<String, Value>>,
    ) -> Result<Vec<Upserted>, SendError> {
        let expected = records.len();
        let fields: Vec<Fields> = records.into_iter().map(Fields::from).collect();
        let outcome = self
            .client
            .table(&self.base_id, table)
            .upsert(&fields, &[merge_field], UpdateMode::Merge, OPTIONS)
            .await
            .map_err(|err| send_error(&err))?;
        answer_count(
            expected,
            outcome
                .records
                .into_iter()
                .map(|r| (r.id, r.created_time))
                .collect(),
        )
    }

    async fn update(
        &self,
        table: &str,
        records: Vec<(String, Map<String, Value>)>,
    ) -> Result<Vec<String>, SendError> {
        let expected = records.len();
        let ids: Vec<String> = records.iter().map(|(id, _)| id.clone()).collect();
        let updates: Vec<RecordUpdate> = records
            .into_iter()
            .map(|(id, fields)| RecordUpdate::new(id, Fields::from(fields)))
            .collect();
        match self
            .client
            .table(&self.base_id, table)
            .update(&updates, UpdateMode::Merge, OPTIONS)
            .await
        {
            Ok(records) => answer_count(expected, records.into_iter().map(|r| r.id).collect()),
            // The team deleted the record: a delete wins over a change, and
            // the inbound sync brings the delete to the row.
            Err(err) if ids.len() == 1 && names_missing(&err, &ids[0]) => Ok(ids),
            Err(err) => Err(send_error(&err)),
        }
    }

    async fn delete(&self, table: &str, record_ids: Vec<String>) -> Result<Vec<String>, SendError> {
        match self
            .client
            .table(&self.base_id, table)
            .delete(&record_ids)
            .await
        {
            Ok(ids) => answer_count(record_ids.len(), ids),
            // A record already gone (the team deleted it, or our earlier try
            // did) is what a delete wants.
            Err(err) if record_ids.len() == 1 && names_missing(&err, &record_ids[0]) => {
                Ok(record_ids)
            }
            Err(err) => Err(send_error(&err)),
        }
    }

    async fn read(
        &self,
        table: &str,
        record_ids: Vec<String>,
        fields: Vec<String>,
    ) -> Result<Vec<ReadRecord>, SendError> {
        let options = ListOptions::new()
            .filter(formula::record_id_in(&record_ids))
            .fields(fields);
        let records = self
            .client
            .table(&self.base_id, table)
            .list_all(options)
            .await
            .map_err(|err| send_error(&err))?;
        Ok(records
            .into_iter()
            .filter(|record| record_ids.contains(&record.id))
            .map(|record| (record.id, record.fields.into_map()))
            .collect())
    }

    async fn find(
        &self,
        table: &str,
        field: &str,
        values: Vec<String>,
    ) -> Result<Vec<(String, String)>, SendError> {
        let reference = if field.starts_with("fld") {
            formula::field_id(field)
        } else {
            formula::field(field)
        }
        .map_err(|err| send_error(&err))?;
        let filter = formula::or(
            values
                .iter()
                .map(|value| reference.clone().equals(formula::text(value))),
        );
        let options = ListOptions::new().filter(filter).fields([field]);
        let records = self
            .client
            .table(&self.base_id, table)
            .list_all(options)
            .await
            .map_err(|err| send_error(&err))?;
        let mut found = Vec::new();
        for record in records {
            // A cell that is not text cannot be one of ours; skip it rather
            // than fail the lookup.
            if let Ok(Some(value)) = record.fields.text(field) {
                if values.iter().any(|v| v == value) {
                    found.push((value.to_owned(), record.id));
                }
            }
        }
        Ok(found)
    }
}
