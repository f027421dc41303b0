//! `/api/auth/*`: login, the signed-in user, token refresh, setting a
//! password.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::password::HashingOutcome;
use crate::auth::tokens::{new_token, token_hash};
use crate::auth::{ClientAddress, CurrentUser};
use crate::domain::{Email, Password, Role, UserId, UserTimeZone};
use crate::error::{Error, ErrorBody, Result};
use crate::extract::{FromBody, Json, JsonObject};
use crate::routing::ApiRoutes;
use crate::state::AppState;
use crate::store::auth::{Credentials, NewRefreshToken, RefreshTokenRow, SessionWrite};
use crate::store::users::UserProfile;

pub fn router() -> ApiRoutes {
    ApiRoutes::new()
        .post("/api/auth/login", login)
        .get("/api/auth/me", me)
        .patch("/api/auth/me", update_me)
        .post("/api/auth/refresh", refresh)
        .post("/api/auth/set-password", set_password)
}

/// A signed-in session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub user: UserProfile,
}

const WRONG_CREDENTIALS: &str = "the email or password is wrong";

/// Credentials.
#[derive(Debug, ToSchema)]
pub struct Login {
    pub email: Email,
    pub password: Password,
}

impl FromBody for Login {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(Login {
            email: body.required("email", Email::parse)?,
            password: body.required("password", Password::parse_presented)?,
        })
    }
}

/// What the user sets of themselves.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMe {
    pub time_zone: Option<UserTimeZone>,
}

impl FromBody for UpdateMe {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(UpdateMe {
            time_zone: body.optional("timeZone", UserTimeZone::parse)?,
        })
    }
}

/// A refresh token to trade.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    #[schema(example = "q3Jx9x0cT2bW1m8vA5yZkQ")]
    pub refresh_token: String,
}

impl FromBody for Refresh {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(Refresh {
            refresh_token: body.required("refreshToken", |raw| Ok(raw.to_owned()))?,
        })
    }
}

/// A new password, with either the current one (signed in) or the setup
/// token of an invitation.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetPassword {
    pub new_password: Password,
    /// From the invitation's link; not with `currentPassword`.
    #[schema(example = "k2V8d0nX4qLr7sYt1wZe3A")]
    pub setup_token: Option<String>,
    /// Signed in: the password now; not with `setupToken`.
    pub current_password: Option<Password>,
}

impl FromBody for SetPassword {
    fn from_body(body: &mut JsonObject) -> Result<Self> {
        Ok(SetPassword {
            new_password: body.required("newPassword", Password::parse_new)?,
            setup_token: body.optional("setupToken", |raw| Ok(raw.to_owned()))?,
            current_password: body.optional("currentPassword", Password::parse_presented)?,
        })
    }
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", security(()),
    responses(
        (status = 200, description = "Signed in.", body = Session),
        (status = 401, description = "Unknown email or wrong password (one answer for both).", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this email or address; see Retry-After.", body = ErrorBody),
    ))]
#[instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<Login>,
) -> Result<Json<Session>> {
    let Login { email, password } = body;
    let now = state.now();
    let key = email.normalized();
    let attempt = Attempt::reserve(&state, Some(key), address)?;
    let credentials = state.stores().auth.credentials_by_email(&email).await?;
    let stored_hash = credentials
        .as_ref()
        .and_then(|c| c.password_hash.as_deref());
    // Verified also when the email is unknown (against a dummy hash), so
    // that both answers take about the same time.
    let matches = attempt.verify(&password, stored_hash).await?;
    if credentials.is_none() {
        read_through_user_later(&state, &email);
    }
    let Some(credentials) = credentials.filter(|_| matches) else {
        tracing::info!("login refused");
        return Err(Error::Unauthorized(WRONG_CREDENTIALS));
    };
    attempt.succeeded();
    let mut write = state.stores().auth.begin_session().await?;
    write.record_sign_in(credentials.id, now).await?;
    let session = issue_session(&state, &mut *write, &credentials, Family::new(&state)).await?;
    write.commit().await?;
    tracing::info!(user_id = %credentials.id, "signed in");
    Ok(Json(session))
}

