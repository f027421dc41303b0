//! The data behind each endpoint group, as one trait per group. Handlers talk
//! to these traits only, so they do not know whether PostgreSQL, Airtable or
//! a shadow pair of both serves them (docs/architecture.md, "Data-backend
//! flags").

pub mod airtable;
pub mod auth;
pub mod habit_usage;
pub mod method_usage;
pub mod overtuiging_usage;
pub mod personal_goal_usage;
pub mod personal_goals;
pub mod postgres;
pub mod programs;
pub mod reference;
pub mod rewards;
pub mod shadow;
pub mod usage;
pub mod users;

use std::sync::Arc;

pub use auth::AuthStore;
pub use habit_usage::HabitUsageStore;
pub use method_usage::MethodUsageStore;
pub use overtuiging_usage::OvertuigingUsage;
pub use personal_goal_usage::PersonalGoalUsage;
pub use personal_goals::PersonalGoalStore;
pub use programs::ProgramStore;
pub use reference::ReferenceStore;
pub use rewards::RewardStore;
pub use usage::ListUsage;
pub use users::UserStore;

/// A created row, or the one that already existed for the same request.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<T> {
    pub value: T,
    /// False when an identical earlier request had made it.
    pub created: bool,
}

/// The store of every endpoint group, chosen by its data-backend mode.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub programs: Arc<dyn ProgramStore>,
    pub method_usage: Arc<dyn MethodUsageStore>,
    pub habit_usage: Arc<dyn HabitUsageStore>,
    pub personal_goals: Arc<dyn PersonalGoalStore>,
    pub personal_goal_usage: Arc<dyn ListUsage<PersonalGoalUsage>>,
    pub overtuiging_usage: Arc<dyn ListUsage<OvertuigingUsage>>,
    pub rewards: Arc<dyn RewardStore>,
    /// Methods, habits and the company lookup.
    pub reference: Arc<dyn ReferenceStore>,
    /// Overtuigingen, switched on their own.
    pub overtuigingen: Arc<dyn ReferenceStore>,
    /// Credentials and tokens: PostgreSQL's whatever the modes.
    pub auth: Arc<dyn AuthStore>,
}

impl Stores {
    /// Every group served from PostgreSQL.
    pub fn postgres(pool: sqlx::PgPool) -> Stores {
        let pg = Arc::new(postgres::PgStore::new(pool));
        Stores {
            users: pg.clone(),
            programs: pg.clone(),
            method_usage: pg.clone(),
            habit_usage: pg.clone(),
            personal_goals: pg.clone(),
            personal_goal_usage: pg.clone(),
            overtuiging_usage: pg.clone(),
            rewards: pg.clone(),
            reference: pg.clone(),
            overtuigingen: pg.clone(),
            auth: pg,
        }
    }
}
