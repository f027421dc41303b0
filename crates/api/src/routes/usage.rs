//! What the usage routes share (method, habit, personal goal and
//! overtuiging usage): the day a post is for, its answer, and a listing's
//! page.

use axum::http::StatusCode;
use chrono::NaiveDate;

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::extract::{FromQuery, Json, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::state::AppState;
use crate::store::usage::{Award, ListUsage, ListedUsage, RecordUsage, Usage};

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
    pub award: Award,
}

/// Records `new` in `store`: 201 with the new row, or 200 with the row of
/// the earlier post it repeats.
pub(crate) async fn record<U: Usage>(
    state: &AppState,
    store: &(impl RecordUsage<U> + ?Sized),
    owner: UserId,
    new: U::New,
) -> Result<(StatusCode, Json<UsagePosted<U>>)> {
    let created = store.create(owner, new, state.now()).await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let (usage, award) = created.value;
    Ok((status, Json(UsagePosted { usage, award })))
}

/// The page of `subject`'s usage in `store` that `filter` keeps, paged as
/// `query` asks (read last, after the listing's own parameters).
pub(crate) async fn listed<U: ListedUsage>(
    store: &(impl ListUsage<U> + ?Sized),
    subject: UserId,
    filter: U::Filter,
    query: &QueryParams,
) -> Result<Json<Page<U>>> {
    let page = PageRequest::from_query(query)?;
    Ok(Json(store.list(subject, filter, &page).await?))
}
