//! The auth store on PostgreSQL: credentials in `users_pg`, tokens in
//! `auth_refresh_tokens` and `auth_setup_tokens`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::{auth_tokens, users, PgStore};
use crate::domain::{Email, UserId, UserTimeZone};
use crate::error::Result;
use crate::store::auth::{AuthStore, Credentials, NewRefreshToken, RefreshTokenRow, SessionWrite};

#[async_trait]
impl AuthStore for PgStore {
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>> {
        users::find_credentials_by_email(self.pool(), email).await
    }

    async fn credentials(&self, id: UserId) -> Result<Option<Credentials>> {
        users::find_credentials_by_id(self.pool(), id).await
    }

    async fn set_time_zone(&self, id: UserId, zone: UserTimeZone) -> Result<bool> {
        users::set_time_zone(self.pool(), id, zone).await
    }

    async fn setup_token_user(&self, hash: &[u8], now: DateTime<Utc>) -> Result<Option<UserId>> {
        auth_tokens::find_setup_token(self.pool(), hash, now).await
    }

    async fn set_password_with_setup_token(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>> {
        let mut tx = self.pool().begin().await?;
        let Some(user) = auth_tokens::consume_setup_token(&mut *tx, hash, now).await? else {
            return Ok(None);
        };
        users::set_password_hash(&mut *tx, user, password_hash).await?;
        auth_tokens::revoke_user_tokens(&mut *tx, user, now).await?;
        tx.commit().await?;
        Ok(Some(user))
    }

    async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        users::set_password_hash(&mut *tx, user, password_hash).await?;
        auth_tokens::revoke_user_tokens(&mut *tx, user, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin_session(&self) -> Result<Box<dyn SessionWrite>> {
        Ok(Box::new(PgSessionWrite {
            tx: self.pool().begin().await?,
        }))
    }
}

/// A session write: an open transaction, rolled back when dropped
/// uncommitted.
struct PgSessionWrite {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl SessionWrite for PgSessionWrite {
    async fn record_sign_in(&mut self, user: UserId, now: DateTime<Utc>) -> Result<()> {
        users::record_login(&mut *self.tx, user, now).await?;
        auth_tokens::delete_expired(&mut *self.tx, user, now).await
    }

    async fn lock_refresh_token(&mut self, hash: &[u8]) -> Result<Option<RefreshTokenRow>> {
        auth_tokens::lock_refresh_token(&mut self.tx, hash).await
    }

    async fn mark_refresh_token_used(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        auth_tokens::mark_refresh_token_used(&mut *self.tx, id, now).await
    }

    async fn revoke_family(&mut self, family_id: Uuid, now: DateTime<Utc>) -> Result<u64> {
        auth_tokens::revoke_family(&mut *self.tx, family_id, now).await
    }

    async fn credentials(&mut self, id: UserId) -> Result<Option<Credentials>> {
        users::find_credentials_by_id(&mut *self.tx, id).await
    }

    async fn insert_refresh_token(&mut self, token: NewRefreshToken<'_>) -> Result<()> {
        auth_tokens::insert_refresh_token(
            &mut *self.tx,
            token.family_id,
            token.user_id,
            token.hash,
            token.expires_at,
            token.family_expires_at,
        )
        .await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
