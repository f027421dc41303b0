//! `/api/programs`: a user's programs, their schedules and progress.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use tracing::instrument;
use utoipa::ToSchema;

use super::UserParam;
use crate::auth::CurrentUser;
use crate::domain::{
    parse_date, DateRange, DayId, GoalId, MethodId, Name, Notes, ProgramId, ScheduleDayId,
    MAX_PROGRAM_DAYS,
};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{path_id, FromBody, FromQuery, Json, JsonObject, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::programs::{
    NewProgram, Program, ProgramDetail, ProgramPatch, ScheduleDay, ScheduleDayPatch,
};

/// Most goals, methods or days one program may link.
const MAX_LINKS: usize = 50;

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/programs", list)
        .post("/api/programs", create)
        .get("/api/programs/{id}", get)
        .patch("/api/programs/{id}", update)
        .delete("/api/programs/{id}", delete)
        .patch(
            "/api/programs/{id}/schedule/{planningId}",
            update_schedule_day,
        )
}

/// A new program. Its schedule is generated: one day for each date from
/// `startDate` to `endDate` whose weekday is among `dayIds`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateProgram {
    pub name: Name,
    /// The goals the program works on; none when absent.
    #[schema(max_items = 50)]
    pub goal_ids: Option<Vec<GoalId>>,
    /// The methods to plan on each day; at least one.
    #[schema(min_items = 1, max_items = 50)]
    pub method_ids: Vec<MethodId>,
    /// The weekdays to plan; one to seven.
    #[schema(min_items = 1, max_items = 7)]
    pub day_ids: Vec<DayId>,
    #[schema(example = "2024-03-11")]
    pub start_date: NaiveDate,
    /// At most a year after the start date.
    #[schema(example = "2024-04-07")]
    pub end_date: NaiveDate,
    pub notes: Option<Notes>,
}

impl FromBody for CreateProgram {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(CreateProgram {
            name: body.required("name", Name::parse)?,
            goal_ids: body.optional_ids("goalIds", MAX_LINKS)?,
            method_ids: non_empty("methodIds", body.optional_ids("methodIds", MAX_LINKS)?)?
                .ok_or_else(|| Error::invalid("methodIds", "is required"))?,
            day_ids: non_empty("dayIds", body.optional_ids("dayIds", 7)?)?
                .ok_or_else(|| Error::invalid("dayIds", "is required"))?,
            start_date: body.required("startDate", parse_date)?,
            end_date: body.required("endDate", parse_date)?,
            notes: body.optional("notes", Notes::parse)?,
        })
    }
}

/// A change to a program: the fields given are changed. New dates, days or
/// methods plan the schedule again from today on.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProgram {
    pub name: Option<Name>,
    #[schema(max_items = 50)]
    pub goal_ids: Option<Vec<GoalId>>,
    #[schema(min_items = 1, max_items = 50)]
    pub method_ids: Option<Vec<MethodId>>,
    #[schema(min_items = 1, max_items = 7)]
    pub day_ids: Option<Vec<DayId>>,
    #[schema(example = "2024-03-11")]
    pub start_date: Option<NaiveDate>,
    #[schema(example = "2024-04-07")]
    pub end_date: Option<NaiveDate>,
    pub notes: Option<Notes>,
}

impl FromBody for UpdateProgram {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(UpdateProgram {
            name: body.optional("name", Name::parse)?,
            goal_ids: body.optional_ids("goalIds", MAX_LINKS)?,
            method_ids: non_empty("methodIds", body.optional_ids("methodIds", MAX_LINKS)?)?,
            day_ids: non_empty("dayIds", body.optional_ids("dayIds", 7)?)?,
            start_date: body.optional_date("startDate")?,
            end_date: body.optional_date("endDate")?,
            notes: body.optional("notes", Notes::parse)?,
        })
    }
}

/// A change to one schedule day: the fields given are changed.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateScheduleDay {
    #[schema(min_items = 1, max_items = 50)]
    pub method_ids: Option<Vec<MethodId>>,
    pub notes: Option<Notes>,
}

impl FromBody for UpdateScheduleDay {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(UpdateScheduleDay {
            method_ids: non_empty("methodIds", body.optional_ids("methodIds", MAX_LINKS)?)?,
            notes: body.optional("notes", Notes::parse)?,
        })
    }
}

