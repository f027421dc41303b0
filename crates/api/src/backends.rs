//! Choosing each endpoint group's store from its data-backend mode, and the
//! login read-through to Airtable.

use std::sync::Arc;

use sqlx::PgPool;

use crate::backend_mode::{DataBackendMode, EndpointGroup};
use crate::config::ApiConfig;
use crate::domain::Email;
use crate::error::Result;
use crate::state::{AppState, SetupError};
use crate::store::airtable::AirtableStore;
use crate::store::postgres::{users::Credentials, PgStore};
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
            crate::store::PersonalGoalUsageStore
        ),
        overtuiging_usage: pick!(
            EndpointGroup::OvertuigingUsage,
            crate::store::OvertuigingUsageStore
        ),
        rewards: pick!(EndpointGroup::Rewards, crate::store::RewardStore),
        reference: pick!(EndpointGroup::Reference, crate::store::ReferenceStore),
    })
}

/// Login's fallback for an email unknown to PostgreSQL: look the user up in
/// Airtable and bring the record in, so that a user the team just created
/// exists here (and can be invited to set a password). `None` when the
/// read-through is off, there is no base, or the base does not know the
/// email either. A failure of the base is logged and counts as unknown: a
/// login must not fail because Airtable is slow.
pub async fn read_through_user(state: &AppState, email: &Email) -> Result<Option<Credentials>> {
    if !state.config().user_readthrough_fallback {
        return Ok(None);
    }
    let Some(airtable) = state.airtable() else {
        return Ok(None);
    };
    match airtable.import_user(email).await {
        Ok(found) => Ok(found),
        Err(err) => {
            tracing::warn!(error = %err, "read-through lookup of a user in Airtable failed");
            Ok(None)
        }
    }
}
