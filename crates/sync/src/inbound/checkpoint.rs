//! Positions of the inbound paths in `sync_checkpoint`: the webhook (its id,
//! MAC secret and payload cursor), each table's poll watermark, each table's
//! last reconcile. Stored as JSON, one row per position.

use airsync_airtable::BaseId;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgExecutor;

use crate::Result;

/// The webhook's checkpoint name for a base.
pub(crate) fn webhook_name(base_id: &BaseId) -> String {
    format!("inbound:webhook:{base_id}")
}

/// A table's poll watermark.
pub(crate) fn poll_name(entity: &str) -> String {
    format!("inbound:poll:{entity}")
}

/// When a change from Airtable last reached a table's rows (its
/// `updated_at`), and how many rows that batch changed.
pub(crate) fn changed_name(entity: &str) -> String {
    format!("inbound:changed:{entity}")
}

/// Notes that a batch changed `rows` rows of `entity`, in the batch's own
/// transaction.
pub(crate) async fn mark_changed<'e>(
    executor: impl PgExecutor<'e>,
    entity: &str,
    rows: u64,
) -> Result<()> {
    store(
        executor,
        &changed_name(entity),
        &serde_json::json!({ "rows": rows }),
    )
    .await
}

/// A table's last full reconcile.
pub(crate) fn reconcile_name(entity: &str) -> String {
    format!("inbound:reconcile:{entity}")
}

/// The webhook airsync keeps on the base.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WebhookCheckpoint {
    pub webhook_id: String,
    /// The key of the pings' MAC; Airtable shows it only at creation.
    pub mac_secret_base64: String,
    /// The next payload to read.
    pub cursor: u64,
    pub expiration_time: Option<DateTime<Utc>>,
    pub notification_url: Option<String>,
    /// The specification it was created with; a changed mapping recreates it.
    pub specification: Value,
    pub created_at: DateTime<Utc>,
    /// When its payloads were last read, so that a gap can be caught up
    /// from there.
    pub last_read_at: Option<DateTime<Utc>>,
    /// An error payload said the specification became invalid: recreate.
    #[serde(default)]
    pub broken: bool,
    /// Since when the base's history is on record without a gap: this
    /// webhook's creation, or the start of the webhook it replaced when
    /// that one recorded until the replacement and its last payloads were
    /// read. `None` (a checkpoint from before this was kept): `created_at`.
    #[serde(default)]
    pub history_since: Option<DateTime<Utc>>,
    /// When airsync found that it records no more (expired, gone, in
    /// error), on its way to a new one: from then on no update is sent
    /// without reading the record first.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
    /// Entities whose changes in its payloads are not applied, left to the
    /// poll (the users' while their fast lane is off): for them it keeps no
    /// history the worker may rely on.
    #[serde(default)]
    pub unwatched: Vec<String>,
}

impl std::fmt::Debug for WebhookCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCheckpoint")
            .field("webhook_id", &self.webhook_id)
            .field("mac_secret_base64", &"<redacted>")
            .field("cursor", &self.cursor)
            .field("expiration_time", &self.expiration_time)
            .field("last_read_at", &self.last_read_at)
            .field("broken", &self.broken)
            .field("history_since", &self.history_since)
            .field("stopped_at", &self.stopped_at)
            .field("unwatched", &self.unwatched)
            .finish_non_exhaustive()
    }
}

/// A table's poll watermark: records modified after `since` (minus the
/// overlap) are read by the next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PollCheckpoint {
    pub since: DateTime<Utc>,
}

/// A table's last full reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReconcileCheckpoint {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub records: u64,
    pub deleted: u64,
    pub refused_deletes: u64,
}

/// The checkpoint `name`, if stored and readable.
pub(crate) async fn load<'e, T: DeserializeOwned>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<Option<T>> {
    let value: Option<Value> =
        sqlx::query_scalar("SELECT value FROM sync_checkpoint WHERE name = $1")
            .bind(name)
            .fetch_optional(executor)
            .await?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// The checkpoint `name`, locked until the transaction ends.
pub(crate) async fn load_for_update<'e, T: DeserializeOwned>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<Option<T>> {
    let value: Option<Value> =
        sqlx::query_scalar("SELECT value FROM sync_checkpoint WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(executor)
            .await?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// Stores the checkpoint `name`.
pub(crate) async fn store<'e, T: Serialize>(
    executor: impl PgExecutor<'e>,
    name: &str,
    value: &T,
) -> Result<()> {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    sqlx::query(
        "INSERT INTO sync_checkpoint (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(name)
    .bind(value)
    .execute(executor)
    .await?;
    Ok(())
}