/// The user's programs, latest start first.
#[utoipa::path(get, path = "/api/programs", tag = "programs",
    params(UserParam, PageRequest),
    responses(
        (status = 200, description = "A page of programs.", body = Page<Program>),
        (status = 404, description = "userId names another user and the caller is no admin.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Program>>> {
    let subject = UserParam::from_query(&query)?.subject(&user)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(state.stores().programs.list(subject, &page).await?))
}

fn non_empty<T>(field: &str, ids: Option<Vec<T>>) -> Result<Option<Vec<T>>> {
    match ids {
        Some(ids) if ids.is_empty() => Err(Error::invalid(field, "must name at least one")),
        other => Ok(other),
    }
}

/// Create a program; its schedule is generated.
#[utoipa::path(post, path = "/api/programs", tag = "programs",
    responses(
        (status = 201, description = "Created.", body = ProgramDetail),
        (status = 404, description = "A goal, method or day does not exist; `error.field` names the list.", body = ErrorBody),
        (status = 409, description = "The dates overlap another program of the user; `error.conflictingId` names it.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<CreateProgram>,
) -> Result<(StatusCode, Json<ProgramDetail>)> {
    let dates = DateRange::new(body.start_date, body.end_date, MAX_PROGRAM_DAYS)
        .map_err(|message| Error::invalid("endDate", message))?;
    let new = NewProgram {
        name: body.name,
        goal_ids: body.goal_ids.unwrap_or_default(),
        method_ids: body.method_ids,
        day_ids: body.day_ids,
        dates,
        notes: body.notes.unwrap_or_default(),
    };
    let program = state
        .stores()
        .programs
        .create(user.id, new, state.now())
        .await?;
    tracing::info!(program_id = %program.program.id, "program created");
    Ok((StatusCode::CREATED, Json(program)))
}

/// A program with its schedule and progress.
#[utoipa::path(get, path = "/api/programs/{id}", tag = "programs",
    params(("id" = ProgramId, Path)),
    responses(
        (status = 200, description = "The program.", body = ProgramDetail),
        (status = 404, description = "No such program of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ProgramDetail>> {
    let id: ProgramId = path_id("id", &id)?;
    Ok(Json(
        state
            .stores()
            .programs
            .get(user.read_scope(), id, state.now())
            .await?,
    ))
}

/// Change a program.
///
/// New dates, days or methods plan the schedule again from today on.
#[utoipa::path(patch, path = "/api/programs/{id}", tag = "programs",
    params(("id" = ProgramId, Path)),
    responses(
        (status = 200, description = "The changed program.", body = ProgramDetail),
        (status = 404, description = "No such program of the user, or a linked id does not exist.", body = ErrorBody),
        (status = 409, description = "The new dates overlap another program.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateProgram>,
) -> Result<Json<ProgramDetail>> {
    let id: ProgramId = path_id("id", &id)?;
    let patch = ProgramPatch {
        name: body.name,
        goal_ids: body.goal_ids,
        method_ids: body.method_ids,
        day_ids: body.day_ids,
        start_date: body.start_date,
        end_date: body.end_date,
        notes: body.notes,
    };
    Ok(Json(
        state
            .stores()
            .programs
            .update(user.id, id, patch, state.now())
            .await?,
    ))
}

/// Delete a program and its schedule; usages keep their history.
#[utoipa::path(delete, path = "/api/programs/{id}", tag = "programs",
    params(("id" = ProgramId, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such program of the user.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: ProgramId = path_id("id", &id)?;
    state.stores().programs.delete(user.id, id).await?;
    tracing::info!("program deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Change one schedule day: its methods or notes.
#[utoipa::path(patch, path = "/api/programs/{id}/schedule/{planningId}", tag = "programs",
    params(("id" = ProgramId, Path), ("planningId" = ScheduleDayId, Path)),
    responses(
        (status = 200, description = "The changed day.", body = ScheduleDay),
        (status = 404, description = "No such day in a program of the user, or a method does not exist.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(user_id = %user.id, program_id = %id, schedule_day_id = %planning_id))]
pub async fn update_schedule_day(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, planning_id)): Path<(String, String)>,
    Json(body): Json<UpdateScheduleDay>,
) -> Result<Json<ScheduleDay>> {
    let id: ProgramId = path_id("id", &id)?;
    let day: ScheduleDayId = path_id("planningId", &planning_id)?;
    let patch = ScheduleDayPatch {
        method_ids: body.method_ids,
        notes: body.notes,
    };
    Ok(Json(
        state
            .stores()
            .programs
            .update_schedule_day(user.id, id, day, patch)
            .await?,
    ))
}
