//! Personal goals in the base.

use airsync_airtable::{formula, Fields, Record};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::reference::page_sorted;
use super::{first_link, pg_id, text, AirtableStore, OrUpstream, UserRecord};
use crate::domain::Scope;
use crate::domain::{PersonalGoalId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::personal_goals::{
    NewPersonalGoal, PersonalGoal, PersonalGoalPatch, PersonalGoalStore,
};

/// Most active goals a user may have (docs/domain.md).
const MAX_ACTIVE: usize = 10;

impl AirtableStore {
    fn goal_from(&self, record: &Record, user: UserId) -> Result<Option<PersonalGoal>> {
        let f = |key| self.field("personal_goal", key);
        let Some(id) = pg_id(&record.fields, f("id")) else {
            return Ok(None);
        };
        Ok(Some(PersonalGoal {
            id: PersonalGoalId(id),
            user_id: user,
            name: text(&record.fields, f("name")),
            description: text(&record.fields, f("description")),
            active: record.fields.checkbox(f("active")).up()?,
            created_at: record.created_time,
            updated_at: record.created_time,
        }))
    }

    async fn active_goals(&self, user: &UserRecord) -> Result<usize> {
        let active = self
            .formula_field("personal_goal", "active")?
            .equals(formula::boolean(true));
        Ok(self
            .list_of_user("personal_goal", user, Some(active))
            .await?
            .len())
    }

    async fn own_goal(&self, owner: UserId, id: PersonalGoalId) -> Result<(UserRecord, Record)> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("personal goal"))?;
        let link = self.field("personal_goal", "user_id").to_owned();
        let record = self
            .by_pg_id("personal_goal", id.0)
            .await?
            .filter(|r| first_link(&r.fields, &link).as_deref() == Some(user.record_id.as_str()))
            .ok_or_else(|| Error::not_found("personal goal"))?;
        Ok((user, record))
    }
}

fn too_many() -> Error {
    Error::rule(
        "too_many_active_goals",
        "you can have at most 10 active personal goals",
        Some("active"),
    )
}

#[async_trait]
impl PersonalGoalStore for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        active: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoal>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let filter = active
            .map(|active| {
                Ok::<_, Error>(
                    self.formula_field("personal_goal", "active")?
                        .equals(formula::boolean(active)),
                )
            })
            .transpose()?;
        let records = self.list_of_user("personal_goal", &record, filter).await?;
        let mut goals = Vec::new();
        for record in &records {
            goals.extend(self.goal_from(record, user)?);
        }
        goals.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        page_sorted(goals, page, |g| (g.created_at, g.id.0), true)
    }

    async fn create(&self, owner: UserId, new: NewPersonalGoal) -> Result<PersonalGoal> {
        let user = self.require_user(owner).await?;
        if new.active && self.active_goals(&user).await? >= MAX_ACTIVE {
            return Err(too_many());
        }
        let f = |key| self.field("personal_goal", key).to_owned();
        let fields = Fields::new()
            .with(f("id"), Uuid::new_v4().to_string())
            .with(f("name"), new.name.as_str())
            .with_links(f("user_id"), [user.record_id.as_str()])
            .with(f("description"), new.description.as_str())
            .with(f("active"), new.active);
        let record = self
            .create("personal_goal", vec![fields])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a create answered nothing".into()))?;
        self.goal_from(&record, owner)?
            .ok_or_else(|| Error::Upstream("a created goal lost its pg_id".into()))
    }

    async fn get(&self, scope: Scope, id: PersonalGoalId) -> Result<PersonalGoal> {
        let record = self
            .by_pg_id("personal_goal", id.0)
            .await?
            .ok_or_else(|| Error::not_found("personal goal"))?;
        let owner_link = first_link(&record.fields, self.field("personal_goal", "user_id"))
            .ok_or_else(|| Error::not_found("personal goal"))?;
        let owner = self
            .uuids_of("user", std::slice::from_ref(&owner_link))
            .await?
            .remove(&owner_link)
            .map(UserId)
            .ok_or_else(|| Error::not_found("personal goal"))?;
        if !scope.allows(owner) {
            return Err(Error::not_found("personal goal"));
        }
        self.goal_from(&record, owner)?
            .ok_or_else(|| Error::not_found("personal goal"))
    }

    async fn update(
        &self,
        owner: UserId,
        id: PersonalGoalId,
        patch: PersonalGoalPatch,
    ) -> Result<PersonalGoal> {
        let (user, record) = self.own_goal(owner, id).await?;
        let f = |key| self.field("personal_goal", key).to_owned();
        let was_active = record.fields.checkbox(&f("active")).up()?;
        if patch.active == Some(true)
            && !was_active
            && self.active_goals(&user).await? >= MAX_ACTIVE
        {
            return Err(too_many());
        }
        let mut fields = Fields::new();
        if let Some(name) = &patch.name {
            fields = fields.with(f("name"), name.as_str());
        }
        if let Some(description) = &patch.description {
            fields = fields.with(f("description"), description.as_str());
        }
        if let Some(active) = patch.active {
            fields = fields.with(f("active"), active);
        }
        let updated = if fields.is_empty() {
            record
        } else {
            self.update("personal_goal", &record.id, fields).await?
        };
        self.goal_from(&updated, owner)?
            .ok_or_else(|| Error::Upstream("a goal lost its pg_id".into()))
    }

    async fn delete(&self, owner: UserId, id: PersonalGoalId, now: DateTime<Utc>) -> Result<()> {
        let (user, record) = self.own_goal(owner, id).await?;
        // Its usage goes with it, as in PostgreSQL.
        let link = self
            .field("personal_goal_usage", "personal_goal_id")
            .to_owned();
        let usage: Vec<String> = self
            .list_of_user("personal_goal_usage", &user, None)
            .await?
            .into_iter()
            .filter(|r| first_link(&r.fields, &link).as_deref() == Some(record.id.as_str()))
            .map(|r| r.id)
            .collect();
        self.delete("personal_goal_usage", &usage).await?;
        self.delete("personal_goal", &[record.id]).await?;
        self.settle_for(owner, &user, now).await?;
        Ok(())
    }
}
