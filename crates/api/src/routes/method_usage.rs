//! `/api/method-usage`: methods done, with or without a program.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};

use super::usage::{record, usage_day, UsagePosted};
use super::Items;
use crate::auth::CurrentUser;
use crate::domain::{MethodId, MethodUsageId, Notes, ProgramId, ProgramRef, ScheduleDayId};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{path_id, FromBody, FromQuery, Json, JsonObject, QueryParams};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::method_usage::{IdempotencyKey, MethodUsage, MethodUsagePatch, NewMethodUsage};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .post("/api/method-usage", create)
        .patch("/api/method-usage/{id}", update)
        .get("/api/method-usage/by-program", by_program)
}

/// The `Idempotency-Key` header with a fingerprint of the body: a repeat
/// with the same key and body gets the first answer; the same key with
/// another body is refused.
fn idempotency_key(
    headers: &HeaderMap,
    body: &serde_json::Value,
) -> Result<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .ok_or_else(|| Error::invalid("Idempotency-Key", "must be 1 to 200 visible characters"))?;
    let digest = Sha256::digest(body.to_string().as_bytes());
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
    }))
}

/// A method done.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordMethodUsage {
    pub method_id: MethodId,
    /// The program it was done for.
    pub program_id: Option<ProgramId>,
    /// The schedule day it was done for: a day of `programId`, on `usedOn`.
    pub schedule_day_id: Option<ScheduleDayId>,
    /// Today in the user's time zone when absent; not after today, and at
    /// most a week back.
    #[schema(example = "2024-03-12")]
    pub used_on: Option<NaiveDate>,
    pub remark: Option<Notes>,
    /// The body as sent, which a repeat with the same Idempotency-Key must
    /// match.
    #[serde(skip)]
    pub fingerprint: serde_json::Value,
}

impl FromBody for RecordMethodUsage {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(RecordMethodUsage {
            fingerprint: body.raw().clone(),
            method_id: body.required_id("methodId")?,
            program_id: body.optional_id("programId")?,
            schedule_day_id: body.optional_id("scheduleDayId")?,
            used_on: body.optional_date("usedOn")?,
            remark: body.optional("remark", Notes::parse)?,
        })
    }
}

/// A change to a method usage: the fields given are changed.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMethodUsage {
    #[schema(example = "2024-03-12")]
    pub used_on: Option<NaiveDate>,
    pub remark: Option<Notes>,
}

impl FromBody for UpdateMethodUsage {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(UpdateMethodUsage {
            used_on: body.optional_date("usedOn")?,
            remark: body.optional("remark", Notes::parse)?,
        })
    }
}

/// `?programId=`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ProgramParam {
    /// The program: its UUID or its Airtable record id.
    #[param(value_type = String, example = "recABCDEFGHIJ1234")]
    pub program_id: ProgramRef,
}

impl FromQuery for ProgramParam {
    fn from_query(query: &QueryParams) -> Result<ProgramParam> {
        Ok(ProgramParam {
            program_id: query.required("programId", ProgramRef::parse)?,
        })
    }
}

/// Record a method done.
///
/// An Idempotency-Key header makes a repeat return the first answer.
#[utoipa::path(post, path = "/api/method-usage", tag = "method usage",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 200,
        description = "Any 1 to 200 visible characters; a repeat with the same key and body gets the first answer.")),
    responses(
        (status = 201, description = "Recorded.", body = UsagePosted<MethodUsage>),
        (status = 200, description = "A repeat of an earlier request with the same Idempotency-Key.", body = UsagePosted<MethodUsage>),
        (status = 404, description = "The method, program or schedule day does not exist or is not the user's.", body = ErrorBody),
        (status = 422, description = "The schedule day is of another program or another date, or the Idempotency-Key was used for another body.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Json(body): Json<RecordMethodUsage>,
) -> Result<(StatusCode, Json<UsagePosted<MethodUsage>>)> {
    let idempotency = idempotency_key(&headers, &body.fingerprint)?;
    let new = NewMethodUsage {
        method_id: body.method_id,
        program_id: body.program_id,
        schedule_day_id: body.schedule_day_id,
        used_on: usage_day(&state, &user, body.used_on)?,
        remark: body.remark.unwrap_or_default(),
        idempotency,
    };
    record(&state, &*state.stores().method_usage, user.id, new).await
}

/// Change a method usage's day or remark.
#[utoipa::path(patch, path = "/api/method-usage/{id}", tag = "method usage",
    params(("id" = MethodUsageId, Path)),
    responses(
        (status = 200, description = "Changed.", body = MethodUsage),
        (status = 404, description = "No such usage of the user.", body = ErrorBody),
        (status = 422, description = "The usage is linked to a schedule day of another date.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, method_usage_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateMethodUsage>,
) -> Result<Json<MethodUsage>> {
    let id: MethodUsageId = path_id("id", &id)?;
    let patch = MethodUsagePatch {
        used_on: body
            .used_on
            .map(|day| usage_day(&state, &user, Some(day)))
            .transpose()?,
        remark: body.remark,
    };
    Ok(Json(
        state
            .stores()
            .method_usage
            .update(user.id, id, patch, state.now())
            .await?,
    ))
}

/// The latest usage of each method recorded with a program.
#[utoipa::path(get, path = "/api/method-usage/by-program", tag = "method usage",
    params(ProgramParam),
    responses(
        (status = 200, description = "One usage per method, latest day first.", body = Items<MethodUsage>),
        (status = 404, description = "No such program of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn by_program(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Items<MethodUsage>>> {
    let program = ProgramParam::from_query(&query)?.program_id;
    let items = state
        .stores()
        .method_usage
        .latest_by_program(user.read_scope(), program)
        .await?;
    Ok(Json(Items { items }))
}
