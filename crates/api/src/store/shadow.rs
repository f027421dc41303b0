//! `postgres_shadow_read`: Airtable answers; PostgreSQL is read too, off
//! the request path, and every difference is counted and logged by endpoint
//! and field. Writes go to Airtable only (it is still the source of truth in
//! this mode); the inbound sync brings them into PostgreSQL.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::Scope;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::store::habit_usage::HabitUsageStore;
use crate::store::method_usage::{MethodUsage, MethodUsagePatch, MethodUsageStore};
use crate::store::personal_goals::{
    NewPersonalGoal, PersonalGoal, PersonalGoalPatch, PersonalGoalStore,
};
use crate::store::programs::{
    NewProgram, Program, ProgramDetail, ProgramPatch, ProgramStore, ScheduleDay, ScheduleDayPatch,
};
use crate::store::reference::{Company, Method, Overtuiging, ReferenceStore};
use crate::store::rewards::{RewardStore, Rewards};
use crate::store::usage::{Award, ListUsage, ListedUsage, RecordUsage, Usage};
use crate::store::users::{UserProfile, UserStore};
use crate::store::Created;

/// Fields that differ between the backends by nature (each stamps its own
/// times), left out of the comparison.
const IGNORED: [&str; 3] = ["createdAt", "updatedAt", "lastLoginAt"];

/// Counts of shadow comparisons and their differences.
#[derive(Debug, Default)]
pub struct ShadowMetrics {
    compared: AtomicU64,
    failed: AtomicU64,
    differences: Mutex<BTreeMap<(String, String), u64>>,
}

/// A copy of the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowSnapshot {
    /// Answers compared.
    pub compared: u64,
    /// Shadow reads that could not be compared (PostgreSQL failed).
    pub failed: u64,
    /// Differences by (endpoint, field); a field inside a list is written
    /// `items[].name`.
    pub differences: BTreeMap<(String, String), u64>,
}

impl ShadowMetrics {
    pub fn snapshot(&self) -> ShadowSnapshot {
        ShadowSnapshot {
            compared: self.compared.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            differences: self
                .differences
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    fn record(&self, endpoint: &str, answer: &Value, shadow: &Value) {
        let mut fields = Vec::new();
        diff("", answer, shadow, &mut fields);
        self.compared.fetch_add(1, Ordering::Relaxed);
        if fields.is_empty() {
            return;
        }
        let mut differences = self.differences.lock().unwrap_or_else(|p| p.into_inner());
        for field in fields {
            // Values stay out of the log: they are people's data.
            tracing::warn!(endpoint, field = %field, "shadow read differs from Airtable");
            *differences.entry((endpoint.to_owned(), field)).or_default() += 1;
        }
    }
}

/// Paths at which two answers differ; list indexes are collapsed to `[]`.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                if IGNORED.contains(&key.as_str()) {
                    continue;
                }
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff(
                    &sub,
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let sub = format!("{path}[]");
            if x.len() != y.len() {
                out.push(format!("{sub}.length"));
            }
            for (i, j) in x.iter().zip(y) {
                diff(&sub, i, j, out);
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            "(answer)".into()
        } else {
            path.to_owned()
        }),
        _ => {}
    }
}

fn as_value<T: Serialize>(result: &Result<T>) -> Value {
    match result {
        Ok(value) => serde_json::to_value(value).unwrap_or(Value::Null),
        Err(err) => json!({ "status": err.status().as_u16() }),
    }
}

/// Airtable's store answering, PostgreSQL's compared.
pub struct Shadow<T: ?Sized> {
    answering: Arc<T>,
    compared: Arc<T>,
    metrics: Arc<ShadowMetrics>,
}

