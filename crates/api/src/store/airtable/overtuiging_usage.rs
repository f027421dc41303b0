//! Overtuiging usage in the base.

use airsync_airtable::Record;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::usage::{link_uuid, linked, StoredUsage};
use super::{date, first_link, pg_id, AirtableStore};
use crate::domain::{OvertuigingId, OvertuigingUsageId, ProgramId, UserId};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::overtuiging_usage::{NewOvertuigingUsage, OvertuigingUsage};
use crate::store::usage::{Award, ListUsage, RecordUsage};
use crate::store::Created;

#[async_trait]
impl StoredUsage for OvertuigingUsage {
    const ENTITY: &'static str = "overtuiging_usage";

    async fn read(store: &AirtableStore, records: &[Record], user: UserId) -> Result<Vec<Self>> {
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
}

#[async_trait]
impl ListUsage<OvertuigingUsage> for AirtableStore {
    async fn list(
        &self,
        user: UserId,
        _filter: (),
        page: &PageRequest,
    ) -> Result<Page<OvertuigingUsage>> {
        self.list_usage(user, None, page, |_| true).await
    }
}

#[async_trait]
impl RecordUsage<OvertuigingUsage> for AirtableStore {
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
            let usage = OvertuigingUsage::read(self, &existing, owner)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Upstream("a usage without pg_id".into()))?;
            return self.answer_post(owner, &user, now, usage, false).await;
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
        let usage = OvertuigingUsage::read(self, &created, owner)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a created usage lost its pg_id".into()))?;
        self.answer_post(owner, &user, now, usage, true).await
    }
}
