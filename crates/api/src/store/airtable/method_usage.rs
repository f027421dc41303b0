//! Method usage in the base.

use airsync_airtable::{Fields, Record};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::usage::{link_uuid, linked};
use super::{date, first_link, pg_id, text, AirtableStore};
use crate::domain::Scope;
use crate::domain::{MethodId, MethodUsageId, ProgramId, ProgramRef, ScheduleDayId, UserId};
use crate::error::{Error, Result};
use crate::store::method_usage::{
    check_on_schedule_day, MethodUsage, MethodUsagePatch, MethodUsageStore, NewMethodUsage,
};
use crate::store::usage::{Award, RecordUsage};
use crate::store::Created;

async fn method_usages_from(
    store: &AirtableStore,
    records: &[Record],
    user: UserId,
) -> Result<Vec<MethodUsage>> {
    let methods = linked(store, "method_usage", "method_id", "method", records).await?;
    let programs = linked(store, "method_usage", "program_id", "program", records).await?;
    let days = linked(
        store,
        "method_usage",
        "schedule_day_id",
        "program_schedule",
        records,
    )
    .await?;
    let f = |key| store.field("method_usage", key);
    let mut items = Vec::new();
    for record in records {
        let (Some(id), Some(method)) = (
            pg_id(&record.fields, f("id")),
            link_uuid(&methods, &record.fields, f("method_id")),
        ) else {
            continue;
        };
        items.push(MethodUsage {
            id: MethodUsageId(id),
            user_id: user,
            method_id: MethodId(method),
            program_id: link_uuid(&programs, &record.fields, f("program_id")).map(ProgramId),
            schedule_day_id: link_uuid(&days, &record.fields, f("schedule_day_id"))
                .map(ScheduleDayId),
            used_on: date(&record.fields, f("used_on"))?,
            remark: text(&record.fields, f("remark")),
            created_at: record.created_time,
        });
    }
    Ok(items)
}

