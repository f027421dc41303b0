//! `/api/overtuiging-usage`: overtuigingen worked through, with the streak
//! bonus and badges they earn.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use tracing::instrument;
use utoipa::ToSchema;

use super::usage::{listed, record, usage_day, UsagePosted};
use super::UserParam;
use crate::auth::CurrentUser;
use crate::domain::{OvertuigingId, ProgramId};
use crate::error::{ErrorBody, Result};
use crate::extract::{FromBody, FromQuery, Json, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::overtuiging_usage::{NewOvertuigingUsage, OvertuigingUsage};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/overtuiging-usage", list)
        .post("/api/overtuiging-usage", create)
}

/// An overtuiging worked through.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordOvertuigingUsage {
    pub overtuiging_id: OvertuigingId,
    /// The program it was worked through for.
    pub program_id: Option<ProgramId>,
    /// Today in the user's time zone when absent; not after today, and at
    /// most a week back.
    #[schema(example = "2024-03-12")]
    pub used_on: Option<NaiveDate>,
}

impl FromBody for RecordOvertuigingUsage {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(RecordOvertuigingUsage {
            overtuiging_id: body.required_id("overtuigingId")?,
            program_id: body.optional_id("programId")?,
            used_on: body.optional_date("usedOn")?,
        })
    }
}

/// The user's overtuiging usage, latest day first.
#[utoipa::path(get, path = "/api/overtuiging-usage", tag = "overtuiging usage",
    params(UserParam, PageRequest),
    responses(
        (status = 200, description = "A page of usage.", body = Page<OvertuigingUsage>),
        (status = 404, description = "userId names another user and the caller is no admin.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<OvertuigingUsage>>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    listed(&*state.stores().overtuiging_usage, subject, (), &query).await
}

/// Record an overtuiging worked through.
///
/// With its streak bonus and badges, in one transaction; a repeat returns
/// the first row and awards nothing.
#[utoipa::path(post, path = "/api/overtuiging-usage", tag = "overtuiging usage",
    responses(
        (status = 201, description = "Recorded.", body = UsagePosted<OvertuigingUsage>),
        (status = 200, description = "Recorded before.", body = UsagePosted<OvertuigingUsage>),
        (status = 404, description = "No such overtuiging, or the program is not the user's.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<RecordOvertuigingUsage>,
) -> Result<(StatusCode, Json<UsagePosted<OvertuigingUsage>>)> {
    let new = NewOvertuigingUsage {
        overtuiging_id: body.overtuiging_id,
        program_id: body.program_id,
        used_on: usage_day(&state, &user, body.used_on)?,
    };
    let (status, Json(posted)) =
        record(&state, &*state.stores().overtuiging_usage, user.id, new).await?;
    if status == StatusCode::CREATED {
        tracing::info!(overtuiging_usage_id = %posted.usage.id, streak = posted.award.streak, bonus = posted.award.bonus_points_awarded, "overtuiging usage recorded");
    }
    Ok((status, Json(posted)))
}
