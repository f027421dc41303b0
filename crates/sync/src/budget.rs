//! The deployment's Airtable budget in PostgreSQL: one row per base in
//! `airtable_budgets`, locked for each update and read on the server's
//! clock, so that the API's process and the worker's (and any number of
//! either) take their requests' starts from one budget.

use std::time::Duration;

use airsync_airtable::{BudgetStore, BudgetStoreError, BudgetUpdate};
use futures_util::future::BoxFuture;
use sqlx::PgPool;

/// A [`BudgetStore`] on the deployment's database.
#[derive(Debug, Clone)]
pub struct PgBudgetStore {
    pool: PgPool,
}

impl PgBudgetStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        PgBudgetStore { pool }
    }

    async fn run(&self, base: &str, update: BudgetUpdate<'_>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(serde_json::Value, i64)> = sqlx::query_as(
            "SELECT record, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
               FROM airtable_budgets WHERE base_id = $1 FOR UPDATE",
        )
        .bind(base)
        .fetch_optional(&mut *tx)
        .await?;
        let (stored, now_micros) = match row {
            Some((record, now)) => (Some(record), now),
            None => {
                // The first update of a base: the row is made, or another
                // process made it first and this one waits for its lock.
                sqlx::query(
                    "INSERT INTO airtable_budgets (base_id, record) VALUES ($1, '{}')
                     ON CONFLICT (base_id) DO NOTHING",
                )
                .bind(base)
                .execute(&mut *tx)
                .await?;
                let (record, now): (serde_json::Value, i64) = sqlx::query_as(
                    "SELECT record, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                       FROM airtable_budgets WHERE base_id = $1 FOR UPDATE",
                )
                .bind(base)
                .fetch_one(&mut *tx)
                .await?;
                (Some(record).filter(|r| r != &serde_json::json!({})), now)
            }
        };
        let now = Duration::from_micros(u64::try_from(now_micros).unwrap_or(0));
        let record = update(stored, now);
        sqlx::query("UPDATE airtable_budgets SET record = $2 WHERE base_id = $1")
            .bind(base)
            .bind(record)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

impl BudgetStore for PgBudgetStore {
    fn update<'a>(
        &'a self,
        base: &'a str,
        update: BudgetUpdate<'a>,
    ) -> BoxFuture<'a, Result<(), BudgetStoreError>> {
        Box::pin(async move {
            self.run(base, update)
                .await
                .map_err(|e| BudgetStoreError(format!("PostgreSQL: {e}")))
        })
    }
}
