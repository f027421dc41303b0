//! Personal goals.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Scope;
use crate::domain::{Name, Notes, PersonalGoalId, UserId};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};

/// A user's own goal.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalGoal {
    pub id: PersonalGoalId,
    pub user_id: UserId,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A personal goal to create.
#[derive(Debug, Clone)]
pub struct NewPersonalGoal {
    pub name: Name,
    pub description: Notes,
    pub active: bool,
}

/// Changes to a personal goal.
#[derive(Debug, Clone, Default)]
pub struct PersonalGoalPatch {
    pub name: Option<Name>,
    pub description: Option<Notes>,
    pub active: Option<bool>,
}

/// Personal goals of the `PersonalGoals` endpoint group.
#[async_trait]
pub trait PersonalGoalStore: Send + Sync {
    /// A user's goals, oldest first; `active` filters when given.
    async fn list(
        &self,
        user: UserId,
        active: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoal>>;
    /// Creates a goal; an 11th active goal is a 422.
    async fn create(&self, owner: UserId, new: NewPersonalGoal) -> Result<PersonalGoal>;
    async fn get(&self, scope: Scope, id: PersonalGoalId) -> Result<PersonalGoal>;
    async fn update(
        &self,
        owner: UserId,
        id: PersonalGoalId,
        patch: PersonalGoalPatch,
    ) -> Result<PersonalGoal>;
    /// Deletes a goal and its usage, and settles the user's rewards again
    /// (the usage's points go; bonuses already given stay).
    async fn delete(&self, owner: UserId, id: PersonalGoalId, now: DateTime<Utc>) -> Result<()>;
}
