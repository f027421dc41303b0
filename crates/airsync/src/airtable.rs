//! Building the Airtable client and the sync's parts from the configuration.

use std::sync::Arc;

use airsync_airtable::{AirtableClient, BudgetStore, ClientConfig};
use airsync_sync::budget::PgBudgetStore;
use airsync_sync::inbound::InboundSettings;
use airsync_sync::worker::{WorkerSettings, WorkerTuning};
use sqlx::PgPool;

use airsync_airtable::BaseId;

use crate::config::{Config, ConfigError};

/// The Airtable client of a process of the deployment: each base's budget
/// is shared, through the database, with the deployment's other processes
/// (the API's and the worker's, however many of each run).
pub fn shared_client(config: &Config, pool: &PgPool) -> Result<AirtableClient, ConfigError> {
    build_client(config, Some(Arc::new(PgBudgetStore::new(pool.clone()))))
}

/// Checks the Airtable client's settings before a process waits for its
/// database.
pub fn check_client(config: &Config) -> Result<(), ConfigError> {
    build_client(config, None).map(drop)
}

/// The Airtable client of a command that does not touch the database; it
/// paces its requests alone. Needs `AIRTABLE_TOKEN`.
pub fn client(config: &Config) -> Result<AirtableClient, ConfigError> {
    build_client(config, None)
}

fn build_client(
    config: &Config,
    budget_store: Option<Arc<dyn BudgetStore>>,
) -> Result<AirtableClient, ConfigError> {
    let airtable = &config.airtable;
    let token = airtable.token.as_ref().ok_or_else(|| {
        ConfigError::missing("AIRTABLE_TOKEN", "a personal access token (pat...)")
    })?;
    let mut client_config = ClientConfig::new(token.expose())
        .with_api_url(airtable.api_url.as_str())
        .map_err(|err| ConfigError::invalid("AIRTABLE_API_URL", err.to_string()))?;
    client_config.rate_limits.per_base = airtable.rate_limit_per_base;
    client_config.rate_limits.per_token = airtable.rate_limit_per_token;
    client_config.rate_limits.budget_share = f64::from(airtable.rate_budget_percent) / 100.0;
    client_config.rate_limits.safety_margin = airtable.rate_margin;
    client_config.rate_limits.recovery_step = airtable.rate_recovery_step;
    client_config.connect_timeout = airtable.connect_timeout;
    client_config.request_timeout = airtable.request_timeout;
    client_config.budget_store = budget_store;
    AirtableClient::new(client_config)
        .map_err(|err| ConfigError::invalid("AIRTABLE_API_URL", err.to_string()))
}

/// `AIRTABLE_BASE_ID`, or an error that says it is needed.
pub fn base_id(config: &Config) -> Result<&BaseId, ConfigError> {
    config
        .airtable
        .base_id
        .as_ref()
        .ok_or_else(|| ConfigError::missing("AIRTABLE_BASE_ID", "the base's id (app...)"))
}

/// The worker's settings from `WORKER_*`.
pub fn worker_settings(config: &Config, base_id: &BaseId) -> WorkerSettings {
    let worker = &config.worker;
    WorkerSettings {
        tuning: WorkerTuning {
            batch_size: worker.batch_size,
            max_batches_in_flight: worker.concurrency.max(1) as usize,
            lease: worker.lease,
            max_attempts: worker.max_attempts,
            retry_base: worker.retry_base,
            retry_max: worker.retry_max,
            poll_interval: worker.poll_interval,
            ..WorkerTuning::default()
        },
        ..WorkerSettings::new(base_id.clone())
    }
}

/// The inbound sync's settings: webhooks when `AIRTABLE_WEBHOOK_URL` says
/// where Airtable can ping, watching the Users table unless
/// `USER_FAST_LANE_ENABLED=false`, the incremental poll on
/// `SYNC_INCREMENTAL_POLL_INTERVAL_SECS`, the payload reader's timer on
/// `SYNC_PAYLOAD_READER_INTERVAL_SECS`, the full reconcile on
/// `SYNC_FULL_RECONCILE_INTERVAL_SECS` unless
/// `FULL_AIRTABLE_POLL_SYNC_ENABLED=false`.
pub fn inbound_settings(config: &Config) -> InboundSettings {
    InboundSettings {
        webhooks_enabled: config.airtable.webhook_url.is_some(),
        user_fast_lane: config.switches.user_fast_lane,
        notification_url: config.airtable.webhook_url.as_ref().map(|u| u.to_string()),
        webhook_secret: config
            .airtable
            .webhook_secret
            .as_ref()
            .map(|s| s.expose().to_owned()),
        reader_interval: config.sync.payload_reader_interval,
        webhook_check_interval: config.sync.webhook_check_interval,
        poll_interval: config.sync.incremental_poll_interval,
        reconcile_enabled: config.switches.full_poll_sync,
        reconcile_interval: config.sync.full_reconcile_interval,
        ..InboundSettings::default()
    }
}