/// A refresh token family: its id and when it ends, however often its
/// tokens are rotated.
struct Family {
    id: Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl Family {
    /// A new family, for a sign-in.
    fn new(state: &AppState) -> Family {
        let lifetime = chrono::Duration::from_std(state.config().refresh_family_ttl)
            .unwrap_or(chrono::Duration::days(90));
        Family {
            id: Uuid::new_v4(),
            expires_at: state.now() + lifetime,
        }
    }

    /// The family of a stored token; one from before families had an end
    /// gets one now.
    fn of(state: &AppState, stored: &RefreshTokenRow) -> Family {
        Family {
            id: stored.family_id,
            expires_at: stored
                .family_expires_at
                .unwrap_or_else(|| Family::new(state).expires_at),
        }
    }
}

/// Issues an access token and a refresh token of `family`; the refresh
/// token is kept when `write` is committed.
async fn issue_session(
    state: &AppState,
    write: &mut dyn SessionWrite,
    credentials: &Credentials,
    family: Family,
) -> Result<Session> {
    let now = state.now();
    let config = state.config();
    let access_ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = crate::auth::jwt::Claims {
        sub: credentials.id,
        role: Role::from_stored(&credentials.role),
        tz: credentials.time_zone.clone(),
        iat: now.timestamp(),
        // No not-before: the token is good from its issue, and the
        // processes' clocks may differ a little.
        nbf: None,
        exp: now.timestamp() + access_ttl,
    };
    let refresh_token = new_token();
    let refresh_ttl =
        chrono::Duration::from_std(config.refresh_token_ttl).unwrap_or(chrono::Duration::days(30));
    write
        .insert_refresh_token(NewRefreshToken {
            family_id: family.id,
            user_id: credentials.id,
            hash: &token_hash(&refresh_token),
            expires_at: now + refresh_ttl,
            family_expires_at: family.expires_at,
        })
        .await?;
    let user = profile(state, credentials.id).await?;
    Ok(Session {
        access_token: state.signer().sign(&claims),
        refresh_token,
        token_type: "Bearer",
        expires_in: config.access_token_ttl.as_secs(),
        user,
    })
}

async fn profile(state: &AppState, id: UserId) -> Result<UserProfile> {
    state
        .stores()
        .users
        .profile(id)
        .await?
        .ok_or(Error::Unauthorized("the signed-in user no longer exists"))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, description = "The user.", body = UserProfile)))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> Result<Json<UserProfile>> {
    Ok(Json(profile(&state, user.id).await?))
}

/// Change what the user sets of themselves.
///
/// Their time zone, for now. The access token keeps the zone it was issued
/// with until it is refreshed.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth",
    responses((status = 200, description = "The user.", body = UserProfile)))]
#[instrument(skip_all, fields(user_id = %user.id))]
pub async fn update_me(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<UpdateMe>,
) -> Result<Json<UserProfile>> {
    if let Some(zone) = body.time_zone {
        if !state.stores().auth.set_time_zone(user.id, zone).await? {
            return Err(Error::Unauthorized("the signed-in user no longer exists"));
        }
    }
    Ok(Json(profile(&state, user.id).await?))
}

/// Trade a refresh token for new tokens.
///
/// The old one is used up; presenting a used one signs out every session of
/// its sign-in.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", security(()),
    responses(
        (status = 200, description = "New tokens.", body = Session),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token.", body = ErrorBody),
    ))]
#[instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<Refresh>,
) -> Result<Json<Session>> {
    let token = body.refresh_token;
    let now = state.now();
    let invalid =
        Error::Unauthorized("the refresh token is invalid, expired or revoked; sign in again");
    let mut write = state.stores().auth.begin_session().await?;
    let Some(stored) = write.lock_refresh_token(&token_hash(&token)).await? else {
        return Err(invalid);
    };
    if stored.revoked_at.is_some() || stored.expires_at <= now {
        return Err(invalid);
    }
    if stored.used_at.is_some() {
        // A used token came back: whoever holds it (the client or a thief)
        // is not to be trusted, so the whole family is signed out.
        let revoked = write.revoke_family(stored.family_id, now).await?;
        write.commit().await?;
        tracing::warn!(user_id = %stored.user_id, family_id = %stored.family_id, revoked, "refresh token reused; family revoked");
        return Err(invalid);
    }
    write.mark_refresh_token_used(stored.id, now).await?;
    let credentials = write.credentials(stored.user_id).await?.ok_or(invalid)?;
    let session = issue_session(
        &state,
        &mut *write,
        &credentials,
        Family::of(&state, &stored),
    )
    .await?;
    write.commit().await?;
    Ok(Json(session))
}

/// Set a password.
///
/// Signed in, with the current one; or with the setup token of an
/// invitation. Every other session is signed out.
#[utoipa::path(post, path = "/api/auth/set-password", tag = "auth", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Password set; other sessions are signed out and this one gets new tokens.", body = Session),
        (status = 401, description = "No token and no valid setup token.", body = ErrorBody),
        (status = 422, description = "The current password is wrong.", body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords or setup tokens.", body = ErrorBody),
    ))]