impl<T: ?Sized + Send + Sync + 'static> Shadow<T> {
    pub fn new(answering: Arc<T>, compared: Arc<T>, metrics: Arc<ShadowMetrics>) -> Shadow<T> {
        Shadow {
            answering,
            compared,
            metrics,
        }
    }

    /// Compares `answer` with what `read` gets from PostgreSQL, in a task
    /// of its own so the request does not wait.
    fn compare<R, F>(
        &self,
        endpoint: &'static str,
        answer: &Result<R>,
        read: impl FnOnce(Arc<T>) -> F,
    ) where
        R: Serialize,
        F: Future<Output = Result<R>> + Send + 'static,
    {
        if matches!(answer, Err(Error::Upstream(_)) | Err(Error::Internal(_))) {
            return;
        }
        let answered = as_value(answer);
        let metrics = self.metrics.clone();
        let shadow = read(self.compared.clone());
        tokio::spawn(async move {
            let shadowed = shadow.await;
            if matches!(shadowed, Err(Error::Internal(_))) {
                metrics.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            metrics.record(endpoint, &answered, &as_value(&shadowed));
        });
    }
}

#[async_trait]
impl UserStore for Shadow<dyn UserStore> {
    async fn profile(&self, id: UserId) -> Result<Option<UserProfile>> {
        let answer = self.answering.profile(id).await;
        self.compare("GET /api/auth/me", &answer, move |pg| async move {
            pg.profile(id).await
        });
        answer
    }
}

#[async_trait]
impl ProgramStore for Shadow<dyn ProgramStore> {
    async fn list(&self, user: UserId, page: &PageRequest) -> Result<Page<Program>> {
        let answer = self.answering.list(user, page).await;
        let page = page.clone();
        self.compare("GET /api/programs", &answer, move |pg| async move {
            pg.list(user, &page).await
        });
        answer
    }
    async fn create(
        &self,
        owner: UserId,
        new: NewProgram,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        self.answering.create(owner, new, now).await
    }
    async fn get(&self, scope: Scope, id: ProgramId, now: DateTime<Utc>) -> Result<ProgramDetail> {
        let answer = self.answering.get(scope, id, now).await;
        self.compare("GET /api/programs/{id}", &answer, move |pg| async move {
            pg.get(scope, id, now).await
        });
        answer
    }
    async fn update(
        &self,
        owner: UserId,
        id: ProgramId,
        patch: ProgramPatch,
        now: DateTime<Utc>,
    ) -> Result<ProgramDetail> {
        self.answering.update(owner, id, patch, now).await
    }
    async fn delete(&self, owner: UserId, id: ProgramId) -> Result<()> {
        self.answering.delete(owner, id).await
    }
    async fn update_schedule_day(
        &self,
        owner: UserId,
        program: ProgramId,
        day: ScheduleDayId,
        patch: ScheduleDayPatch,
    ) -> Result<ScheduleDay> {
        self.answering
            .update_schedule_day(owner, program, day, patch)
            .await
    }
}

/// Every kind of usage is recorded in Airtable only.
#[async_trait]
impl<U: Usage, T: RecordUsage<U> + ?Sized + 'static> RecordUsage<U> for Shadow<T> {
    async fn create(
        &self,
        owner: UserId,
        new: U::New,
        now: DateTime<Utc>,
    ) -> Result<Created<(U, Award)>> {
        self.answering.create(owner, new, now).await
    }
}

#[async_trait]
impl<U: ListedUsage, T: ListUsage<U> + ?Sized + 'static> ListUsage<U> for Shadow<T> {
    async fn list(&self, user: UserId, filter: U::Filter, page: &PageRequest) -> Result<Page<U>> {
        let answer = self.answering.list(user, filter, page).await;
        let page = page.clone();
        self.compare(U::LISTED_AT, &answer, move |pg| async move {
            pg.list(user, filter, &page).await
        });
        answer
    }
}

#[async_trait]
impl MethodUsageStore for Shadow<dyn MethodUsageStore> {
    async fn update(
        &self,
        owner: UserId,
        id: MethodUsageId,
        patch: MethodUsagePatch,
        now: DateTime<Utc>,
    ) -> Result<MethodUsage> {
        self.answering.update(owner, id, patch, now).await
    }
    async fn latest_by_program(
        &self,
        scope: Scope,
        program: ProgramRef,
    ) -> Result<Vec<MethodUsage>> {
        let answer = self
            .answering
            .latest_by_program(scope, program.clone())
            .await;
        self.compare(
            "GET /api/method-usage/by-program",
            &answer,
            move |pg| async move { pg.latest_by_program(scope, program).await },
        );
        answer
    }
}

