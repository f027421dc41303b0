//! The Airtable backend (`airtable_only`, and the answering side of
//! `postgres_shadow_read`): reads and writes the team's base directly,
//! through the Airtable client only. Tables and fields come from the
//! mapping; filters are built with the client's formula builder; links are
//! translated to and from UUIDs in batches (one request or query per linked
//! entity, never one per record).
//!
//! This is the legacy path the flags keep available. It cannot give
//! PostgreSQL's guarantees: checks and writes are separate requests, so two
//! racing requests can both pass a check (an overlap, a duplicate). Record
//! ids map to UUIDs through the `pg_id` field of operational tables and
//! Users, and through the id map for reference tables (which the inbound
//! sync fills).

mod habit_usage;
mod method_usage;
mod overtuiging_usage;
mod personal_goal_usage;
mod personal_goals;
mod programs;
mod reference;
mod rewards;
mod usage;
mod users;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airsync_airtable::{
    formula, AirtableClient, BaseId, Fields, Formula, ListOptions, Record, Table, UpdateMode,
    WriteOptions,
};
use airsync_sync::mapping::{FieldKind, Mapping};
use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::UserId;
use crate::error::{Error, Result};

/// The Airtable side of every endpoint group.
#[derive(Clone)]
pub struct AirtableStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: AirtableClient,
    base: BaseId,
    names: Names,
    pool: PgPool,
    users: Mutex<HashMap<UserId, (UserRecord, Instant)>>,
    /// The active overtuigingen, read at most once a minute.
    overtuigingen: tokio::sync::Mutex<Option<(Vec<Record>, Instant)>>,
}

/// A user's record in the base.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub record_id: String,
    /// The primary field's text, which a link to the user shows in formulas.
    pub email: String,
}

/// How long a user's record id and email are remembered.
const USER_CACHE_TTL: Duration = Duration::from_secs(60);

/// How long the active overtuigingen are remembered: the team edits them
/// rarely, and the app reads them on every screen that shows a goal.
pub(crate) const OVERTUIGINGEN_CACHE_TTL: Duration = Duration::from_secs(60);

/// The columns and links each entity must map for the Airtable backend.
const REQUIRED: &[(&str, &[&str])] = &[
    ("company", &["name", "code", "active"]),
    ("goal", &["name"]),
    ("day", &["weekday"]),
    (
        "method",
        &[
            "name",
            "description",
            "duration_minutes",
            "is_habit",
            "active",
            "sort_order",
            "->goal",
        ],
    ),
    (
        "overtuiging",
        &["name", "description", "level", "active", "->goal"],
    ),
    (
        "user",
        &[
            "email",
            "name",
            "company_id",
            "role",
            "bonus_points",
            "badges",
            "level",
            "id",
        ],
    ),
    (
        "program",
        &[
            "id",
            "name",
            "user_id",
            "->goal",
            "->method",
            "->day",
            "start_date",
            "end_date",
            "notes",
        ],
    ),
    (
        "program_schedule",
        &["id", "program_id", "date", "->method", "notes", "completed"],
    ),
    (
        "method_usage",
        &[
            "id",
            "user_id",
            "method_id",
            "program_id",
            "schedule_day_id",
            "used_on",
            "remark",
        ],
    ),
    ("habit_usage", &["id", "user_id", "method_id", "used_on"]),
    (
        "personal_goal",
        &["id", "name", "user_id", "description", "active"],
    ),
    (
        "personal_goal_usage",
        &["id", "user_id", "personal_goal_id", "used_on"],
    ),
    (
        "overtuiging_usage",
        &["id", "user_id", "overtuiging_id", "program_id", "used_on"],
    ),
];

/// Table and field names of the entities, resolved from the mapping once.
struct Names {
    entities: HashMap<&'static str, EntityNames>,
}

struct EntityNames {
    table: String,
    /// Keyed by column, or `->target` for a many-record link field.
    fields: HashMap<String, String>,
    has_pg_id: bool,
}

