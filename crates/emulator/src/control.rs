//! Control endpoints under `/_emulator/` (only with `--control`, except
//! `/_emulator/stats`): faults, clock, reset, UI edits, dumps, schema.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::Shared;
use crate::direct::ClientEdit;
use crate::error::ApiError;
use crate::faults::FaultBurst;
use crate::limits::RateLimits;
use crate::model::SortSpec;
use crate::respond::ok;
use crate::schema::{FieldSpec, TableSpec};

/// The control routes.
pub(crate) fn router() -> Router<Shared> {
    Router::new()
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/stats/reset", post(reset_stats))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/faults", post(inject_faults))
        .route("/_emulator/settings", put(settings))
        .route("/_emulator/bases", post(create_base))
        .route("/_emulator/bases/{base}/tables", post(create_table))
        .route(
            "/_emulator/bases/{base}/tables/{table}/fields",
            post(create_field),
        )
        .route(
            "/_emulator/bases/{base}/tables/{table}/fields/{field}",
            delete(delete_field),
        )
        .route(
            "/_emulator/bases/{base}/tables/{table}/views",
            post(create_view),
        )
        .route("/_emulator/bases/{base}/tables/{table}/edit", post(edit))
        .route("/_emulator/bases/{base}/tables/{table}/records", get(dump))
}

fn bad_json(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::invalid_request_because(format!("Invalid request: {e}"))
}

type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

async fn stats(State(app): State<Shared>) -> Response {
    ok(&json!(app.counters.snapshot()))
}

async fn reset_stats(State(app): State<Shared>) -> Response {
    app.counters.reset();
    ok(&json!({}))
}

async fn reset(State(app): State<Shared>) -> Response {
    app.reset();
    ok(&json!({}))
}

async fn clock(State(app): State<Shared>) -> Response {
    ok(&json!({"now": crate::clock::format_ms(app.now())}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    ms: u64,
}

async fn advance_clock(
    State(app): State<Shared>,
    body: Body<Advance>,
) -> Result<Response, ApiError> {
    let Json(by) = body.map_err(bad_json)?;
    let seconds = Duration::try_from_secs_f64(by.seconds)
        .map_err(|_| ApiError::invalid_request_because("seconds must be a positive number"))?;
    let by = seconds
        .checked_add(Duration::from_millis(by.ms))
        .ok_or_else(|| ApiError::invalid_request_because("the advance is too large"))?;
    app.clock.advance(by);
    app.pings.notify_one();
    Ok(ok(&json!({"now": crate::clock::format_ms(app.now())})))
}

async fn inject_faults(
    State(app): State<Shared>,
    body: Body<FaultBurst>,
) -> Result<Response, ApiError> {
    let Json(burst) = body.map_err(bad_json)?;
    app.faults.inject(burst);
    Ok(ok(&json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    fault_rate: Option<f64>,
    #[serde(default, with = "serde_latency")]
    latency_ms: Option<Option<(u64, u64)>>,
    rate_limit_per_base: Option<u32>,
    rate_limit_per_token: Option<u32>,
    penalty_secs: Option<u64>,
}

/// `latencyMs`: absent (unchanged), `null` (off) or `[min, max]`.
mod serde_latency {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<(u64, u64)>>, D::Error> {
        Ok(Some(Option::<(u64, u64)>::deserialize(d)?))
    }
}

async fn settings(State(app): State<Shared>, body: Body<Settings>) -> Result<Response, ApiError> {
    let Json(s) = body.map_err(bad_json)?;
    if let Some(rate) = s.fault_rate {
        app.faults.set_rate(rate);
    }
    if let Some(latency) = s.latency_ms {
        app.faults
            .set_latency(latency.map(|(a, b)| a.min(b)..=a.max(b)));
    }
    let current = app.limiter.limits();
    app.limiter.set_limits(RateLimits {
        per_base: s.rate_limit_per_base.unwrap_or(current.per_base),
        per_token: s.rate_limit_per_token.unwrap_or(current.per_token),
        penalty_secs: s.penalty_secs.unwrap_or(current.penalty_secs),
    });
    Ok(ok(&json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBase {
    id: Option<String>,
    name: Option<String>,
}

async fn create_base(State(app): State<Shared>, body: Body<NewBase>) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(bad_json)?;
    let name = b
        .name
        .clone()
        .or_else(|| b.id.clone())
        .unwrap_or_else(|| "Base".into());
    let id = app.add_base(b.id.as_deref(), &name)?;
    Ok(ok(&json!({"id": id})))
}

async fn create_table(
    State(app): State<Shared>,
    Path(base): Path<String>,
    body: Body<TableSpec>,
) -> Result<Response, ApiError> {
    let Json(spec) = body.map_err(bad_json)?;
    let info = app.add_table(&base, &spec)?;
    Ok(ok(&json!(info)))
}

async fn create_field(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body<FieldSpec>,
) -> Result<Response, ApiError> {
    let Json(spec) = body.map_err(bad_json)?;
    Ok(ok(&json!(app.add_field(&base, &table, &spec)?)))
}

async fn delete_field(
    State(app): State<Shared>,
    Path((base, table, field)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    app.remove_field(&base, &table, &field)?;
    Ok(ok(&json!({"id": field, "deleted": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewView {
    name: String,
    filter_by_formula: Option<String>,
    #[serde(default)]
    sort: Vec<Value>,
}

async fn create_view(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body<NewView>,
) -> Result<Response, ApiError> {
    let Json(v) = body.map_err(bad_json)?;
    let sort = v
        .sort
        .iter()
        .map(|s| {
            let field = s
                .get("field")
                .and_then(Value::as_str)
                .ok_or_else(ApiError::invalid_request)?;
            let descending = s.get("direction").and_then(Value::as_str) == Some("desc");
            Ok(SortSpec {
                field: field.to_owned(),
                descending,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let id = app.add_view(&base, &table, &v.name, v.filter_by_formula, sort)?;
    Ok(ok(&json!({"id": id})))
}

async fn edit(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
    body: Body<ClientEdit>,
) -> Result<Response, ApiError> {
    let Json(e) = body.map_err(bad_json)?;
    let outcome = app.client_edit(&base, &table, &e)?;
    let touched: Vec<String> = outcome
        .created
        .iter()
        .chain(&outcome.updated)
        .cloned()
        .collect();
    let records = app.render(&base, &table, &touched)?;
    Ok(ok(
        &json!({"created": outcome.created, "updated": outcome.updated, "deleted": outcome.deleted, "records": records}),
    ))
}

async fn dump(
    State(app): State<Shared>,
    Path((base, table)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(ok(&json!({"records": app.dump(&base, &table)?})))
}
