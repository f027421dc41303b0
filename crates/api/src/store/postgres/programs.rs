//! `programs_pg` and its link tables (goals, methods, days).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::schedule::{self, CompletionScope};
use super::{users, violated, PgStore};
use crate::domain::Scope;
use crate::domain::{
    DateRange, DayId, GoalId, MethodId, ProgramId, ScheduleDayId, UserId, MAX_PROGRAM_DAYS,
};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::rules::schedule::{planned_dates, regeneration};
use crate::store::programs::{
    NewProgram, Program, ProgramDetail, ProgramPatch, ProgramStore, Progress, ScheduleDay,
    ScheduleDayPatch,
};

const PROGRAM_COLUMNS: &str = "p.id, p.user_id, p.name, p.start_date, p.end_date, p.notes, p.created_at, p.updated_at,
    coalesce((SELECT array_agg(goal_id ORDER BY position, goal_id) FROM program_goals_pg WHERE program_id = p.id), '{}') AS goal_ids,
    coalesce((SELECT array_agg(method_id ORDER BY position, method_id) FROM program_methods_pg WHERE program_id = p.id), '{}') AS method_ids,
    coalesce((SELECT array_agg(pd.day_id ORDER BY d.weekday) FROM program_days_pg pd
               JOIN reference_days_pg d ON d.id = pd.day_id WHERE pd.program_id = p.id), '{}') AS day_ids";

#[derive(sqlx::FromRow)]
struct ProgramRow {
    id: ProgramId,
    user_id: UserId,
    name: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    notes: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    goal_ids: Vec<GoalId>,
    method_ids: Vec<MethodId>,
    day_ids: Vec<DayId>,
}

impl From<ProgramRow> for Program {
    fn from(row: ProgramRow) -> Program {
        Program {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            goal_ids: row.goal_ids,
            method_ids: row.method_ids,
            day_ids: row.day_ids,
            start_date: row.start_date,
            end_date: row.end_date,
            notes: row.notes,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A user's programs, latest start first.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    user: UserId,
    page: &PageRequest,
) -> Result<Page<Program>> {
    let after = page.after_key::<NaiveDate>()?;
    let rows: Vec<ProgramRow> = sqlx::query_as(&format!(
        "SELECT {PROGRAM_COLUMNS} FROM programs_pg p
          WHERE p.user_id = $1 AND ($2::date IS NULL OR (p.start_date, p.id) < ($2, $3))
          ORDER BY p.start_date DESC, p.id DESC
          LIMIT $4"
    ))
    .bind(user)
    .bind(after.map(|(key, _)| key))
    .bind(after.map(|(_, id)| id))
    .bind(page.fetch_limit())
    .fetch_all(executor)
    .await?;
    Ok(Page::from_rows(
        rows.into_iter().map(Program::from).collect(),
        page,
        |program| Cursor {
            key: program.start_date.to_string(),
            id: program.id.0,
        },
    ))
}

/// A program visible in `scope`, with its owner's time zone.
async fn find(
    connection: &mut PgConnection,
    scope: Scope,
    id: ProgramId,
    lock: bool,
) -> Result<Option<Program>> {
    let row: Option<ProgramRow> = sqlx::query_as(&format!(
        "SELECT {PROGRAM_COLUMNS} FROM programs_pg p
          WHERE p.id = $1 AND ($2::uuid IS NULL OR p.user_id = $2) {}",
        if lock { "FOR UPDATE OF p" } else { "" }
    ))
    .bind(id)
    .bind(scope.owner())
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Program::from))
}

/// Checks that every id names a row of `table`; the 404 names `field`.
async fn require_all(
    connection: &mut PgConnection,
    table: &'static str,
    ids: &[Uuid],
    what: &'static str,
    field: &'static str,
) -> Result<()> {
    let found: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE id = ANY($1)"))
            .bind(ids)
            .fetch_one(connection)
            .await?;
    if found as usize == ids.len() {
        Ok(())
    } else {
        Err(Error::not_found_in(what, field))
    }
}