/// The usage id an idempotency key stands for: the same key of the same
/// user always names the same record, so a repeat finds the first one.
fn keyed_usage_id(owner: UserId, key: &str) -> Uuid {
    let digest = Sha256::digest(format!("method-usage:{owner}:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Version 8 (custom) and the RFC 4122 variant.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[async_trait]
impl RecordUsage<MethodUsage> for AirtableStore {
    async fn create(
        &self,
        owner: UserId,
        new: NewMethodUsage,
        now: DateTime<Utc>,
    ) -> Result<Created<(MethodUsage, Award)>> {
        let user = self.require_user(owner).await?;
        let id = match &new.idempotency {
            Some(key) => {
                let id = keyed_usage_id(owner, &key.key);
                let mut connection = self.pool().acquire().await?;
                crate::store::postgres::method_usage::purge_expired_keys(&mut connection).await?;
                drop(connection);
                let claimed: Option<String> = sqlx::query_scalar(
                    "INSERT INTO api_idempotency_keys (user_id, route, key, request_hash, status, response)
                     VALUES ($1, 'POST /api/method-usage', $2, $3, 201, $4)
                     ON CONFLICT (user_id, route, key) DO UPDATE SET key = EXCLUDED.key
                     RETURNING request_hash",
                )
                .bind(owner)
                .bind(&key.key)
                .bind(&key.request_hash)
                .bind(serde_json::json!({ "usageId": id }))
                .fetch_one(self.pool())
                .await
                .ok();
                if claimed
                    .as_deref()
                    .is_some_and(|hash| hash != key.request_hash)
                {
                    return Err(Error::rule(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request",
                        None,
                    ));
                }
                if let Some(record) = self.by_pg_id("method_usage", id).await? {
                    let usage = method_usages_from(self, &[record], owner)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::Upstream("a usage without its method".into()))?;
                    return self.answer_post(owner, &user, now, usage, false).await;
                }
                id
            }
            None => Uuid::new_v4(),
        };
        let method = self
            .records_of("method", &[new.method_id.0])
            .await?
            .remove(&new.method_id.0)
            .ok_or_else(|| Error::not_found_in("method", "methodId"))?;
        let mut program_record = match new.program_id {
            Some(program) => Some(
                self.owned_program(program, &user, Some("programId"))
                    .await?,
            ),
            None => None,
        };
        let mut day_record = None;
        if let Some(day) = new.schedule_day_id {
            let record = self
                .by_pg_id("program_schedule", day.0)
                .await?
                .ok_or_else(|| Error::not_found_in("schedule day", "scheduleDayId"))?;
            let day_program =
                first_link(&record.fields, self.field("program_schedule", "program_id"))
                    .ok_or_else(|| Error::not_found_in("schedule day", "scheduleDayId"))?;
            match &program_record {
                Some(program) if program.id != day_program => {
                    return Err(Error::rule(
                        "schedule_day_not_in_program",
                        "the schedule day belongs to another program",
                        Some("scheduleDayId"),
                    ));
                }
                Some(_) => {}
                None => {
                    let program = self
                        .by_record_ids("program", &[day_program])
                        .await?
                        .into_iter()
                        .next()
                        .filter(|p| self.owned_by("program", p, &user));
                    program_record = Some(
                        program
                            .ok_or_else(|| Error::not_found_in("schedule day", "scheduleDayId"))?,
                    );
                }
            }
            check_on_schedule_day(
                date(&record.fields, self.field("program_schedule", "date"))?,
                new.used_on,
                "usedOn",
            )?;
            day_record = Some(record.id);
        }
        let f = |key| self.field("method_usage", key).to_owned();
        let mut fields = self
            .new_usage_fields("method_usage", id, &user, new.used_on)
            .with_links(f("method_id"), [method.as_str()])
            .with(f("remark"), new.remark.as_str());
        if let Some(program) = &program_record {
            fields = fields.with_links(f("program_id"), [program.id.as_str()]);
        }
        if let Some(day) = &day_record {
            fields = fields.with_links(f("schedule_day_id"), [day.as_str()]);
        }
        let created = self.create("method_usage", vec![fields]).await?;
        let usage = method_usages_from(self, &created, owner)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a created usage lost its links".into()))?;
        self.answer_post(owner, &user, now, usage, true).await
    }
}

#[async_trait]
impl MethodUsageStore for AirtableStore {
    async fn update(
        &self,
        owner: UserId,
        id: MethodUsageId,
        patch: MethodUsagePatch,
        now: DateTime<Utc>,
    ) -> Result<MethodUsage> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("method usage"))?;
        let record = self
            .by_pg_id("method_usage", id.0)
            .await?
            .filter(|r| self.owned_by("method_usage", r, &user))
            .ok_or_else(|| Error::not_found("method usage"))?;
        let f = |key| self.field("method_usage", key).to_owned();
        if let (Some(day), Some(used_on)) = (
            first_link(&record.fields, &f("schedule_day_id")),
            patch.used_on,
        ) {
            let day = self.by_record_ids("program_schedule", &[day]).await?;
            if let Some(day) = day.first() {
                check_on_schedule_day(
                    date(&day.fields, self.field("program_schedule", "date"))?,
                    used_on,
                    "usedOn",
                )?;
            }
        }
        let mut fields = Fields::new();
        if let Some(used_on) = patch.used_on {
            fields = fields.with_date(f("used_on"), used_on);
        }
        if let Some(remark) = &patch.remark {
            fields = fields.with(f("remark"), remark.as_str());
        }
        let updated = if fields.is_empty() {
            record
        } else {
            self.update("method_usage", &record.id, fields).await?
        };
        if patch.used_on.is_some() {
            self.settle_for(owner, &user, now).await?;
        }
        method_usages_from(self, &[updated], owner)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a usage without its method".into()))
    }

    async fn latest_by_program(
        &self,
        scope: Scope,
        program: ProgramRef,
    ) -> Result<Vec<MethodUsage>> {
        let record = match program {
            ProgramRef::Id(id) => self.by_pg_id("program", id.0).await?,
            ProgramRef::Record(record) => self
                .by_record_ids("program", &[record])
                .await?
                .into_iter()
                .next(),
        }
        .ok_or_else(|| Error::not_found_in("program", "programId"))?;
        let owner_link = first_link(&record.fields, self.field("program", "user_id"))
            .ok_or_else(|| Error::not_found_in("program", "programId"))?;
        let owner = self
            .uuids_of("user", std::slice::from_ref(&owner_link))
            .await?
            .remove(&owner_link)
            .map(UserId)
            .ok_or_else(|| Error::not_found_in("program", "programId"))?;
        if !scope.allows(owner) {
            return Err(Error::not_found_in("program", "programId"));
        }
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found_in("program", "programId"))?;
        let link = self.field("method_usage", "program_id").to_owned();
        let records: Vec<Record> = self
            .list_of_user("method_usage", &user, None)
            .await?
            .into_iter()
            .filter(|r| first_link(&r.fields, &link).as_deref() == Some(record.id.as_str()))
            .collect();
        let mut usages = method_usages_from(self, &records, owner).await?;
        usages.sort_by(|a, b| {
            a.method_id
                .cmp(&b.method_id)
                .then(b.used_on.cmp(&a.used_on))
                .then(b.created_at.cmp(&a.created_at))
                .then(b.id.cmp(&a.id))
        });
        usages.dedup_by(|later, first| later.method_id == first.method_id);
        usages.sort_by(|a, b| {
            b.used_on
                .cmp(&a.used_on)
                .then(a.method_id.cmp(&b.method_id))
        });
        Ok(usages)
    }
}
