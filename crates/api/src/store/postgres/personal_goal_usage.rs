//! `personal_goal_usage_pg`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::usage::{usage_page, InsertUsage};
use super::{violated, PgStore};
use crate::domain::{PersonalGoalId, PersonalGoalUsageId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::personal_goal_usage::{
    NewPersonalGoalUsage, PersonalGoalUsage, PersonalGoalUsageFilter,
};
use crate::store::usage::ListUsage;

const COLUMNS: &str = "id, user_id, personal_goal_id, used_on, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: PersonalGoalUsageId,
    user_id: UserId,
    personal_goal_id: PersonalGoalId,
    used_on: NaiveDate,
    created_at: DateTime<Utc>,
}

impl From<Row> for PersonalGoalUsage {
    fn from(row: Row) -> PersonalGoalUsage {
        PersonalGoalUsage {
            id: row.id,
            user_id: row.user_id,
            personal_goal_id: row.personal_goal_id,
            used_on: row.used_on,
            created_at: row.created_at,
        }
    }
}

#[async_trait]
impl InsertUsage for NewPersonalGoalUsage {
    type Usage = PersonalGoalUsage;

    async fn insert(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<Option<PersonalGoalUsage>> {
        let owned: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM personal_goals_pg WHERE id = $1 AND user_id = $2")
                .bind(self.personal_goal_id)
                .bind(owner)
                .fetch_optional(&mut *connection)
                .await?;
        if owned.is_none() {
            return Err(Error::not_found_in("personal goal", "personalGoalId"));
        }
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO personal_goal_usage_pg (user_id, personal_goal_id, used_on) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, personal_goal_id, used_on) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(self.personal_goal_id)
        .bind(self.used_on)
        .fetch_optional(connection)
        .await
        .map_err(|err| match violated(&err) {
            Some(v) if v.constraint == "personal_goal_usage_pg_goal_owner_fkey" => {
                Error::not_found_in("personal goal", "personalGoalId")
            }
            _ => Error::from(err),
        })?;
        Ok(inserted.map(PersonalGoalUsage::from))
    }

    async fn existing(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<PersonalGoalUsage> {
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM personal_goal_usage_pg WHERE user_id = $1 AND personal_goal_id = $2 AND used_on = $3"
        ))
        .bind(owner)
        .bind(self.personal_goal_id)
        .bind(self.used_on)
        .fetch_one(connection)
        .await?;
        Ok(PersonalGoalUsage::from(row))
    }
}

#[async_trait]
impl ListUsage<PersonalGoalUsage> for PgStore {
    async fn list(
        &self,
        user: UserId,
        filter: PersonalGoalUsageFilter,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoalUsage>> {
        let after = page.after_key::<NaiveDate>()?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM personal_goal_usage_pg
              WHERE user_id = $1
                AND ($2::uuid IS NULL OR personal_goal_id = $2)
                AND ($3::date IS NULL OR used_on >= $3)
                AND ($4::date IS NULL OR used_on <= $4)
                AND ($5::date IS NULL OR (used_on, id) < ($5, $6))
              ORDER BY used_on DESC, id DESC
              LIMIT $7"
        ))
        .bind(user)
        .bind(filter.personal_goal)
        .bind(filter.range.map(|range| range.start()))
        .bind(filter.range.map(|range| range.end()))
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        Ok(usage_page(rows, page))
    }
}
