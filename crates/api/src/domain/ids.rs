//! Ids as newtypes, so that a program id cannot be passed where a method id
//! is wanted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident => $what:literal),* $(,)?) => {$(
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

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                super::schema::uuid(concat!("The id of ", $what, "."))
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

id_type!(
    /// A row of `users_pg`.
    UserId => "a user",
    /// A row of `programs_pg`.
    ProgramId => "a program",
    /// A row of `program_schedule_pg` (a "planning" in the routes).
    ScheduleDayId => "a schedule day (a planning)",
    /// A row of `reference_methods_pg`.
    MethodId => "a method",
    /// A row of `reference_goals_pg`.
    GoalId => "a goal",
    /// A row of `reference_days_pg`.
    DayId => "a day of the week",
    /// A row of `reference_overtuigingen_pg`.
    OvertuigingId => "an overtuiging",
    /// A row of `companies_pg`.
    CompanyId => "a company",
    /// A row of `personal_goals_pg`.
    PersonalGoalId => "a personal goal",
    /// A row of `method_usage_pg`.
    MethodUsageId => "a method usage",
    /// A row of `habit_usage_pg`.
    HabitUsageId => "a habit usage",
    /// A row of `personal_goal_usage_pg`.
    PersonalGoalUsageId => "a personal goal usage",
    /// A row of `overtuiging_usage_pg`.
    OvertuigingUsageId => "an overtuiging usage",
);

/// A program named by its UUID or, as clients of the legacy backend still
/// send, by its Airtable record id (`rec` and 14 letters or digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramRef {
    Id(ProgramId),
    Record(String),
}

impl ProgramRef {
    /// Parses a UUID or a record id; the message says what is accepted.
    pub fn parse(raw: &str) -> Result<ProgramRef, String> {
        if let Ok(id) = raw.parse() {
            return Ok(ProgramRef::Id(id));
        }
        if is_record_id(raw) {
            return Ok(ProgramRef::Record(raw.to_owned()));
        }
        Err("must be a UUID or an Airtable record id (rec followed by 14 letters or digits)".into())
    }
}

/// Whether `raw` has the shape of an Airtable record id.
pub fn is_record_id(raw: &str) -> bool {
    raw.len() == 17
        && raw.starts_with("rec")
        && raw[3..].bytes().all(|byte| byte.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_named_by_uuid_or_record_id_and_nothing_else() {
        let id = Uuid::new_v4();
        assert_eq!(
            ProgramRef::parse(&id.to_string()),
            Ok(ProgramRef::Id(ProgramId(id)))
        );
        assert_eq!(
            ProgramRef::parse("recABCDEFGHIJ1234"),
            Ok(ProgramRef::Record("recABCDEFGHIJ1234".into()))
        );
        for bad in [
            "",
            "rec",
            "recABCDEFGHIJ123",
            "recABCDEFGHIJ12345",
            "recABCDEFGHIJ12-4",
            "tblABCDEFGHIJ1234",
        ] {
            assert!(ProgramRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
