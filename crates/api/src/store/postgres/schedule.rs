//! `program_schedule_pg` and `program_schedule_methods_pg`: a program's
//! planned days, their methods, and their stored completion.

use chrono::NaiveDate;
use sqlx::PgConnection;

use crate::domain::{MethodId, ProgramId, ScheduleDayId, UserId};
use crate::error::Result;
use crate::store::programs::ScheduleDay;

/// Whether every planned method of schedule day `s` (of a program of user
/// `p.user_id`) has a method usage on its date. Shared by the reads and by
/// the stored `completed` flag so that both say the same.
const COMPLETED_EXPR: &str = "(count(sm.method_id) > 0 AND bool_and(EXISTS (
        SELECT 1 FROM method_usage_pg mu
         WHERE mu.user_id = p.user_id AND mu.method_id = sm.method_id AND mu.used_on = s.date)))";

#[derive(sqlx::FromRow)]
struct ScheduleDayRow {
    id: ScheduleDayId,
    program_id: ProgramId,
    date: NaiveDate,
    notes: String,
    method_ids: Vec<MethodId>,
    completed: bool,
}

impl From<ScheduleDayRow> for ScheduleDay {
    fn from(row: ScheduleDayRow) -> ScheduleDay {
        ScheduleDay {
            id: row.id,
            program_id: row.program_id,
            date: row.date,
            method_ids: row.method_ids,
            notes: row.notes,
            completed: row.completed,
        }
    }
}

fn select_days(filter: &str) -> String {
    format!(
        "SELECT s.id, s.program_id, s.date, s.notes,
                coalesce(array_agg(sm.method_id ORDER BY sm.position, sm.method_id)
                         FILTER (WHERE sm.method_id IS NOT NULL), '{{}}') AS method_ids,
                {COMPLETED_EXPR} AS completed
           FROM program_schedule_pg s
           JOIN programs_pg p ON p.id = s.program_id
           LEFT JOIN program_schedule_methods_pg sm ON sm.schedule_day_id = s.id
          WHERE {filter}
          GROUP BY s.id
          ORDER BY s.date"
    )
}

/// A program's schedule, by date, with completion computed from usage.
pub async fn days_of_program(
    connection: &mut PgConnection,
    program: ProgramId,
) -> Result<Vec<ScheduleDay>> {
    let rows: Vec<ScheduleDayRow> = sqlx::query_as(&select_days("s.program_id = $1"))
        .bind(program)
        .fetch_all(connection)
        .await?;
    Ok(rows.into_iter().map(ScheduleDay::from).collect())
}

pub async fn day(connection: &mut PgConnection, id: ScheduleDayId) -> Result<Option<ScheduleDay>> {
    let row: Option<ScheduleDayRow> = sqlx::query_as(&select_days("s.id = $1"))
        .bind(id)
        .fetch_optional(connection)
        .await?;
    Ok(row.map(ScheduleDay::from))
}

/// The dates a program's schedule has.
pub async fn dates(connection: &mut PgConnection, program: ProgramId) -> Result<Vec<NaiveDate>> {
    Ok(sqlx::query_scalar(
        "SELECT date FROM program_schedule_pg WHERE program_id = $1 ORDER BY date",
    )
    .bind(program)
    .fetch_all(connection)
    .await?)
}

/// Adds planned days, each planned with `methods`.
pub async fn insert_days(
    connection: &mut PgConnection,
    program: ProgramId,
    dates: &[NaiveDate],
    methods: &[MethodId],
) -> Result<()> {
    if dates.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO program_schedule_pg (program_id, date) SELECT $1, unnest($2::date[])")
        .bind(program)
        .bind(dates)
        .execute(&mut *connection)
        .await?;
    plan_methods(connection, program, dates, methods).await
}

