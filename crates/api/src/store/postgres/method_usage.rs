//! `method_usage_pg`, and `api_idempotency_keys` for its posts.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::rewards::{begin_usage_write, current_streak, settle};
use super::schedule::{self, CompletionScope};
use super::{violated, PgStore};
use crate::domain::Scope;
use crate::domain::{MethodId, MethodUsageId, ProgramId, ProgramRef, ScheduleDayId, UserId};
use crate::error::{Error, Result};
use crate::store::method_usage::{
    check_on_schedule_day, IdempotencyKey, MethodUsage, MethodUsagePatch, MethodUsageStore,
    NewMethodUsage,
};
use crate::store::usage::{Award, RecordUsage};
use crate::store::Created;

const ROUTE: &str = "POST /api/method-usage";

const COLUMNS: &str =
    "id, user_id, method_id, program_id, schedule_day_id, used_on, remark, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: MethodUsageId,
    user_id: UserId,
    method_id: MethodId,
    program_id: Option<ProgramId>,
    schedule_day_id: Option<ScheduleDayId>,
    used_on: NaiveDate,
    remark: String,
    created_at: DateTime<Utc>,
}

impl From<Row> for MethodUsage {
    fn from(row: Row) -> MethodUsage {
        MethodUsage {
            id: row.id,
            user_id: row.user_id,
            method_id: row.method_id,
            program_id: row.program_id,
            schedule_day_id: row.schedule_day_id,
            used_on: row.used_on,
            remark: row.remark,
            created_at: row.created_at,
        }
    }
}

async fn find(
    connection: &mut PgConnection,
    owner: UserId,
    id: MethodUsageId,
) -> Result<Option<MethodUsage>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM method_usage_pg WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(MethodUsage::from))
}

/// How long an idempotency key is kept: a client that repeats a post
/// later than this makes a new usage.
pub(crate) const IDEMPOTENCY_KEPT_DAYS: i32 = 30;

/// How many expired keys one post removes at most, so that the purge's
/// work per request stays small while it keeps up with the posts.
const PURGED_PER_POST: i64 = 100;

/// Removes up to [`PURGED_PER_POST`] keys older than
/// [`IDEMPOTENCY_KEPT_DAYS`], of any user. Keys another transaction holds
/// are skipped, so posts of different users never wait on each other.
pub(crate) async fn purge_expired_keys(connection: &mut PgConnection) -> Result<()> {
    sqlx::query(
        "DELETE FROM api_idempotency_keys WHERE (user_id, route, key) IN (
             SELECT user_id, route, key FROM api_idempotency_keys
              WHERE created_at < now() - make_interval(days => $1)
              ORDER BY created_at LIMIT $2
                FOR UPDATE SKIP LOCKED)",
    )
    .bind(IDEMPOTENCY_KEPT_DAYS)
    .bind(PURGED_PER_POST)
    .execute(connection)
    .await?;
    Ok(())
}

/// Claims an idempotency key for this request, or returns the usage an
/// earlier request with the key made. The user's row is locked already, so
/// a concurrent repeat waits for the first to commit and then sees its key.
async fn claim_key(
    connection: &mut PgConnection,
    owner: UserId,
    key: &IdempotencyKey,
) -> Result<Option<MethodUsageId>> {
    purge_expired_keys(&mut *connection).await?;
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO api_idempotency_keys (user_id, route, key, request_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(owner)
    .bind(ROUTE)
    .bind(&key.key)
    .bind(&key.request_hash)
    .fetch_optional(&mut *connection)
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    let (request_hash, response): (String, Option<serde_json::Value>) = sqlx::query_as(
        "SELECT request_hash, response FROM api_idempotency_keys WHERE user_id = $1 AND route = $2 AND key = $3",
    )
    .bind(owner)
    .bind(ROUTE)
    .bind(&key.key)
    .fetch_one(connection)
    .await?;
    if request_hash != key.request_hash {
        return Err(Error::rule(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
            None,
        ));
    }
    let id = response
        .as_ref()
        .and_then(|response| response.get("usageId"))
        .and_then(|id| id.as_str())
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| Error::invariant("an idempotency key without its answer"))?;
    Ok(Some(id))
}

async fn check_links(
    connection: &mut PgConnection,
    owner: UserId,
    new: &mut NewMethodUsage,
) -> Result<()> {
    let method: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM reference_methods_pg WHERE id = $1")
            .bind(new.method_id)
            .fetch_optional(&mut *connection)
            .await?;
    if method.is_none() {
        return Err(Error::not_found_in("method", "methodId"));
    }
    if let Some(day) = new.schedule_day_id {
        let found: Option<(ProgramId, NaiveDate)> = sqlx::query_as(
            "SELECT s.program_id, s.date FROM program_schedule_pg s JOIN programs_pg p ON p.id = s.program_id
              WHERE s.id = $1 AND p.user_id = $2",
        )
        .bind(day)
        .bind(owner)
        .fetch_optional(&mut *connection)
        .await?;
        let (program, date) =
            found.ok_or_else(|| Error::not_found_in("schedule day", "scheduleDayId"))?;
        match new.program_id {
            None => new.program_id = Some(program),
            Some(given) if given == program => {}
            Some(_) => {
                return Err(Error::rule(
                    "schedule_day_not_in_program",
                    "the schedule day belongs to another program",
                    Some("scheduleDayId"),
                ))
            }
        }
        check_on_schedule_day(date, new.used_on, "usedOn")?;
    }
    if let Some(program) = new.program_id {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM programs_pg WHERE id = $1 AND user_id = $2")
                .bind(program)
                .bind(owner)
                .fetch_optional(&mut *connection)
                .await?;
        if found.is_none() {
            return Err(Error::not_found_in("program", "programId"));
        }
    }
    Ok(())
}

