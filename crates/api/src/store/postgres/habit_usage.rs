//! `habit_usage_pg`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::rewards::{begin_usage_write, settle};
use super::usage::{usage_page, InsertUsage};
use super::{violated, PgStore};
use crate::domain::{DateRange, HabitUsageId, MethodId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::habit_usage::{HabitUsage, HabitUsageStore, NewHabitUsage};
use crate::store::usage::ListUsage;

const COLUMNS: &str = "id, user_id, method_id, used_on, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: HabitUsageId,
    user_id: UserId,
    method_id: MethodId,
    used_on: NaiveDate,
    created_at: DateTime<Utc>,
}

impl From<Row> for HabitUsage {
    fn from(row: Row) -> HabitUsage {
        HabitUsage {
            id: row.id,
            user_id: row.user_id,
            method_id: row.method_id,
            used_on: row.used_on,
            created_at: row.created_at,
        }
    }
}

#[async_trait]
impl InsertUsage for NewHabitUsage {
    type Usage = HabitUsage;

    async fn insert(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<Option<HabitUsage>> {
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, method_id, used_on) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(self.method_id)
        .bind(self.used_on)
        .fetch_optional(connection)
        .await
        .map_err(|err| match violated(&err) {
            Some(v) if v.constraint == "habit_usage_pg_method_is_habit" => {
                Error::rule("not_a_habit", "the method is not a habit", Some("methodId"))
            }
            Some(v) if v.constraint == "habit_usage_pg_method_id_fkey" => {
                Error::not_found_in("method", "methodId")
            }
            _ => Error::from(err),
        })?;
        Ok(inserted.map(HabitUsage::from))
    }

    async fn existing(&self, connection: &mut PgConnection, owner: UserId) -> Result<HabitUsage> {
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM habit_usage_pg WHERE user_id = $1 AND method_id = $2 AND used_on = $3"
        ))
        .bind(owner)
        .bind(self.method_id)
        .bind(self.used_on)
        .fetch_one(connection)
        .await?;
        Ok(HabitUsage::from(row))
    }
}

#[async_trait]
impl ListUsage<HabitUsage> for PgStore {
    async fn list(
        &self,
        user: UserId,
        range: DateRange,
        page: &PageRequest,
    ) -> Result<Page<HabitUsage>> {
        let after = page.after_key::<NaiveDate>()?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM habit_usage_pg
              WHERE user_id = $1 AND used_on BETWEEN $2 AND $3
                AND ($4::date IS NULL OR (used_on, id) > ($4, $5))
              ORDER BY used_on, id
              LIMIT $6"
        ))
        .bind(user)
        .bind(range.start())
        .bind(range.end())
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        Ok(usage_page(rows, page))
    }
}

#[async_trait]
impl HabitUsageStore for PgStore {
    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let done = sqlx::query("DELETE FROM habit_usage_pg WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("habit usage"));
        }
        settle(&mut tx, owner, time_zone, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
