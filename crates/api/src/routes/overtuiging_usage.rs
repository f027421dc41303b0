//! `/api/overtuiging-usage`: overtuigingen worked through, with the streak
//! bonus and badges they earn.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tracing::instrument;

use super::{posted, usage_day, UsagePosted};
use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::Result;
use crate::extract::{JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::overtuiging_usage::{NewOvertuigingUsage, OvertuigingUsage};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/overtuiging-usage", list)
        .post("/api/overtuiging-usage", create)
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<OvertuigingUsage>>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .overtuiging_usage
            .list(subject, &page)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<UsagePosted<OvertuigingUsage>>)> {
    let overtuiging_id = body.required_id("overtuigingId")?;
    let program_id = body.optional_id("programId")?;
    let used_on = body.optional_date("usedOn")?;
    body.finish()?;
    let new = NewOvertuigingUsage {
        overtuiging_id,
        program_id,
        used_on: usage_day(&state, &user, used_on)?,
    };
    let created = state
        .stores()
        .overtuiging_usage
        .create(user.id, new, state.now())
        .await?;
    if created.created {
        let (usage, award) = &created.value;
        tracing::info!(overtuiging_usage_id = %usage.id, streak = award.streak, bonus = award.bonus_points_awarded, "overtuiging usage recorded");
    }
    Ok(posted(created))
}
