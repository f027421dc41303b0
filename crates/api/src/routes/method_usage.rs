//! `/api/method-usage`: methods done, with or without a program.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::{posted, usage_day, Items, UsagePosted};
use crate::auth::CurrentUser;
use crate::domain::{MethodUsageId, Notes, ProgramRef};
use crate::error::{Error, Result};
use crate::extract::{path_id, JsonObject, QueryParams};
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

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<UsagePosted<MethodUsage>>)> {
    let idempotency = idempotency_key(&headers, body.raw())?;
    let method_id = body.required_id("methodId")?;
    let program_id = body.optional_id("programId")?;
    let schedule_day_id = body.optional_id("scheduleDayId")?;
    let used_on = body.optional_date("usedOn")?;
    let remark = body.optional("remark", Notes::parse)?.unwrap_or_default();
    body.finish()?;
    let new = NewMethodUsage {
        method_id,
        program_id,
        schedule_day_id,
        used_on: usage_day(&state, &user, used_on)?,
        remark,
        idempotency,
    };
    let created = state
        .stores()
        .method_usage
        .create(user.id, new, state.now())
        .await?;
    Ok(posted(created))
}

#[instrument(skip_all, fields(user_id = %user.id, method_usage_id = %id))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> Result<Json<MethodUsage>> {
    let id: MethodUsageId = path_id("id", &id)?;
    let used_on = body.optional_date("usedOn")?;
    let remark = body.optional("remark", Notes::parse)?;
    body.finish()?;
    let patch = MethodUsagePatch {
        used_on: used_on
            .map(|day| usage_day(&state, &user, Some(day)))
            .transpose()?,
        remark,
    };
    Ok(Json(
        state
            .stores()
            .method_usage
            .update(user.id, id, patch, state.now())
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn by_program(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Items<MethodUsage>>> {
    let program = query.required("programId", ProgramRef::parse)?;
    let items = state
        .stores()
        .method_usage
        .latest_by_program(user.read_scope(), program)
        .await?;
    Ok(Json(Items { items }))
}