#[instrument(skip_all)]
pub async fn set_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Json(body): Json<SetPassword>,
) -> Result<Json<Session>> {
    let SetPassword {
        new_password,
        setup_token,
        current_password,
    } = body;
    let now = state.now();
    let user_id = match (setup_token, current_password) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "setupToken",
                "give either setupToken or currentPassword, not both",
            ));
        }
        (Some(token), None) => {
            // A guess at a setup token counts against the client's address.
            // The token is checked before the new password is hashed, so a
            // wrong one costs one indexed read, never a hash.
            let attempt = Attempt::reserve(&state, None, address)?;
            let invalid = Error::Unauthorized("the setup token is invalid, used or expired");
            let token = token_hash(&token);
            let store = &state.stores().auth;
            if store.setup_token_user(&token, now).await?.is_none() {
                return Err(invalid);
            }
            let hash = attempt.hash(&new_password).await?;
            let user = store
                .set_password_with_setup_token(&token, &hash, now)
                .await?
                .ok_or(invalid)?;
            attempt.succeeded();
            user
        }
        (None, current) => {
            let user = crate::auth::user_from_headers(&state, &headers)?.ok_or(
                Error::Unauthorized("sign in first, or give the setupToken from your invitation"),
            )?;
            let current =
                current.ok_or_else(|| Error::invalid("currentPassword", "is required"))?;
            // Guessing the current password with a stolen access token is
            // throttled like guessing at login.
            let attempt = Attempt::reserve(&state, Some(format!("user:{}", user.id)), address)?;
            let credentials = state
                .stores()
                .auth
                .credentials(user.id)
                .await?
                .ok_or(Error::Unauthorized("the signed-in user no longer exists"))?;
            if !attempt
                .verify(&current, credentials.password_hash.as_deref())
                .await?
            {
                return Err(Error::rule(
                    "wrong_password",
                    "the current password is wrong",
                    Some("currentPassword"),
                ));
            }
            let hash = attempt.hash(&new_password).await?;
            attempt.succeeded();
            state
                .stores()
                .auth
                .set_password(user.id, &hash, now)
                .await?;
            user.id
        }
    };
    // Every other session was signed out; this one gets fresh tokens.
    let mut write = state.stores().auth.begin_session().await?;
    let credentials = write
        .credentials(user_id)
        .await?
        .ok_or(Error::Unauthorized("the user no longer exists"))?;
    let session = issue_session(&state, &mut *write, &credentials, Family::new(&state)).await?;
    write.commit().await?;
    tracing::info!(user_id = %user_id, "password set");
    Ok(Json(session))
}

/// One throttled attempt at a secret (a password or a setup token). It is
/// counted as a failure when it is reserved, before any work, and stays one
/// unless it succeeds; an attempt the server refused as too busy is given
/// back, since nothing was tried.
struct Attempt<'a> {
    state: &'a AppState,
    subject: Option<String>,
    address: Option<IpAddr>,
}

impl<'a> Attempt<'a> {
    fn reserve(
        state: &'a AppState,
        subject: Option<String>,
        address: Option<IpAddr>,
    ) -> Result<Attempt<'a>> {
        state
            .throttle()
            .reserve(subject.as_deref(), address, state.now())
            .map_err(|retry_after_secs| Error::TooManyAttempts { retry_after_secs })?;
        Ok(Attempt {
            state,
            subject,
            address,
        })
    }

    async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let verified = self.state.hasher().verify(password, stored).await;
        verified.map_err(|outcome| self.refused(outcome))
    }

    async fn hash(&self, password: &Password) -> Result<String> {
        let hashed = self.state.hasher().hash(password).await;
        hashed.map_err(|outcome| self.refused(outcome))
    }

    fn refused(&self, outcome: HashingOutcome) -> Error {
        if matches!(outcome, HashingOutcome::Busy) {
            self.state
                .throttle()
                .cancel(self.subject.as_deref(), self.address);
        }
        outcome.into()
    }

    fn succeeded(self) {
        self.state
            .throttle()
            .succeeded(self.subject.as_deref(), self.address);
    }
}

/// Login's fallback for an email unknown to PostgreSQL: look the user up in
/// Airtable and bring the record in, so that a user the team just created
/// exists here (and can be invited to set a password). It runs after the
/// login has answered, never inside it: a user brought in has no password
/// yet, so the answer is a 401 either way, and awaiting the base would let
/// the login's time tell whether an email exists in it. The gate keeps
/// strangers from spending the base's requests: one lookup at a time, and
/// one per email in ten minutes; a login the gate turns away costs nothing
/// (the inbound sync brings the user in anyway). Off when the read-through
/// is off or there is no base. A failure of the base is logged.
fn read_through_user_later(state: &AppState, email: &Email) {
    if !state.config().user_readthrough_fallback {
        return;
    }
    let Some(airtable) = state.airtable().cloned() else {
        return;
    };
    let Some(permit) = state
        .read_through_gate()
        .admit(&email.normalized(), state.now())
    else {
        tracing::debug!("read-through lookup skipped by its gate");
        return;
    };
    let email = email.clone();
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(err) = airtable.import_user(&email).await {
            tracing::warn!(error = %err, "read-through lookup of a user in Airtable failed");
        }
    });
}
