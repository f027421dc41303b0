//! Programs and their schedules in the base.

use std::collections::{HashMap, HashSet};

use airsync_airtable::{formula, Fields, Record, RecordUpdate, UpdateMode, WriteOptions};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::reference::page_sorted;
use super::{date, first_link, links, pg_id, text, AirtableStore, OrUpstream, UserRecord};
use crate::domain::Scope;
use crate::domain::{
    DateRange, DayId, GoalId, MethodId, ProgramId, ScheduleDayId, UserId, MAX_PROGRAM_DAYS,
};
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::rules::schedule::{planned_dates, regeneration};
use crate::store::postgres::users;
use crate::store::programs::{
    NewProgram, Program, ProgramDetail, ProgramPatch, ProgramStore, Progress, ScheduleDay,
    ScheduleDayPatch,
};

fn uuids<T>(ids: &[T], raw: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    ids.iter().map(raw).collect()
}

impl AirtableStore {
    /// Programs from their records, with links translated in one lookup per
    /// linked table.
    async fn programs_from(&self, records: &[Record], owner: UserId) -> Result<Vec<Program>> {
        let f = |key| self.field("program", key);
        let all = |key| {
            records
                .iter()
                .flat_map(|r| links(&r.fields, f(key)))
                .collect::<Vec<_>>()
        };
        let goals = self.uuids_of("goal", &all("->goal")).await?;
        let methods = self.uuids_of("method", &all("->method")).await?;
        let day_links = all("->day");
        let days = self.uuids_of("day", &day_links).await?;
        let weekday_field = self.field("day", "weekday").to_owned();
        let weekdays: HashMap<String, i64> = self
            .by_record_ids(
                "day",
                &day_links
                    .iter()
                    .cloned()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
            .await?
            .into_iter()
            .map(|r| {
                let weekday = r.fields.integer(&weekday_field).ok().flatten().unwrap_or(0);
                (r.id, weekday)
            })
            .collect();
        let mut programs = Vec::new();
        for record in records {
            let fields = &record.fields;
            let Some(id) = pg_id(fields, f("id")) else {
                continue;
            };
            let mut day_links = links(fields, f("->day"));
            day_links.sort_by_key(|d| weekdays.get(d).copied().unwrap_or(0));
            programs.push(Program {
                id: ProgramId(id),
                user_id: owner,
                name: text(fields, f("name")),
                goal_ids: links(fields, f("->goal"))
                    .iter()
                    .filter_map(|g| goals.get(g))
                    .map(|g| GoalId(*g))
                    .collect(),
                method_ids: links(fields, f("->method"))
                    .iter()
                    .filter_map(|m| methods.get(m))
                    .map(|m| MethodId(*m))
                    .collect(),
                day_ids: day_links
                    .iter()
                    .filter_map(|d| days.get(d))
                    .map(|d| DayId(*d))
                    .collect(),
                start_date: date(fields, f("start_date"))?,
                end_date: date(fields, f("end_date"))?,
                notes: text(fields, f("notes")),
                created_at: record.created_time,
                updated_at: record.created_time,
            });
        }
        Ok(programs)
    }

    /// The schedule records of a program. The link shows the program's
    /// name in a formula; the link itself is checked afterwards.
    async fn schedule_records(&self, program: &Record) -> Result<Vec<Record>> {
        let name = text(&program.fields, self.field("program", "name"));
        let filter = self
            .formula_field("program_schedule", "program_id")?
            .equals(formula::text(&name));
        let link = self.field("program_schedule", "program_id").to_owned();
        Ok(self
            .list("program_schedule", Some(filter))
            .await?
            .into_iter()
            .filter(|r| first_link(&r.fields, &link).as_deref() == Some(program.id.as_str()))
            .collect())
    }

    /// Schedule days with completion computed from the user's method usage.
    async fn schedule_from(
        &self,
        records: &[Record],
        program: ProgramId,
        user: &UserRecord,
    ) -> Result<Vec<ScheduleDay>> {
        let f = |key| self.field("program_schedule", key);
        let mut dated = Vec::new();
        for record in records {
            dated.push((date(&record.fields, f("date"))?, record));
        }
        let (Some(first), Some(last)) = (
            dated.iter().map(|d| d.0).min(),
            dated.iter().map(|d| d.0).max(),
        ) else {
            return Ok(Vec::new());
        };
        let range = DateRange::new(first, last, i64::MAX).map_err(Error::invariant)?;
        let used_on = self.field("method_usage", "used_on").to_owned();
        let used_method = self.field("method_usage", "method_id").to_owned();
        let mut done: HashSet<(String, NaiveDate)> = HashSet::new();
        let used_field = self.formula_field("method_usage", "used_on")?;
        let in_range = formula::and([
            used_field.clone().at_least(formula::date(range.start())),
            used_field.at_most(formula::date(range.end())),
        ]);
        for usage in self
            .list_of_user("method_usage", user, Some(in_range))
            .await?
        {
            if let (Some(method), Ok(Some(day))) = (
                first_link(&usage.fields, &used_method),
                usage.fields.date(&used_on),
            ) {
                done.insert((method, day));
            }
        }
        let method_links: Vec<String> = records
            .iter()
            .flat_map(|r| links(&r.fields, f("->method")))
            .collect();
        let methods = self.uuids_of("method", &method_links).await?;
        let mut days = Vec::new();
        for (day, record) in dated {
            let Some(id) = pg_id(&record.fields, f("id")) else {
                continue;
            };
            let planned = links(&record.fields, f("->method"));
            let completed =
                !planned.is_empty() && planned.iter().all(|m| done.contains(&(m.clone(), day)));
            days.push(ScheduleDay {
                id: ScheduleDayId(id),
                program_id: program,
                date: day,
                method_ids: planned
                    .iter()
                    .filter_map(|m| methods.get(m))
                    .map(|m| MethodId(*m))
                    .collect(),
                notes: text(&record.fields, f("notes")),
                completed,
            });
        }
        days.sort_by_key(|d| d.date);
        Ok(days)
    }

    async fn detail_of(
        &self,
        record: &Record,
        owner: UserId,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        let program = self
            .programs_from(std::slice::from_ref(record), owner)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("program"))?;
        let schedule = self
            .schedule_from(&self.schedule_records(record).await?, program.id, &user)
            .await?;
        let today = users::time_zone(self.pool(), owner).await?.today(now);
        let progress = Progress::of(&schedule, today);
        Ok(ProgramDetail {
            program,
            schedule,
            progress,
        })
    }

