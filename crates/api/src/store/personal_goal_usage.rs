//! Personal goal usage.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{DateRange, PersonalGoalId, PersonalGoalUsageId, UserId};
use crate::store::usage::{ListedUsage, Usage};

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

/// Work on a personal goal to record; recording it again for the same day
/// is a repeat.
#[derive(Debug, Clone, Copy)]
pub struct NewPersonalGoalUsage {
    pub personal_goal_id: PersonalGoalId,
    pub used_on: NaiveDate,
}

/// Which usage to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonalGoalUsageFilter {
    pub personal_goal: Option<PersonalGoalId>,
    pub range: Option<DateRange>,
}

impl Usage for PersonalGoalUsage {
    type New = NewPersonalGoalUsage;

    fn position(&self) -> (NaiveDate, Uuid) {
        (self.used_on, self.id.0)
    }
}

/// Listed latest day first.
impl ListedUsage for PersonalGoalUsage {
    type Filter = PersonalGoalUsageFilter;
    const NEWEST_FIRST: bool = true;
    const LISTED_AT: &'static str = "GET /api/personal-goal-usage";
}
