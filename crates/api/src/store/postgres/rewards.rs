//! Points, streaks and bonuses from the four usage tables, and
//! `streak_bonus_awards`.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::{users, PgStore};
use crate::domain::{UserId, UserTimeZone};
use crate::error::{Error, Result};
use crate::rules::points::{level, points_to_next_level, UsageCounts};
use crate::rules::streak::{badge, current_run, reached_bonuses, runs, streaks, Run};
use crate::store::rewards::{RewardStore, Rewards};
use crate::store::usage::Award;

/// Every day on which the user has a usage of any kind.
pub async fn usage_days(connection: &mut PgConnection, user: UserId) -> Result<Vec<NaiveDate>> {
    Ok(sqlx::query_scalar(
        "SELECT used_on FROM method_usage_pg WHERE user_id = $1
         UNION SELECT used_on FROM habit_usage_pg WHERE user_id = $1
         UNION SELECT used_on FROM personal_goal_usage_pg WHERE user_id = $1
         UNION SELECT used_on FROM overtuiging_usage_pg WHERE user_id = $1",
    )
    .bind(user)
    .fetch_all(connection)
    .await?)
}

/// The thresholds whose bonus was given for `run`: for a run that shares a
/// day with it. Deleting a usage in a run splits it, and the later part
/// is still the run the bonuses were given for; a run after a real break
/// shares no day with the earlier one and earns them again.
pub async fn given_bonuses<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: UserId,
    run: Run,
) -> Result<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT threshold FROM streak_bonus_awards
          WHERE user_id = $1 AND run_start <= $3
            AND coalesce(run_end, run_start + threshold - 1) >= $2",
    )
    .bind(user)
    .bind(run.start)
    .bind(run.end)
    .fetch_all(executor)
    .await?)
}

/// Records the bonus of `threshold` given for `run`; false when it was
/// already recorded.
pub async fn record_bonus<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: UserId,
    threshold: i32,
    run: Run,
    points: i32,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO streak_bonus_awards (user_id, threshold, run_start, run_end, points)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(threshold)
    .bind(run.start)
    .bind(run.end)
    .bind(points)
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct Standing {
    method_usage: i64,
    habit_usage: i64,
    personal_goal_usage: i64,
    overtuiging_usage: i64,
    bonus_points: i32,
    badges: Vec<String>,
    level: i32,
    time_zone: String,
}

impl Standing {
    fn counts(&self) -> UsageCounts {
        UsageCounts {
            method_usage: self.method_usage,
            habit_usage: self.habit_usage,
            personal_goal_usage: self.personal_goal_usage,
            overtuiging_usage: self.overtuiging_usage,
        }
    }
}

async fn standing(connection: &mut PgConnection, user: UserId) -> Result<Option<Standing>> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM method_usage_pg WHERE user_id = u.id) AS method_usage,
                (SELECT count(*) FROM habit_usage_pg WHERE user_id = u.id) AS habit_usage,
                (SELECT count(*) FROM personal_goal_usage_pg WHERE user_id = u.id) AS personal_goal_usage,
                (SELECT count(*) FROM overtuiging_usage_pg WHERE user_id = u.id) AS overtuiging_usage,
                u.bonus_points, u.badges, u.level, u.time_zone
           FROM users_pg u WHERE u.id = $1",
    )
    .bind(user)
    .fetch_optional(connection)
    .await?)
}

/// Awards the streak bonuses and badges the user's current run has reached
/// and not yet been given, and brings the stored level in line with the
/// points. Runs inside the usage write's transaction, after the write, with
/// the user's row locked (see [`users::lock_for_usage`]), so concurrent
/// posts of one user cannot award a bonus twice.
pub async fn settle(
    connection: &mut PgConnection,
    user: UserId,
    time_zone: UserTimeZone,
    now: DateTime<Utc>,
) -> Result<Award> {
    let today = time_zone.today(now);
    let all_runs = runs(&usage_days(connection, user).await?);
    let standing = standing(connection, user)
        .await?
        .ok_or_else(|| Error::invariant("a locked user vanished"))?;
    let mut award = Award::default();
    let mut badges = standing.badges.clone();
    if let Some(run) = current_run(&all_runs, today) {
        award.streak = run.days();
        let given = given_bonuses(&mut *connection, user, run).await?;
        for (threshold, points) in reached_bonuses(run.days()) {
            if given.contains(&threshold) {
                continue;
            }
            record_bonus(&mut *connection, user, threshold, run, points).await?;
            award.bonus_points_awarded += points;
            let code = badge(threshold);
            if !badges.contains(&code) {
                badges.push(code.clone());
                award.badges_awarded.push(code);
            }
        }
    }
    let bonus = standing.bonus_points + award.bonus_points_awarded;
    let new_level = level(standing.counts().usage_points() + i64::from(bonus));
    if award.bonus_points_awarded > 0 || new_level != standing.level {
        sqlx::query("UPDATE users_pg SET bonus_points = $2, badges = $3, level = $4 WHERE id = $1")
            .bind(user)
            .bind(bonus)
            .bind(&badges)
            .bind(new_level)
            .execute(connection)
            .await?;
    }
    Ok(award)
}

/// The current streak without awarding anything (a repeated post).
pub async fn current_streak(
    connection: &mut PgConnection,
    user: UserId,
    time_zone: UserTimeZone,
    now: DateTime<Utc>,
) -> Result<Award> {
    let all_runs = runs(&usage_days(connection, user).await?);
    Ok(Award {
        streak: current_run(&all_runs, time_zone.today(now)).map_or(0, |run| run.days()),
        ..Award::default()
    })
}

/// A user's rewards.
pub async fn rewards(
    connection: &mut PgConnection,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Rewards> {
    let standing = standing(connection, user)
        .await?
        .ok_or_else(|| Error::not_found_in("user", "userId"))?;
    let today = UserTimeZone::from_stored(&standing.time_zone).today(now);
    let all_runs = runs(&usage_days(connection, user).await?);
    let (current_streak, longest_streak) = streaks(&all_runs, today);
    let counts = standing.counts();
    let total_points = counts.usage_points() + i64::from(standing.bonus_points);
    Ok(Rewards {
        user_id: user,
        total_points,
        bonus_points: i64::from(standing.bonus_points),
        level: level(total_points),
        points_to_next_level: points_to_next_level(total_points),
        badges: standing.badges,
        current_streak,
        longest_streak,
        counts,
    })
}

#[async_trait]
impl RewardStore for PgStore {
    async fn rewards(&self, user: UserId, now: DateTime<Utc>) -> Result<Rewards> {
        let mut connection = self.pool().acquire().await?;
        rewards(&mut connection, user, now).await
    }
}

/// Opens a usage write: a transaction with the user's row locked.
pub async fn begin_usage_write(
    store: &PgStore,
    user: UserId,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, UserTimeZone)> {
    let mut tx = store.pool().begin().await?;
    let time_zone = users::lock_for_usage(&mut tx, user).await?;
    Ok((tx, time_zone))
}
