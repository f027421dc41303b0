//! Reference data from the team's tables. Their records carry no `pg_id`:
//! UUIDs come from the id map.

use std::collections::HashMap;
use std::time::Instant;

use airsync_airtable::{formula, Formula, Record};
use async_trait::async_trait;
use uuid::Uuid;

use super::{links, text, AirtableStore, OrUpstream, OVERTUIGINGEN_CACHE_TTL};
use crate::domain::{CompanyId, GoalId, MethodId, OvertuigingId};
use crate::error::{Error, Result};
use crate::pagination::{Cursor, Page, PageRequest};
use crate::store::reference::{Company, GoalRef, Method, Overtuiging, ReferenceStore};

impl AirtableStore {
    /// Goals (id and name) of every linked goal record, in one request.
    async fn goal_refs(&self, records: &[String]) -> Result<HashMap<String, GoalRef>> {
        let found = self.by_record_ids("goal", records).await?;
        let ids = self.uuids_of("goal", records).await?;
        let name = self.field("goal", "name");
        Ok(found
            .into_iter()
            .filter_map(|record| {
                let id = *ids.get(&record.id)?;
                Some((
                    record.id.clone(),
                    GoalRef {
                        id: GoalId(id),
                        name: text(&record.fields, name),
                    },
                ))
            })
            .collect())
    }

    /// Methods from their records, with goals, in two lookups for all.
    async fn methods_from(&self, records: Vec<Record>) -> Result<Vec<Method>> {
        let f = |key| self.field("method", key);
        let ids = self
            .uuids_of(
                "method",
                &records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            )
            .await?;
        let goal_links: Vec<String> = records
            .iter()
            .flat_map(|r| links(&r.fields, f("->goal")))
            .collect();
        let goals = self.goal_refs(&goal_links).await?;
        let mut methods = Vec::new();
        for record in records {
            // A record the inbound sync has not brought in yet has no UUID.
            let Some(id) = ids.get(&record.id) else {
                continue;
            };
            let fields = &record.fields;
            methods.push(Method {
                id: MethodId(*id),
                name: text(fields, f("name")),
                description: text(fields, f("description")),
                duration_minutes: fields
                    .integer(f("duration_minutes"))
                    .up()?
                    .map(|d| d as i32),
                is_habit: fields.checkbox(f("is_habit")).up()?,
                active: fields.checkbox(f("active")).up()?,
                sort_order: fields.integer(f("sort_order")).up()?.unwrap_or(0) as i32,
                goals: links(fields, f("->goal"))
                    .iter()
                    .filter_map(|g| goals.get(g).cloned())
                    .collect(),
            });
        }
        Ok(methods)
    }

    /// The active overtuiging records, remembered for
    /// [`OVERTUIGINGEN_CACHE_TTL`]; callers waiting on one read share it.
    pub(crate) async fn active_overtuigingen(&self) -> Result<Vec<Record>> {
        let mut cached = self.inner.overtuigingen.lock().await;
        if let Some((records, at)) = cached.as_ref() {
            if at.elapsed() < OVERTUIGINGEN_CACHE_TTL {
                return Ok(records.clone());
            }
        }
        let records = self
            .list("overtuiging", Some(self.active_filter("overtuiging")?))
            .await?;
        *cached = Some((records.clone(), Instant::now()));
        Ok(records)
    }

    fn active_filter(&self, entity: &str) -> Result<Formula> {
        Ok(self
            .formula_field(entity, "active")?
            .equals(formula::boolean(true)))
    }
}

/// Keyset paging over rows already sorted by (key, id).
pub(crate) fn page_sorted<T, K: PartialOrd + ToString + std::str::FromStr>(
    rows: Vec<T>,
    page: &PageRequest,
    key_of: impl Fn(&T) -> (K, Uuid),
    ascending: bool,
) -> Result<Page<T>> {
    let after = page.after_key::<K>()?;
    let rows: Vec<T> = rows
        .into_iter()
        .filter(|row| match &after {
            None => true,
            Some((key, id)) => {
                let (k, i) = key_of(row);
                let later = k > *key || (k == *key && i > *id);
                let earlier = k < *key || (k == *key && i < *id);
                if ascending {
                    later
                } else {
                    earlier
                }
            }
        })
        .take(page.fetch_limit() as usize)
        .collect();
    Ok(Page::from_rows(rows, page, |row| {
        let (key, id) = key_of(row);
        Cursor {
            key: key.to_string(),
            id,
        }
    }))
}

