//! The HTTP routes, one file per resource, each with its own `router()`;
//! what the usage routes share is in `usage.rs`.

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
pub mod usage;

use utoipa::IntoParams;

use crate::auth::CurrentUser;
use crate::domain::UserId;
use crate::error::Result;
use crate::extract::{FromQuery, QueryParams};
use crate::routing::ApiRoutes;

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

/// A list that is short by nature (bounded by reference data), unpaginated.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}
