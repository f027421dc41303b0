//! `personal_goals_pg`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rewards::{begin_usage_write, settle};
use super::{violated, PgStore};
use crate::domain::Scope;
use crate::domain::{PersonalGoalId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::personal_goals::{
    NewPersonalGoal, PersonalGoal, PersonalGoalPatch, PersonalGoalStore,
};

const COLUMNS: &str = "id, user_id, name, description, active, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: PersonalGoalId,
    user_id: UserId,
    name: String,
    description: String,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for PersonalGoal {
    fn from(row: Row) -> PersonalGoal {
        PersonalGoal {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            description: row.description,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn map_write_error(err: sqlx::Error) -> Error {
    match violated(&err) {
        Some(v) if v.constraint == "personal_goals_pg_max_active" => Error::rule(
            "too_many_active_goals",
            "you can have at most 10 active personal goals",
            Some("active"),
        ),
        _ => Error::from(err),
    }
}

#[async_trait]
impl PersonalGoalStore for PgStore {
    async fn list(
        &self,
        user: UserId,
        active: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoal>> {
        let after = page.after_key::<DateTime<Utc>>()?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM personal_goals_pg
              WHERE user_id = $1 AND ($2::boolean IS NULL OR active = $2)
                AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
              ORDER BY created_at, id
              LIMIT $5"
        ))
        .bind(user)
        .bind(active)
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(
            rows.into_iter().map(PersonalGoal::from).collect(),
            page,
            |goal| Cursor {
                key: goal.created_at.to_rfc3339(),
                id: goal.id.0,
            },
        ))
    }

    async fn create(&self, owner: UserId, new: NewPersonalGoal) -> Result<PersonalGoal> {
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO personal_goals_pg (user_id, name, description, active) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(new.name.as_str())
        .bind(new.description.as_str())
        .bind(new.active)
        .fetch_one(self.pool())
        .await
        .map_err(map_write_error)?;
        Ok(row.into())
    }

    async fn get(&self, scope: Scope, id: PersonalGoalId) -> Result<PersonalGoal> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM personal_goals_pg WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
        ))
        .bind(id)
        .bind(scope.owner())
        .fetch_optional(self.pool())
        .await?;
        row.map(PersonalGoal::from)
            .ok_or_else(|| Error::not_found("personal goal"))
    }

    async fn update(
        &self,
        owner: UserId,
        id: PersonalGoalId,
        patch: PersonalGoalPatch,
    ) -> Result<PersonalGoal> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE personal_goals_pg
                SET name = coalesce($3, name), description = coalesce($4, description), active = coalesce($5, active)
              WHERE id = $1 AND user_id = $2
              RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(owner)
        .bind(patch.name.as_ref().map(|name| name.as_str()))
        .bind(patch.description.as_ref().map(|description| description.as_str()))
        .bind(patch.active)
        .fetch_optional(self.pool())
        .await
        .map_err(map_write_error)?;
        row.map(PersonalGoal::from)
            .ok_or_else(|| Error::not_found("personal goal"))
    }

    async fn delete(&self, owner: UserId, id: PersonalGoalId, now: DateTime<Utc>) -> Result<()> {
        // Its usage goes with it (the foreign key cascades): a usage write,
        // so the user's row is locked and the rewards settled again.
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let done = sqlx::query("DELETE FROM personal_goals_pg WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("personal goal"));
        }
        settle(&mut tx, owner, time_zone, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
