//! The webhook's lifecycle: created when missing (for the tables and fields
//! of the mapping), refreshed well before it expires, recreated when it
//! expired, went into error or is gone, with an incremental catch-up of the
//! gap. One process at a time manages it (an advisory lock per base).

use airsync_airtable::{
    BaseId, SpecificationOptions, Webhook, WebhookFilters, WebhookIncludes, WebhookSpecification,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;

use super::checkpoint::{self, WebhookCheckpoint};
use super::context::{InboundContext, InboundSettings};
use super::metrics::InboundMetricsSnapshot;
use super::poll::catch_up;
use super::reader::read_payloads_once;
use super::schema::ResolvedBase;
use crate::session_lock::SessionLock;
use crate::Result;

/// What [`ensure_webhook`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    /// Webhooks are turned off; the incremental poll carries the sync.
    Disabled,
    /// Another process manages the webhook right now.
    Busy,
    /// The webhook is healthy and far from expiry.
    Kept,
    /// The webhook was refreshed (or its pings turned back on).
    Refreshed,
    /// A webhook was created, for this reason; the gap since the last read
    /// was caught up by an incremental poll.
    Created {
        /// Why ("none yet", "expired or in error", ...).
        reason: String,
    },
}

/// Entities whose changes the payload reader leaves to the poll: the
/// users' while their fast lane is off. (A webhook cannot leave one table
/// out: its field filter narrows updates, not creates and deletes.)
pub(crate) fn unwatched(settings: &InboundSettings) -> Vec<String> {
    if settings.user_fast_lane {
        Vec::new()
    } else {
        vec!["user".to_owned()]
    }
}

/// What the webhook watches: record changes in every mapped table, the
/// inbound fields only, with every cell of a changed record included so a
/// payload carries what applying it needs.
pub(crate) fn specification(base: &ResolvedBase) -> WebhookSpecification {
    WebhookSpecification {
        options: SpecificationOptions {
            filters: WebhookFilters {
                data_types: vec!["tableData".into()],
                watch_data_in_field_ids: Some(base.inbound_field_ids()),
                ..WebhookFilters::default()
            },
            includes: Some(WebhookIncludes {
                include_cell_values_in_field_ids: Some(json!("all")),
                ..WebhookIncludes::default()
            }),
        },
    }
}

/// Makes sure the base has a healthy webhook of ours; see [`WebhookAction`].
pub async fn ensure_webhook(ctx: &InboundContext) -> Result<WebhookAction> {
    if !ctx.settings().webhooks_enabled {
        return Ok(WebhookAction::Disabled);
    }
    // One process at a time creates or refreshes the base's webhook.
    let key = format!("airsync:inbound-webhook:{}", ctx.base_id());
    let Some(lock) = SessionLock::try_acquire(ctx.pool(), key).await? else {
        return Ok(WebhookAction::Busy);
    };
    let result = manage(ctx).await;
    lock.release().await;
    result
}

