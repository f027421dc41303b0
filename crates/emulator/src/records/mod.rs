//! The records API: `/v0/{baseId}/{tableIdOrName}[/{recordId}]`.

pub(crate) mod filter;
pub(crate) mod links;
pub(crate) mod list;
pub(crate) mod params;
pub(crate) mod write;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::app::{App, Shared};
use crate::changes::{ChangeSet, Source};
use crate::error::parse_body;
use crate::error::ApiError;
use crate::model::Base;
use crate::render::{record_json, CellFormat, RenderOpts};
use crate::respond::ok;
use list::{list_page, ListContext};
use params::{parse_bool, parse_query, ListParams, Query};
use write::{FieldsInput, WriteOptions};

/// Most records one write request may carry.
pub(crate) const MAX_BATCH: usize = 10;

type Body = Result<Bytes, BytesRejection>;

fn list(app: &App, base_id: &str, table: &str, params: &ListParams) -> Result<Response, ApiError> {
    let state = app.state.read();
    let base = state.base(base_id).ok_or_else(ApiError::model_not_found)?;
    let t = base
        .table_index(table)
        .ok_or_else(ApiError::model_not_found)?;
    let ttl = i64::try_from(app.config.offset_ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let cx = ListContext {
        base,
        t,
        now: app.now(),
        offset_ttl_ms: ttl,
        iterators: &app.iterators,
    };
    let page = list_page(&cx, params)?;
    let listed = page["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str());
    app.counters.page_read(base_id, &base.tables[t].id, listed);
    Ok(ok(&page))
}

/// `GET /v0/{base}/{table}`: list records.
pub(crate) async fn list_get(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = ListParams::from_query(&parse_query(query.as_deref()))?;
    list(&app, &base, &table, &params)
}

/// `POST /v0/{base}/{table}/listRecords`: list records, options in the body.
pub(crate) async fn list_post(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let params = ListParams::from_body(&body, &parse_query(query.as_deref()))?;
    list(&app, &base, &table, &params)
}

/// Output options of get-record (query string).
fn record_output(query: &Query) -> Result<(bool, CellFormat), ApiError> {
    let mut p = ListParams::default();
    for (key, value) in query {
        match key.as_str() {
            "returnFieldsByFieldId" => p.by_field_id = parse_bool(value)?,
            "cellFormat" => {
                p.cell_format_string = match value.as_str() {
                    "json" => false,
                    "string" => true,
                    _ => return Err(ApiError::invalid_request()),
                }
            }
            "timeZone" => p.time_zone = Some(value.clone()),
            "userLocale" => p.user_locale = Some(value.clone()),
            _ => return Err(ApiError::invalid_request()),
        }
    }
    let format = if p.cell_format_string {
        match (&p.time_zone, &p.user_locale) {
            (Some(zone), Some(_)) => CellFormat::Text(
                crate::dates::parse_zone(zone).ok_or_else(ApiError::invalid_request)?,
            ),
            _ => {
                return Err(ApiError::invalid_request_because(
                    "Invalid request: cellFormat string requires timeZone and userLocale",
                ))
            }
        }
    } else {
        CellFormat::Json
    };
    Ok((p.by_field_id, format))
}

/// `GET /v0/{base}/{table}/{record}`: one record. The record is found in
/// any table of the base, as Airtable does.
pub(crate) async fn get_one(
    State(app): State<Shared>,
    Path((base_id, table, record_id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (by_field_id, format) = record_output(&parse_query(query.as_deref()))?;
    let state = app.state.read();
    let base = state.base(&base_id).ok_or_else(ApiError::model_not_found)?;
    base.table_index(&table)
        .ok_or_else(ApiError::model_not_found)?;
    let t = base
        .table_of_record(&record_id)
        .ok_or_else(ApiError::record_not_found)?;
    let table = &base.tables[t];
    let record = table
        .record(&record_id)
        .ok_or_else(ApiError::record_not_found)?;
    let opts = RenderOpts {
        by_field_id,
        format,
        ..RenderOpts::default()
    };
    Ok(ok(&record_json(base, table, record, &opts)))
}

/// Runs a write under the state lock and publishes its changes.
fn write<F>(app: &App, base_id: &str, table: &str, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut Base, usize, &mut ChangeSet, i64) -> Result<Value, ApiError>,
{
    let now = app.now();
    let (answer, ping) = {
        let mut state = app.state.write();
        let base = state
            .base_mut(base_id)
            .ok_or_else(ApiError::model_not_found)?;
        let t = base
            .table_index(table)
            .ok_or_else(ApiError::model_not_found)?;
        let mut changes = ChangeSet::new(Source::PublicApi, now);
        let answer = f(base, t, &mut changes, now)?;
        let ping = App::commit(base, &changes);
        (answer, ping)
    };
    app.after_write(ping);
    Ok(ok(&answer))
}

/// Renders records of table `t` by id.
pub(crate) fn render(base: &Base, t: usize, ids: &[String], by_field_id: bool) -> Vec<Value> {
    let table = &base.tables[t];
    let opts = RenderOpts {
        by_field_id,
        ..RenderOpts::default()
    };
    ids.iter()
        .filter_map(|id| table.record(id))
        .map(|r| record_json(base, table, r, &opts))
        .collect()
}

/// The common flags of write bodies; other keys are refused.
struct WriteBody {
    typecast: bool,
    by_field_id: bool,
    rest: Map<String, Value>,
}

fn write_body(body: Value, allowed: &[&str]) -> Result<WriteBody, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::invalid_request());
    };
    let flag = |v: Option<Value>| match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(ApiError::invalid_request()),
    };
    let typecast = flag(obj.remove("typecast"))?;
    let by_field_id = flag(obj.remove("returnFieldsByFieldId"))?;
    if obj.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_request());
    }
    Ok(WriteBody {
        typecast,
        by_field_id,
        rest: obj,
    })
}