#[async_trait]
impl HabitUsageStore for Shadow<dyn HabitUsageStore> {
    async fn delete(&self, owner: UserId, id: HabitUsageId, now: DateTime<Utc>) -> Result<()> {
        self.answering.delete(owner, id, now).await
    }
}

#[async_trait]
impl PersonalGoalStore for Shadow<dyn PersonalGoalStore> {
    async fn list(
        &self,
        user: UserId,
        active: Option<bool>,
        page: &PageRequest,
    ) -> Result<Page<PersonalGoal>> {
        let answer = self.answering.list(user, active, page).await;
        let page = page.clone();
        self.compare("GET /api/personal-goals", &answer, move |pg| async move {
            pg.list(user, active, &page).await
        });
        answer
    }
    async fn create(&self, owner: UserId, new: NewPersonalGoal) -> Result<PersonalGoal> {
        self.answering.create(owner, new).await
    }
    async fn get(&self, scope: Scope, id: PersonalGoalId) -> Result<PersonalGoal> {
        let answer = self.answering.get(scope, id).await;
        self.compare(
            "GET /api/personal-goals/{id}",
            &answer,
            move |pg| async move { pg.get(scope, id).await },
        );
        answer
    }
    async fn update(
        &self,
        owner: UserId,
        id: PersonalGoalId,
        patch: PersonalGoalPatch,
    ) -> Result<PersonalGoal> {
        self.answering.update(owner, id, patch).await
    }
    async fn delete(&self, owner: UserId, id: PersonalGoalId, now: DateTime<Utc>) -> Result<()> {
        self.answering.delete(owner, id, now).await
    }
}

#[async_trait]
impl RewardStore for Shadow<dyn RewardStore> {
    async fn rewards(&self, user: UserId, now: DateTime<Utc>) -> Result<Rewards> {
        let answer = self.answering.rewards(user, now).await;
        self.compare("GET /api/rewards", &answer, move |pg| async move {
            pg.rewards(user, now).await
        });
        answer
    }
}

#[async_trait]
impl ReferenceStore for Shadow<dyn ReferenceStore> {
    async fn method(&self, id: MethodId) -> Result<Method> {
        let answer = self.answering.method(id).await;
        self.compare("GET /api/methods/{id}", &answer, move |pg| async move {
            pg.method(id).await
        });
        answer
    }
    async fn habits(&self, page: &PageRequest) -> Result<Page<Method>> {
        let answer = self.answering.habits(page).await;
        let page = page.clone();
        self.compare("GET /api/methods/habits", &answer, move |pg| async move {
            pg.habits(&page).await
        });
        answer
    }
    async fn overtuigingen_by_goals(
        &self,
        goals: &[GoalId],
        page: &PageRequest,
    ) -> Result<Page<Overtuiging>> {
        let answer = self.answering.overtuigingen_by_goals(goals, page).await;
        let (goals, page) = (goals.to_vec(), page.clone());
        self.compare(
            "GET /api/overtuigingen/by-goals",
            &answer,
            move |pg| async move { pg.overtuigingen_by_goals(&goals, &page).await },
        );
        answer
    }
    async fn company_by_code(&self, code: &str) -> Result<Option<Company>> {
        let answer = self.answering.company_by_code(code).await;
        let code = code.to_owned();
        self.compare("GET /api/companies/lookup", &answer, move |pg| async move {
            pg.company_by_code(&code).await
        });
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_named_by_field_with_list_indexes_collapsed() {
        let a = json!({ "items": [{ "name": "a", "createdAt": 1 }, { "name": "b" }], "nextCursor": null });
        let b = json!({ "items": [{ "name": "a", "createdAt": 2 }, { "name": "c" }], "nextCursor": null });
        let mut out = Vec::new();
        diff("", &a, &b, &mut out);
        assert_eq!(out, ["items[].name"]);
        let mut out = Vec::new();
        diff(
            "",
            &json!({ "items": [1] }),
            &json!({ "items": [] }),
            &mut out,
        );
        assert_eq!(out, ["items[].length"]);
    }
}