async fn manage(ctx: &InboundContext) -> Result<WebhookAction> {
    // The base may have changed since the schema was read.
    ctx.forget_schema();
    let base = ctx.schema().await?;
    let unwatched = unwatched(ctx.settings());
    let spec = specification(&base);
    let spec_value = serde_json::to_value(&spec).unwrap_or(Value::Null);
    let name = checkpoint::webhook_name(ctx.base_id());
    let stored: Option<WebhookCheckpoint> = checkpoint::load(ctx.pool(), &name).await?;
    let api = ctx.client().base(ctx.base_id());
    let hooks = api.list_webhooks().await?;
    let current: Option<&Webhook> = stored
        .as_ref()
        .and_then(|s| hooks.iter().find(|h| h.id == s.webhook_id));
    let url = ctx.settings().notification_url.clone();
    // Hooks of ours that airsync does not keep go first: they would count
    // against Airtable's ten per base and ping for nothing.
    let mut retired = Retired::load(ctx).await?;
    retired.find_strays(&hooks, current.map(|h| h.id.as_str()), url.as_deref());
    retired.remove_all(ctx, &hooks).await?;

    let reason = match (&stored, current) {
        (None, _) => Some("none yet"),
        (Some(_), None) => Some("gone"),
        (Some(_), Some(hook)) if !hook.is_hook_enabled => Some("expired or in error"),
        (Some(s), Some(_)) if s.broken => Some("its specification became invalid"),
        (Some(s), Some(_)) if s.unwatched != unwatched => Some("the users' fast lane was switched"),
        (Some(s), Some(_)) if s.specification != spec_value => Some("the mapping changed"),
        (Some(s), Some(_)) if s.notification_url != url => Some("the notification URL changed"),
        _ => None,
    };
    if let (None, Some(stored), Some(hook)) = (reason, &stored, current) {
        return keep(ctx, &name, stored, hook).await;
    }
    let reason = reason.unwrap_or("unknown").to_owned();
    // A webhook gone, expired or in error records nothing more: say so at
    // once, so that the worker reads records before updating them while
    // the old payloads are read and the new webhook is made.
    let stopped = stored.as_ref().is_some_and(|s| s.broken)
        || (stored.is_some() && current.is_none_or(|hook| !hook.is_hook_enabled));
    if stopped {
        sqlx::query(
            "UPDATE sync_checkpoint SET value = jsonb_set(value, '{stopped_at}', $2) WHERE name = $1",
        )
        .bind(&name)
        .bind(serde_json::to_value(Utc::now()).unwrap_or(Value::Null))
        .execute(ctx.pool())
        .await?;
    }
    // The old webhook's unread payloads (deletes among them, which no poll
    // can see) are read before it goes.
    let mut gap_read = false;
    if let (Some(old), Some(_)) = (&stored, current) {
        if !old.broken {
            match read_payloads_once(ctx).await {
                Ok(report) => gap_read = !report.webhook_broken,
                Err(err) => {
                    tracing::warn!(webhook = %old.webhook_id, error = %err, "could not read the old webhook's last payloads")
                }
            }
        }
    }
    if let Some(hook) = current {
        retired.ids.push(hook.id.clone());
        retired.changed = true;
        retired.remove_all(ctx, &hooks).await?;
    }
    // The new webhook continues the old one's history only when the old
    // one recorded until now (Airtable still had it enabled, no error) and
    // its last payloads were read.
    let continues = gap_read && current.is_some_and(|hook| hook.is_hook_enabled);
    // A table whose payloads the old one left to the poll has no history
    // before the new one: then every table's starts now.
    let history_from = stored
        .as_ref()
        .filter(|old| continues && old.unwatched.iter().all(|e| unwatched.contains(e)))
        .map(|old| old.history_since.unwrap_or(old.created_at));
    // A create whose answer is lost leaves a hook airsync does not know:
    // the next run finds it by what this one records now.
    retired.pending_create = Some(PendingCreate {
        notification_url: url.clone(),
        specification: spec_value.clone(),
    });
    retired.store(ctx).await?;
    let created = api.create_webhook(&spec, url.as_deref()).await?;
    let now = Utc::now();
    let fresh = WebhookCheckpoint {
        webhook_id: created.id.clone(),
        mac_secret_base64: created.mac_secret_base64.clone(),
        cursor: 1,
        expiration_time: created.expiration_time,
        notification_url: url,
        specification: spec_value,
        created_at: now,
        last_read_at: Some(now),
        broken: false,
        history_since: Some(history_from.unwrap_or(now)),
        stopped_at: None,
        unwatched,
    };
    checkpoint::store(ctx.pool(), &name, &fresh).await?;
    retired.pending_create = None;
    retired.store(ctx).await?;
    ctx.metrics().add(&InboundMetricsSnapshot {
        webhooks_created: 1,
        ..Default::default()
    });
    tracing::info!(webhook = %created.id, %reason, "created the base's webhook");
    // The new webhook sees changes from now on; what happened since the
    // old one was last read is read by a poll.
    if let Some(old) = &stored {
        if !continues {
            // The old webhook stopped recording before now (it expired, is
            // gone or in error), or its last payloads could not be read: a
            // poll sees the gap's changes but not its deletes. The next
            // full reconcile finds them, so it is due at once.
            make_reconcile_due(ctx).await?;
            tracing::warn!(webhook = %old.webhook_id, read = gap_read,
                "the old webhook left a gap in the base's history; a full reconcile is due to find the gap's deletes");
        }
        // The reconciler's read may still be in flight: the catch-up poll
        // covers the changes meanwhile.
        let gap_from = checkpoint::load::<WebhookCheckpoint>(ctx.pool(), &name)
            .await?
            .filter(|c| c.webhook_id == old.webhook_id)
            .and_then(|c| c.last_read_at)
            .or(old.last_read_at)
            .unwrap_or(old.created_at);
        let report = catch_up(ctx, gap_from).await?;
        tracing::info!(since = %gap_from, records = report.records, "caught up the webhook's gap");
    }
    Ok(WebhookAction::Created { reason })
}

