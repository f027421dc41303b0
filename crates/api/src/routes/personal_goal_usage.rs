//! `/api/personal-goal-usage`: work on a personal goal, per day.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};

use super::usage::{listed, record, usage_day, UsagePosted};
use super::UserParam;
use crate::auth::CurrentUser;
use crate::domain::Scope;
use crate::domain::{DateRange, PersonalGoalId};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{FromBody, FromQuery, Json, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::personal_goal_usage::{
    NewPersonalGoalUsage, PersonalGoalUsage, PersonalGoalUsageFilter,
};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/personal-goal-usage", list)
        .post("/api/personal-goal-usage", create)
}

/// Which usage a listing reads: of one goal, in a range of days.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct GoalUsageParams {
    /// The range's first day (with `to`).
    #[param(example = "2024-03-11")]
    pub from: Option<NaiveDate>,
    /// The range's last day (with `from`).
    #[param(example = "2024-03-17")]
    pub to: Option<NaiveDate>,
    /// Only this goal's usage.
    pub personal_goal_id: Option<PersonalGoalId>,
}

impl FromQuery for GoalUsageParams {
    fn from_query(query: &QueryParams) -> Result<GoalUsageParams> {
        Ok(GoalUsageParams {
            from: query.optional_date("from")?,
            to: query.optional_date("to")?,
            personal_goal_id: query.optional_id("personalGoalId")?,
        })
    }
}

impl GoalUsageParams {
    fn range(&self) -> Result<Option<DateRange>> {
        match (self.from, self.to) {
            (None, None) => Ok(None),
            (Some(from), Some(to)) => DateRange::new(from, to, i64::MAX)
                .map(Some)
                .map_err(|message| Error::invalid("to", message)),
            (Some(_), None) => Err(Error::invalid("to", "is required with from")),
            (None, Some(_)) => Err(Error::invalid("from", "is required with to")),
        }
    }
}

/// Work on a personal goal.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordPersonalGoalUsage {
    pub personal_goal_id: PersonalGoalId,
    /// Today in the user's time zone when absent; not after today, and at
    /// most a week back.
    #[schema(example = "2024-03-12")]
    pub used_on: Option<NaiveDate>,
}

impl FromBody for RecordPersonalGoalUsage {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(RecordPersonalGoalUsage {
            personal_goal_id: body.required_id("personalGoalId")?,
            used_on: body.optional_date("usedOn")?,
        })
    }
}

/// The user's personal goal usage, latest day first.
#[utoipa::path(get, path = "/api/personal-goal-usage", tag = "personal goal usage",
    params(GoalUsageParams, UserParam, PageRequest),
    responses(
        (status = 200, description = "A page of usage.", body = Page<PersonalGoalUsage>),
        (status = 404, description = "userId names another user and the caller is no admin, or personalGoalId no goal of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<PersonalGoalUsage>>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    let params = GoalUsageParams::from_query(&query)?;
    let range = params.range()?;
    let personal_goal = params.personal_goal_id;
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
    listed(
        &*state.stores().personal_goal_usage,
        subject,
        filter,
        &query,
    )
    .await
}

/// Record work on a personal goal for a day.
///
/// Today unless `usedOn` says otherwise; again for the same day returns the
/// same row.
#[utoipa::path(post, path = "/api/personal-goal-usage", tag = "personal goal usage",
    responses(
        (status = 201, description = "Recorded.", body = UsagePosted<PersonalGoalUsage>),
        (status = 200, description = "Already recorded that day.", body = UsagePosted<PersonalGoalUsage>),
        (status = 404, description = "No such goal of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<RecordPersonalGoalUsage>,
) -> Result<(StatusCode, Json<UsagePosted<PersonalGoalUsage>>)> {
    let new = NewPersonalGoalUsage {
        personal_goal_id: body.personal_goal_id,
        used_on: usage_day(&state, &user, body.used_on)?,
    };
    record(&state, &*state.stores().personal_goal_usage, user.id, new).await
}
