//! The PostgreSQL backend: one repository module per table or aggregate,
//! with plain parameterized SQL. Functions take a connection (or any
//! executor) so that the caller owns the transaction; the store trait
//! implementations open the transactions.

mod auth;
pub mod auth_tokens;
mod habit_usage;
pub(crate) mod method_usage;
mod overtuiging_usage;
mod personal_goal_usage;
mod personal_goals;
mod programs;
mod reference;
pub mod rewards;
mod schedule;
mod usage;
pub mod users;

use airsync_db::{constraint_violation, ConstraintViolation};
use sqlx::PgPool;

/// Every endpoint group served from PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub fn new(pool: PgPool) -> PgStore {
        PgStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The constraint an error violated, named, if it is a constraint violation.
pub(crate) fn violated(err: &sqlx::Error) -> Option<ConstraintViolation> {
    constraint_violation(err)
}
