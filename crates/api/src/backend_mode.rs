//! Data-backend modes of the API's endpoint groups (docs/architecture.md,
//! "Data-backend flags").

use std::fmt;

/// Where an endpoint group reads and writes (docs/architecture.md,
/// "Data-backend flags").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataBackendMode {
    /// Read and write the Airtable base directly: the legacy path.
    AirtableOnly,
    /// Answer from Airtable, also read PostgreSQL, and count every difference.
    PostgresShadowRead,
    /// Answer from PostgreSQL; writes reach Airtable through the outbox.
    PostgresPrimary,
}

impl DataBackendMode {
    /// Every mode, as configured.
    pub const ALL: [DataBackendMode; 3] = [
        DataBackendMode::AirtableOnly,
        DataBackendMode::PostgresShadowRead,
        DataBackendMode::PostgresPrimary,
    ];

    /// The mode's name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DataBackendMode::AirtableOnly => "airtable_only",
            DataBackendMode::PostgresShadowRead => "postgres_shadow_read",
            DataBackendMode::PostgresPrimary => "postgres_primary",
        }
    }

    pub fn parse(raw: &str) -> Result<DataBackendMode, String> {
        let wanted = raw.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "must be airtable_only, postgres_shadow_read or postgres_primary, got {raw:?}"
                )
            })
    }
}

impl fmt::Display for DataBackendMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A group of API endpoints that switches backend as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointGroup {
    Programs,
    HabitUsage,
    MethodUsage,
    PersonalGoals,
    PersonalGoalUsage,
    OvertuigingUsage,
    Rewards,
    /// Methods, habits and the company lookup.
    Reference,
    /// `GET /api/overtuigingen/*`: reference data too, with a switch of its
    /// own, so that overtuigingen can stay on Airtable (read-only, cached)
    /// after everything else has moved, as the legacy backend ended.
    Overtuigingen,
    Users,
}

impl EndpointGroup {
    /// Every group.
    pub const ALL: [EndpointGroup; 10] = [
        EndpointGroup::Programs,
        EndpointGroup::HabitUsage,
        EndpointGroup::MethodUsage,
        EndpointGroup::PersonalGoals,
        EndpointGroup::PersonalGoalUsage,
        EndpointGroup::OvertuigingUsage,
        EndpointGroup::Rewards,
        EndpointGroup::Reference,
        EndpointGroup::Overtuigingen,
        EndpointGroup::Users,
    ];

    /// The group's name in variables and metrics, e.g. `habit_usage`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointGroup::Programs => "programs",
            EndpointGroup::HabitUsage => "habit_usage",
            EndpointGroup::MethodUsage => "method_usage",
            EndpointGroup::PersonalGoals => "personal_goals",
            EndpointGroup::PersonalGoalUsage => "personal_goal_usage",
            EndpointGroup::OvertuigingUsage => "overtuiging_usage",
            EndpointGroup::Rewards => "rewards",
            EndpointGroup::Reference => "reference",
            EndpointGroup::Overtuigingen => "overtuigingen",
            EndpointGroup::Users => "users",
        }
    }

    /// The variable that sets the group's mode, e.g. `DATA_BACKEND_HABIT_USAGE`.
    pub fn variable(self) -> String {
        format!("DATA_BACKEND_{}", self.as_str().to_ascii_uppercase())
    }
}
