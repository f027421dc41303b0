//! The metadata API: `/v0/meta/...` (bases, schema, tables, fields).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value};

use crate::app::{App, Shared};
use crate::changes::{ChangeSet, SchemaChange, Source};
use crate::error::parse_body;
use crate::error::ApiError;
use crate::ids;
use crate::model::Base;
use crate::records::params::parse_query;
use crate::respond::ok;
use crate::schema::{self, FieldSpec, TableSpec};

type Body = Result<Bytes, BytesRejection>;

/// Bases per page of list-bases.
const BASES_PER_PAGE: usize = 1000;

/// `GET /v0/meta/whoami`.
pub(crate) async fn whoami() -> Response {
    ok(&json!({
        "id": "usrEmulatorApiUse",
        "scopes": ["data.records:read", "data.records:write", "schema.bases:read", "schema.bases:write", "webhook:manage"],
    }))
}

/// `GET /v0/meta/bases[?offset=…]`.
pub(crate) async fn list_bases(
    State(app): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut start_at: Option<String> = None;
    for (key, value) in parse_query(query.as_deref()) {
        match key.as_str() {
            "offset" => {
                let (_, app_id) = value
                    .split_once('/')
                    .ok_or_else(ApiError::invalid_request)?;
                start_at = Some(app_id.to_owned());
            }
            _ => return Err(ApiError::invalid_request()),
        }
    }
    let state = app.state.read();
    let skip = match &start_at {
        Some(id) => state
            .bases
            .iter()
            .position(|b| b.id == *id)
            .ok_or_else(ApiError::invalid_request)?,
        None => 0,
    };
    let page: Vec<Value> = state
        .bases
        .iter()
        .skip(skip)
        .take(BASES_PER_PAGE)
        .map(|b| json!({"id": b.id, "name": b.name, "permissionLevel": "create"}))
        .collect();
    let mut answer = json!({ "bases": page });
    if let Some(next) = state.bases.get(skip + BASES_PER_PAGE) {
        answer["offset"] = json!(format!("{}/{}", ids::new_id(ids::ITERATOR), next.id));
    }
    Ok(ok(&answer))
}

/// Runs a schema change under the lock and publishes it.
fn schema_write<F>(app: &App, base_id: &str, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut Base, &mut ChangeSet) -> Result<Value, ApiError>,
{
    let now = app.now();
    let (answer, ping) = {
        let mut state = app.state.write();
        let base = state
            .base_mut(base_id)
            .ok_or_else(ApiError::model_not_found)?;
        let mut changes = ChangeSet::new(Source::PublicApi, now);
        let answer = f(base, &mut changes)?;
        (answer, App::commit(base, &changes))
    };
    app.after_write(ping);
    Ok(ok(&answer))
}

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body)
        .map_err(|e| ApiError::invalid_request_because(format!("Invalid request: {e}")))
}

/// `POST /v0/meta/bases`: create a base with its tables.
pub(crate) async fn create_base(
    State(app): State<Shared>,
    body: Body,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct CreateBase {
        name: String,
        workspace_id: String,
        tables: Vec<TableSpec>,
    }
    let spec: CreateBase = parse(parse_body(body)?)?;
    if spec.tables.is_empty() || spec.workspace_id.is_empty() {
        return Err(ApiError::invalid_request_because(
            "A base needs a workspaceId and at least one table",
        ));
    }
    let id = ids::new_id(ids::BASE);
    let mut base = Base::new(id.clone(), spec.name);
    let mut changes = ChangeSet::new(Source::PublicApi, app.now());
    for table in &spec.tables {
        schema::create_table(&mut base, table, &mut changes)?;
    }
    let tables: Vec<Value> = base
        .tables
        .iter()
        .map(|t| schema::table_json(t, false))
        .collect();
    app.state.write().bases.push(base);
    app.after_write(false);
    Ok(ok(&json!({"id": id, "tables": tables})))
}