/// Webhooks of this deployment that must go, kept in `sync_checkpoint`
/// until Airtable no longer lists them: old ones whose delete failed, hooks
/// of this deployment's notification URL that airsync does not keep, and
/// those a create whose answer was lost may have left.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Retired {
    ids: Vec<String>,
    pending_create: Option<PendingCreate>,
    /// Whether it changed since it was loaded or stored: a check that
    /// finds nothing to remove writes nothing.
    #[serde(skip)]
    changed: bool,
}

/// A create on its way: a hook with this URL and specification that
/// airsync does not keep was made by it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingCreate {
    notification_url: Option<String>,
    specification: Value,
}

impl Retired {
    fn name(ctx: &InboundContext) -> String {
        format!("inbound:webhook-retired:{}", ctx.base_id())
    }

    async fn load(ctx: &InboundContext) -> Result<Retired> {
        Ok(checkpoint::load(ctx.pool(), &Self::name(ctx))
            .await?
            .unwrap_or_default())
    }

    async fn store(&mut self, ctx: &InboundContext) -> Result<()> {
        checkpoint::store(ctx.pool(), &Self::name(ctx), &*self).await?;
        self.changed = false;
        Ok(())
    }

    /// Adds the listed hooks that are ours but not `keep`: those pinging
    /// this deployment's URL, and those the pending create may have made.
    fn find_strays(&mut self, hooks: &[Webhook], keep: Option<&str>, url: Option<&str>) {
        let pending = self.pending_create.take();
        self.changed |= pending.is_some();
        for hook in hooks {
            if Some(hook.id.as_str()) == keep || self.ids.contains(&hook.id) {
                continue;
            }
            let pings_us = url.is_some() && hook.notification_url.as_deref() == url;
            let made_by_lost_create = pending.as_ref().is_some_and(|p| {
                p.notification_url == hook.notification_url
                    && hook
                        .specification
                        .as_ref()
                        .is_some_and(|s| same_specification(s, &p.specification))
            });
            if pings_us || made_by_lost_create {
                tracing::warn!(webhook = %hook.id, lost_create = made_by_lost_create,
                    "found a webhook of this deployment that airsync does not keep; removing it");
                self.ids.push(hook.id.clone());
                self.changed = true;
            }
        }
    }

    /// Deletes every retired hook Airtable still lists and records what is
    /// left (a failed delete is tried again on the next run).
    async fn remove_all(&mut self, ctx: &InboundContext, hooks: &[Webhook]) -> Result<()> {
        let api = ctx.client().base(ctx.base_id());
        let mut left = Vec::new();
        let before = std::mem::take(&mut self.ids);
        for id in before.iter().cloned() {
            if !hooks.iter().any(|h| h.id == id) {
                continue;
            }
            match api.delete_webhook(&id).await {
                Ok(()) => {
                    tracing::info!(webhook = %id, "deleted a webhook airsync no longer keeps")
                }
                Err(err) if err.status() == Some(404) => {}
                Err(err) => {
                    tracing::warn!(webhook = %id, error = %err,
                        "could not delete a webhook airsync no longer keeps; trying again on the next check");
                    left.push(id);
                }
            }
        }
        self.changed |= left != before;
        self.ids = left;
        if self.changed {
            self.store(ctx).await?;
        }
        Ok(())
    }
}