fn too_many(verb: &str, n: usize) -> ApiError {
    ApiError::unprocessable(
        "INVALID_RECORDS",
        format!(
            "A maximum of {MAX_BATCH} records can be {verb} per request but you have provided {n}."
        ),
    )
}

fn batch<'a>(records: &'a Value, verb: &str) -> Result<&'a Vec<Value>, ApiError> {
    let list = records.as_array().ok_or_else(ApiError::invalid_request)?;
    if list.is_empty() {
        return Err(ApiError::unprocessable(
            "INVALID_RECORDS",
            "The request must contain at least one record",
        ));
    }
    if list.len() > MAX_BATCH {
        return Err(too_many(verb, list.len()));
    }
    Ok(list)
}

/// `{"fields": {...}}` of one record item, plus its id when `with_id`.
fn record_item(item: &Value, with_id: bool) -> Result<(Option<String>, FieldsInput), ApiError> {
    let obj = item.as_object().ok_or_else(ApiError::invalid_request)?;
    let allowed: &[&str] = if with_id {
        &["id", "fields"]
    } else {
        &["fields"]
    };
    if obj.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid_request());
    }
    let fields = match obj.get("fields") {
        Some(Value::Object(f)) => f.clone(),
        _ => {
            return Err(ApiError::invalid_request_because(
                "Invalid request: each record needs a fields object",
            ))
        }
    };
    let id = match obj.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid_request()),
    };
    Ok((id, fields))
}

/// `POST /v0/{base}/{table}`: create one record or a batch of 1 to 10.
pub(crate) async fn create(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = write_body(parse_body(body)?, &["records", "fields"])?;
    let (items, single) = match (body.rest.get("records"), body.rest.get("fields")) {
        (Some(records), None) => {
            let list = batch(records, "created")?;
            let items = list
                .iter()
                .map(|i| record_item(i, false).map(|(_, f)| f))
                .collect::<Result<Vec<_>, _>>()?;
            (items, false)
        }
        (None, Some(Value::Object(fields))) => (vec![fields.clone()], true),
        _ => return Err(ApiError::invalid_request()),
    };
    let opts = |now| WriteOptions {
        typecast: body.typecast,
        now,
    };
    write(&app, &base, &table, |base, t, changes, now| {
        let ids = write::create_records(base, t, &items, opts(now), changes)?;
        let mut records = render(base, t, &ids, body.by_field_id);
        if single {
            return Ok(records.pop().unwrap_or(Value::Null));
        }
        Ok(json!({ "records": records }))
    })
}

