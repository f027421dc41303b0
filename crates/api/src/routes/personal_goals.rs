//! `/api/personal-goals`: a user's own goals (at most 10 active).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tracing::instrument;

use crate::auth::CurrentUser;
use crate::domain::{Name, Notes, PersonalGoalId, UserId};
use crate::error::Result;
use crate::extract::{path_id, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::personal_goals::{NewPersonalGoal, PersonalGoal, PersonalGoalPatch};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/personal-goals", list)
        .post("/api/personal-goals", create)
        .get("/api/personal-goals/{id}", get)
        .patch("/api/personal-goals/{id}", update)
        .delete("/api/personal-goals/{id}", delete)
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<PersonalGoal>>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    let active = query.optional("active", parse_bool)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .personal_goals
            .list(subject, active, &page)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<PersonalGoal>)> {
    let new = NewPersonalGoal {
        name: body.required("name", Name::parse)?,
        description: body
            .optional("description", Notes::parse)?
            .unwrap_or_default(),
        active: body.optional_bool("active")?.unwrap_or(true),
    };
    body.finish()?;
    let goal = state.stores().personal_goals.create(user.id, new).await?;
    Ok((StatusCode::CREATED, Json(goal)))
}

#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<PersonalGoal>> {
    let id: PersonalGoalId = path_id("id", &id)?;
    Ok(Json(
        state
            .stores()
            .personal_goals
            .get(user.read_scope(), id)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> Result<Json<PersonalGoal>> {
    let id: PersonalGoalId = path_id("id", &id)?;
    let patch = PersonalGoalPatch {
        name: body.optional("name", Name::parse)?,
        description: body.optional("description", Notes::parse)?,
        active: body.optional_bool("active")?,
    };
    body.finish()?;
    Ok(Json(
        state
            .stores()
            .personal_goals
            .update(user.id, id, patch)
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: PersonalGoalId = path_id("id", &id)?;
    state
        .stores()
        .personal_goals
        .delete(user.id, id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