/// `GET /v0/meta/bases/{base}/tables`: the base schema.
pub(crate) async fn base_schema(
    State(app): State<Shared>,
    Path(base_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut visible = false;
    for (key, value) in parse_query(query.as_deref()) {
        match (key.as_str(), value.as_str()) {
            ("include[]" | "include", "visibleFieldIds") => visible = true,
            _ => return Err(ApiError::invalid_request()),
        }
    }
    let state = app.state.read();
    let base = state.base(&base_id).ok_or_else(ApiError::model_not_found)?;
    let tables: Vec<Value> = base
        .tables
        .iter()
        .map(|t| schema::table_json(t, visible))
        .collect();
    Ok(ok(&json!({ "tables": tables })))
}

/// `POST /v0/meta/bases/{base}/tables`: create a table.
pub(crate) async fn create_table(
    State(app): State<Shared>,
    Path(base_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: TableSpec = parse(parse_body(body)?)?;
    schema_write(&app, &base_id, |base, changes| {
        let t = schema::create_table(base, &spec, changes)?;
        Ok(schema::table_json(&base.tables[t], false))
    })
}

/// `{"name"?, "description"?}` of an update; at least one is required.
fn name_and_description(body: Value) -> Result<(Option<String>, Option<Option<String>>), ApiError> {
    let obj = body.as_object().ok_or_else(ApiError::invalid_request)?;
    if obj.is_empty() || obj.keys().any(|k| k != "name" && k != "description") {
        return Err(ApiError::invalid_request());
    }
    let name = match obj.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid_request()),
    };
    let description = match obj.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => return Err(ApiError::invalid_request()),
    };
    Ok((name, description))
}

/// `PATCH /v0/meta/bases/{base}/tables/{table}`: rename or re-describe.
pub(crate) async fn update_table(
    State(app): State<Shared>,
    Path((base_id, table)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, description) = name_and_description(parse_body(body)?)?;
    schema_write(&app, &base_id, |base, changes| {
        let t = base
            .table_index(&table)
            .ok_or_else(ApiError::model_not_found)?;
        if let Some(name) = &name {
            let clash = base
                .tables
                .iter()
                .enumerate()
                .any(|(i, x)| i != t && x.name.eq_ignore_ascii_case(name.trim()));
            if name.trim().is_empty() || clash {
                return Err(ApiError::unprocessable(
                    "DUPLICATE_TABLE_NAME",
                    format!("A table named \"{name}\" already exists or the name is empty"),
                ));
            }
        }
        let tbl = &mut base.tables[t];
        changes.schema.push(SchemaChange::TableMetadataChanged {
            table_id: tbl.id.clone(),
            previous_name: tbl.name.clone(),
            previous_description: tbl.description.clone(),
        });
        if let Some(name) = name {
            tbl.name = name.trim().to_owned();
        }
        if let Some(description) = description {
            tbl.description = description;
        }
        Ok(schema::table_json(tbl, false))
    })
}

/// `POST /v0/meta/bases/{base}/tables/{table}/fields`: create a field.
pub(crate) async fn create_field(
    State(app): State<Shared>,
    Path((base_id, table)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: FieldSpec = parse(parse_body(body)?)?;
    schema_write(&app, &base_id, |base, changes| {
        let t = base
            .table_index(&table)
            .ok_or_else(ApiError::model_not_found)?;
        let f = schema::create_field(base, t, &spec, changes)?;
        Ok(schema::field_json(&base.tables[t].fields[f]))
    })
}

/// `PATCH /v0/meta/bases/{base}/tables/{table}/fields/{field}`.
pub(crate) async fn update_field(
    State(app): State<Shared>,
    Path((base_id, table, field)): Path<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, description) = name_and_description(parse_body(body)?)?;
    schema_write(&app, &base_id, |base, changes| {
        let t = base
            .table_index(&table)
            .ok_or_else(ApiError::model_not_found)?;
        let f = base.tables[t]
            .fields
            .iter()
            .position(|x| x.id == field)
            .ok_or_else(ApiError::model_not_found)?;
        schema::update_field(base, t, f, name.as_deref(), description, changes)?;
        Ok(schema::field_json(&base.tables[t].fields[f]))
    })
}
