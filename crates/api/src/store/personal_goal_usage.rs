//! Personal goal usage.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{DateRange, PersonalGoalId, PersonalGoalUsageId, UserId};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};
use crate::store::{Award, Created};

/// A personal goal worked on, on a day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalGoalUsage {
    pub id: PersonalGoalUsageId,
    pub user_id: UserId,
    pub personal_goal_id: PersonalGoalId,
    pub used_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// Which usage to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonalGoalUsageFilter {
    pub personal_goal: Option<PersonalGoalId>,
    pub range: Option<DateRange>,
}

/// Personal goal usage of the `PersonalGoalUsage` endpoint group.
#[async_trait]
pub trait PersonalGoalUsageStore: Send + Sync {
    /// A user's usage, latest day first.
    async fn list(
        &self,
        user: UserId,
        filter: PersonalGoalUsageFilter,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoalUsage>>;
    /// Records a usage; recording it again for the same day returns the same
    /// row.
    async fn create(
        &self,
        owner: UserId,
        goal: PersonalGoalId,
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(PersonalGoalUsage, Award)>>;
}
