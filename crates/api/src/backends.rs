//! Choosing each endpoint group's store from its data-backend mode, and the
//! login read-through to Airtable.

use std::sync::Arc;

use sqlx::PgPool;

use crate::backend_mode::{DataBackendMode, EndpointGroup};
use crate::config::ApiConfig;
use crate::error::Result;
use crate::setup::SetupError;
use crate::store::airtable::AirtableStore;
use crate::store::postgres::PgStore;
use crate::store::shadow::{Shadow, ShadowMetrics};
use crate::store::Stores;

/// The Airtable store, when the configuration names a base.
pub fn airtable_store(
    pool: &PgPool,
    config: &ApiConfig,
) -> Result<Option<AirtableStore>, SetupError> {
    match &config.airtable {
        None => Ok(None),
        Some(access) => AirtableStore::new(
            access.client.clone(),
            access.base_id.clone(),
            &access.mapping,
            pool.clone(),
        )
        .map(Some)
        .map_err(SetupError::Mapping),
    }
}

/// The stores for `config`'s modes.
pub fn stores_for(
    pool: &PgPool,
    config: &ApiConfig,
    airtable: Option<&AirtableStore>,
    metrics: &Arc<ShadowMetrics>,
) -> Result<Stores, SetupError> {
    let pg = Arc::new(PgStore::new(pool.clone()));
    let airtable = airtable.map(|store| Arc::new(store.clone()));
    let need_airtable = |group: EndpointGroup| -> Result<Arc<AirtableStore>, SetupError> {
        airtable.clone().ok_or_else(|| SetupError::AirtableMissing {
            variable: group.variable(),
            mode: config.backend(group).as_str(),
        })
    };
    macro_rules! pick {
        ($group:expr, $trait:path) => {{
            let postgres: Arc<dyn $trait> = pg.clone();
            match config.backend($group) {
                DataBackendMode::PostgresPrimary => postgres,
                DataBackendMode::AirtableOnly => {
                    let answering: Arc<dyn $trait> = need_airtable($group)?;
                    answering
                }
                DataBackendMode::PostgresShadowRead => {
                    let answering: Arc<dyn $trait> = need_airtable($group)?;
                    Arc::new(Shadow::<dyn $trait>::new(
                        answering,
                        postgres,
                        metrics.clone(),
                    ))
                }
            }
        }};
    }
    Ok(Stores {
        users: pick!(EndpointGroup::Users, crate::store::UserStore),
        programs: pick!(EndpointGroup::Programs, crate::store::ProgramStore),
        method_usage: pick!(EndpointGroup::MethodUsage, crate::store::MethodUsageStore),
        habit_usage: pick!(EndpointGroup::HabitUsage, crate::store::HabitUsageStore),
        personal_goals: pick!(
            EndpointGroup::PersonalGoals,
            crate::store::PersonalGoalStore
        ),
        personal_goal_usage: pick!(
            EndpointGroup::PersonalGoalUsage,
            crate::store::ListUsage<crate::store::PersonalGoalUsage>
        ),
        overtuiging_usage: pick!(
            EndpointGroup::OvertuigingUsage,
            crate::store::ListUsage<crate::store::OvertuigingUsage>
        ),
        rewards: pick!(EndpointGroup::Rewards, crate::store::RewardStore),
        reference: pick!(EndpointGroup::Reference, crate::store::ReferenceStore),
        overtuigingen: pick!(EndpointGroup::Overtuigingen, crate::store::ReferenceStore),
        // Credentials stay in PostgreSQL whatever the modes.
        auth: pg,
    })
}

/// Admits read-through lookups: one at a time, and one per email in
/// [`ReadThroughGate::PER_EMAIL`].
#[derive(Debug)]
pub struct ReadThroughGate {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    recent: std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>>,
}

impl Default for ReadThroughGate {
    fn default() -> Self {
        ReadThroughGate {
            running: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            recent: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl ReadThroughGate {
    /// How long after a lookup the same email is not looked up again.
    pub const PER_EMAIL: chrono::Duration = chrono::Duration::minutes(10);

    /// Whether a lookup runs now.
    pub fn running(&self) -> bool {
        self.running.available_permits() == 0
    }

    /// A permit for one lookup of `email` now, or none.
    pub fn admit(
        &self,
        email: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent
            .get(email)
            .is_some_and(|at| now - *at < Self::PER_EMAIL)
        {
            return None;
        }
        let permit = self.running.clone().try_acquire_owned().ok()?;
        if recent.len() > 10_000 {
            recent.retain(|_, at| now - *at < Self::PER_EMAIL);
        }
        recent.insert(email.to_owned(), now);
        Some(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_one_lookup_at_a_time_and_one_per_email_in_ten_minutes() {
        let gate = ReadThroughGate::default();
        let now = chrono::Utc::now();
        let first = gate.admit("a@x", now).expect("the first lookup");
        // Another email while the first runs: turned away, and not marked.
        assert!(gate.admit("b@x", now).is_none());
        drop(first);
        assert!(gate.admit("a@x", now).is_none(), "the same email again");
        assert!(gate.admit("b@x", now).is_some());
        let later = now + ReadThroughGate::PER_EMAIL;
        assert!(gate.admit("a@x", later).is_some());
    }
}
