//! Overtuiging usage.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{OvertuigingId, OvertuigingUsageId, ProgramId, UserId};
use crate::store::usage::{ListedUsage, Usage};

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

/// An overtuiging usage to record. Any later post of the same overtuiging
/// by the same user is a repeat, also when both requests arrive at once.
#[derive(Debug, Clone, Copy)]
pub struct NewOvertuigingUsage {
    pub overtuiging_id: OvertuigingId,
    pub program_id: Option<ProgramId>,
    pub used_on: NaiveDate,
}

impl Usage for OvertuigingUsage {
    type New = NewOvertuigingUsage;

    fn position(&self) -> (NaiveDate, Uuid) {
        (self.used_on, self.id.0)
    }
}

/// Listed latest day first, unfiltered.
impl ListedUsage for OvertuigingUsage {
    type Filter = ();
    const NEWEST_FIRST: bool = true;
    const LISTED_AT: &'static str = "GET /api/overtuiging-usage";
}
