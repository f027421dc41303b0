//! Invitations: how a user without a password (one the team created in
//! Airtable, or one of the legacy backend's) gets the link that sets one.
//! An invitation is a setup token (`airsync_api::invite_user`) sent through
//! the configured transport: logged (development), or posted as JSON to a
//! webhook (the team's mail relay). The ops page makes one for any such
//! user and shows its link; with `INVITE_AUTOMATIC`, the users the inbound
//! sync brings in are invited by themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::{InvitationConfig, InviteTransportKind};

/// How often the automatic invitations look for new users.
const ROUND_INTERVAL: Duration = Duration::from_secs(15);
/// Users invited per round at most.
const PER_ROUND: i64 = 20;
/// Only users created this recently are invited by themselves: the legacy
/// backend's users, there long before, are invited deliberately (the ops
/// page, `airsync users invite`), not all at once on the first start.
const AUTOMATIC_WINDOW_DAYS: i32 = 7;
/// After a failed send, the user is tried again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(300);
/// How long the webhook may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// One invitation, as the transport sends it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    /// The app's page with the token in it, when `INVITE_SETUP_URL` is set.
    pub setup_url: Option<String>,
    pub setup_token: String,
    pub expires_at: DateTime<Utc>,
}

/// What went wrong with an invitation.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no user {0} without a password")]
    NoSuchUser(Uuid),
    #[error("the invitation could not be sent: {0}")]
    Send(String),
    #[error(transparent)]
    Account(#[from] airsync_api::AccountError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The invitations of a process: the transport and what it needs.
pub struct Invitations {
    config: InvitationConfig,
    http: reqwest::Client,
    /// Users whose last send failed, and when.
    failed: Mutex<HashMap<Uuid, Instant>>,
}

impl Invitations {
    pub fn new(config: InvitationConfig) -> Invitations {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .unwrap_or_default();
        Invitations {
            config,
            http,
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// The transport's name, for the ops page.
    pub fn transport(&self) -> &'static str {
        match self.config.transport {
            InviteTransportKind::None => "none",
            InviteTransportKind::Log => "log",
            InviteTransportKind::Webhook => "webhook",
        }
    }

    /// Whether new users are invited by themselves.
    pub fn automatic(&self) -> bool {
        self.config.automatic && self.config.transport != InviteTransportKind::None
    }

    /// Makes an invitation for `user` (a new setup token replaces the
    /// unused ones) and sends it through the transport; with `none` it is
    /// only answered, for the ops page to show. A failed send takes the
    /// token back.
    pub async fn invite(&self, pool: &PgPool, user: Uuid) -> Result<Invitation, InviteError> {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT email, name FROM users_pg WHERE id = $1 AND password_hash IS NULL",
        )
        .bind(user)
        .fetch_optional(pool)
        .await?;
        let (email, name) = found.ok_or(InviteError::NoSuchUser(user))?;
        let token = airsync_api::invite_user(pool, &email, self.config.valid_for).await?;
        let invitation = Invitation {
            user_id: user,
            setup_url: self
                .config
                .setup_url
                .as_ref()
                .map(|template| template.replace("{token}", &token)),
            setup_token: token,
            expires_at: Utc::now()
                + chrono::Duration::from_std(self.config.valid_for)
                    .unwrap_or(chrono::Duration::days(7)),
            email,
            name,
        };
        if let Err(err) = self.send(&invitation).await {
            sqlx::query("DELETE FROM auth_setup_tokens WHERE user_id = $1 AND used_at IS NULL")
                .bind(user)
                .execute(pool)
                .await?;
            return Err(err);
        }
        Ok(invitation)
    }

    async fn send(&self, invitation: &Invitation) -> Result<(), InviteError> {
        match self.config.transport {
            InviteTransportKind::None => Ok(()),
            InviteTransportKind::Log => {
                tracing::info!(
                    email = %invitation.email,
                    setup_url = invitation.setup_url.as_deref().unwrap_or(""),
                    setup_token = %invitation.setup_token,
                    "invitation (INVITE_TRANSPORT=log: for development only, the log holds the link)"
                );
                Ok(())
            }
            InviteTransportKind::Webhook => {
                let url = self
                    .config
                    .webhook_url
                    .as_ref()
                    .ok_or_else(|| InviteError::Send("INVITE_WEBHOOK_URL is not set".into()))?;
                let mut request = self.http.post(url.clone()).json(invitation);
                if let Some(token) = &self.config.webhook_token {
                    request = request.bearer_auth(token.expose());
                }
                let answer = request.send().await.map_err(|err| {
                    InviteError::Send(format!("the webhook did not answer: {err}"))
                })?;
                if answer.status().is_success() {
                    Ok(())
                } else {
                    Err(InviteError::Send(format!(
                        "the webhook answered {}",
                        answer.status()
                    )))
                }
            }
        }
    }

    /// One round of the automatic invitations: users created in the last
    /// week without a password who were never invited, at most
    /// [`PER_ROUND`], in one process of the deployment at a time. Answers
    /// how many were sent.
    pub async fn invite_new_users(&self, pool: &PgPool) -> Result<usize, InviteError> {
        if !self.automatic() {
            return Ok(0);
        }
        let mut lock = pool.acquire().await?;
        let held: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended('airsync:invitations', 0))",
        )
        .fetch_one(&mut *lock)
        .await?;
        if !held {
            return Ok(0);
        }
        let result = self.round(pool).await;
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended('airsync:invitations', 0))")
            .execute(&mut *lock)
            .await?;
        result
    }

    async fn round(&self, pool: &PgPool) -> Result<usize, InviteError> {
        let users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT u.id FROM users_pg u
              WHERE u.password_hash IS NULL
                AND u.created_at > now() - make_interval(days => $1)
                AND NOT EXISTS (SELECT 1 FROM auth_setup_tokens t WHERE t.user_id = u.id)
              ORDER BY u.created_at
              LIMIT $2",
        )
        .bind(AUTOMATIC_WINDOW_DAYS)
        .bind(PER_ROUND)
        .fetch_all(pool)
        .await?;
        let mut sent = 0;
        for user in users {
            if self.failed_recently(user) {
                continue;
            }
            match self.invite(pool, user).await {
                Ok(_) => {
                    sent += 1;
                    self.failed_lock().remove(&user);
                    tracing::info!(%user, transport = self.transport(), "invited a new user");
                }
                Err(InviteError::NoSuchUser(_)) => {}
                Err(err) => {
                    self.failed_lock().insert(user, Instant::now());
                    tracing::warn!(%user, error = %err, retry_in_secs = RETRY_AFTER.as_secs(),
                        "inviting a new user failed");
                }
            }
        }
        Ok(sent)
    }

    fn failed_lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn failed_recently(&self, user: Uuid) -> bool {
        let mut failed = self.failed_lock();
        failed.retain(|_, at| at.elapsed() < RETRY_AFTER);
        failed.contains_key(&user)
    }

    /// Runs the automatic invitations every [`ROUND_INTERVAL`] until
    /// `stop` turns true.
    pub async fn run(&self, pool: PgPool, mut stop: watch::Receiver<bool>) {
        if !self.automatic() {
            return;
        }
        let mut ticker = tokio::time::interval(ROUND_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*stop.borrow() {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(err) = self.invite_new_users(&pool).await {
                        tracing::warn!(error = %err, "the automatic invitations failed; trying again");
                    }
                }
                _ = stop.changed() => {}
            }
        }
    }
}