/// The ISO weekdays of days of the week, checking that each exists.
async fn weekdays(connection: &mut PgConnection, days: &[DayId]) -> Result<Vec<u32>> {
    let weekdays: Vec<i16> =
        sqlx::query_scalar("SELECT weekday FROM reference_days_pg WHERE id = ANY($1)")
            .bind(days)
            .fetch_all(connection)
            .await?;
    if weekdays.len() != days.len() {
        return Err(Error::not_found_in("day", "dayIds"));
    }
    Ok(weekdays
        .into_iter()
        .filter_map(|day| u32::try_from(day).ok())
        .collect())
}

fn raw_ids<T: Copy>(ids: &[T], to_uuid: impl Fn(T) -> Uuid) -> Vec<Uuid> {
    ids.iter().copied().map(to_uuid).collect()
}

async fn replace_links(
    connection: &mut PgConnection,
    table: &str,
    column: &str,
    program: ProgramId,
    ids: &[Uuid],
    ordered: bool,
) -> Result<()> {
    sqlx::query(&format!("DELETE FROM {table} WHERE program_id = $1"))
        .bind(program)
        .execute(&mut *connection)
        .await?;
    let insert = if ordered {
        format!(
            "INSERT INTO {table} (program_id, {column}, position)
             SELECT $1, l.id, l.ord::integer FROM unnest($2::uuid[]) WITH ORDINALITY AS l(id, ord)"
        )
    } else {
        format!("INSERT INTO {table} (program_id, {column}) SELECT $1, unnest($2::uuid[])")
    };
    sqlx::query(&insert)
        .bind(program)
        .bind(ids)
        .execute(connection)
        .await?;
    Ok(())
}

/// Maps a write's error: the overlap exclusion is a 409 naming the program in
/// the way (looked up after the failed transaction is gone).
async fn overlap_or<'e>(
    executor: impl PgExecutor<'e>,
    err: Error,
    owner: UserId,
    this: Option<ProgramId>,
    dates: DateRange,
) -> Error {
    let Error::Internal(cause) = &err else {
        return err;
    };
    let Some(sqlx_err) = cause.downcast_ref::<sqlx::Error>() else {
        return err;
    };
    match violated(sqlx_err) {
        Some(v) if v.constraint == "programs_pg_no_overlap" => {
            let clashing: Option<ProgramId> = sqlx::query_scalar(
                "SELECT id FROM programs_pg
                  WHERE user_id = $1 AND daterange(start_date, end_date, '[]') && daterange($2, $3, '[]')
                    AND ($4::uuid IS NULL OR id <> $4)
                  ORDER BY start_date LIMIT 1",
            )
            .bind(owner)
            .bind(dates.start())
            .bind(dates.end())
            .bind(this)
            .fetch_optional(executor)
            .await
            .ok()
            .flatten();
            Error::Conflict {
                code: "program_overlap",
                message: "the dates overlap another program of yours".into(),
                conflicting_id: clashing.map(|id| id.0),
            }
        }
        _ => err,
    }
}

async fn detail(
    connection: &mut PgConnection,
    program: Program,
    now: DateTime<Utc>,
) -> Result<ProgramDetail> {
    let today = users::time_zone(&mut *connection, program.user_id)
        .await?
        .today(now);
    let schedule = schedule::days_of_program(connection, program.id).await?;
    let progress = Progress::of(&schedule, today);
    Ok(ProgramDetail {
        program,
        schedule,
        progress,
    })
}