async fn update_many(
    app: Shared,
    base: String,
    table: String,
    body: Body,
    destructive: bool,
) -> Result<Response, ApiError> {
    let body = write_body(parse_body(body)?, &["records", "performUpsert"])?;
    let list = batch(body.rest.get("records").unwrap_or(&Value::Null), "updated")?;
    let upsert = match body.rest.get("performUpsert") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => {
            let names = p
                .get("fieldsToMergeOn")
                .and_then(Value::as_array)
                .ok_or_else(ApiError::invalid_request)?;
            let names: Option<Vec<String>> = names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect();
            Some(names.ok_or_else(ApiError::invalid_request)?)
        }
        Some(_) => return Err(ApiError::invalid_request()),
    };
    let items = list
        .iter()
        .map(|i| record_item(i, true))
        .collect::<Result<Vec<_>, _>>()?;
    let (typecast, by_field_id) = (body.typecast, body.by_field_id);
    write(&app, &base, &table, |base, t, changes, now| {
        let opts = WriteOptions { typecast, now };
        match &upsert {
            Some(merge_on) => {
                let outcome =
                    write::upsert_records(base, t, &items, merge_on, destructive, opts, changes)?;
                Ok(json!({
                    "createdRecords": outcome.created,
                    "updatedRecords": outcome.updated,
                    "records": render(base, t, &outcome.ids, by_field_id),
                }))
            }
            None => {
                let updates = items
                    .iter()
                    .map(|(id, f)| match id {
                        Some(id) => Ok((id.clone(), f.clone())),
                        None => Err(ApiError::invalid_request_because(
                            "Invalid request: each record needs an id",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                write::update_records(base, t, &updates, destructive, opts, changes)?;
                let ids: Vec<String> = updates.into_iter().map(|(id, _)| id).collect();
                Ok(json!({ "records": render(base, t, &ids, by_field_id) }))
            }
        }
    })
}

/// `PATCH /v0/{base}/{table}`: update (merge) or upsert a batch.
pub(crate) async fn update_many_merge(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    update_many(app, base, table, body, false).await
}

/// `PUT /v0/{base}/{table}`: update (replace) or upsert a batch.
pub(crate) async fn update_many_replace(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    update_many(app, base, table, body, true).await
}

async fn update_one(
    app: Shared,
    base: String,
    table: String,
    record_id: String,
    body: Body,
    destructive: bool,
) -> Result<Response, ApiError> {
    let body = write_body(parse_body(body)?, &["fields"])?;
    let fields = match body.rest.get("fields") {
        Some(Value::Object(f)) => f.clone(),
        _ => return Err(ApiError::invalid_request()),
    };
    let (typecast, by_field_id) = (body.typecast, body.by_field_id);
    write(&app, &base, &table, |base, t, changes, now| {
        if !base.tables[t].by_id.contains_key(&record_id) {
            return Err(ApiError::record_not_found());
        }
        let opts = WriteOptions { typecast, now };
        write::update_records(
            base,
            t,
            &[(record_id.clone(), fields)],
            destructive,
            opts,
            changes,
        )?;
        Ok(render(base, t, &[record_id], by_field_id)
            .pop()
            .unwrap_or(Value::Null))
    })
}

/// `PATCH /v0/{base}/{table}/{record}`: update one record (merge).
pub(crate) async fn update_one_merge(
    State(app): State<Shared>,
    Path((base, table, record)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    update_one(app, base, table, record, body, false).await
}

/// `PUT /v0/{base}/{table}/{record}`: update one record (replace).
pub(crate) async fn update_one_replace(
    State(app): State<Shared>,
    Path((base, table, record)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    update_one(app, base, table, record, body, true).await
}

/// `DELETE /v0/{base}/{table}?records[]=…`: delete 1 to 10 records.
pub(crate) async fn delete_many(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut ids = Vec::new();
    for (key, value) in parse_query(query.as_deref()) {
        match key.as_str() {
            "records[]" | "records" => ids.push(value),
            _ => return Err(ApiError::invalid_request()),
        }
    }
    if ids.is_empty() {
        return Err(ApiError::unprocessable(
            "INVALID_RECORDS",
            "The request must name at least one record",
        ));
    }
    if ids.len() > MAX_BATCH {
        return Err(too_many("deleted", ids.len()));
    }
    write(&app, &base, &table, |base, t, changes, now| {
        write::delete_records(base, t, &ids, now, changes)?;
        let records: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "deleted": true}))
            .collect();
        Ok(json!({ "records": records }))
    })
}

/// `DELETE /v0/{base}/{table}/{record}`: delete one record.
pub(crate) async fn delete_one(
    State(app): State<Shared>,
    Path((base, table, record_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    write(&app, &base, &table, |base, t, changes, now| {
        write::delete_records(base, t, std::slice::from_ref(&record_id), now, changes)?;
        Ok(json!({"id": record_id, "deleted": true}))
    })
}
