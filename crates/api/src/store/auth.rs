//! The data of the auth routes: credentials and the opaque tokens (refresh
//! and setup), which never leave PostgreSQL whatever the modes (so the
//! types here are its rows too), and the time zone users set of themselves,
//! written there as well (the sync takes it to Airtable).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Email, UserId, UserTimeZone};
use crate::error::Result;

/// What login needs to know about a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: UserId,
    pub role: String,
    pub time_zone: String,
    pub password_hash: Option<String>,
}

/// A stored refresh token, locked for the session write that read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the family ends; none for families from before the column.
    pub family_expires_at: Option<DateTime<Utc>>,
}

/// A refresh token to store, by its hash: it expires at `expires_at` or at
/// its family's end, whichever is first.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    pub family_id: Uuid,
    pub user_id: UserId,
    pub hash: &'a [u8],
    pub expires_at: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
}

/// The data of the auth routes. Tokens are named by their hash
/// (`auth::tokens::token_hash`), never by themselves.
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>>;
    async fn credentials(&self, id: UserId) -> Result<Option<Credentials>>;
    /// Sets the user's time zone; `false` when there is no such user. An
    /// unchanged zone writes nothing (and sends nothing to Airtable).
    async fn set_time_zone(&self, id: UserId, zone: UserTimeZone) -> Result<bool>;
    /// The user of a setup token that is unused and unexpired, without
    /// using it up.
    async fn setup_token_user(&self, hash: &[u8], now: DateTime<Utc>) -> Result<Option<UserId>>;
    /// Uses up a setup token, sets its user's password hash and revokes the
    /// user's refresh tokens, in one transaction; `None`, with nothing
    /// changed, when the token is unknown, used or expired (also when
    /// another request used it first).
    async fn set_password_with_setup_token(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>>;
    /// Sets a user's password hash and revokes their refresh tokens, in one
    /// transaction.
    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Starts the writes that issue a session (a sign-in, a refresh, the
    /// fresh tokens after a new password), in one transaction.
    async fn begin_session(&self) -> Result<Box<dyn SessionWrite>>;
}

/// The writes that issue a session, in one transaction that keeps them
/// only when [`SessionWrite::commit`] is called: the route commits once its
/// answer is complete, so that a failure (the profile unreadable) stores no
/// token and leaves a presented refresh token unused.
#[async_trait]
pub trait SessionWrite: Send {
    /// Records a sign-in: the user's last login, and forgetting their
    /// tokens that expired more than a day ago, so that the table does not
    /// grow with every login.
    async fn record_sign_in(&mut self, user: UserId, now: DateTime<Utc>) -> Result<()>;
    /// The token with this hash, locked, so that two concurrent refreshes
    /// with one token are serialised and the second sees it used.
    async fn lock_refresh_token(&mut self, hash: &[u8]) -> Result<Option<RefreshTokenRow>>;
    async fn mark_refresh_token_used(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
    /// Revokes every token of a family (a used token was presented again);
    /// how many it revoked.
    async fn revoke_family(&mut self, family_id: Uuid, now: DateTime<Utc>) -> Result<u64>;
    async fn credentials(&mut self, id: UserId) -> Result<Option<Credentials>>;
    async fn insert_refresh_token(&mut self, token: NewRefreshToken<'_>) -> Result<()>;
    async fn commit(self: Box<Self>) -> Result<()>;
}