    /// The user's program overlapping `dates`, other than `except`.
    async fn clashing(
        &self,
        user: &UserRecord,
        dates: DateRange,
        except: Option<&str>,
    ) -> Result<Option<Uuid>> {
        let f = |key| self.field("program", key);
        for record in self.list_of_user("program", user, None).await? {
            if Some(record.id.as_str()) == except {
                continue;
            }
            let (start, end) = (
                date(&record.fields, f("start_date"))?,
                date(&record.fields, f("end_date"))?,
            );
            if start <= dates.end() && dates.start() <= end {
                return Ok(Some(pg_id(&record.fields, f("id")).unwrap_or_default()));
            }
        }
        Ok(None)
    }

    async fn weekdays_of(&self, day_records: &[String]) -> Result<Vec<u32>> {
        let field = self.field("day", "weekday").to_owned();
        Ok(self
            .by_record_ids("day", day_records)
            .await?
            .iter()
            .filter_map(|r| r.fields.integer(&field).ok().flatten())
            .filter_map(|w| u32::try_from(w).ok())
            .collect())
    }

    async fn create_days(
        &self,
        program: &str,
        dates: &[NaiveDate],
        methods: &[String],
    ) -> Result<()> {
        let f = |key| self.field("program_schedule", key).to_owned();
        let rows: Vec<Fields> = dates
            .iter()
            .map(|day| {
                Fields::new()
                    .with(f("id"), Uuid::new_v4().to_string())
                    .with_links(f("program_id"), [program])
                    .with_date(f("date"), *day)
                    .with_links(f("->method"), methods.iter())
            })
            .collect();
        if !rows.is_empty() {
            self.create("program_schedule", rows).await?;
        }
        Ok(())
    }
}

fn overlap(conflicting: Uuid) -> Error {
    Error::Conflict {
        code: "program_overlap",
        message: "the dates overlap another program of yours".into(),
        conflicting_id: Some(conflicting),
    }
}

#[async_trait]
impl ProgramStore for AirtableStore {
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<Program>> {
        let Some(record) = self.user(user).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let records = self.list_of_user("program", &record, None).await?;
        let mut programs = self.programs_from(&records, user).await?;
        programs.sort_by(|a, b| b.start_date.cmp(&a.start_date).then(b.id.cmp(&a.id)));
        page_sorted(programs, page, |p| (p.start_date, p.id.0), false)
    }

