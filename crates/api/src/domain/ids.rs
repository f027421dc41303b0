//! Ids as newtypes, so that a program id cannot be passed where a method id
//! is wanted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(raw).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }
    )*};
}

id_type!(
    /// A row of `users_pg`.
    UserId,
    /// A row of `programs_pg`.
    ProgramId,
    /// A row of `program_schedule_pg` (a "planning" in the routes).
    ScheduleDayId,
    /// A row of `reference_methods_pg`.
    MethodId,
    /// A row of `reference_goals_pg`.
    GoalId,
    /// A row of `reference_days_pg`.
    DayId,
    /// A row of `reference_overtuigingen_pg`.
    OvertuigingId,
    /// A row of `companies_pg`.
    CompanyId,
    /// A row of `personal_goals_pg`.
    PersonalGoalId,
    /// A row of `method_usage_pg`.
    MethodUsageId,
    /// A row of `habit_usage_pg`.
    HabitUsageId,
    /// A row of `personal_goal_usage_pg`.
    PersonalGoalUsageId,
    /// A row of `overtuiging_usage_pg`.
    OvertuigingUsageId,
);
