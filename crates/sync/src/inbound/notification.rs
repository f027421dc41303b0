//! The framework-free entry point of `POST /api/sync/inbound`: Airtable's
//! notification ping, verified, recorded once, and turned into a wake-up of
//! the payload reader. The ping carries no data; the reader fetches it.

use airsync_airtable::verify_content_mac;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::checkpoint::{self, WebhookCheckpoint};
use super::context::InboundContext;
use super::metrics::InboundMetricsSnapshot;
use crate::Result;

/// What became of a notification, and what to answer Airtable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// Recorded; the reader was woken. Answer 200 (or 204), empty body.
    Accepted,
    /// Seen before (Airtable's redelivery, or a replay): dropped. Answer 200,
    /// so that Airtable stops retrying.
    Duplicate,
    /// Signed correctly but not for this base (or unreadable): ignored.
    /// Answer 200.
    Ignored,
    /// No MAC, or not one made with our webhook's secret: nothing was
    /// stored. Answer 401.
    Unauthorized,
}

impl NotificationOutcome {
    /// The HTTP status to answer with.
    pub fn http_status(self) -> u16 {
        match self {
            NotificationOutcome::Unauthorized => 401,
            _ => 200,
        }
    }
}

#[derive(Deserialize)]
struct Ping {
    base: IdOnly,
    webhook: IdOnly,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Pings older than this are not recorded: payloads are kept for seven
/// days, and their inbox events are purged after that.
const MAX_PING_AGE_DAYS: i64 = 7;

/// Handles one notification: `mac_header` is the `X-Airtable-Content-MAC`
/// header, `raw_body` the exact bytes received. The MAC is checked, in
/// constant time, against the secret of the webhook airsync keeps and
/// against `AIRTABLE_WEBHOOK_SECRET`, before anything is parsed or stored.
/// A valid ping is recorded in `sync_inbox_events` under a key made of the
/// webhook and the ping's time, so a repeat is acknowledged and dropped.
pub async fn receive_notification(
    ctx: &InboundContext,
    mac_header: Option<&str>,
    raw_body: &[u8],
) -> Result<NotificationOutcome> {
    let outcome = receive(ctx, mac_header, raw_body).await?;
    let mut delta = InboundMetricsSnapshot::default();
    match outcome {
        NotificationOutcome::Accepted => delta.notifications_accepted = 1,
        NotificationOutcome::Duplicate => delta.notifications_duplicate = 1,
        NotificationOutcome::Unauthorized => delta.notifications_rejected = 1,
        NotificationOutcome::Ignored => {}
    }
    ctx.metrics().add(&delta);
    Ok(outcome)
}

async fn receive(
    ctx: &InboundContext,
    mac_header: Option<&str>,
    raw_body: &[u8],
) -> Result<NotificationOutcome> {
    let Some(mac) = mac_header else {
        tracing::warn!("webhook notification without a MAC refused");
        return Ok(NotificationOutcome::Unauthorized);
    };
    let stored: Option<WebhookCheckpoint> =
        checkpoint::load(ctx.pool(), &checkpoint::webhook_name(ctx.base_id())).await?;
    let secrets = stored
        .as_ref()
        .map(|s| s.mac_secret_base64.as_str())
        .into_iter()
        .chain(ctx.settings().webhook_secret.as_deref());
    let mut valid = false;
    // Every candidate is checked, so the time taken does not tell which one
    // (if any) matched.
    for secret in secrets {
        valid |= verify_content_mac(secret, raw_body, mac);
    }
    if !valid {
        tracing::warn!("webhook notification with a wrong MAC refused");
        return Ok(NotificationOutcome::Unauthorized);
    }
    let Ok(ping) = serde_json::from_slice::<Ping>(raw_body) else {
        tracing::warn!("a signed webhook notification could not be read; ignored");
        return Ok(NotificationOutcome::Ignored);
    };
    if ping.base.id != ctx.base_id().as_str() {
        tracing::warn!(base = %ping.base.id, "a signed webhook notification for another base; ignored");
        return Ok(NotificationOutcome::Ignored);
    }
    if ping
        .timestamp
        .is_some_and(|t| t < Utc::now() - Duration::days(MAX_PING_AGE_DAYS))
    {
        return Ok(NotificationOutcome::Duplicate);
    }
    let key = match ping.timestamp {
        Some(at) => format!("webhook:{}:{}", ping.webhook.id, at.timestamp_millis()),
        // Without a time, the body itself tells repeats apart.
        None => format!(
            "webhook:{}:{}",
            ping.webhook.id,
            String::from_utf8_lossy(raw_body)
        ),
    };
    let body: Value = serde_json::from_slice(raw_body).unwrap_or(Value::Null);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sync_inbox_events (event_key, source, base_id, webhook_id, body)
         VALUES ($1, 'webhook', $2, $3, $4)
         ON CONFLICT (event_key) DO NOTHING
         RETURNING id",
    )
    .bind(&key)
    .bind(&ping.base.id)
    .bind(&ping.webhook.id)
    .bind(body)
    .fetch_optional(ctx.pool())
    .await?;
    if inserted.is_none() {
        tracing::info!(webhook = %ping.webhook.id, "a notification seen before; dropped");
        return Ok(NotificationOutcome::Duplicate);
    }
    ctx.wake_reader();
    Ok(NotificationOutcome::Accepted)
}

/// Marks the notifications received before `before` as handled (the reader
/// read every payload there was then), and forgets handled ones older than
/// the payloads' retention.
pub(crate) async fn mark_processed(ctx: &InboundContext, before: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE sync_inbox_events SET processed_at = now()
          WHERE processed_at IS NULL AND source = 'webhook' AND received_at <= $1",
    )
    .bind(before)
    .execute(ctx.pool())
    .await?;
    sqlx::query(
        "DELETE FROM sync_inbox_events
          WHERE processed_at IS NOT NULL AND received_at < now() - make_interval(days => $1)",
    )
    .bind(MAX_PING_AGE_DAYS as i32)
    .execute(ctx.pool())
    .await?;
    Ok(())
}
