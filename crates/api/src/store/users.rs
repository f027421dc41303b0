//! User profiles. Credentials (password hashes, refresh and setup tokens)
//! never leave PostgreSQL whatever the mode (`auth.rs`); this group decides
//! only where a profile is read from.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{CompanyId, Role, UserId};
use crate::error::Result;

/// What a user sees of themselves (`GET /api/auth/me`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub company_id: Option<CompanyId>,
    pub role: Role,
    pub time_zone: String,
    pub bonus_points: i32,
    pub badges: Vec<String>,
    pub level: i32,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Profiles of the `Users` endpoint group.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>>;
}
