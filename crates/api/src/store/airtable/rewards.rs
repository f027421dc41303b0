//! Points, streaks and bonuses from the base's four usage tables. The
//! awards already given are kept in PostgreSQL's `streak_bonus_awards` in
//! every mode, so that switching modes never gives a bonus twice.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{date, AirtableStore, OrUpstream, UserRecord};
use crate::domain::{UserId, UserTimeZone};
use crate::error::{Error, Result};
use crate::rules::points::{level, points_to_next_level, UsageCounts};
use crate::rules::streak::{badge, current_run, reached_bonuses, runs, streaks};
use crate::store::postgres::{rewards, users};
use crate::store::rewards::{RewardStore, Rewards};
use crate::store::usage::Award;

const USAGE_ENTITIES: [&str; 4] = [
    "method_usage",
    "habit_usage",
    "personal_goal_usage",
    "overtuiging_usage",
];

/// What the base says of a user's standing.
pub(crate) struct Standing {
    pub days: Vec<NaiveDate>,
    pub counts: UsageCounts,
    pub bonus_points: i32,
    pub badges: Vec<String>,
    pub level: i32,
}

impl AirtableStore {
    /// Usage days and counts from the four tables (four requests, run at
    /// once) and the user's bonus, badges and level.
    pub(crate) async fn standing(&self, user: &UserRecord) -> Result<Standing> {
        let lists = futures_join(self, user).await?;
        let mut days = Vec::new();
        let mut counts = [0i64; 4];
        for (slot, (entity, records)) in USAGE_ENTITIES.iter().zip(lists).enumerate() {
            counts[slot] = records.len() as i64;
            for record in records {
                days.push(date(&record.fields, self.field(entity, "used_on"))?);
            }
        }
        let record = self
            .by_record_ids("user", std::slice::from_ref(&user.record_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("the user's record is gone".into()))?;
        let f = |key| self.field("user", key);
        Ok(Standing {
            days,
            counts: UsageCounts {
                method_usage: counts[0],
                habit_usage: counts[1],
                personal_goal_usage: counts[2],
                overtuiging_usage: counts[3],
            },
            bonus_points: record.fields.integer(f("bonus_points")).up()?.unwrap_or(0) as i32,
            badges: record
                .fields
                .multiple_selects(f("badges"))
                .up()?
                .into_iter()
                .map(str::to_owned)
                .collect(),
            level: record.fields.integer(f("level")).up()?.unwrap_or(1) as i32,
        })
    }

    /// Awards the bonuses and badges the current run has reached and sets
    /// the level, on the user's record; see the PostgreSQL `settle`.
    pub(crate) async fn settle(
        &self,
        user_id: UserId,
        user: &UserRecord,
        time_zone: UserTimeZone,
        now: DateTime<Utc>,
    ) -> Result<Award> {
        let standing = self.standing(user).await?;
        let mut award = Award::default();
        let mut badges = standing.badges.clone();
        if let Some(run) = current_run(&runs(&standing.days), time_zone.today(now)) {
            award.streak = run.days();
            let given = rewards::given_bonuses(self.pool(), user_id, run).await?;
            for (threshold, points) in reached_bonuses(run.days()) {
                if given.contains(&threshold) {
                    continue;
                }
                if !rewards::record_bonus(self.pool(), user_id, threshold, run, points).await? {
                    continue;
                }
                award.bonus_points_awarded += points;
                let code = badge(threshold);
                if !badges.contains(&code) {
                    badges.push(code.clone());
                    award.badges_awarded.push(code);
                }
            }
        }
        let bonus = standing.bonus_points + award.bonus_points_awarded;
        let new_level = level(standing.counts.usage_points() + i64::from(bonus));
        if award.bonus_points_awarded > 0 || new_level != standing.level {
            let f = |key| self.field("user", key).to_owned();
            let fields = airsync_airtable::Fields::new()
                .with(f("bonus_points"), bonus)
                .with(f("level"), new_level)
                .with_multiple_selects(f("badges"), badges.iter());
            self.update("user", &user.record_id, fields).await?;
        }
        Ok(award)
    }

    /// The current streak, awarding nothing (a repeated post).
    pub(crate) async fn current_streak(
        &self,
        user: &UserRecord,
        time_zone: UserTimeZone,
        now: DateTime<Utc>,
    ) -> Result<Award> {
        let standing = self.standing(user).await?;
        Ok(Award {
            streak: current_run(&runs(&standing.days), time_zone.today(now))
                .map_or(0, |run| run.days()),
            ..Award::default()
        })
    }
}

async fn futures_join(
    store: &AirtableStore,
    user: &UserRecord,
) -> Result<[Vec<airsync_airtable::Record>; 4]> {
    let (a, b, c, d) = tokio::join!(
        store.list_of_user(USAGE_ENTITIES[0], user, None),
        store.list_of_user(USAGE_ENTITIES[1], user, None),
        store.list_of_user(USAGE_ENTITIES[2], user, None),
        store.list_of_user(USAGE_ENTITIES[3], user, None),
    );
    Ok([a?, b?, c?, d?])
}

#[async_trait]
impl RewardStore for AirtableStore {
    async fn rewards(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Rewards> {
        let user = self
            .user(user_id)
            .await?
            .ok_or_else(|| Error::not_found_in("user", "userId"))?;
        let standing = self.standing(&user).await?;
        let today = users::time_zone(self.pool(), user_id).await?.today(now);
        let (current_streak, longest_streak) = streaks(&runs(&standing.days), today);
        let total_points = standing.counts.usage_points() + i64::from(standing.bonus_points);
        Ok(Rewards {
            user_id,
            total_points,
            bonus_points: i64::from(standing.bonus_points),
            level: level(total_points),
            points_to_next_level: points_to_next_level(total_points),
            badges: standing.badges,
            current_streak,
            longest_streak,
            counts: standing.counts,
        })
    }
}
