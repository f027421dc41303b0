//! Habit, personal goal and overtuiging usage in the base, and what every
//! usage table shares (method usage is in `method_usage.rs`).

use std::collections::HashMap;

use airsync_airtable::{formula, Fields, Formula, Record};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::reference::page_sorted;
use super::{date, first_link, pg_id, AirtableStore, UserRecord};
use crate::domain::{
    DateRange, HabitUsageId, MethodId, OvertuigingId, OvertuigingUsageId, PersonalGoalId,
    PersonalGoalUsageId, ProgramId, UserId,
};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::habit_usage::{HabitUsage, HabitUsageStore};
use crate::store::overtuiging_usage::{
    NewOvertuigingUsage, OvertuigingUsage, OvertuigingUsageStore,
};
use crate::store::personal_goal_usage::{
    PersonalGoalUsage, PersonalGoalUsageFilter, PersonalGoalUsageStore,
};
use crate::store::postgres::users;
use crate::store::{Award, Created};

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

fn habit_usage_from(
    store: &AirtableStore,
    record: &Record,
    user: UserId,
    methods: &HashMap<String, Uuid>,
) -> Result<Option<HabitUsage>> {
    let f = |key| store.field("habit_usage", key);
    let (Some(id), Some(method)) = (
        pg_id(&record.fields, f("id")),
        link_uuid(methods, &record.fields, f("method_id")),
    ) else {
        return Ok(None);
    };
    Ok(Some(HabitUsage {
        id: HabitUsageId(id),
        user_id: user,
        method_id: MethodId(method),
        used_on: date(&record.fields, f("used_on"))?,
        created_at: record.created_time,
    }))
}

#[async_trait]
impl HabitUsageStore for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        range: DateRange,
        page: &PageRequest,
    ) -> Result<Page<HabitUsage>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let records = self
            .list_of_user(
                "habit_usage",
                &record,
                Some(self.in_range("habit_usage", range)?),
            )
            .await?;
        let methods = linked(self, "habit_usage", "method_id", "method", &records).await?;
        let mut items = Vec::new();
        for record in &records {
            items.extend(habit_usage_from(self, record, user, &methods)?);
        }
        items.sort_by(|a, b| a.used_on.cmp(&b.used_on).then(a.id.cmp(&b.id)));
        page_sorted(items, page, |u| (u.used_on, u.id.0), true)
    }

    async fn create(
        &self,
        owner: UserId,
        method: MethodId,
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(HabitUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let method_record = self
            .records_of("method", &[method.0])
            .await?
            .remove(&method.0)
            .ok_or_else(|| Error::not_found_in("method", "methodId"))?;
        let found = self
            .by_record_ids("method", std::slice::from_ref(&method_record))
            .await?;
        let is_habit = found
            .first()
            .map(|record| {
                record
                    .fields
                    .checkbox(self.field("method", "is_habit"))
                    .unwrap_or(false)
            })
            .ok_or_else(|| Error::not_found_in("method", "methodId"))?;
        if !is_habit {
            return Err(Error::rule(
                "not_a_habit",
                "the method is not a habit",
                Some("methodId"),
            ));
        }
        let methods = HashMap::from([(method_record.clone(), method.0)]);
        let method_field = self.field("habit_usage", "method_id").to_owned();
        let existing = self
            .list_of_user(
                "habit_usage",
                &user,
                Some(self.on_day("habit_usage", used_on)?),
            )
            .await?
            .into_iter()
            .find(|record| {
                first_link(&record.fields, &method_field).as_deref() == Some(method_record.as_str())
            });
        if let Some(record) = existing {
            let usage = habit_usage_from(self, &record, owner, &methods)?
                .ok_or_else(|| Error::Upstream("a habit usage without pg_id".into()))?;
            let award = self.streak_for(owner, &user, now).await?;
            return Ok(Created {
                value: (usage, award),
                created: false,
            });
        }
        let fields = self
            .new_usage_fields("habit_usage", Uuid::new_v4(), &user, used_on)
            .with_links(method_field, [method_record.as_str()]);
        let record = self
            .create("habit_usage", vec![fields])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a create answered nothing".into()))?;
        let usage = habit_usage_from(self, &record, owner, &methods)?
            .ok_or_else(|| Error::Upstream("a created habit usage lost its pg_id".into()))?;
        let award = self.settle_for(owner, &user, now).await?;
        Ok(Created {
            value: (usage, award),
            created: true,
        })
    }

    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("habit usage"))?;
        let record = self
            .by_pg_id("habit_usage", id.0)
            .await?
            .filter(|r| self.owned_by("habit_usage", r, &user))
            .ok_or_else(|| Error::not_found("habit usage"))?;
        self.delete("habit_usage", &[record.id]).await?;
        self.settle_for(owner, &user, now).await?;
        Ok(())
    }
}

