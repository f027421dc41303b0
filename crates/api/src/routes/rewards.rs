//! `GET /api/rewards`: points, level, badges and streaks.

use axum::extract::State;
use axum::Json;
use tracing::instrument;

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::Result;
use crate::extract::QueryParams;
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::rewards::Rewards;

pub fn router() -> ApiRoutes {
    ApiRoutes::new().get("/api/rewards", rewards)
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn rewards(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Rewards>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    Ok(Json(
        state.stores().rewards.rewards(subject, state.now()).await?,
    ))
}