async fn create_in(
    connection: &mut PgConnection,
    owner: UserId,
    new: &NewProgram,
) -> Result<ProgramId> {
    require_all(
        connection,
        "reference_goals_pg",
        &raw_ids(&new.goal_ids, |id| id.0),
        "goal",
        "goalIds",
    )
    .await?;
    require_all(
        connection,
        "reference_methods_pg",
        &raw_ids(&new.method_ids, |id| id.0),
        "method",
        "methodIds",
    )
    .await?;
    let weekdays = weekdays(connection, &new.day_ids).await?;
    let id: ProgramId = sqlx::query_scalar(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date, notes) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(owner)
    .bind(new.name.as_str())
    .bind(new.dates.start())
    .bind(new.dates.end())
    .bind(new.notes.as_str())
    .fetch_one(&mut *connection)
    .await?;
    replace_links(
        connection,
        "program_goals_pg",
        "goal_id",
        id,
        &raw_ids(&new.goal_ids, |id| id.0),
        true,
    )
    .await?;
    replace_links(
        connection,
        "program_methods_pg",
        "method_id",
        id,
        &raw_ids(&new.method_ids, |id| id.0),
        true,
    )
    .await?;
    replace_links(
        connection,
        "program_days_pg",
        "day_id",
        id,
        &raw_ids(&new.day_ids, |id| id.0),
        false,
    )
    .await?;
    let dates = planned_dates(new.dates, &weekdays);
    schedule::insert_days(connection, id, &dates, &new.method_ids).await?;
    schedule::refresh_completed(connection, CompletionScope::Program(id)).await?;
    Ok(id)
}

async fn update_in(
    connection: &mut PgConnection,
    owner: UserId,
    id: ProgramId,
    patch: &ProgramPatch,
    dates: DateRange,
    now: DateTime<Utc>,
) -> Result<()> {
    let current = find(connection, Scope::Owner(owner), id, true)
        .await?
        .ok_or_else(|| Error::not_found("program"))?;
    if let Some(goals) = &patch.goal_ids {
        require_all(
            connection,
            "reference_goals_pg",
            &raw_ids(goals, |id| id.0),
            "goal",
            "goalIds",
        )
        .await?;
    }
    if let Some(methods) = &patch.method_ids {
        require_all(
            connection,
            "reference_methods_pg",
            &raw_ids(methods, |id| id.0),
            "method",
            "methodIds",
        )
        .await?;
    }
    let days = patch
        .day_ids
        .clone()
        .unwrap_or_else(|| current.day_ids.clone());
    let weekdays = weekdays(connection, &days).await?;
    sqlx::query("UPDATE programs_pg SET name = $2, start_date = $3, end_date = $4, notes = $5 WHERE id = $1")
        .bind(id)
        .bind(patch.name.as_ref().map_or(current.name.as_str(), |name| name.as_str()))
        .bind(dates.start())
        .bind(dates.end())
        .bind(patch.notes.as_ref().map_or(current.notes.as_str(), |notes| notes.as_str()))
        .execute(&mut *connection)
        .await?;
    if let Some(goals) = &patch.goal_ids {
        if *goals != current.goal_ids {
            replace_links(
                connection,
                "program_goals_pg",
                "goal_id",
                id,
                &raw_ids(goals, |id| id.0),
                true,
            )
            .await?;
        }
    }
    let methods_changed = patch
        .method_ids
        .as_ref()
        .is_some_and(|methods| *methods != current.method_ids);
    let methods = patch
        .method_ids
        .clone()
        .unwrap_or_else(|| current.method_ids.clone());
    if methods_changed {
        replace_links(
            connection,
            "program_methods_pg",
            "method_id",
            id,
            &raw_ids(&methods, |id| id.0),
            true,
        )
        .await?;
    }
    let days_changed = patch.day_ids.as_ref().is_some_and(|new| {
        let mut new = new.clone();
        let mut old = current.day_ids.clone();
        new.sort();
        old.sort();
        new != old
    });
    if days_changed {
        replace_links(
            connection,
            "program_days_pg",
            "day_id",
            id,
            &raw_ids(&days, |id| id.0),
            false,
        )
        .await?;
    }
    let dates_changed = dates.start() != current.start_date || dates.end() != current.end_date;
    if dates_changed || days_changed || methods_changed {
        // The past stays as it was; from today on the schedule follows the
        // new plan (docs/domain.md, "Programs").
        let today = users::time_zone(&mut *connection, owner).await?.today(now);
        let existing = schedule::dates(connection, id).await?;
        let planned = planned_dates(dates, &weekdays);
        let (remove, add) = regeneration(&existing, &planned, today);
        schedule::delete_days(connection, id, &remove).await?;
        if methods_changed {
            sqlx::query(
                "INSERT INTO program_schedule_pg (program_id, date) SELECT $1, unnest($2::date[])",
            )
            .bind(id)
            .bind(&add)
            .execute(&mut *connection)
            .await?;
            schedule::replan_from(connection, id, today, &methods).await?;
        } else {
            schedule::insert_days(connection, id, &add, &methods).await?;
        }
        schedule::refresh_completed(connection, CompletionScope::Program(id)).await?;
    }
    Ok(())
}

