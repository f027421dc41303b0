//! Method usage.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::Scope;
use crate::domain::{MethodId, MethodUsageId, Notes, ProgramId, ProgramRef, ScheduleDayId, UserId};
use crate::error::{Error, Result};
use crate::store::usage::{RecordUsage, Usage};

/// A method usage.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodUsage {
    pub id: MethodUsageId,
    pub user_id: UserId,
    pub method_id: MethodId,
    pub program_id: Option<ProgramId>,
    pub schedule_day_id: Option<ScheduleDayId>,
    pub used_on: NaiveDate,
    pub remark: String,
    pub created_at: DateTime<Utc>,
}

/// A method usage to record. Only a post with the same idempotency key is a
/// repeat; recording it keeps schedule days' completion in step.
#[derive(Debug, Clone)]
pub struct NewMethodUsage {
    pub method_id: MethodId,
    pub program_id: Option<ProgramId>,
    pub schedule_day_id: Option<ScheduleDayId>,
    pub used_on: NaiveDate,
    pub remark: Notes,
    /// The client's `Idempotency-Key` and a fingerprint of the request.
    pub idempotency: Option<IdempotencyKey>,
}

/// An idempotency key sent with a post.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

impl Usage for MethodUsage {
    type New = NewMethodUsage;

    fn position(&self) -> (NaiveDate, Uuid) {
        (self.used_on, self.id.0)
    }
}

/// Changes to a method usage.
#[derive(Debug, Clone, Default)]
pub struct MethodUsagePatch {
    pub used_on: Option<NaiveDate>,
    pub remark: Option<Notes>,
}

/// A usage linked to a schedule day is done on that day: a 422
/// `schedule_day_date_mismatch` on `field` otherwise.
pub(crate) fn check_on_schedule_day(
    day: NaiveDate,
    used_on: NaiveDate,
    field: &'static str,
) -> Result<()> {
    if day == used_on {
        return Ok(());
    }
    Err(Error::rule(
        "schedule_day_date_mismatch",
        format!("the usage is on {used_on} but its schedule day is {day}"),
        Some(field),
    ))
}

/// Method usage of the `MethodUsage` endpoint group: recorded, changed, and
/// read by program (it is not listed per user).
#[async_trait]
pub trait MethodUsageStore: RecordUsage<MethodUsage> {
    async fn update(
        &self,
        owner: UserId,
        id: MethodUsageId,
        patch: MethodUsagePatch,
        now: DateTime<Utc>,
    ) -> Result<MethodUsage>;
    /// The latest usage of each method recorded with a program, named by
    /// its UUID or its Airtable record id.
    async fn latest_by_program(
        &self,
        scope: Scope,
        program: ProgramRef,
    ) -> Result<Vec<MethodUsage>>;
}