/// Whether a listed hook's specification is the one a create sent:
/// Airtable may add defaults, so every key sent must be there with the
/// value sent.
fn same_specification(listed: &Value, sent: &Value) -> bool {
    match (listed, sent) {
        (Value::Object(listed), Value::Object(sent)) => sent.iter().all(|(key, value)| {
            value.is_null()
                || listed
                    .get(key)
                    .is_some_and(|l| same_specification(l, value))
        }),
        _ => listed == sent,
    }
}

/// Makes every table's next full reconcile due now, and wakes the
/// reconciler.
async fn make_reconcile_due(ctx: &InboundContext) -> Result<()> {
    sqlx::query(
        "UPDATE sync_checkpoint SET value = jsonb_set(value, '{finished_at}', '\"1970-01-01T00:00:00Z\"')
          WHERE name LIKE 'inbound:reconcile:%'",
    )
    .execute(ctx.pool())
    .await?;
    ctx.wake_reconciler();
    Ok(())
}

/// Since when a webhook of ours has recorded the base's history without a
/// gap, as far as this process knows: `None` while there is none, it is
/// flagged broken (gone, or in error) or past its expiry. A record whose
/// last agreement is older may hold a team edit that no payload will show
/// (the worker reads it before updating it, see `worker::unseen`). `None`
/// too for an entity whose payloads are left to the poll.
pub(crate) async fn history_since(
    pool: &PgPool,
    base_id: &BaseId,
    entity: &str,
) -> Result<Option<DateTime<Utc>>> {
    let stored: Option<WebhookCheckpoint> =
        checkpoint::load(pool, &checkpoint::webhook_name(base_id)).await?;
    let now = Utc::now();
    Ok(stored
        .filter(|hook| {
            !hook.broken
                && hook.stopped_at.is_none()
                && hook.expiration_time.is_none_or(|at| at > now)
                && !hook.unwatched.iter().any(|e| e == entity)
        })
        .map(|hook| hook.history_since.unwrap_or(hook.created_at)))
}

/// A healthy webhook: turn its pings back on if Airtable switched them off,
/// and refresh it when its expiry draws near.
async fn keep(
    ctx: &InboundContext,
    name: &str,
    stored: &WebhookCheckpoint,
    hook: &Webhook,
) -> Result<WebhookAction> {
    let api = ctx.client().base(ctx.base_id());
    let mut action = WebhookAction::Kept;
    if stored.notification_url.is_some() && !hook.are_notifications_enabled {
        api.set_webhook_notifications(&hook.id, true).await?;
        tracing::info!(webhook = %hook.id, "turned the webhook's pings back on");
        action = WebhookAction::Refreshed;
        // Pings were lost while they were off.
        ctx.wake_reader();
    }
    let expires: Option<DateTime<Utc>> = hook.expiration_time.or(stored.expiration_time);
    let margin = chrono::Duration::from_std(ctx.settings().refresh_before_expiry)
        .unwrap_or_else(|_| chrono::Duration::days(5));
    if expires.is_some_and(|at| at - Utc::now() < margin) {
        let expiration_time = api.refresh_webhook(&hook.id).await?;
        let mut updated = stored.clone();
        updated.expiration_time = expiration_time.or(updated.expiration_time);
        let mut tx = ctx.pool().begin().await?;
        // The reader may have moved the cursor meanwhile: keep its values.
        if let Some(now) = checkpoint::load_for_update::<WebhookCheckpoint>(&mut *tx, name).await? {
            updated.cursor = now.cursor;
            updated.last_read_at = now.last_read_at;
            updated.broken = now.broken;
            updated.stopped_at = now.stopped_at;
        }
        checkpoint::store(&mut *tx, name, &updated).await?;
        tx.commit().await?;
        ctx.metrics().add(&InboundMetricsSnapshot {
            webhooks_refreshed: 1,
            ..Default::default()
        });
        tracing::info!(webhook = %hook.id, expires = ?updated.expiration_time, "refreshed the webhook");
        action = WebhookAction::Refreshed;
    }
    Ok(action)
}
