//! `GET /api/rewards`: points, level, badges and streaks.

use axum::extract::State;
use tracing::instrument;

use super::UserParam;
use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::extract::{FromQuery, Json, QueryParams};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::rewards::Rewards;

pub fn router() -> ApiRoutes {
    ApiRoutes::new().get("/api/rewards", rewards)
}

/// Points, level, badges, streaks and counts.
#[utoipa::path(get, path = "/api/rewards", tag = "rewards",
    params(UserParam),
    responses(
        (status = 200, description = "The rewards.", body = Rewards),
        (status = 404, description = "userId names another user and the caller is no admin.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn rewards(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Rewards>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    Ok(Json(
        state.stores().rewards.rewards(subject, state.now()).await?,
    ))
}
