//! The reference tables: methods, goals, overtuigingen, companies.

use async_trait::async_trait;
use serde_json::Value;

use super::PgStore;
use crate::domain::{CompanyId, GoalId, MethodId, OvertuigingId};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::reference::{Company, GoalRef, Method, Overtuiging, ReferenceStore};

const METHOD_COLUMNS: &str = "m.id, m.name, m.description, m.duration_minutes, m.is_habit, m.active, m.sort_order,
    coalesce((SELECT json_agg(json_build_object('id', g.id, 'name', g.name) ORDER BY mg.position, g.name)
                FROM reference_method_goals_pg mg JOIN reference_goals_pg g ON g.id = mg.goal_id
               WHERE mg.method_id = m.id), '[]') AS goals";

#[derive(sqlx::FromRow)]
struct MethodRow {
    id: MethodId,
    name: String,
    description: String,
    duration_minutes: Option<i32>,
    is_habit: bool,
    active: bool,
    sort_order: i32,
    goals: Value,
}

fn goal_refs(goals: &Value) -> Vec<GoalRef> {
    goals
        .as_array()
        .map(|goals| {
            goals
                .iter()
                .filter_map(|goal| {
                    Some(GoalRef {
                        id: goal.get("id")?.as_str()?.parse().ok()?,
                        name: goal.get("name")?.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl From<MethodRow> for Method {
    fn from(row: MethodRow) -> Method {
        Method {
            goals: goal_refs(&row.goals),
            id: row.id,
            name: row.name,
            description: row.description,
            duration_minutes: row.duration_minutes,
            is_habit: row.is_habit,
            active: row.active,
            sort_order: row.sort_order,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OvertuigingRow {
    id: OvertuigingId,
    name: String,
    description: String,
    level: i16,
    active: bool,
    goals: Value,
}

#[async_trait]
impl ReferenceStore for PgStore {
    async fn method(&self, id: MethodId) -> Result<Method> {
        let row: Option<MethodRow> = sqlx::query_as(&format!(
            "SELECT {METHOD_COLUMNS} FROM reference_methods_pg m WHERE m.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Method::from)
            .ok_or_else(|| Error::not_found("method"))
    }

    async fn habits(&self, page: &PageRequest) -> Result<Page<Method>> {
        let after = page.after_key::<i32>()?;
        let rows: Vec<MethodRow> = sqlx::query_as(&format!(
            "SELECT {METHOD_COLUMNS} FROM reference_methods_pg m
              WHERE m.is_habit AND m.active AND ($1::integer IS NULL OR (m.sort_order, m.id) > ($1, $2))
              ORDER BY m.sort_order, m.id
              LIMIT $3"
        ))
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(
            rows.into_iter().map(Method::from).collect(),
            page,
            |method| Cursor {
                key: method.sort_order.to_string(),
                id: method.id.0,
            },
        ))
    }

    async fn overtuigingen_by_goals(
        &self,
        goals: &[GoalId],
        page: &PageRequest,
    ) -> Result<Page<Overtuiging>> {
        let after = page.after_key::<i16>()?;
        let rows: Vec<OvertuigingRow> = sqlx::query_as(
            "SELECT o.id, o.name, o.description, o.level, o.active,
                    coalesce((SELECT json_agg(json_build_object('id', g.id, 'name', g.name) ORDER BY og.position, g.name)
                                FROM reference_overtuiging_goals_pg og JOIN reference_goals_pg g ON g.id = og.goal_id
                               WHERE og.overtuiging_id = o.id), '[]') AS goals
               FROM reference_overtuigingen_pg o
              WHERE o.active
                AND EXISTS (SELECT 1 FROM reference_overtuiging_goals_pg og WHERE og.overtuiging_id = o.id AND og.goal_id = ANY($1))
                AND ($2::smallint IS NULL OR (o.level, o.id) > ($2, $3))
              ORDER BY o.level, o.id
              LIMIT $4",
        )
        .bind(goals)
        .bind(after.map(|(key, _)| key))
        .bind(after.map(|(_, id)| id))
        .bind(page.fetch_limit())
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .into_iter()
            .map(|row| Overtuiging {
                goals: goal_refs(&row.goals),
                id: row.id,
                name: row.name,
                description: row.description,
                level: row.level,
                active: row.active,
            })
            .collect();
        Ok(Page::from_rows(items, page, |overtuiging: &Overtuiging| {
            Cursor {
                key: overtuiging.level.to_string(),
                id: overtuiging.id.0,
            }
        }))
    }

    async fn company_by_code(&self, code: &str) -> Result<Option<Company>> {
        let row: Option<(CompanyId, String, String)> = sqlx::query_as(
            "SELECT id, name, code FROM companies_pg WHERE lower(code) = lower($1) AND active",
        )
        .bind(code)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id, name, code)| Company { id, name, code }))
    }
}
