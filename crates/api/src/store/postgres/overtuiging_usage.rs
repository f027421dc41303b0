//! `overtuiging_usage_pg`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::rewards::{begin_usage_write, current_streak, settle};
use super::{violated, PgStore};
use crate::domain::{OvertuigingId, OvertuigingUsageId, ProgramId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::overtuiging_usage::{
    NewOvertuigingUsage, OvertuigingUsage, OvertuigingUsageStore,
};
use crate::store::{Award, Created};

const COLUMNS: &str = "id, user_id, overtuiging_id, program_id, used_on, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: OvertuigingUsageId,
    user_id: UserId,
    overtuiging_id: OvertuigingId,
    program_id: Option<ProgramId>,
    used_on: NaiveDate,
    created_at: DateTime<Utc>,
}

impl From<Row> for OvertuigingUsage {
    fn from(row: Row) -> OvertuigingUsage {
        OvertuigingUsage {
            id: row.id,
            user_id: row.user_id,
            overtuiging_id: row.overtuiging_id,
            program_id: row.program_id,
            used_on: row.used_on,
            created_at: row.created_at,
        }
    }
}

#[async_trait]
impl OvertuigingUsageStore for PgStore {
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<OvertuigingUsage>> {
        let after = page.after_key::<NaiveDate>()?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM overtuiging_usage_pg
              WHERE user_id = $1 AND ($2::date IS NULL OR (used_on, id) < ($2, $3))
              ORDER BY used_on DESC, id DESC
              LIMIT $4"
        ))
        .bind(user)
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(
            rows.into_iter().map(OvertuigingUsage::from).collect(),
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
        new: NewOvertuigingUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(OvertuigingUsage, Award)>> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM reference_overtuigingen_pg WHERE id = $1")
                .bind(new.overtuiging_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(Error::not_found_in("overtuiging", "overtuigingId"));
        }
        if let Some(program) = new.program_id {
            let owned: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM programs_pg WHERE id = $1 AND user_id = $2")
                    .bind(program)
                    .bind(owner)
                    .fetch_optional(&mut *tx)
                    .await?;
            if owned.is_none() {
                return Err(Error::not_found_in("program", "programId"));
            }
        }
        // The user's row is locked (begin_usage_write), so an identical
        // concurrent post waits here and then finds this one's row.
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO overtuiging_usage_pg (user_id, overtuiging_id, program_id, used_on) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, overtuiging_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(new.overtuiging_id)
        .bind(new.program_id)
        .bind(new.used_on)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|err| match violated(&err) {
            Some(v) if v.constraint == "overtuiging_usage_pg_program_owner_fkey" => Error::not_found_in("program", "programId"),
            Some(v) if v.constraint == "overtuiging_usage_pg_overtuiging_id_fkey" => {
                Error::not_found_in("overtuiging", "overtuigingId")
            }
            _ => Error::from(err),
        })?;
        let result = match inserted {
            Some(row) => Created {
                value: (
                    OvertuigingUsage::from(row),
                    settle(&mut tx, owner, time_zone, now).await?,
                ),
                created: true,
            },
            None => {
                let row: Row = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM overtuiging_usage_pg WHERE user_id = $1 AND overtuiging_id = $2"
                ))
                .bind(owner)
                .bind(new.overtuiging_id)
                .fetch_one(&mut *tx)
                .await?;
                Created {
                    value: (
                        OvertuigingUsage::from(row),
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
