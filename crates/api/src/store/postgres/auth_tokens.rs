//! `auth_refresh_tokens` and `auth_setup_tokens`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::UserId;
use crate::error::Result;
use crate::store::auth::RefreshTokenRow;

/// Stores a refresh token of `family_id`; it expires at `expires_at` or at
/// the family's end, whichever is first.
pub async fn insert_refresh_token<'e>(
    executor: impl PgExecutor<'e>,
    family_id: Uuid,
    user: UserId,
    hash: &[u8],
    expires_at: DateTime<Utc>,
    family_expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_refresh_tokens (family_id, user_id, token_hash, expires_at, family_expires_at)
         VALUES ($1, $2, $3, LEAST($4, $5), $5)",
    )
    .bind(family_id)
    .bind(user)
    .bind(hash)
    .bind(expires_at)
    .bind(family_expires_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The token with this hash, locked, so that two concurrent refreshes with
/// one token are serialised and the second sees it used.
pub async fn lock_refresh_token(
    connection: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<RefreshTokenRow>> {
    Ok(sqlx::query_as(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at, family_expires_at
           FROM auth_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash)
    .fetch_optional(connection)
    .await?)
}

pub async fn mark_refresh_token_used<'e>(
    executor: impl PgExecutor<'e>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("UPDATE auth_refresh_tokens SET used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(executor)
        .await?;
    Ok(())
}

/// Revokes every token of a family (a used token was presented again).
pub async fn revoke_family<'e>(
    executor: impl PgExecutor<'e>,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every refresh token of a user (their password changed).
pub async fn revoke_user_tokens<'e>(
    executor: impl PgExecutor<'e>,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Forgets a user's tokens that expired more than a day ago, so the table
/// does not grow with every login.
pub async fn delete_expired<'e>(
    executor: impl PgExecutor<'e>,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM auth_refresh_tokens WHERE user_id = $1 AND expires_at < $2 - interval '1 day'",
    )
    .bind(user)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// Issues a setup token for `user`, replacing any unused earlier one.
pub async fn replace_setup_token(
    connection: &mut PgConnection,
    user: UserId,
    hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("DELETE FROM auth_setup_tokens WHERE user_id = $1 AND used_at IS NULL")
        .bind(user)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO auth_setup_tokens (user_id, token_hash, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(user)
    .bind(hash)
    .bind(expires_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The user of a setup token that is unused and unexpired, without using
/// it up.
pub async fn find_setup_token<'e>(
    executor: impl PgExecutor<'e>,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<UserId>> {
    Ok(sqlx::query_scalar(
        "SELECT user_id FROM auth_setup_tokens
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(executor)
    .await?)
}

/// Uses up a setup token: the user it was issued to, if it is unused and
/// unexpired. One statement, so two concurrent uses cannot both succeed.
pub async fn consume_setup_token<'e>(
    executor: impl PgExecutor<'e>,
    hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<UserId>> {
    Ok(sqlx::query_scalar(
        "UPDATE auth_setup_tokens SET used_at = $2
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
          RETURNING user_id",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(executor)
    .await?)
}
