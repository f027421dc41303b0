//! Rewards: points, level, badges and streaks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::UserId;
use crate::error::Result;
use crate::rules::points::UsageCounts;

/// A user's points, level, badges, streaks and usage counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rewards {
    pub user_id: UserId,
    pub total_points: i64,
    pub bonus_points: i64,
    pub level: i32,
    /// `None` at the top level.
    pub points_to_next_level: Option<i64>,
    pub badges: Vec<String>,
    pub current_streak: i32,
    pub longest_streak: i32,
    pub counts: UsageCounts,
}

/// Rewards of the `Rewards` endpoint group.
#[async_trait]
pub trait RewardStore: Send + Sync {
    /// A user's rewards; streaks count up to today in the user's time zone.
    async fn rewards(&self, user: UserId, now: DateTime<Utc>) -> Result<Rewards>;
}
