//! What every usage table in the base shares: links, a user's usage
//! listed, and the answer to a post. Each kind is in its own file.

use std::collections::HashMap;

use airsync_airtable::{formula, Fields, Formula, Record};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::reference::page_sorted;
use super::{date, first_link, pg_id, AirtableStore, UserRecord};
use crate::domain::{DateRange, ProgramId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::postgres::users;
use crate::store::usage::{Award, ListedUsage};
use crate::store::Created;

/// UUIDs of the records that `records` link to through `key`.
pub(super) async fn linked(
    store: &AirtableStore,
    entity: &str,
    key: &str,
    target: &str,
    records: &[Record],
) -> Result<HashMap<String, Uuid>> {
    let field = store.field(entity, key);
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| first_link(&r.fields, field))
        .collect();
    store.uuids_of(target, &ids).await
}

pub(super) fn link_uuid(map: &HashMap<String, Uuid>, fields: &Fields, field: &str) -> Option<Uuid> {
    first_link(fields, field).and_then(|id| map.get(&id).copied())
}

impl AirtableStore {
    pub(super) fn on_day(&self, entity: &str, day: NaiveDate) -> Result<Formula> {
        Ok(self
            .formula_field(entity, "used_on")?
            .equals(formula::date(day)))
    }

    fn in_range(&self, entity: &str, range: DateRange) -> Result<Formula> {
        let field = self.formula_field(entity, "used_on")?;
        Ok(formula::and([
            field.clone().at_least(formula::date(range.start())),
            field.at_most(formula::date(range.end())),
        ]))
    }

    pub(super) fn new_usage_fields(
        &self,
        entity: &str,
        id: Uuid,
        user: &UserRecord,
        used_on: NaiveDate,
    ) -> Fields {
        let f = |key| self.field(entity, key).to_owned();
        Fields::new()
            .with(f("id"), id.to_string())
            .with_links(f("user_id"), [user.record_id.as_str()])
            .with_date(f("used_on"), used_on)
    }

    /// Whether `record` links `user`.
    pub(super) fn owned_by(&self, entity: &str, record: &Record, user: &UserRecord) -> bool {
        first_link(&record.fields, self.field(entity, "user_id")).as_deref()
            == Some(user.record_id.as_str())
    }

    pub(super) async fn settle_for(
        &self,
        owner: UserId,
        user: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Award> {
        let time_zone = users::time_zone(self.pool(), owner).await?;
        self.settle(owner, user, time_zone, now).await
    }

    pub(super) async fn streak_for(
        &self,
        owner: UserId,
        user: &UserRecord,
        now: DateTime<Utc>,
    ) -> Result<Award> {
        let time_zone = users::time_zone(self.pool(), owner).await?;
        self.current_streak(user, time_zone, now).await
    }

    /// The answer to a usage post: a new usage with what it earned, or the
    /// earlier one it repeats with the current streak.
    pub(super) async fn answer_post<U>(
        &self,
        owner: UserId,
        user: &UserRecord,
        now: DateTime<Utc>,
        usage: U,
        created: bool,
    ) -> Result<Created<(U, Award)>> {
        let award = if created {
            self.settle_for(owner, user, now).await?
        } else {
            self.streak_for(owner, user, now).await?
        };
        Ok(Created {
            value: (usage, award),
            created,
        })
    }

    /// A page of the user's usage of kind `U`: of its records in `range`,
    /// those `keep` keeps, in the kind's order. A user without a record in
    /// the base has none.
    pub(super) async fn list_usage<U: StoredUsage>(
        &self,
        user: UserId,
        range: Option<DateRange>,
        page: &PageRequest,
        keep: impl Fn(&U) -> bool + Send,
    ) -> Result<Page<U>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let range = range
            .map(|range| self.in_range(U::ENTITY, range))
            .transpose()?;
        let records = self.list_of_user(U::ENTITY, &record, range).await?;
        let mut items = U::read(self, &records, user).await?;
        items.retain(|usage| keep(usage));
        items.sort_by(|a, b| {
            let order = a.position().cmp(&b.position());
            if U::NEWEST_FIRST {
                order.reverse()
            } else {
                order
            }
        });
        page_sorted(items, page, U::position, !U::NEWEST_FIRST)
    }