fn map_write_error(err: sqlx::Error) -> Error {
    match violated(&err) {
        // A program or schedule day deleted between the check and the write.
        Some(v) if v.constraint == "method_usage_pg_program_owner_fkey" => {
            Error::not_found_in("program", "programId")
        }
        Some(v) if v.constraint == "method_usage_pg_schedule_day_id_fkey" => {
            Error::not_found_in("schedule day", "scheduleDayId")
        }
        Some(v) if v.constraint == "method_usage_pg_method_id_fkey" => {
            Error::not_found_in("method", "methodId")
        }
        _ => Error::from(err),
    }
}

/// Records a usage, keeps schedule days' completion and the user's rewards
/// in step, in one transaction.
#[async_trait]
impl RecordUsage<MethodUsage> for PgStore {
    async fn create(
        &self,
        owner: UserId,
        mut new: NewMethodUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(MethodUsage, Award)>> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        if let Some(key) = &new.idempotency {
            if let Some(earlier) = claim_key(&mut tx, owner, key).await? {
                let usage = find(&mut tx, owner, earlier)
                    .await?
                    .ok_or_else(|| Error::not_found("method usage"))?;
                let award = current_streak(&mut tx, owner, time_zone, now).await?;
                tx.commit().await?;
                return Ok(Created {
                    value: (usage, award),
                    created: false,
                });
            }
        }
        check_links(&mut tx, owner, &mut new).await?;
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO method_usage_pg (user_id, method_id, program_id, schedule_day_id, used_on, remark)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        ))
        .bind(owner)
        .bind(new.method_id)
        .bind(new.program_id)
        .bind(new.schedule_day_id)
        .bind(new.used_on)
        .bind(new.remark.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_write_error)?;
        let usage = MethodUsage::from(row);
        schedule::refresh_completed(&mut tx, CompletionScope::UserDates(owner, &[usage.used_on]))
            .await?;
        let award = settle(&mut tx, owner, time_zone, now).await?;
        if let Some(key) = &new.idempotency {
            sqlx::query(
                "UPDATE api_idempotency_keys SET status = 201, response = $4 WHERE user_id = $1 AND route = $2 AND key = $3",
            )
            .bind(owner)
            .bind(ROUTE)
            .bind(&key.key)
            .bind(serde_json::json!({ "usageId": usage.id }))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Created {
            value: (usage, award),
            created: true,
        })
    }
}

#[async_trait]
impl MethodUsageStore for PgStore {
    async fn update(
        &self,
        owner: UserId,
        id: MethodUsageId,
        patch: MethodUsagePatch,
        now: DateTime<Utc>,
    ) -> Result<MethodUsage> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let current = find(&mut tx, owner, id)
            .await?
            .ok_or_else(|| Error::not_found("method usage"))?;
        if let (Some(day), Some(used_on)) = (current.schedule_day_id, patch.used_on) {
            let date: Option<NaiveDate> =
                sqlx::query_scalar("SELECT date FROM program_schedule_pg WHERE id = $1")
                    .bind(day)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(date) = date {
                check_on_schedule_day(date, used_on, "usedOn")?;
            }
        }
        let row: Row = sqlx::query_as(&format!(
            "UPDATE method_usage_pg SET used_on = $3, remark = $4 WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(owner)
        .bind(patch.used_on.unwrap_or(current.used_on))
        .bind(patch.remark.as_ref().map_or(current.remark.as_str(), |remark| remark.as_str()))
        .fetch_one(&mut *tx)
        .await?;
        let usage = MethodUsage::from(row);
        if usage.used_on != current.used_on {
            schedule::refresh_completed(
                &mut tx,
                CompletionScope::UserDates(owner, &[current.used_on, usage.used_on]),
            )
            .await?;
            settle(&mut tx, owner, time_zone, now).await?;
        }
        tx.commit().await?;
        Ok(usage)
    }

    async fn latest_by_program(
        &self,
        scope: Scope,
        program: ProgramRef,
    ) -> Result<Vec<MethodUsage>> {
        let mut connection = self.pool().acquire().await?;
        let (by_id, by_record) = match &program {
            ProgramRef::Id(id) => (Some(*id), None),
            ProgramRef::Record(record) => (None, Some(record.as_str())),
        };
        let program: Option<ProgramId> = sqlx::query_scalar(
            "SELECT p.id FROM programs_pg p
              WHERE ($3::text IS NULL AND p.id = $1
                     OR p.id = (SELECT row_id FROM airtable_id_map
                                 WHERE entity = 'program' AND airtable_id = $3))
                AND ($2::uuid IS NULL OR p.user_id = $2)",
        )
        .bind(by_id)
        .bind(scope.owner())
        .bind(by_record)
        .fetch_optional(&mut *connection)
        .await?;
        let program = program.ok_or_else(|| Error::not_found_in("program", "programId"))?;
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT DISTINCT ON (method_id) {COLUMNS} FROM method_usage_pg
              WHERE program_id = $1
              ORDER BY method_id, used_on DESC, created_at DESC, id DESC"
        ))
        .bind(program)
        .fetch_all(&mut *connection)
        .await?;
        let mut usages: Vec<MethodUsage> = rows.into_iter().map(MethodUsage::from).collect();
        usages.sort_by(|a, b| {
            b.used_on
                .cmp(&a.used_on)
                .then(a.method_id.cmp(&b.method_id))
        });
        Ok(usages)
    }
}