#[async_trait]
impl ReferenceStore for AirtableStore {
    async fn method(&self, id: MethodId) -> Result<Method> {
        let record = self
            .records_of("method", &[id.0])
            .await?
            .remove(&id.0)
            .ok_or_else(|| Error::not_found("method"))?;
        let found = self.by_record_ids("method", &[record]).await?;
        self.methods_from(found)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("method"))
    }

    async fn habits(&self, page: &PageRequest) -> Result<Page<Method>> {
        let habit = self
            .formula_field("method", "is_habit")?
            .equals(formula::boolean(true));
        let records = self
            .list(
                "method",
                Some(formula::and([habit, self.active_filter("method")?])),
            )
            .await?;
        let mut methods = self.methods_from(records).await?;
        methods.sort_by(|a, b| a.sort_order.cmp(&b.sort_order).then(a.id.cmp(&b.id)));
        page_sorted(methods, page, |m| (m.sort_order, m.id.0), true)
    }

    async fn overtuigingen_by_goals(
        &self,
        goals: &[GoalId],
        page: &PageRequest,
    ) -> Result<Page<Overtuiging>> {
        let wanted: Vec<String> = self
            .records_of("goal", &goals.iter().map(|g| g.0).collect::<Vec<_>>())
            .await?
            .into_values()
            .collect();
        if wanted.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        // A link shows the goal's name in a formula, which need not be
        // unique: take the active ones and match the links themselves.
        let f = |key| self.field("overtuiging", key);
        let records: Vec<Record> = self
            .active_overtuigingen()
            .await?
            .into_iter()
            .filter(|record| {
                links(&record.fields, f("->goal"))
                    .iter()
                    .any(|g| wanted.contains(g))
            })
            .collect();
        let ids = self
            .uuids_of(
                "overtuiging",
                &records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            )
            .await?;
        let goal_links: Vec<String> = records
            .iter()
            .flat_map(|r| links(&r.fields, f("->goal")))
            .collect();
        let goal_refs = self.goal_refs(&goal_links).await?;
        let mut items = Vec::new();
        for record in records {
            let Some(id) = ids.get(&record.id) else {
                continue;
            };
            let fields = &record.fields;
            items.push(Overtuiging {
                id: OvertuigingId(*id),
                name: text(fields, f("name")),
                description: text(fields, f("description")),
                level: fields.integer(f("level")).up()?.unwrap_or(1) as i16,
                active: fields.checkbox(f("active")).up()?,
                goals: links(fields, f("->goal"))
                    .iter()
                    .filter_map(|g| goal_refs.get(g).cloned())
                    .collect(),
            });
        }
        items.sort_by(|a, b| a.level.cmp(&b.level).then(a.id.cmp(&b.id)));
        page_sorted(items, page, |o| (o.level, o.id.0), true)
    }

    async fn company_by_code(&self, code: &str) -> Result<Option<Company>> {
        // Codes compare case-insensitively. The builder has no LOWER(), so
        // the call wraps builder-made parts; the code is a quoted literal.
        let code_field = self.formula_field("company", "code")?;
        let same_code = Formula::from_trusted(format!(
            "LOWER({code_field}) = {}",
            formula::text(&code.to_lowercase())
        ));
        let records = self
            .list(
                "company",
                Some(formula::and([same_code, self.active_filter("company")?])),
            )
            .await?;
        let ids = self
            .uuids_of(
                "company",
                &records.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            )
            .await?;
        let f = |key| self.field("company", key);
        Ok(records.into_iter().find_map(|record| {
            Some(Company {
                id: CompanyId(*ids.get(&record.id)?),
                name: text(&record.fields, f("name")),
                code: text(&record.fields, f("code")),
            })
        }))
    }
}
