//! `/api/personal-goal-usage`: work on a personal goal, per day.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tracing::instrument;

use super::{posted, usage_day, UsagePosted};
use crate::auth::{CurrentUser, Scope};
use crate::domain::{DateRange, UserId};
use crate::error::{Error, Result};
use crate::extract::{JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::personal_goal_usage::{PersonalGoalUsage, PersonalGoalUsageFilter};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/personal-goal-usage", list)
        .post("/api/personal-goal-usage", create)
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<PersonalGoalUsage>>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    let from = query.optional_date("from")?;
    let to = query.optional_date("to")?;
    let range = match (from, to) {
        (None, None) => None,
        (Some(from), Some(to)) => Some(
            DateRange::new(from, to, i64::MAX).map_err(|message| Error::invalid("to", message))?,
        ),
        (Some(_), None) => return Err(Error::invalid("to", "is required with from")),
        (None, Some(_)) => return Err(Error::invalid("from", "is required with to")),
    };
    let personal_goal = query.optional_id("personalGoalId")?;
    if let Some(goal) = personal_goal {
        // Another user's goal is not found, as everywhere (docs/api.md):
        // an empty list would confirm nothing, but would hide the mistake.
        state
            .stores()
            .personal_goals
            .get(Scope::Owner(subject), goal)
            .await
            .map_err(|err| match err {
                Error::NotFound { .. } => Error::not_found_in("personal goal", "personalGoalId"),
                other => other,
            })?;
    }
    let filter = PersonalGoalUsageFilter {
        personal_goal,
        range,
    };
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .personal_goal_usage
            .list(subject, filter, &page)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<UsagePosted<PersonalGoalUsage>>)> {
    let goal = body.required_id("personalGoalId")?;
    let used_on = body.optional_date("usedOn")?;
    body.finish()?;
    let used_on = usage_day(&state, &user, used_on)?;
    let created = state
        .stores()
        .personal_goal_usage
        .create(user.id, goal, used_on, state.now())
        .await?;
    Ok(posted(created))
}
