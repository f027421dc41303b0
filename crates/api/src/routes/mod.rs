//! The HTTP routes, one file per resource, each with its own `router()`.

pub mod auth;
pub mod habit_usage;
pub mod method_usage;
pub mod openapi;
pub mod overtuiging_usage;
pub mod personal_goal_usage;
pub mod personal_goals;
pub mod programs;
pub mod reference;
pub mod rewards;

use chrono::NaiveDate;
use utoipa::IntoParams;

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::extract::{FromQuery, QueryParams};
use crate::routing::ApiRoutes;
use crate::state::AppState;

/// Every route of the API except the OpenAPI document itself.
pub fn api_routes() -> ApiRoutes {
    ApiRoutes::new()
        .merge(auth::router())
        .merge(programs::router())
        .merge(method_usage::router())
        .merge(habit_usage::router())
        .merge(personal_goals::router())
        .merge(personal_goal_usage::router())
        .merge(overtuiging_usage::router())
        .merge(rewards::router())
        .merge(reference::router())
}

/// The day a usage is for: the given date, or today in the user's time zone.
/// A day after today is refused: nobody has done tomorrow's exercise yet;
/// so is one more than `usage_max_days_back` (a week) days back.
pub(crate) fn usage_day(
    state: &AppState,
    user: &CurrentUser,
    given: Option<NaiveDate>,
) -> Result<NaiveDate> {
    let today = user.time_zone.today(state.now());
    match given {
        None => Ok(today),
        Some(day) if day > today => Err(Error::invalid("usedOn", "must not be after today")),
        Some(day) if (today - day).num_days() > state.config().usage_max_days_back => {
            Err(Error::invalid(
                "usedOn",
                format!(
                    "must be at most {} days before today",
                    state.config().usage_max_days_back
                ),
            ))
        }
        Some(day) => Ok(day),
    }
}

/// The answer to a usage post: the usage, and what it earned.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsagePosted<T> {
    pub usage: T,
    #[serde(flatten)]
    pub award: crate::store::Award,
}

/// `?userId=`: whose data a listing reads.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct UserParam {
    /// Admins only: whose data to read (default: the caller's). Another
    /// user's id from a caller who is no admin is a 404.
    pub user_id: Option<UserId>,
}

impl FromQuery for UserParam {
    fn from_query(query: &QueryParams) -> Result<UserParam> {
        Ok(UserParam {
            user_id: query.optional_id("userId")?,
        })
    }
}

impl UserParam {
    /// The user whose data the caller may list.
    pub fn subject(self, user: &CurrentUser) -> Result<UserId> {
        user.list_subject(self.user_id)
    }
}

/// 201 for a new row, 200 for the row an identical earlier request made.
pub(crate) fn posted<T: serde::Serialize>(
    created: crate::store::Created<(T, crate::store::Award)>,
) -> (axum::http::StatusCode, crate::extract::Json<UsagePosted<T>>) {
    let status = if created.created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    };
    let (usage, award) = created.value;
    (status, crate::extract::Json(UsagePosted { usage, award }))
}

/// A list that is short by nature (bounded by reference data), unpaginated.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}
