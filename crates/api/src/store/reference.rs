//! Reference data (owned by the team in Airtable): methods, habits,
//! overtuigingen, companies.

use async_trait::async_trait;
use serde::Serialize;

use crate::domain::{CompanyId, GoalId, MethodId, OvertuigingId};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};

/// A goal, embedded in methods and overtuigingen.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoalRef {
    pub id: GoalId,
    pub name: String,
}

/// A coaching method (a habit when `isHabit`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub id: MethodId,
    pub name: String,
    pub description: String,
    pub duration_minutes: Option<i32>,
    pub is_habit: bool,
    pub active: bool,
    pub sort_order: i32,
    pub goals: Vec<GoalRef>,
}

/// An overtuiging.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overtuiging {
    pub id: OvertuigingId,
    pub name: String,
    pub description: String,
    pub level: i16,
    pub active: bool,
    pub goals: Vec<GoalRef>,
}

/// A company, as a code lookup shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    pub code: String,
}

/// Reference data of the `Reference` endpoint group.
#[async_trait]
pub trait ReferenceStore: Send + Sync {
    /// A method, active or not (a user's history may point at an inactive
    /// one).
    async fn method(&self, id: MethodId) -> Result<Method>;
    /// Active habits, in sort order.
    async fn habits(&self, page: &PageRequest) -> Result<Page<Method>>;
    /// Active overtuigingen linked to any of the goals, by level then name.
    async fn overtuigingen_by_goals(
        &self,
        goals: &[GoalId],
        page: &PageRequest,
    ) -> Result<Page<Overtuiging>>;
    /// The active company with this code, compared case-insensitively.
    async fn company_by_code(&self, code: &str) -> Result<Option<Company>>;
}
