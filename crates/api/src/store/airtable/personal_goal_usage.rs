//! Personal goal usage in the base.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::usage::DailyUsage;
use super::AirtableStore;
use crate::domain::{PersonalGoalId, PersonalGoalUsageId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::personal_goal_usage::{
    NewPersonalGoalUsage, PersonalGoalUsage, PersonalGoalUsageFilter,
};
use crate::store::usage::{Award, ListUsage, RecordUsage};
use crate::store::Created;

impl DailyUsage for PersonalGoalUsage {
    const ENTITY: &'static str = "personal_goal_usage";
    const LINK: &'static str = "personal_goal_id";
    const TARGET: &'static str = "personal_goal";

    fn from_parts(
        id: Uuid,
        user: UserId,
        link: Uuid,
        used_on: NaiveDate,
        created_at: DateTime<Utc>,
    ) -> PersonalGoalUsage {
        PersonalGoalUsage {
            id: PersonalGoalUsageId(id),
            user_id: user,
            personal_goal_id: PersonalGoalId(link),
            used_on,
            created_at,
        }
    }
}

#[async_trait]
impl ListUsage<PersonalGoalUsage> for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        filter: PersonalGoalUsageFilter,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoalUsage>> {
        self.list_usage(user, filter.range, page, |usage: &PersonalGoalUsage| {
            filter
                .personal_goal
                .is_none_or(|goal| usage.personal_goal_id == goal)
        })
        .await
    }
}

#[async_trait]
impl RecordUsage<PersonalGoalUsage> for AirtableStore {
    async fn create(
        &self,
        owner: UserId,
        new: NewPersonalGoalUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(PersonalGoalUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let goal = new.personal_goal_id;
        let goal_record = self
            .by_pg_id("personal_goal", goal.0)
            .await?
            .filter(|record| self.owned_by("personal_goal", record, &user))
            .ok_or_else(|| Error::not_found_in("personal goal", "personalGoalId"))?;
        self.record_daily(owner, &user, (goal_record.id, goal.0), new.used_on, now)
            .await
    }
}