impl Names {
    fn from_mapping(mapping: &Mapping) -> Result<Names, String> {
        let mut entities = HashMap::new();
        let mut problems = Vec::new();
        for (entity, keys) in REQUIRED {
            let Some(mapped) = mapping.entity(entity) else {
                problems.push(format!("entity {entity} is not mapped"));
                continue;
            };
            let mut fields = HashMap::new();
            for field in &mapped.fields {
                if let Some(column) = &field.column {
                    fields.insert(column.clone(), field.field.clone());
                }
                if field.kind == FieldKind::Links {
                    if let Some(target) = &field.target {
                        fields.insert(format!("->{target}"), field.field.clone());
                    }
                }
            }
            for key in *keys {
                if !fields.contains_key(*key) {
                    problems.push(format!("entity {entity} maps no field for {key}"));
                }
            }
            entities.insert(
                *entity,
                EntityNames {
                    table: mapped.airtable_table.clone(),
                    has_pg_id: mapped.pg_id_field().is_some(),
                    fields,
                },
            );
        }
        if problems.is_empty() {
            Ok(Names { entities })
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Turns a client error into the API's 502 (the base did not answer, or
/// answered something the mapping does not expect).
pub(crate) fn upstream(err: airsync_airtable::Error) -> Error {
    Error::Upstream(err.to_string())
}

/// `?` for the client's results.
pub(crate) trait OrUpstream<T> {
    fn up(self) -> Result<T>;
}

impl<T> OrUpstream<T> for airsync_airtable::Result<T> {
    fn up(self) -> Result<T> {
        self.map_err(upstream)
    }
}

impl AirtableStore {
    /// A store on `base`, with the names of `mapping`; the error lists what
    /// the mapping lacks.
    pub fn new(
        client: AirtableClient,
        base: BaseId,
        mapping: &Mapping,
        pool: PgPool,
    ) -> Result<AirtableStore, String> {
        Ok(AirtableStore {
            inner: Arc::new(Inner {
                client,
                base,
                names: Names::from_mapping(mapping)?,
                pool,
                users: Mutex::new(HashMap::new()),
                overtuigingen: tokio::sync::Mutex::new(None),
            }),
        })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    fn entity(&self, entity: &str) -> &EntityNames {
        // Every entity used is in REQUIRED, checked when the store is made.
        match self.inner.names.entities.get(entity) {
            Some(names) => names,
            None => unreachable!("entity {entity} is checked at start"),
        }
    }

    /// The field of `entity` mapped to `key` (a column, or `->target`).
    pub(crate) fn field(&self, entity: &str, key: &str) -> &str {
        self.entity(entity)
            .fields
            .get(key)
            .map_or("", String::as_str)
    }

    /// `{field}` of `entity` in a formula.
    pub(crate) fn formula_field(&self, entity: &str, key: &str) -> Result<Formula> {
        formula::field(self.field(entity, key)).up()
    }

    pub(crate) fn table(&self, entity: &str) -> Table {
        self.inner
            .client
            .table(&self.inner.base, self.entity(entity).table.clone())
    }

    /// Every record of `entity` matching `filter`.
    pub(crate) async fn list(&self, entity: &str, filter: Option<Formula>) -> Result<Vec<Record>> {
        let mut options = ListOptions::new();
        if let Some(filter) = filter {
            options = options.filter(filter);
        }
        self.table(entity).list_all(options).await.up()
    }

    /// The record of an operational entity whose `pg_id` is `id`.
    pub(crate) async fn by_pg_id(&self, entity: &str, id: Uuid) -> Result<Option<Record>> {
        let filter = self
            .formula_field(entity, "id")?
            .equals(formula::text(&id.to_string()));
        let mut found = self.list(entity, Some(filter)).await?;
        Ok(if found.is_empty() {
            None
        } else {
            Some(found.swap_remove(0))
        })
    }

    /// The records with these ids (any entity), one request.
    pub(crate) async fn by_record_ids(&self, entity: &str, ids: &[String]) -> Result<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.list(entity, Some(formula::record_id_in(ids))).await
    }

    /// UUIDs of records of `entity`: by their `pg_id` field (one request),
    /// or through the id map for reference tables (one query).
    pub(crate) async fn uuids_of(
        &self,
        entity: &str,
        records: &[String],
    ) -> Result<HashMap<String, Uuid>> {
        let mut unique: Vec<String> = records.to_vec();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        if self.entity(entity).has_pg_id {
            let pg_id = self.field(entity, "id").to_owned();
            let found = self.by_record_ids(entity, &unique).await?;
            Ok(found
                .into_iter()
                .filter_map(|record| {
                    let id = record.fields.text(&pg_id).ok().flatten()?.parse().ok()?;
                    Some((record.id, id))
                })
                .collect())
        } else {
            let rows: Vec<(String, Uuid)> = sqlx::query_as(
                "SELECT airtable_id, row_id FROM airtable_id_map WHERE entity = $1 AND airtable_id = ANY($2)",
            )
            .bind(entity)
            .bind(&unique)
            .fetch_all(self.pool())
            .await?;
            Ok(rows.into_iter().collect())
        }
    }

    /// Record ids of rows of `entity`, the reverse of [`Self::uuids_of`].
    pub(crate) async fn records_of(
        &self,
        entity: &str,
        rows: &[Uuid],
    ) -> Result<HashMap<Uuid, String>> {
        if rows.is_empty() {
            return Ok(HashMap::new());
        }
        if self.entity(entity).has_pg_id {
            let pg_id = self.formula_field(entity, "id")?;
            let filter = formula::or(
                rows.iter()
                    .map(|id| pg_id.clone().equals(formula::text(&id.to_string()))),
            );
            let field = self.field(entity, "id").to_owned();
            let found = self.list(entity, Some(filter)).await?;
            Ok(found
                .into_iter()
                .filter_map(|record| {
                    Some((
                        record.fields.text(&field).ok().flatten()?.parse().ok()?,
                        record.id,
                    ))
                })
                .collect())
        } else {
            let rows: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT row_id, airtable_id FROM airtable_id_map WHERE entity = $1 AND row_id = ANY($2)")
                    .bind(entity)
                    .bind(rows)
                    .fetch_all(self.pool())
                    .await?;
            Ok(rows.into_iter().collect())
        }
    }

    /// Record ids of all `rows`, or a 404 naming `field` when one is missing.
    pub(crate) async fn require_records(
        &self,
        entity: &str,
        rows: &[Uuid],
        what: &'static str,
        field: &'static str,
    ) -> Result<Vec<String>> {
        let found = self.records_of(entity, rows).await?;
        rows.iter()
            .map(|row| {
                found
                    .get(row)
                    .cloned()
                    .ok_or_else(|| Error::not_found_in(what, field))
            })
            .collect()
    }

    /// The user's record, remembered for a minute.
    pub(crate) async fn user(&self, id: UserId) -> Result<Option<UserRecord>> {
        {
            let cache = self
                .inner
                .users
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((user, at)) = cache.get(&id) {
                if at.elapsed() < USER_CACHE_TTL {
                    return Ok(Some(user.clone()));
                }
            }
        }
        let Some(record) = self.by_pg_id("user", id.0).await? else {
            return Ok(None);
        };
        let email = record
            .fields
            .text(self.field("user", "email"))
            .up()?
            .unwrap_or_default()
            .to_owned();
        let user = UserRecord {
            record_id: record.id,
            email,
        };
        let mut cache = self
            .inner
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert(id, (user.clone(), Instant::now()));
        Ok(Some(user))
    }

    /// The user's record, required for a write.
    pub(crate) async fn require_user(&self, id: UserId) -> Result<UserRecord> {
        self.user(id)
            .await?
            .ok_or_else(|| Error::Upstream(format!("user {id} has no record in the base yet")))
    }

    /// Every record of `entity` linked to `user` (its `user_id` link), with
    /// an optional extra condition. A link shows its record's primary text
    /// (the email) in a formula; the link itself is checked afterwards, so
    /// the answer is exact.
    pub(crate) async fn list_of_user(
        &self,
        entity: &str,
        user: &UserRecord,
        extra: Option<Formula>,
    ) -> Result<Vec<Record>> {
        let by_user = self
            .formula_field(entity, "user_id")?
            .equals(formula::text(&user.email));
        let filter = match extra {
            Some(extra) => formula::and([by_user, extra]),
            None => by_user,
        };
        let link = self.field(entity, "user_id").to_owned();
        let records = self.list(entity, Some(filter)).await?;
        Ok(records
            .into_iter()
            .filter(|record| {
                first_link(&record.fields, &link).as_deref() == Some(user.record_id.as_str())
            })
            .collect())
    }

    /// Creates a record idempotently: an upsert on its `pg_id`.
    pub(crate) async fn create(&self, entity: &str, fields: Vec<Fields>) -> Result<Vec<Record>> {
        let pg_id = self.field(entity, "id").to_owned();
        let outcome = self
            .table(entity)
            .upsert(
                &fields,
                &[pg_id],
                UpdateMode::Merge,
                WriteOptions::default(),
            )
            .await
            .up()?;
        Ok(outcome.records)
    }

    /// Merges `fields` into a record.
    pub(crate) async fn update(
        &self,
        entity: &str,
        record_id: &str,
        fields: Fields,
    ) -> Result<Record> {
        let mut updated = self
            .table(entity)
            .update(
                &[airsync_airtable::RecordUpdate::new(record_id, fields)],
                UpdateMode::Merge,
                WriteOptions::default(),
            )
            .await
            .up()?;
        if updated.is_empty() {
            return Err(Error::Upstream("an update answered no record".into()));
        }
        Ok(updated.swap_remove(0))
    }

    pub(crate) async fn delete(&self, entity: &str, record_ids: &[String]) -> Result<()> {
        if !record_ids.is_empty() {
            self.table(entity).delete(record_ids).await.up()?;
        }
        Ok(())
    }
}

/// The first linked record id of a link field.
pub(crate) fn first_link(fields: &Fields, field: &str) -> Option<String> {
    fields.links(field).ok()?.first().map(|id| (*id).to_owned())
}

/// Every linked record id of a link field.
pub(crate) fn links(fields: &Fields, field: &str) -> Vec<String> {
    fields
        .links(field)
        .map(|ids| ids.into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

pub(crate) fn text(fields: &Fields, field: &str) -> String {
    fields
        .text(field)
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn date(fields: &Fields, field: &str) -> Result<NaiveDate> {
    fields
        .date(field)
        .up()?
        .ok_or_else(|| Error::Upstream(format!("a record has no {field}")))
}

pub(crate) fn pg_id(fields: &Fields, field: &str) -> Option<Uuid> {
    fields.text(field).ok().flatten()?.parse().ok()
}