fn goal_usage_from(
    store: &AirtableStore,
    record: &Record,
    user: UserId,
    goals: &HashMap<String, Uuid>,
) -> Result<Option<PersonalGoalUsage>> {
    let f = |key| store.field("personal_goal_usage", key);
    let (Some(id), Some(goal)) = (
        pg_id(&record.fields, f("id")),
        link_uuid(goals, &record.fields, f("personal_goal_id")),
    ) else {
        return Ok(None);
    };
    Ok(Some(PersonalGoalUsage {
        id: PersonalGoalUsageId(id),
        user_id: user,
        personal_goal_id: PersonalGoalId(goal),
        used_on: date(&record.fields, f("used_on"))?,
        created_at: record.created_time,
    }))
}

#[async_trait]
impl PersonalGoalUsageStore for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        filter: PersonalGoalUsageFilter,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoalUsage>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let range = filter
            .range
            .map(|range| self.in_range("personal_goal_usage", range))
            .transpose()?;
        let records = self
            .list_of_user("personal_goal_usage", &record, range)
            .await?;
        let goals = linked(
            self,
            "personal_goal_usage",
            "personal_goal_id",
            "personal_goal",
            &records,
        )
        .await?;
        let mut items = Vec::new();
        for record in &records {
            items.extend(goal_usage_from(self, record, user, &goals)?);
        }
        items.retain(|usage| {
            filter
                .personal_goal
                .is_none_or(|goal| usage.personal_goal_id == goal)
        });
        items.sort_by(|a, b| b.used_on.cmp(&a.used_on).then(b.id.cmp(&a.id)));
        page_sorted(items, page, |u| (u.used_on, u.id.0), false)
    }

    async fn create(
        &self,
        owner: UserId,
        goal: PersonalGoalId,
        used_on: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Created<(PersonalGoalUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let goal_record = self
            .by_pg_id("personal_goal", goal.0)
            .await?
            .filter(|record| self.owned_by("personal_goal", record, &user))
            .ok_or_else(|| Error::not_found_in("personal goal", "personalGoalId"))?;
        let goals = HashMap::from([(goal_record.id.clone(), goal.0)]);
        let goal_field = self
            .field("personal_goal_usage", "personal_goal_id")
            .to_owned();
        let existing = self
            .list_of_user(
                "personal_goal_usage",
                &user,
                Some(self.on_day("personal_goal_usage", used_on)?),
            )
            .await?
            .into_iter()
            .find(|record| {
                first_link(&record.fields, &goal_field).as_deref() == Some(goal_record.id.as_str())
            });
        if let Some(record) = existing {
            let usage = goal_usage_from(self, &record, owner, &goals)?
                .ok_or_else(|| Error::Upstream("a usage without pg_id".into()))?;
            return Ok(Created {
                value: (usage, self.streak_for(owner, &user, now).await?),
                created: false,
            });
        }
        let fields = self
            .new_usage_fields("personal_goal_usage", Uuid::new_v4(), &user, used_on)
            .with_links(goal_field, [goal_record.id.as_str()]);
        let record = self
            .create("personal_goal_usage", vec![fields])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a create answered nothing".into()))?;
        let usage = goal_usage_from(self, &record, owner, &goals)?
            .ok_or_else(|| Error::Upstream("a created usage lost its pg_id".into()))?;
        Ok(Created {
            value: (usage, self.settle_for(owner, &user, now).await?),
            created: true,
        })
    }
}