#[async_trait]
impl ProgramStore for PgStore {
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<Program>> {
        list(self.pool(), user, page).await
    }

    async fn create(
        &self,
        owner: UserId,
        new: NewProgram,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        let mut tx = self.pool().begin().await?;
        let id = match create_in(&mut tx, owner, &new).await {
            Ok(id) => id,
            Err(err) => {
                drop(tx);
                return Err(overlap_or(self.pool(), err, owner, None, new.dates).await);
            }
        };
        if let Err(err) = tx.commit().await {
            return Err(overlap_or(self.pool(), err.into(), owner, None, new.dates).await);
        }
        let mut connection = self.pool().acquire().await?;
        let program = find(&mut connection, Scope::Owner(owner), id, false)
            .await?
            .ok_or_else(|| Error::invariant("a program vanished right after it was created"))?;
        detail(&mut connection, program, now).await
    }

    async fn get(&self, scope: Scope, id: ProgramId, now: DateTime<Utc>) -> Result<ProgramDetail> {
        let mut connection = self.pool().acquire().await?;
        let program = find(&mut connection, scope, id, false)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        detail(&mut connection, program, now).await
    }

    async fn update(
        &self,
        owner: UserId,
        id: ProgramId,
        patch: ProgramPatch,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        let mut tx = self.pool().begin().await?;
        let current = find(&mut tx, Scope::Owner(owner), id, false)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        let start = patch.start_date.unwrap_or(current.start_date);
        let end = patch.end_date.unwrap_or(current.end_date);
        let blamed = if patch.end_date.is_some() {
            "endDate"
        } else {
            "startDate"
        };
        let dates = DateRange::new(start, end, MAX_PROGRAM_DAYS)
            .map_err(|message| Error::invalid(blamed, message))?;
        if let Err(err) = update_in(&mut tx, owner, id, &patch, dates, now).await {
            drop(tx);
            return Err(overlap_or(self.pool(), err, owner, Some(id), dates).await);
        }
        if let Err(err) = tx.commit().await {
            return Err(overlap_or(self.pool(), err.into(), owner, Some(id), dates).await);
        }
        self.get(Scope::Owner(owner), id, now).await
    }

    async fn delete(&self, owner: UserId, id: ProgramId) -> Result<()> {
        let done = sqlx::query("DELETE FROM programs_pg WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(owner)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("program"));
        }
        Ok(())
    }

    async fn update_schedule_day(
        &self,
        owner: UserId,
        program: ProgramId,
        day: ScheduleDayId,
        patch: ScheduleDayPatch,
    ) -> Result<ScheduleDay> {
        let mut tx = self.pool().begin().await?;
        let found: Option<NaiveDate> = sqlx::query_scalar(
            "SELECT s.date FROM program_schedule_pg s JOIN programs_pg p ON p.id = s.program_id
              WHERE s.id = $1 AND s.program_id = $2 AND p.user_id = $3
              FOR UPDATE OF s",
        )
        .bind(day)
        .bind(program)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(Error::not_found("schedule day"));
        }
        if let Some(notes) = &patch.notes {
            schedule::set_day_notes(&mut tx, day, notes.as_str()).await?;
        }
        if let Some(methods) = &patch.method_ids {
            require_all(
                &mut tx,
                "reference_methods_pg",
                &raw_ids(methods, |id| id.0),
                "method",
                "methodIds",
            )
            .await?;
            schedule::replace_day_methods(&mut tx, day, methods).await?;
            schedule::refresh_completed(&mut tx, CompletionScope::Program(program)).await?;
        }
        let updated = schedule::day(&mut tx, day)
            .await?
            .ok_or_else(|| Error::invariant("a schedule day vanished while it was locked"))?;
        tx.commit().await?;
        Ok(updated)
    }
}
