//! `/api/programs`: a user's programs, their schedules and progress.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tracing::instrument;

use crate::auth::CurrentUser;
use crate::domain::{
    parse_date, DateRange, DayId, GoalId, MethodId, Name, Notes, ProgramId, ScheduleDayId, UserId,
    MAX_PROGRAM_DAYS,
};
use crate::error::{Error, Result};
use crate::extract::{path_id, JsonObject, QueryParams};
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

#[instrument(skip_all, fields(user_id = %user.id))]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Program>>> {
    let subject = user.list_subject(query.optional_id::<UserId>("userId")?)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(state.stores().programs.list(subject, &page).await?))
}

fn non_empty<T>(field: &str, ids: Option<Vec<T>>) -> Result<Option<Vec<T>>> {
    match ids {
        Some(ids) if ids.is_empty() => Err(Error::invalid(field, "must name at least one")),
        other => Ok(other),
    }
}

#[instrument(skip_all, fields(user_id = %user.id))]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<ProgramDetail>)> {
    let name = body.required("name", Name::parse)?;
    let goal_ids = body
        .optional_ids::<GoalId>("goalIds", MAX_LINKS)?
        .unwrap_or_default();
    let method_ids = non_empty(
        "methodIds",
        body.optional_ids::<MethodId>("methodIds", MAX_LINKS)?,
    )?
    .ok_or_else(|| Error::invalid("methodIds", "is required"))?;
    let day_ids = non_empty("dayIds", body.optional_ids::<DayId>("dayIds", 7)?)?
        .ok_or_else(|| Error::invalid("dayIds", "is required"))?;
    let start = body.required("startDate", parse_date)?;
    let end = body.required("endDate", parse_date)?;
    let notes = body.optional("notes", Notes::parse)?.unwrap_or_default();
    body.finish()?;
    let dates = DateRange::new(start, end, MAX_PROGRAM_DAYS)
        .map_err(|message| Error::invalid("endDate", message))?;
    let new = NewProgram {
        name,
        goal_ids,
        method_ids,
        day_ids,
        dates,
        notes,
    };
    let program = state
        .stores()
        .programs
        .create(user.id, new, state.now())
        .await?;
    tracing::info!(program_id = %program.program.id, "program created");
    Ok((StatusCode::CREATED, Json(program)))
}

#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
async fn get(
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

#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    mut body: JsonObject,
) -> Result<Json<ProgramDetail>> {
    let id: ProgramId = path_id("id", &id)?;
    let patch = ProgramPatch {
        name: body.optional("name", Name::parse)?,
        goal_ids: body.optional_ids("goalIds", MAX_LINKS)?,
        method_ids: non_empty("methodIds", body.optional_ids("methodIds", MAX_LINKS)?)?,
        day_ids: non_empty("dayIds", body.optional_ids("dayIds", 7)?)?,
        start_date: body.optional_date("startDate")?,
        end_date: body.optional_date("endDate")?,
        notes: body.optional("notes", Notes::parse)?,
    };
    body.finish()?;
    Ok(Json(
        state
            .stores()
            .programs
            .update(user.id, id, patch, state.now())
            .await?,
    ))
}

#[instrument(skip_all, fields(user_id = %user.id, program_id = %id))]
async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: ProgramId = path_id("id", &id)?;
    state.stores().programs.delete(user.id, id).await?;
    tracing::info!("program deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[instrument(skip_all, fields(user_id = %user.id, program_id = %id, schedule_day_id = %planning_id))]
async fn update_schedule_day(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, planning_id)): Path<(String, String)>,
    mut body: JsonObject,
) -> Result<Json<ScheduleDay>> {
    let id: ProgramId = path_id("id", &id)?;
    let day: ScheduleDayId = path_id("planningId", &planning_id)?;
    let patch = ScheduleDayPatch {
        method_ids: non_empty("methodIds", body.optional_ids("methodIds", MAX_LINKS)?)?,
        notes: body.optional("notes", Notes::parse)?,
    };
    body.finish()?;
    Ok(Json(
        state
            .stores()
            .programs
            .update_schedule_day(user.id, id, day, patch)
            .await?,
    ))
}