async fn overtuiging_usages_from(
    store: &AirtableStore,
    records: &[Record],
    user: UserId,
) -> Result<Vec<OvertuigingUsage>> {
    let overtuigingen = linked(
        store,
        "overtuiging_usage",
        "overtuiging_id",
        "overtuiging",
        records,
    )
    .await?;
    let programs = linked(store, "overtuiging_usage", "program_id", "program", records).await?;
    let f = |key| store.field("overtuiging_usage", key);
    let mut items = Vec::new();
    for record in records {
        let (Some(id), Some(overtuiging)) = (
            pg_id(&record.fields, f("id")),
            link_uuid(&overtuigingen, &record.fields, f("overtuiging_id")),
        ) else {
            continue;
        };
        items.push(OvertuigingUsage {
            id: OvertuigingUsageId(id),
            user_id: user,
            overtuiging_id: OvertuigingId(overtuiging),
            program_id: link_uuid(&programs, &record.fields, f("program_id")).map(ProgramId),
            used_on: date(&record.fields, f("used_on"))?,
            created_at: record.created_time,
        });
    }
    Ok(items)
}

#[async_trait]
impl OvertuigingUsageStore for AirtableStore {
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<OvertuigingUsage>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let records = self
            .list_of_user("overtuiging_usage", &record, None)
            .await?;
        let mut items = overtuiging_usages_from(self, &records, user).await?;
        items.sort_by(|a, b| b.used_on.cmp(&a.used_on).then(b.id.cmp(&a.id)));
        page_sorted(items, page, |u| (u.used_on, u.id.0), false)
    }

    async fn create(
        &self,
        owner: UserId,
        new: NewOvertuigingUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(OvertuigingUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let overtuiging = self
            .records_of("overtuiging", &[new.overtuiging_id.0])
            .await?
            .remove(&new.overtuiging_id.0)
            .ok_or_else(|| Error::not_found_in("overtuiging", "overtuigingId"))?;
        let program = match new.program_id {
            Some(program) => Some(
                self.owned_program(program, &user, Some("programId"))
                    .await?,
            ),
            None => None,
        };
        let link = self.field("overtuiging_usage", "overtuiging_id").to_owned();
        let existing: Vec<Record> = self
            .list_of_user("overtuiging_usage", &user, None)
            .await?
            .into_iter()
            .filter(|record| {
                first_link(&record.fields, &link).as_deref() == Some(overtuiging.as_str())
            })
            .collect();
        if !existing.is_empty() {
            let usage = overtuiging_usages_from(self, &existing, owner)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Upstream("a usage without pg_id".into()))?;
            return Ok(Created {
                value: (usage, self.streak_for(owner, &user, now).await?),
                created: false,
            });
        }
        let mut fields = self
            .new_usage_fields("overtuiging_usage", Uuid::new_v4(), &user, new.used_on)
            .with_links(link, [overtuiging.as_str()]);
        if let Some(program) = &program {
            fields = fields.with_links(
                self.field("overtuiging_usage", "program_id"),
                [program.id.as_str()],
            );
        }
        let created = self.create("overtuiging_usage", vec![fields]).await?;
        let usage = overtuiging_usages_from(self, &created, owner)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a created usage lost its pg_id".into()))?;
        Ok(Created {
            value: (usage, self.settle_for(owner, &user, now).await?),
            created: true,
        })
    }
}