/// Plans `methods` on the program's days at `dates` (which have none yet).
async fn plan_methods(
    connection: &mut PgConnection,
    program: ProgramId,
    dates: &[NaiveDate],
    methods: &[MethodId],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO program_schedule_methods_pg (schedule_day_id, method_id, position)
         SELECT s.id, m.method_id, m.ord::integer
           FROM program_schedule_pg s
          CROSS JOIN unnest($3::uuid[]) WITH ORDINALITY AS m(method_id, ord)
          WHERE s.program_id = $1 AND s.date = ANY($2)",
    )
    .bind(program)
    .bind(dates)
    .bind(methods)
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes planned days.
pub async fn delete_days(
    connection: &mut PgConnection,
    program: ProgramId,
    dates: &[NaiveDate],
) -> Result<()> {
    if dates.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM program_schedule_pg WHERE program_id = $1 AND date = ANY($2)")
        .bind(program)
        .bind(dates)
        .execute(connection)
        .await?;
    Ok(())
}

/// Replans every day from `from` on with `methods`.
pub async fn replan_from(
    connection: &mut PgConnection,
    program: ProgramId,
    from: NaiveDate,
    methods: &[MethodId],
) -> Result<()> {
    sqlx::query(
        "DELETE FROM program_schedule_methods_pg sm USING program_schedule_pg s
          WHERE sm.schedule_day_id = s.id AND s.program_id = $1 AND s.date >= $2",
    )
    .bind(program)
    .bind(from)
    .execute(&mut *connection)
    .await?;
    let dates: Vec<NaiveDate> = sqlx::query_scalar(
        "SELECT date FROM program_schedule_pg WHERE program_id = $1 AND date >= $2",
    )
    .bind(program)
    .bind(from)
    .fetch_all(&mut *connection)
    .await?;
    plan_methods(connection, program, &dates, methods).await
}

/// Replaces the methods planned on one day.
pub async fn replace_day_methods(
    connection: &mut PgConnection,
    day: ScheduleDayId,
    methods: &[MethodId],
) -> Result<()> {
    sqlx::query("DELETE FROM program_schedule_methods_pg WHERE schedule_day_id = $1")
        .bind(day)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO program_schedule_methods_pg (schedule_day_id, method_id, position)
         SELECT $1, m.method_id, m.ord::integer FROM unnest($2::uuid[]) WITH ORDINALITY AS m(method_id, ord)",
    )
    .bind(day)
    .bind(methods)
    .execute(connection)
    .await?;
    Ok(())
}

pub async fn set_day_notes(
    connection: &mut PgConnection,
    day: ScheduleDayId,
    notes: &str,
) -> Result<()> {
    sqlx::query("UPDATE program_schedule_pg SET notes = $2 WHERE id = $1")
        .bind(day)
        .bind(notes)
        .execute(connection)
        .await?;
    Ok(())
}

/// Which schedule days' stored `completed` flag to bring up to date.
#[derive(Debug, Clone, Copy)]
pub enum CompletionScope<'a> {
    /// A user's days on these dates (their method usage changed).
    UserDates(UserId, &'a [NaiveDate]),
    /// Every day of a program (its plan changed).
    Program(ProgramId),
}

/// Brings the stored `completed` flag (kept for Airtable's sake) in line
/// with method usage. Only rows whose flag changes are written, so no
/// needless outbox events are made.
pub async fn refresh_completed(
    connection: &mut PgConnection,
    scope: CompletionScope<'_>,
) -> Result<()> {
    let (filter, user, dates, program) = match scope {
        CompletionScope::UserDates(user, dates) => (
            "p.user_id = $1 AND s.date = ANY($2)",
            Some(user),
            Some(dates),
            None,
        ),
        CompletionScope::Program(program) => ("s.program_id = $3", None, None, Some(program)),
    };
    let statement = format!(
        "UPDATE program_schedule_pg target SET completed = c.done
           FROM (SELECT s.id, {COMPLETED_EXPR} AS done
                   FROM program_schedule_pg s
                   JOIN programs_pg p ON p.id = s.program_id
                   LEFT JOIN program_schedule_methods_pg sm ON sm.schedule_day_id = s.id
                  WHERE {filter}
                  GROUP BY s.id) c
          WHERE target.id = c.id AND target.completed IS DISTINCT FROM c.done"
    );
    sqlx::query(&statement)
        .bind(user)
        .bind(dates)
        .bind(program)
        .execute(connection)
        .await?;
    Ok(())
}