    /// Records a usage of kind `U` linking `target` (its record id and row
    /// id) on `used_on`, unless the user has one of it on that day already.
    pub(super) async fn record_daily<U: DailyUsage>(
        &self,
        owner: UserId,
        user: &UserRecord,
        target: (String, Uuid),
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(U, Award)>> {
        let (target_record, _) = &target;
        let links = HashMap::from([target.clone()]);
        let link_field = self.field(U::ENTITY, U::LINK).to_owned();
        let existing = self
            .list_of_user(U::ENTITY, user, Some(self.on_day(U::ENTITY, used_on)?))
            .await?
            .into_iter()
            .find(|record| {
                first_link(&record.fields, &link_field).as_deref() == Some(target_record.as_str())
            });
        if let Some(record) = existing {
            let usage = daily_usage_from::<U>(self, &record, owner, &links)?
                .ok_or_else(|| Error::Upstream("a usage without pg_id".into()))?;
            return self.answer_post(owner, user, now, usage, false).await;
        }
        let fields = self
            .new_usage_fields(U::ENTITY, Uuid::new_v4(), user, used_on)
            .with_links(link_field, [target_record.as_str()]);
        let record = self
            .create(U::ENTITY, vec![fields])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a create answered nothing".into()))?;
        let usage = daily_usage_from::<U>(self, &record, owner, &links)?
            .ok_or_else(|| Error::Upstream("a created usage lost its pg_id".into()))?;
        self.answer_post(owner, user, now, usage, true).await
    }

    /// A program record of `owner`, or a 404 naming `field`.
    pub(crate) async fn owned_program(
        &self,
        program: ProgramId,
        user: &UserRecord,
        field: Option<&'static str>,
    ) -> Result<Record> {
        let missing = || match field {
            Some(field) => Error::not_found_in("program", field),
            None => Error::not_found("program"),
        };
        let record = self
            .by_pg_id("program", program.0)
            .await?
            .ok_or_else(missing)?;
        if self.owned_by("program", &record, user) {
            Ok(record)
        } else {
            Err(missing())
        }
    }
}

/// A listed usage kind as the base keeps it.
#[async_trait]
pub(super) trait StoredUsage: ListedUsage {
    /// Its entity in the mapping.
    const ENTITY: &'static str;

    /// The usage `records` of `user` stand for, their links looked up in
    /// one request or query per linked entity; a record without its `pg_id`
    /// or its main link is left out.
    async fn read(store: &AirtableStore, records: &[Record], user: UserId) -> Result<Vec<Self>>;
}

/// A usage kind kept as its id, its user, its day and one link (habit and
/// personal goal usage); a post of the same link on the same day repeats
/// the earlier one.
pub(super) trait DailyUsage: ListedUsage {
    /// Its entity in the mapping.
    const ENTITY: &'static str;
    /// The column of its link, and the entity linked to.
    const LINK: &'static str;
    const TARGET: &'static str;

    fn from_parts(
        id: Uuid,
        user: UserId,
        link: Uuid,
        used_on: NaiveDate,
        created_at: DateTime<Utc>,
    ) -> Self;
}

/// The usage `record` stands for, its link translated with `links`.
fn daily_usage_from<U: DailyUsage>(
    store: &AirtableStore,
    record: &Record,
    user: UserId,
    links: &HashMap<String, Uuid>,
) -> Result<Option<U>> {
    let f = |key| store.field(U::ENTITY, key);
    let (Some(id), Some(link)) = (
        pg_id(&record.fields, f("id")),
        link_uuid(links, &record.fields, f(U::LINK)),
    ) else {
        return Ok(None);
    };
    Ok(Some(U::from_parts(
        id,
        user,
        link,
        date(&record.fields, f("used_on"))?,
        record.created_time,
    )))
}

#[async_trait]
impl<U: DailyUsage> StoredUsage for U {
    const ENTITY: &'static str = <U as DailyUsage>::ENTITY;

    async fn read(store: &AirtableStore, records: &[Record], user: UserId) -> Result<Vec<U>> {
        let links = linked(
            store,
            <U as DailyUsage>::ENTITY,
            U::LINK,
            U::TARGET,
            records,
        )
        .await?;
        let mut items = Vec::new();
        for record in records {
            items.extend(daily_usage_from(store, record, user, &links)?);
        }
        Ok(items)
    }
}
