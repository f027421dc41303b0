//! Habit usage in the base.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::usage::DailyUsage;
use super::AirtableStore;
use crate::domain::{DateRange, HabitUsageId, MethodId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::habit_usage::{HabitUsage, HabitUsageStore, NewHabitUsage};
use crate::store::usage::{Award, ListUsage, RecordUsage};
use crate::store::Created;

impl DailyUsage for HabitUsage {
    const ENTITY: &'static str = "habit_usage";
    const LINK: &'static str = "method_id";
    const TARGET: &'static str = "method";

    fn from_parts(
        id: Uuid,
        user: UserId,
        link: Uuid,
        used_on: NaiveDate,
        created_at: DateTime<Utc>,
    ) -> HabitUsage {
        HabitUsage {
            id: HabitUsageId(id),
            user_id: user,
            method_id: MethodId(link),
            used_on,
            created_at,
        }
    }
}

#[async_trait]
impl ListUsage<HabitUsage> for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        range: DateRange,
        page: &PageRequest,
    ) -> Result<Page<HabitUsage>> {
        self.list_usage(user, Some(range), page, |_| true).await
    }
}

#[async_trait]
impl RecordUsage<HabitUsage> for AirtableStore {
    async fn create(
        &self,
        owner: UserId,
        new: NewHabitUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(HabitUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let method = new.method_id;
        let method_record = self
            .records_of("method", &[method.0])
            .await?
            .remove(&method.0)
            .ok_or_else(|| Error::not_found_in("method", "methodId"))?;
        let found = self
            .by_record_ids("method", std::slice::from_ref(&method_record))
            .await?;
        let is_habit = found
            .first()
            .map(|record| {
                record
                    .fields
                    .checkbox(self.field("method", "is_habit"))
                    .unwrap_or(false)
            })
            .ok_or_else(|| Error::not_found_in("method", "methodId"))?;
        if !is_habit {
            return Err(Error::rule(
                "not_a_habit",
                "the method is not a habit",
                Some("methodId"),
            ));
        }
        self.record_daily(owner, &user, (method_record, method.0), new.used_on, now)
            .await
    }
}

#[async_trait]
impl HabitUsageStore for AirtableStore {
    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("habit usage"))?;
        let record = self
            .by_pg_id("habit_usage", id.0)
            .await?
            .filter(|r| self.owned_by("habit_usage", r, &user))
            .ok_or_else(|| Error::not_found("habit usage"))?;
        self.delete("habit_usage", &[record.id]).await?;
        self.settle_for(owner, &user, now).await?;
        Ok(())
    }
}
