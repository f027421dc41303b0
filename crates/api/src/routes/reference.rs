//! Reference data: methods, habits, overtuigingen by goal, company lookup.

use axum::extract::{Path, State};
use axum::Json;
use tracing::instrument;

use crate::auth::{ClientAddress, CurrentUser};
use crate::domain::{GoalId, MethodId};
use crate::error::{Error, Result};
use crate::extract::{path_id, QueryParams};
use crate::pagination::{Page, PageRequest};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::reference::{Company, Method, Overtuiging};

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .get("/api/methods/habits", habits)
        .get("/api/methods/{id}", method)
        .get("/api/overtuigingen/by-goals", overtuigingen_by_goals)
        .get("/api/companies/lookup", company_lookup)
}

#[instrument(skip_all, fields(method_id = %id))]
async fn method(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Method>> {
    let id: MethodId = path_id("id", &id)?;
    Ok(Json(state.stores().reference.method(id).await?))
}

#[instrument(skip_all)]
async fn habits(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Method>>> {
    let page = PageRequest::from_query(&query)?;
    Ok(Json(state.stores().reference.habits(&page).await?))
}

#[instrument(skip_all)]
async fn overtuigingen_by_goals(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: QueryParams,
) -> Result<Json<Page<Overtuiging>>> {
    let goals: Vec<GoalId> = query.id_list("goalIds", 100)?;
    let page = PageRequest::from_query(&query)?;
    Ok(Json(
        state
            .stores()
            .overtuigingen
            .overtuigingen_by_goals(&goals, &page)
            .await?,
    ))
}

/// Public: the app checks a company code while someone signs up, before
/// they have an account. It answers only the company's id, name and code.
/// Every lookup counts against the client address's budget of the lookup
/// throttle (20 a minute by default), so that codes cannot be enumerated
/// and, in the Airtable modes, strangers cannot spend the base's requests.
#[instrument(skip_all)]
async fn company_lookup(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    query: QueryParams,
) -> Result<Json<Company>> {
    state
        .lookup_throttle()
        .reserve(None, address, state.now())
        .map_err(|retry_after_secs| Error::TooManyAttempts { retry_after_secs })?;
    let code = query.required("code", |raw| {
        if raw.chars().count() > 100 {
            Err("must be at most 100 characters".to_owned())
        } else {
            Ok(raw.to_owned())
        }
    })?;
    state
        .stores()
        .reference
        .company_by_code(&code)
        .await?
        .map(Json)
        .ok_or_else(|| Error::not_found_in("company", "code"))
}
