//! Account chores the command line runs: `airsync users create` and
//! `airsync users invite`.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use crate::auth::password::{HashCost, HashingLimits, PasswordHasher};
use crate::auth::tokens::{new_token, token_hash};
use crate::domain::{Email, Name, Password, Role};
use crate::error::Error;
use crate::store::postgres::{auth_tokens, users};

/// Why an account chore failed; each prints as one line for the CLI.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a user with email {0} exists already")]
    EmailTaken(String),
    #[error("no user has email {0}")]
    UnknownEmail(String),
    #[error("{0}")]
    Failed(String),
}

impl From<Error> for AccountError {
    fn from(err: Error) -> AccountError {
        AccountError::Failed(err.to_string())
    }
}

impl From<sqlx::Error> for AccountError {
    fn from(err: sqlx::Error) -> AccountError {
        AccountError::Failed(err.to_string())
    }
}

/// `airsync users create --email E --name N --password P [--role admin]`:
/// makes a user who can sign in at once. Returns the new user's id.
pub async fn create_user(
    pool: &PgPool,
    email: &str,
    name: &str,
    password: &str,
    admin: bool,
) -> Result<uuid::Uuid, AccountError> {
    let email = Email::parse(email).map_err(|message| AccountError::Invalid {
        field: "email",
        message,
    })?;
    let name = Name::parse(name).map_err(|message| AccountError::Invalid {
        field: "name",
        message,
    })?;
    let password = Password::parse_new(password).map_err(|message| AccountError::Invalid {
        field: "password",
        message,
    })?;
    let hash = PasswordHasher::new(HashCost::Standard, HashingLimits::default())?
        .hash(&password)
        .await
        .map_err(Error::from)?;
    let new = users::NewUser {
        email: email.clone(),
        name,
        role: if admin { Role::Admin } else { Role::User },
        password_hash: Some(hash),
        company_id: None,
        time_zone: None,
    };
    users::insert(pool, &new)
        .await
        .map(|id| id.0)
        .map_err(|err| match err {
            Error::Conflict { .. } => AccountError::EmailTaken(email.as_str().to_owned()),
            other => other.into(),
        })
}

/// `airsync users invite EMAIL`: issues a single-use setup token with which
/// the user sets a password (`POST /api/auth/set-password` with
/// `setupToken`). An earlier unused token of the user stops working. Returns
/// the token, to print; it is stored only as a hash.
pub async fn invite_user(
    pool: &PgPool,
    email: &str,
    valid_for: Duration,
) -> Result<String, AccountError> {
    let email = Email::parse(email).map_err(|message| AccountError::Invalid {
        field: "email",
        message,
    })?;
    let user = users::find_credentials_by_email(pool, &email)
        .await?
        .ok_or_else(|| AccountError::UnknownEmail(email.as_str().to_owned()))?;
    let token = new_token();
    let expires_at =
        Utc::now() + chrono::Duration::from_std(valid_for).unwrap_or(chrono::Duration::days(7));
    let mut tx = pool.begin().await?;
    auth_tokens::replace_setup_token(&mut tx, user.id, &token_hash(&token), expires_at).await?;
    tx.commit().await?;
    Ok(token)
}

/// An argon2id hash of `password` at `cost`, for seeding users directly
/// (tests, fixtures).
pub async fn hash_password(password: &str, cost: HashCost) -> Result<String, AccountError> {
    let password =
        Password::parse_presented(password).map_err(|message| AccountError::Invalid {
            field: "password",
            message,
        })?;
    Ok(PasswordHasher::new(cost, HashingLimits::default())?
        .hash(&password)
        .await
        .map_err(Error::from)?)
}
