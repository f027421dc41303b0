//! `/api/personal-goals`: a user's own goals (at most 10 active).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};

use super::UserParam;
use crate::auth::CurrentUser;
use crate::domain::{Name, Notes, PersonalGoalId};
use crate::error::{ErrorBody, Result};
use crate::extract::{path_id, FromBody, FromQuery, Json, JsonObject, QueryParams};
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

/// `?active=`: only active or only inactive goals.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveParam {
    /// Only active (true) or inactive (false) goals; both when absent.
    #[param(example = true)]
    pub active: Option<bool>,
}

impl FromQuery for ActiveParam {
    fn from_query(query: &QueryParams) -> Result<ActiveParam> {
        Ok(ActiveParam {
            active: query.optional("active", |raw| match raw {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err("must be true or false".into()),
            })?,
        })
    }
}

/// A new personal goal.
#[derive(Debug, ToSchema)]
pub struct CreatePersonalGoal {
    pub name: Name,
    /// Empty when absent.
    pub description: Option<Notes>,
    /// Active unless false.
    #[schema(example = true)]
    pub active: Option<bool>,
}

impl FromBody for CreatePersonalGoal {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(CreatePersonalGoal {
            name: body.required("name", Name::parse)?,
            description: body.optional("description", Notes::parse)?,
            active: body.optional_bool("active")?,
        })
    }
}

/// A change to a personal goal: the fields given are changed.
#[derive(Debug, ToSchema)]
pub struct UpdatePersonalGoal {
    pub name: Option<Name>,
    pub description: Option<Notes>,
    #[schema(example = false)]
    pub active: Option<bool>,
}

impl FromBody for UpdatePersonalGoal {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(UpdatePersonalGoal {
            name: body.optional("name", Name::parse)?,
            description: body.optional("description", Notes::parse)?,
            active: body.optional_bool("active")?,
        })
    }
}

/// The user's personal goals, oldest first.
#[utoipa::path(get, path = "/api/personal-goals", tag = "personal goals",
    params(ActiveParam, UserParam, PageRequest),
    responses(
        (status = 200, description = "A page of goals.", body = Page<PersonalGoal>),
        (status = 404, description = "userId names another user and the caller is no admin.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<PersonalGoal>>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    let active = ActiveParam::from_query(&query)?.active;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .personal_goals
            .list(subject, active, &page)
            .await?,
    ))
}

/// Create a personal goal.
#[utoipa::path(post, path = "/api/personal-goals", tag = "personal goals",
    responses(
        (status = 201, description = "Created.", body = PersonalGoal),
        (status = 422, description = "The user has 10 active goals already.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreatePersonalGoal>,
) -> Result<(StatusCode, Json<PersonalGoal>)> {
    let new = NewPersonalGoal {
        name: body.name,
        description: body.description.unwrap_or_default(),
        active: body.active.unwrap_or(true),
    };
    let goal = state.stores().personal_goals.create(user.id, new).await?;
    Ok((StatusCode::CREATED, Json(goal)))
}

/// A personal goal.
#[utoipa::path(get, path = "/api/personal-goals/{id}", tag = "personal goals",
    params(("id" = PersonalGoalId, Path)),
    responses(
        (status = 200, description = "The goal.", body = PersonalGoal),
        (status = 404, description = "No such goal of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
pub async fn get(
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

/// Change a personal goal.
#[utoipa::path(patch, path = "/api/personal-goals/{id}", tag = "personal goals",
    params(("id" = PersonalGoalId, Path)),
    responses(
        (status = 200, description = "Changed.", body = PersonalGoal),
        (status = 404, description = "No such goal of the user.", body = ErrorBody),
        (status = 422, description = "Activating it would make 11 active goals.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdatePersonalGoal>,
) -> Result<Json<PersonalGoal>> {
    let id: PersonalGoalId = path_id("id", &id)?;
    let patch = PersonalGoalPatch {
        name: body.name,
        description: body.description,
        active: body.active,
    };
    Ok(Json(
        state
            .stores()
            .personal_goals
            .update(user.id, id, patch)
            .await?,
    ))
}

/// Delete a personal goal and its usage.
///
/// The rewards are settled again. To keep the history, set `active` to
/// false instead.
#[utoipa::path(delete, path = "/api/personal-goals/{id}", tag = "personal goals",
    params(("id" = PersonalGoalId, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such goal of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, personal_goal_id = %id))]
pub async fn delete(
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
