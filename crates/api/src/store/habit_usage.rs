//! Habit usage.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{DateRange, HabitUsageId, MethodId, UserId};
use crate::error::Result;
use crate::store::usage::{ListUsage, ListedUsage, Usage};

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

/// A habit to tick off; ticking it again on the same day is a repeat.
#[derive(Debug, Clone, Copy)]
pub struct NewHabitUsage {
    pub method_id: MethodId,
    pub used_on: NaiveDate,
}

impl Usage for HabitUsage {
    type New = NewHabitUsage;

    fn position(&self) -> (NaiveDate, Uuid) {
        (self.used_on, self.id.0)
    }
}

/// Listed in a date range, earliest day first.
impl ListedUsage for HabitUsage {
    type Filter = DateRange;
    const NEWEST_FIRST: bool = false;
    const LISTED_AT: &'static str = "GET /api/habit-usage";
}

/// Habit usage of the `HabitUsage` endpoint group: recorded, listed, and
/// deleted.
#[async_trait]
pub trait HabitUsageStore: ListUsage<HabitUsage> {
    /// Deletes a tick of the owner's and settles their rewards without it.
    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()>;
}
