//! `personal_goal_usage_pg`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::rewards::{begin_usage_write, current_streak, settle};
use super::{violated, PgStore};
use crate::domain::{PersonalGoalId, PersonalGoalUsageId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::personal_goal_usage::{
    PersonalGoalUsage, PersonalGoalUsageFilter, PersonalGoalUsageStore,
};
use crate::store::{Award, Created};

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
impl PersonalGoalUsageStore for PgStore {
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
        Ok(Page::from_rows(
            rows.into_iter().map(PersonalGoalUsage::from).collect(),
            page,
            |usage| Cursor {
                key: usage.used_on.to_string(),
                id: usage.id.0,
            },
        ))
    }

    async fn create(
        &self,
        owner: UserId,
        goal: PersonalGoalId,
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(PersonalGoalUsage, Award)>> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let owned: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM personal_goals_pg WHERE id = $1 AND user_id = $2")
                .bind(goal)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await?;
        if owned.is_none() {
            return Err(Error::not_found_in("personal goal", "personalGoalId"));
        }
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO personal_goal_usage_pg (user_id, personal_goal_id, used_on) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, personal_goal_id, used_on) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(goal)
        .bind(used_on)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| match violated(&err) {
            Some(v) if v.constraint == "personal_goal_usage_pg_goal_owner_fkey" => {
                Error::not_found_in("personal goal", "personalGoalId")
            }
            _ => Error::from(err),
        })?;
        let result = match inserted {
            Some(row) => Created {
                value: (
                    PersonalGoalUsage::from(row),
                    settle(&mut tx, owner, time_zone, now).await?,
                ),
                created: true,
            },
            None => {
                let row: Row = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM personal_goal_usage_pg WHERE user_id = $1 AND personal_goal_id = $2 AND used_on = $3"
                ))
                .bind(owner)
                .bind(goal)
                .bind(used_on)
                .fetch_one(&mut *tx)
                .await?;
                Created {
                    value: (
                        PersonalGoalUsage::from(row),
                        current_streak(&mut tx, owner, time_zone, now).await?,
                    ),
                    created: false,
                }
            }
        };
        tx.commit().await?;
        Ok(result)
    }
}