    async fn create(
        &self,
        owner: UserId,
        new: NewProgram,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        let user = self.require_user(owner).await?;
        let goals = self
            .require_records("goal", &uuids(&new.goal_ids, |g| g.0), "goal", "goalIds")
            .await?;
        let methods = self
            .require_records(
                "method",
                &uuids(&new.method_ids, |m| m.0),
                "method",
                "methodIds",
            )
            .await?;
        let days = self
            .require_records("day", &uuids(&new.day_ids, |d| d.0), "day", "dayIds")
            .await?;
        if let Some(clash) = self.clashing(&user, new.dates, None).await? {
            return Err(overlap(clash));
        }
        let id = Uuid::new_v4();
        let f = |key| self.field("program", key).to_owned();
        let fields = Fields::new()
            .with(f("id"), id.to_string())
            .with(f("name"), new.name.as_str())
            .with_links(f("user_id"), [user.record_id.as_str()])
            .with_links(f("->goal"), goals.iter())
            .with_links(f("->method"), methods.iter())
            .with_links(f("->day"), days.iter())
            .with_date(f("start_date"), new.dates.start())
            .with_date(f("end_date"), new.dates.end())
            .with(f("notes"), new.notes.as_str());
        let record = self
            .create("program", vec![fields])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Upstream("a create answered nothing".into()))?;
        let weekdays = self.weekdays_of(&days).await?;
        self.create_days(&record.id, &planned_dates(new.dates, &weekdays), &methods)
            .await?;
        self.detail_of(&record, owner, now).await
    }

    async fn get(&self, scope: Scope, id: ProgramId, now: DateTime<Utc>) -> Result<ProgramDetail> {
        let record = self
            .by_pg_id("program", id.0)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        let owner_link = first_link(&record.fields, self.field("program", "user_id"))
            .ok_or_else(|| Error::not_found("program"))?;
        let owner = self
            .uuids_of("user", std::slice::from_ref(&owner_link))
            .await?
            .remove(&owner_link)
            .map(UserId)
            .ok_or_else(|| Error::not_found("program"))?;
        if !scope.allows(owner) {
            return Err(Error::not_found("program"));
        }
        self.detail_of(&record, owner, now).await
    }

    async fn update(
        &self,
        owner: UserId,
        id: ProgramId,
        patch: ProgramPatch,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        let record = self.owned_program(id, &user, None).await?;
        let f = |key| self.field("program", key).to_owned();
        let start = patch
            .start_date
            .unwrap_or(date(&record.fields, &f("start_date"))?);
        let end = patch
            .end_date
            .unwrap_or(date(&record.fields, &f("end_date"))?);
        let blamed = if patch.end_date.is_some() {
            "endDate"
        } else {
            "startDate"
        };
        let dates = DateRange::new(start, end, MAX_PROGRAM_DAYS)
            .map_err(|message| Error::invalid(blamed, message))?;
        let mut fields = Fields::new()
            .with_date(f("start_date"), dates.start())
            .with_date(f("end_date"), dates.end());
        if let Some(goals) = &patch.goal_ids {
            let goals = self
                .require_records("goal", &uuids(goals, |g| g.0), "goal", "goalIds")
                .await?;
            fields = fields.with_links(f("->goal"), goals.iter());
        }
        let old_methods = links(&record.fields, &f("->method"));
        let methods = match &patch.method_ids {
            Some(methods) => {
                self.require_records("method", &uuids(methods, |m| m.0), "method", "methodIds")
                    .await?
            }
            None => old_methods.clone(),
        };
        let old_days = links(&record.fields, &f("->day"));
        let days = match &patch.day_ids {
            Some(days) => {
                self.require_records("day", &uuids(days, |d| d.0), "day", "dayIds")
                    .await?
            }
            None => old_days.clone(),
        };
        if let Some(clash) = self.clashing(&user, dates, Some(&record.id)).await? {
            return Err(overlap(clash));
        }
        if let Some(name) = &patch.name {
            fields = fields.with(f("name"), name.as_str());
        }
        if let Some(notes) = &patch.notes {
            fields = fields.with(f("notes"), notes.as_str());
        }
        let methods_changed = methods != old_methods;
        let days_changed =
            days.iter().collect::<HashSet<_>>() != old_days.iter().collect::<HashSet<_>>();
        fields = fields
            .with_links(f("->method"), methods.iter())
            .with_links(f("->day"), days.iter());
        let dates_changed = start != date(&record.fields, &f("start_date"))?
            || end != date(&record.fields, &f("end_date"))?;
        // The schedule is found by the program's name: read it before a rename.
        let schedule = self.schedule_records(&record).await?;
        let updated = self.update("program", &record.id, fields).await?;
        if dates_changed || days_changed || methods_changed {
            let today = users::time_zone(self.pool(), owner).await?.today(now);
            let date_field = self.field("program_schedule", "date").to_owned();
            let mut existing = Vec::new();
            for day in &schedule {
                existing.push((date(&day.fields, &date_field)?, day.id.clone()));
            }
            let existing_dates: Vec<NaiveDate> = existing.iter().map(|(d, _)| *d).collect();
            let planned = planned_dates(dates, &self.weekdays_of(&days).await?);
            let (remove, add) = regeneration(&existing_dates, &planned, today);
            let removed: Vec<String> = existing
                .iter()
                .filter(|(d, _)| remove.contains(d))
                .map(|(_, id)| id.clone())
                .collect();
            self.delete("program_schedule", &removed).await?;
            if methods_changed {
                let method_field = self.field("program_schedule", "->method").to_owned();
                let replans: Vec<RecordUpdate> = existing
                    .iter()
                    .filter(|(d, _)| *d >= today && !remove.contains(d))
                    .map(|(_, id)| {
                        RecordUpdate::new(
                            id.clone(),
                            Fields::new().with_links(method_field.clone(), methods.iter()),
                        )
                    })
                    .collect();
                if !replans.is_empty() {
                    self.table("program_schedule")
                        .update(&replans, UpdateMode::Merge, WriteOptions::default())
                        .await
                        .up()?;
                }
            }
            self.create_days(&updated.id, &add, &methods).await?;
        }
        self.detail_of(&updated, owner, now).await
    }

    async fn delete(&self, owner: UserId, id: ProgramId) -> Result<()> {
        let user = self
            .user(owner)
            .await?
            .ok_or_else(|| Error::not_found("program"))?;
        let record = self.owned_program(id, &user, None).await?;
        let schedule: Vec<String> = self
            .schedule_records(&record)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        // Usages keep their history with the program link cleared.
        for entity in ["method_usage", "overtuiging_usage"] {
            let link = self.field(entity, "program_id").to_owned();
            let mut cleared = Fields::new().with_links(link.clone(), std::iter::empty::<&str>());
            if entity == "method_usage" {
                cleared = cleared.with_links(
                    self.field(entity, "schedule_day_id"),
                    std::iter::empty::<&str>(),
                );
            }
            let updates: Vec<RecordUpdate> = self
                .list_of_user(entity, &user, None)
                .await?
                .into_iter()
                .filter(|r| first_link(&r.fields, &link).as_deref() == Some(record.id.as_str()))
                .map(|r| RecordUpdate::new(r.id, cleared.clone()))
                .collect();
            if !updates.is_empty() {
                self.table(entity)
                    .update(&updates, UpdateMode::Merge, WriteOptions::default())
                    .await
                    .up()?;
            }
        }
        self.delete("program_schedule", &schedule).await?;
        self.delete("program", &[record.id]).await
    }

    async fn update_schedule_day(
        &self,
        owner: UserId,
        program: ProgramId,
        day: ScheduleDayId,
        patch: ScheduleDayPatch,
    ) -> Result<ScheduleDay> {
        let missing = || Error::not_found("schedule day");
        let user = self.user(owner).await?.ok_or_else(missing)?;
        let program_record = self
            .owned_program(program, &user, None)
            .await
            .map_err(|_| missing())?;
        let link = self.field("program_schedule", "program_id").to_owned();
        let record = self
            .by_pg_id("program_schedule", day.0)
            .await?
            .filter(|r| first_link(&r.fields, &link).as_deref() == Some(program_record.id.as_str()))
            .ok_or_else(missing)?;
        let f = |key| self.field("program_schedule", key).to_owned();
        let mut fields = Fields::new();
        if let Some(notes) = &patch.notes {
            fields = fields.with(f("notes"), notes.as_str());
        }
        if let Some(methods) = &patch.method_ids {
            let methods = self
                .require_records("method", &uuids(methods, |m| m.0), "method", "methodIds")
                .await?;
            fields = fields.with_links(f("->method"), methods.iter());
        }
        let updated = if fields.is_empty() {
            record
        } else {
            self.update("program_schedule", &record.id, fields).await?
        };
        self.schedule_from(&[updated], program, &user)
            .await?
            .into_iter()
            .next()
            .ok_or_else(missing)
    }
}
