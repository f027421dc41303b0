//! Habit usage.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{DateRange, HabitUsageId, MethodId, UserId};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};
use crate::store::{Award, Created};

/// A habit ticked off on a day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HabitUsage {
    pub id: HabitUsageId,
    pub user_id: UserId,
    pub method_id: MethodId,
    pub used_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// Habit usage of the `HabitUsage` endpoint group.
#[async_trait]
pub trait HabitUsageStore: Send + Sync {
    /// A user's habit usage in a date range, by date.
    async fn list(
        &self,
        user: UserId,
        range: DateRange,
        page: &PageRequest,
    ) -> Result<Page<HabitUsage>>;
    /// Ticks a habit off for a day; ticking it again returns the same row.
    async fn create(
        &self,
        owner: UserId,
        method: MethodId,
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(HabitUsage, Award)>>;
    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()>;
}
