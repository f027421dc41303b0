//! `/api/habit-usage`: habits ticked off per day.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};

use super::usage::{listed, record, usage_day, UsagePosted};
use super::UserParam;
use crate::auth::CurrentUser;
use crate::domain::{DateRange, HabitUsageId, MethodId};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{path_id, FromBody, FromQuery, Json, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::habit_usage::{HabitUsage, NewHabitUsage};

/// Longest range one listing may ask for.
const MAX_RANGE_DAYS: i64 = 366;

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/habit-usage", list)
        .post("/api/habit-usage", create)
        .delete("/api/habit-usage/{id}", delete)
}

/// `?date=` for one day, or `?from=&to=` for a range.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysParams {
    /// One day.
    #[param(example = "2024-03-12")]
    pub date: Option<NaiveDate>,
    /// The range's first day (with `to`).
    #[param(example = "2024-03-11")]
    pub from: Option<NaiveDate>,
    /// The range's last day (with `from`); at most 366 days after `from`.
    #[param(example = "2024-03-17")]
    pub to: Option<NaiveDate>,
}

impl FromQuery for DaysParams {
    fn from_query(query: &QueryParams) -> Result<DaysParams> {
        Ok(DaysParams {
            date: query.optional_date("date")?,
            from: query.optional_date("from")?,
            to: query.optional_date("to")?,
        })
    }
}

impl DaysParams {
    /// The days asked for: `date` alone, or `from` and `to`.
    fn range(&self) -> Result<DateRange> {
        match (self.date, self.from, self.to) {
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
}

/// A habit ticked off.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordHabitUsage {
    /// A method that is a habit.
    pub method_id: MethodId,
    /// Today in the user's time zone when absent; not after today, and at
    /// most a week back.
    #[schema(example = "2024-03-12")]
    pub used_on: Option<NaiveDate>,
}

impl FromBody for RecordHabitUsage {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(RecordHabitUsage {
            method_id: body.required_id("methodId")?,
            used_on: body.optional_date("usedOn")?,
        })
    }
}

/// Habits ticked off on a day or in a range.
///
/// One day with `date`, or a range with `from` and `to` (at most 366 days).
#[utoipa::path(get, path = "/api/habit-usage", tag = "habit usage",
    params(DaysParams, UserParam, PageRequest),
    responses(
        (status = 200, description = "A page of habit usage, by day.", body = Page<HabitUsage>),
        (status = 404, description = "userId names another user and the caller is no admin.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<HabitUsage>>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    let range = DaysParams::from_query(&query)?.range()?;
    listed(&*state.stores().habit_usage, subject, range, &query).await
}

/// Tick a habit off for a day.
///
/// Today unless `usedOn` says otherwise; ticking it again returns the same
/// row.
#[utoipa::path(post, path = "/api/habit-usage", tag = "habit usage",
    responses(
        (status = 201, description = "Recorded.", body = UsagePosted<HabitUsage>),
        (status = 200, description = "Already ticked off that day.", body = UsagePosted<HabitUsage>),
        (status = 404, description = "No such method.", body = ErrorBody),
        (status = 422, description = "The method is not a habit.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<RecordHabitUsage>,
) -> Result<(StatusCode, Json<UsagePosted<HabitUsage>>)> {
    let new = NewHabitUsage {
        method_id: body.method_id,
        used_on: usage_day(&state, &user, body.used_on)?,
    };
    record(&state, &*state.stores().habit_usage, user.id, new).await
}

/// Undo a tick.
#[utoipa::path(delete, path = "/api/habit-usage/{id}", tag = "habit usage",
    params(("id" = HabitUsageId, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such usage of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, habit_usage_id = %id))]
pub async fn delete(
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
