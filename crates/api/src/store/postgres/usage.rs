//! What the usage tables share: a post inserts its row at most once and
//! settles the user's rewards in the same transaction, and a listing pages
//! by day and id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::rewards::{begin_usage_write, current_streak, settle};
use super::PgStore;
use crate::domain::UserId;
use crate::error::Result;
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::usage::{Award, RecordUsage, Usage};
use crate::store::Created;

/// How a post of a usage kind writes its row; implemented by the kind's
/// `New`. Both steps run with the user's row locked
/// ([`begin_usage_write`]), so an identical concurrent post waits and then
/// finds this one's row.
#[async_trait]
pub(super) trait InsertUsage: Send + Sync {
    type Usage: Usage;

    /// Checks what the usage links to, then inserts it; `None` when the
    /// same usage exists already (the kind's unique key).
    async fn insert(
        &self,
        connection: &mut PgConnection,
        owner: UserId,
    ) -> Result<Option<Self::Usage>>;

    /// The usage that made the insert a repeat.
    async fn existing(&self, connection: &mut PgConnection, owner: UserId) -> Result<Self::Usage>;
}

/// The kinds whose post inserts its row at most once (all but method
/// usage): a new row settles the user's rewards, in one transaction; a
/// repeat answers the earlier row with the current streak.
#[async_trait]
impl<U: Usage> RecordUsage<U> for PgStore
where
    U::New: InsertUsage<Usage = U>,
{
    async fn create(
        &self,
        owner: UserId,
        new: U::New,
        now: DateTime<Utc>,
    ) -> Result<Created<(U, Award)>> {
        let (mut tx, time_zone) = begin_usage_write(self, owner).await?;
        let result = match new.insert(&mut tx, owner).await? {
            Some(usage) => Created {
                value: (usage, settle(&mut tx, owner, time_zone, now).await?),
                created: true,
            },
            None => {
                let usage = new.existing(&mut tx, owner).await?;
                Created {
                    value: (usage, current_streak(&mut tx, owner, time_zone, now).await?),
                    created: false,
                }
            }
        };
        tx.commit().await?;
        Ok(result)
    }
}

/// The page of `rows`, fetched with [`PageRequest::fetch_limit`] in the
/// listing's order, with the cursor of the last one kept.
pub(super) fn usage_page<U: Usage>(rows: Vec<impl Into<U>>, page: &PageRequest) -> Page<U> {
    Page::from_rows(rows.into_iter().map(Into::into).collect(), page, |usage| {
        let (day, id) = usage.position();
        Cursor {
            key: day.to_string(),
            id,
        }
    })
}
