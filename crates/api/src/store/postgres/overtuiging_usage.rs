//! `overtuiging_usage_pg`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::usage::{usage_page, InsertUsage};
use super::{violated, PgStore};
use crate::domain::{OvertuigingId, OvertuigingUsageId, ProgramId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::overtuiging_usage::{NewOvertuigingUsage, OvertuigingUsage};
use crate::store::usage::ListUsage;

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
impl InsertUsage for NewOvertuigingUsage {
    type Usage = OvertuigingUsage;

    async fn insert(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<Option<OvertuigingUsage>> {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM reference_overtuigingen_pg WHERE id = $1")
                .bind(self.overtuiging_id)
                .fetch_optional(&mut *connection)
                .await?;
        if exists.is_none() {
            return Err(Error::not_found_in("overtuiging", "overtuigingId"));
        }
        if let Some(program) = self.program_id {
            let owned: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM programs_pg WHERE id = $1 AND user_id = $2")
                    .bind(program)
                    .bind(owner)
                    .fetch_optional(&mut *connection)
                    .await?;
            if owned.is_none() {
                return Err(Error::not_found_in("program", "programId"));
            }
        }
        let inserted: Option<Row> = sqlx::query_as(&format!(
            "INSERT INTO overtuiging_usage_pg (user_id, overtuiging_id, program_id, used_on) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, overtuiging_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(self.overtuiging_id)
        .bind(self.program_id)
        .bind(self.used_on)
        .fetch_optional(connection)
        .await
        .map_err(|err| match violated(&err) {
            Some(v) if v.constraint == "overtuiging_usage_pg_program_owner_fkey" => Error::not_found_in("program", "programId"),
            Some(v) if v.constraint == "overtuiging_usage_pg_overtuiging_id_fkey" => {
                Error::not_found_in("overtuiging", "overtuigingId")
            }
            _ => Error::from(err),
        })?;
        Ok(inserted.map(OvertuigingUsage::from))
    }

    async fn existing(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<OvertuigingUsage> {
        let row: Row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM overtuiging_usage_pg WHERE user_id = $1 AND overtuiging_id = $2"
        ))
        .bind(owner)
        .bind(self.overtuiging_id)
        .fetch_one(connection)
        .await?;
        Ok(OvertuigingUsage::from(row))
    }
}

#[async_trait]
impl ListUsage<OvertuigingUsage> for PgStore {
    async fn list(
        &self,
        user: UserId,
        _filter: (),
        page: &PageRequest,
    ) -> Result<Page<OvertuigingUsage>> {
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
        Ok(usage_page(rows, page))
    }
}
