//! Programs and their schedules.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::Scope;
use crate::domain::{
    DateRange, DayId, GoalId, MethodId, Name, Notes, ProgramId, ScheduleDayId, UserId,
};
use crate::error::Result;
use crate::pagination::{Page, PageRequest};

/// A program as listed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Program {
    pub id: ProgramId,
    pub user_id: UserId,
    pub name: String,
    pub goal_ids: Vec<GoalId>,
    pub method_ids: Vec<MethodId>,
    pub day_ids: Vec<DayId>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A program with its schedule and progress.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgramDetail {
    #[serde(flatten)]
    pub program: Program,
    pub schedule: Vec<ScheduleDay>,
    pub progress: Progress,
}

/// One planned day of a program.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDay {
    pub id: ScheduleDayId,
    pub program_id: ProgramId,
    pub date: NaiveDate,
    pub method_ids: Vec<MethodId>,
    pub notes: String,
    /// Every planned method has a method usage on the day's date.
    pub completed: bool,
}

/// How far a program has come: its completed schedule days against those
/// to date and against all.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Completed schedule days, all of them (a future day cannot be
    /// completed, except today's).
    pub completed_days: i64,
    /// Schedule days up to and including today.
    pub days_to_date: i64,
    /// All schedule days.
    pub total_days: i64,
    /// completed / days to date; 0 before the program starts.
    pub to_date: f64,
    /// completed / all days.
    pub overall: f64,
}

impl Progress {
    /// Progress from the completed flags and dates of a schedule.
    pub fn of(schedule: &[ScheduleDay], today: NaiveDate) -> Progress {
        let total_days = schedule.len() as i64;
        let days_to_date = schedule.iter().filter(|day| day.date <= today).count() as i64;
        let completed_days = schedule.iter().filter(|day| day.completed).count() as i64;
        let ratio = |part: i64, whole: i64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64
            }
        };
        let completed_to_date = schedule
            .iter()
            .filter(|day| day.completed && day.date <= today)
            .count() as i64;
        Progress {
            completed_days,
            days_to_date,
            total_days,
            to_date: ratio(completed_to_date, days_to_date),
            overall: ratio(completed_days, total_days),
        }
    }
}

/// A program to create.
#[derive(Debug, Clone)]
pub struct NewProgram {
    pub name: Name,
    pub goal_ids: Vec<GoalId>,
    pub method_ids: Vec<MethodId>,
    pub day_ids: Vec<DayId>,
    pub dates: DateRange,
    pub notes: Notes,
}

/// Changes to a program; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProgramPatch {
    pub name: Option<Name>,
    pub goal_ids: Option<Vec<GoalId>>,
    pub method_ids: Option<Vec<MethodId>>,
    pub day_ids: Option<Vec<DayId>>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub notes: Option<Notes>,
}

/// Changes to one schedule day.
#[derive(Debug, Clone, Default)]
pub struct ScheduleDayPatch {
    pub method_ids: Option<Vec<MethodId>>,
    pub notes: Option<Notes>,
}

/// Programs of the `Programs` endpoint group.
#[async_trait]
pub trait ProgramStore: Send + Sync {
    /// A user's programs, latest start first.
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<Program>>;
    /// Creates a program and its schedule. Overlap with another program of
    /// the user is a 409 naming that program.
    async fn create(
        &self,
        owner: UserId,
        new: NewProgram,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail>;
    /// A program with schedule and progress; progress counts up to today in
    /// the owner's time zone.
    async fn get(&self, scope: Scope, id: ProgramId, now: DateTime<Utc>) -> Result<ProgramDetail>;
    /// Changes a program; changed dates, days or methods regenerate the
    /// schedule from today on.
    async fn update(
        &self,
        owner: UserId,
        id: ProgramId,
        patch: ProgramPatch,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail>;
    /// Deletes a program and its schedule; usages keep their history.
    async fn delete(&self, owner: UserId, id: ProgramId) -> Result<()>;
    /// Changes one day of a program's schedule.
    async fn update_schedule_day(
        &self,
        owner: UserId,
        program: ProgramId,
        day: ScheduleDayId,
        patch: ScheduleDayPatch,
    ) -> Result<ScheduleDay>;
}
