//! What the four usage kinds share (method, habit, personal goal and
//! overtuiging usage): a row done on a day, recorded by a post that also
//! settles the user's rewards; every kind but method usage is listed per
//! user. Each kind's own rules stay with its types (`store/*_usage.rs`).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::UserId;
use crate::error::Result;
use crate::pagination::{Page, PageRequest};
use crate::store::Created;

/// What a usage post earned on top of its own points: the streak bonus
/// and any badges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Award {
    /// The current streak after the post, in days.
    pub streak: i32,
    /// Bonus points awarded by this post.
    pub bonus_points_awarded: i32,
    /// Badges awarded by this post.
    pub badges_awarded: Vec<String>,
}

/// A kind of usage: one row of it is done by a user on a day.
pub trait Usage: Serialize + Sized + Send + Sync + 'static {
    /// What a post of this kind records, its day already settled.
    type New: Send + 'static;

    /// Where the row stands in a listing: its day, then its id.
    fn position(&self) -> (NaiveDate, Uuid);
}

/// A kind of usage that is listed per user.
pub trait ListedUsage: Usage {
    /// What a listing may be narrowed to.
    type Filter: Copy + Send + Sync + 'static;
    /// The listing's order: latest day first, or earliest first.
    const NEWEST_FIRST: bool;
    /// The listing's endpoint, by which shadow reads count differences.
    const LISTED_AT: &'static str;
}

/// Records usage of kind `U`.
#[async_trait]
pub trait RecordUsage<U: Usage>: Send + Sync {
    /// Records a usage and settles the user's rewards with it (in one
    /// transaction where the backend has them). A post that repeats an
    /// earlier one, by the kind's rule (see its `New`), returns the earlier
    /// row with the current streak and nothing awarded, not `created`.
    async fn create(
        &self,
        owner: UserId,
        new: U::New,
        now: DateTime<Utc>,
    ) -> Result<Created<(U, Award)>>;
}

/// Records and lists usage of kind `U`.
#[async_trait]
pub trait ListUsage<U: ListedUsage>: RecordUsage<U> {
    /// A page of the user's usage, in the kind's order
    /// ([`ListedUsage::NEWEST_FIRST`]).
    async fn list(&self, user: UserId, filter: U::Filter, page: &PageRequest) -> Result<Page<U>>;
}
