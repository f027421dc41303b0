//! Overtuiging usage.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{OvertuigingId, OvertuigingUsageId, ProgramId, UserId};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};
use crate::store::{Award, Created};

/// An overtuiging worked through (once per user).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OvertuigingUsage {
    pub id: OvertuigingUsageId,
    pub user_id: UserId,
    pub overtuiging_id: OvertuigingId,
    pub program_id: Option<ProgramId>,
    pub used_on: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// An overtuiging usage to record.
#[derive(Debug, Clone, Copy)]
pub struct NewOvertuigingUsage {
    pub overtuiging_id: OvertuigingId,
    pub program_id: Option<ProgramId>,
    pub used_on: NaiveDate,
}

/// Overtuiging usage of the `OvertuigingUsage` endpoint group.
#[async_trait]
pub trait OvertuigingUsageStore: Send + Sync {
    /// A user's overtuiging usage, latest day first.
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<OvertuigingUsage>>;
    /// Records a usage with its streak bonus and badges in one transaction.
    /// A repeat (same user and overtuiging) returns the first row and awards
    /// nothing, also when both requests arrive at once.
    async fn create(
        &self,
        owner: UserId,
        new: NewOvertuigingUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(OvertuigingUsage, Award)>>;
}
