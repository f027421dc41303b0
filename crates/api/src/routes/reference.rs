//! Reference data: methods, habits, overtuigingen by goal, company lookup.

use axum::extract::{Path, State};
use tracing::instrument;
use utoipa::IntoParams;

use crate::auth::{ClientAddress, CurrentUser};
use crate::domain::{GoalId, MethodId};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{path_id, FromQuery, Json, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::reference::{Company, Method, Overtuiging};

/// Most goals one overtuigingen listing may name.
const MAX_GOALS: usize = 100;

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/methods/habits", habits)
        .get("/api/methods/{id}", method)
        .get("/api/overtuigingen/by-goals", overtuigingen_by_goals)
        .get("/api/companies/lookup", company_lookup)
}

/// `?goalIds=`: goals, separated by commas.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct GoalsParam {
    /// Goal ids separated by commas (at least one, at most 100).
    #[param(value_type = String, example = "0b9c5c6e-5d6a-4f5e-9a51-2f4f1c3d7e8a")]
    pub goal_ids: Vec<GoalId>,
}

impl FromQuery for GoalsParam {
    fn from_query(query: &QueryParams) -> Result<GoalsParam> {
        Ok(GoalsParam {
            goal_ids: query.id_list("goalIds", MAX_GOALS)?,
        })
    }
}

/// `?code=`: a company code.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodeParam {
    /// The company code, compared without regard to case.
    #[param(max_length = 100, example = "ACME")]
    pub code: String,
}

impl FromQuery for CodeParam {
    fn from_query(query: &QueryParams) -> Result<CodeParam> {
        Ok(CodeParam {
            code: query.required("code", |raw| {
                if raw.chars().count() > 100 {
                    Err("must be at most 100 characters".to_owned())
                } else {
                    Ok(raw.to_owned())
                }
            })?,
        })
    }
}

/// A method with its goals.
#[utoipa::path(get, path = "/api/methods/{id}", tag = "reference",
    params(("id" = MethodId, Path)),
    responses(
        (status = 200, description = "The method.", body = Method),
        (status = 404, description = "No such method.", body = ErrorBody),
    ))]
#[instrument(skip_all, fields(method_id = %id))]
pub async fn method(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Method>> {
    let id: MethodId = path_id("id", &id)?;
    Ok(Json(state.stores().reference.method(id).await?))
}

/// Active habits in sort order.
#[utoipa::path(get, path = "/api/methods/habits", tag = "reference",
    params(PageRequest),
    responses((status = 200, description = "A page of habits.", body = Page<Method>)))]
#[instrument(skip_all)]
pub async fn habits(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Method>>> {
    let page = PageRequest::from_query(&query)?;
    Ok(Json(state.stores().reference.habits(&page).await?))
}

/// Active overtuigingen linked to any of the goals, by level.
#[utoipa::path(get, path = "/api/overtuigingen/by-goals", tag = "reference",
    params(GoalsParam, PageRequest),
    responses((status = 200, description = "A page of overtuigingen.", body = Page<Overtuiging>)))]
#[instrument(skip_all)]
pub async fn overtuigingen_by_goals(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Overtuiging>>> {
    let goals = GoalsParam::from_query(&query)?.goal_ids;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .overtuigingen
            .overtuigingen_by_goals(&goals, &page)
            .await?,
    ))
}

/// The active company with a code.
///
/// Public: the app checks a company code while someone signs up, before
/// they have an account; the answer holds only the company's id, name and
/// code. Lookups count against the client address's budget (20 a minute by
/// default), so that codes cannot be enumerated.
#[utoipa::path(get, path = "/api/companies/lookup", tag = "reference", security(()),
    params(CodeParam),
    responses(
        (status = 200, description = "The company.", body = Company),
        (status = 404, description = "No active company has this code.", body = ErrorBody),
        (status = 429, description = "Too many lookups from this address; see Retry-After.", body = ErrorBody),
    ))]
#[instrument(skip_all)]
pub async fn company_lookup(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    query: QueryParams,
) -> Result<Json<Company>> {
    // Lookups also cost Airtable requests in the Airtable modes, so the
    // budget is spent before the code is even read.
    state
        .lookup_throttle()
        .reserve(None, address, state.now())
        .map_err(|retry_after_secs| Error::TooManyAttempts { retry_after_secs })?;
    let code = CodeParam::from_query(&query)?.code;
    state
        .stores()
        .reference
        .company_by_code(&code)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found_in("company", "code"))
}
