//! `users_pg`: profiles, credentials, and the row lock that serialises a
//! user's usage posts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use super::{violated, PgStore};
use crate::domain::{CompanyId, Email, Name, Role, UserId, UserTimeZone};
use crate::error::{Error, Result};
use crate::store::auth::Credentials;
use crate::store::users::{UserProfile, UserStore};

#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: UserId,
    email: String,
    name: String,
    company_id: Option<CompanyId>,
    role: String,
    time_zone: String,
    bonus_points: i32,
    badges: Vec<String>,
    level: i32,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<ProfileRow> for UserProfile {
    fn from(row: ProfileRow) -> UserProfile {
        UserProfile {
            id: row.id,
            email: row.email,
            name: row.name,
            company_id: row.company_id,
            role: Role::from_stored(&row.role),
            time_zone: row.time_zone,
            bonus_points: row.bonus_points,
            badges: row.badges,
            level: row.level,
            last_login_at: row.last_login_at,
        }
    }
}

const PROFILE_COLUMNS: &str =
    "id, email, name, company_id, role, time_zone, bonus_points, badges, level, last_login_at";

pub async fn find_profile<'e>(
    executor: impl PgExecutor<'e>,
    id: UserId,
) -> Result<Option<UserProfile>> {
    let row: Option<ProfileRow> = sqlx::query_as(&format!(
        "SELECT {PROFILE_COLUMNS} FROM users_pg WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(UserProfile::from))
}

pub async fn find_credentials_by_email<'e>(
    executor: impl PgExecutor<'e>,
    email: &Email,
) -> Result<Option<Credentials>> {
    Ok(sqlx::query_as(
        "SELECT id, role, time_zone, password_hash FROM users_pg WHERE lower(email) = lower($1)",
    )
    .bind(email.as_str())
    .fetch_optional(executor)
    .await?)
}

pub async fn find_credentials_by_id<'e>(
    executor: impl PgExecutor<'e>,
    id: UserId,
) -> Result<Option<Credentials>> {
    Ok(
        sqlx::query_as("SELECT id, role, time_zone, password_hash FROM users_pg WHERE id = $1")
            .bind(id)
            .fetch_optional(executor)
            .await?,
    )
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: Name,
    pub role: Role,
    pub password_hash: Option<String>,
    pub company_id: Option<CompanyId>,
    pub time_zone: Option<UserTimeZone>,
}

pub async fn insert<'e>(executor: impl PgExecutor<'e>, user: &NewUser) -> Result<UserId> {
    let result = sqlx::query_scalar(
        "INSERT INTO users_pg (email, name, role, password_hash, company_id, time_zone)
         VALUES ($1, $2, $3, $4, $5, coalesce($6, 'Europe/Amsterdam'))
         RETURNING id",
    )
    .bind(user.email.as_str())
    .bind(user.name.as_str())
    .bind(user.role.as_str())
    .bind(&user.password_hash)
    .bind(user.company_id)
    .bind(user.time_zone.map(|tz| tz.name()))
    .fetch_one(executor)
    .await;
    result.map_err(|err| match violated(&err) {
        Some(v) if v.constraint == "users_pg_email_key" => Error::Conflict {
            code: "email_taken",
            message: "a user with this email exists".into(),
            conflicting_id: None,
        },
        Some(v)
            if v.constraint == "companies_pg_fkey"
                || v.constraint == "users_pg_company_id_fkey" =>
        {
            Error::not_found_in("company", "companyId")
        }
        _ => Error::from(err),
    })
}

pub async fn set_password_hash<'e>(
    executor: impl PgExecutor<'e>,
    id: UserId,
    hash: &str,
) -> Result<()> {
    sqlx::query("UPDATE users_pg SET password_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(executor)
        .await?;
    Ok(())
}

/// Sets the user's time zone; `false` when there is no such user. An
/// unchanged zone writes nothing (and sends nothing to Airtable).
pub async fn set_time_zone<'e>(
    executor: impl PgExecutor<'e>,
    id: UserId,
    zone: UserTimeZone,
) -> Result<bool> {
    let found: Option<i32> = sqlx::query_scalar(
        "WITH changed AS (
             UPDATE users_pg SET time_zone = $2 WHERE id = $1 AND time_zone <> $2 RETURNING 1
         )
         SELECT 1 FROM users_pg WHERE id = $1",
    )
    .bind(id)
    .bind(zone.name())
    .fetch_optional(executor)
    .await?;
    Ok(found.is_some())
}

pub async fn record_login<'e>(
    executor: impl PgExecutor<'e>,
    id: UserId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE users_pg SET last_login_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// Locks the user's row for the rest of the transaction and returns the
/// user's time zone. Every usage post takes this lock first, so that a
/// user's posts (and the streak bonuses they award) are serialised while
/// different users never wait on each other. `NO KEY UPDATE` leaves foreign
/// key checks of other writers (which take `KEY SHARE`) unblocked.
pub async fn lock_for_usage(connection: &mut PgConnection, id: UserId) -> Result<UserTimeZone> {
    let zone: Option<String> =
        sqlx::query_scalar("SELECT time_zone FROM users_pg WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id)
            .fetch_optional(connection)
            .await?;
    // The token named a user that no longer exists.
    zone.map(|zone| UserTimeZone::from_stored(&zone))
        .ok_or(Error::Unauthorized("the signed-in user no longer exists"))
}

pub async fn time_zone<'e>(executor: impl PgExecutor<'e>, id: UserId) -> Result<UserTimeZone> {
    let zone: Option<String> = sqlx::query_scalar("SELECT time_zone FROM users_pg WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(zone.map_or(UserTimeZone::DEFAULT, |zone| {
        UserTimeZone::from_stored(&zone)
    }))
}

#[async_trait]
impl UserStore for PgStore {
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>> {
        find_profile(self.pool(), id).await
    }
}
