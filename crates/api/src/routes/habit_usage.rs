//! `/api/habit-usage`: habits ticked off per day.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tracing::instrument;

use super::{posted, usage_day, UsagePosted};
use crate::auth::CurrentUser;
use crate::domain::{DateRange, HabitUsageId, UserId};
use crate::error::{Error, Result};
use crate::extract::{path_id, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::habit_usage::HabitUsage;

/// Longest range one listing may ask for.
const MAX_RANGE_DAYS: i64 = 366;

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/habit-usage", list)
        .post("/api/habit-usage", create)
        .delete("/api/habit-usage/{id}", delete)
}

/// `?date=` for one day, or `?from=&to=` for a range.
pub(crate) fn date_range(query: &QueryParams) -> Result<DateRange> {
    let date = query.optional_date("date")?;
    let from = query.optional_date("from")?;
    let to = query.optional_date("to")?;
    match (date, from, to) {
        (Some(day), None, None) => {
            DateRange::new(day, day, 1).map_err(|message| Error::invalid("date", message))
        }
        (Some(_), _, _) => Err(Error::invalid("date", "give either date or from and to")),
        (None, Some(from), Some(to)) => DateRange::new(from, to, MAX_RANGE_DAYS)
            .map_err(|message| Error::invalid("to", message)),
        (None, None, _) => Err(Error::invalid("from", "give date, or from and to")),
        (None, Some(_), None) => Err(Error::invalid("to", "is required with from")),
    }
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<HabitUsage>>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    let range = date_range(&query)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .habit_usage
            .list(subject, range, &page)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<UsagePosted<HabitUsage>>)> {
    let method = body.required_id("methodId")?;
    let used_on = body.optional_date("usedOn")?;
    body.finish()?;
    let used_on = usage_day(&state, &user, used_on)?;
    let created = state
        .stores()
        .habit_usage
        .create(user.id, method, used_on, state.now())
        .await?;
    Ok(posted(created))
}

#[instrument(skip_all, fields(user_id = %user.id, habit_usage_id = %id))]
async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: HabitUsageId = path_id("id", &id)?;
    state
        .stores()
        .habit_usage
        .delete(user.id, id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
