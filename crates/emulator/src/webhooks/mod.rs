//! Webhooks: specifications, payloads and notification pings, as Airtable
//! keeps them per base.

pub(crate) mod api;
pub(crate) mod notify;
pub(crate) mod payload;
mod spec;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{format_ms, Millis};

pub(crate) use spec::Spec;

/// Seven days, Airtable's webhook lifetime and payload retention.
pub(crate) const SEVEN_DAYS_MS: Millis = 7 * 24 * 3600 * 1000;

/// At most this many webhooks per base.
pub(crate) const MAX_PER_BASE: usize = 10;

/// One stored payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredPayload {
    pub cursor: u64,
    pub at_ms: Millis,
    pub body: Value,
}

/// A webhook and its payload queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Webhook {
    pub id: String,
    pub mac_secret_base64: String,
    pub notification_url: Option<String>,
    /// The specification as given, echoed by list-webhooks.
    pub specification: Value,
    pub spec: Spec,
    pub created_ms: Millis,
    pub expiration_ms: Millis,
    pub notifications_enabled: bool,
    /// False once the specification became invalid (error state).
    pub hook_enabled: bool,
    pub next_cursor: u64,
    pub payloads: VecDeque<StoredPayload>,
    pub last_success_ms: Option<Millis>,
    pub last_result: Option<Value>,
    /// A ping is owed to the notification URL.
    pub ping_pending: bool,
    /// Failed attempts of the current ping.
    pub retry_number: u32,
    pub next_attempt_ms: Millis,
    #[serde(skip)]
    pub in_flight: bool,
}

impl Webhook {
    /// Whether the webhook still records changes: not expired, not in error.
    pub fn is_active(&self, now: Millis) -> bool {
        self.hook_enabled && self.expiration_ms > now
    }

    /// The list-webhooks object (no secret).
    pub fn to_json(&self, now: Millis) -> Value {
        json!({
            "id": self.id,
            "areNotificationsEnabled": self.notifications_enabled,
            "cursorForNextPayload": self.next_cursor,
            "isHookEnabled": self.is_active(now),
            "lastSuccessfulNotificationTime": self.last_success_ms.map(format_ms),
            "notificationUrl": self.notification_url,
            "lastNotificationResult": self.last_result,
            "expirationTime": format_ms(self.expiration_ms),
            "specification": self.specification,
        })
    }

    /// Appends a payload and owes a ping for it.
    pub fn push(&mut self, at_ms: Millis, mut body: Value) {
        let cursor = self.next_cursor;
        self.next_cursor += 1;
        if let Value::Object(o) = &mut body {
            o.remove("cursor");
        }
        self.payloads.push_back(StoredPayload {
            cursor,
            at_ms,
            body,
        });
        if self.notification_url.is_some() && self.notifications_enabled {
            if !self.ping_pending && self.retry_number == 0 {
                self.next_attempt_ms = at_ms;
            }
            self.ping_pending = true;
        }
    }

    /// Drops payloads older than the retention period.
    pub fn purge(&mut self, now: Millis) {
        while self
            .payloads
            .front()
            .is_some_and(|p| p.at_ms + SEVEN_DAYS_MS <= now)
        {
            self.payloads.pop_front();
        }
    }
}

/// Drops webhooks whose expiry is more than seven days past (their
/// metadata and payloads stay readable for those seven days), and old
/// payloads of the others.
pub(crate) fn housekeep(webhooks: &mut Vec<Webhook>, now: Millis) {
    webhooks.retain(|w| w.expiration_ms + SEVEN_DAYS_MS > now);
    for w in webhooks.iter_mut() {
        w.purge(now);
    }
}

/// The `X-Airtable-Content-MAC` header value for a body: `hmac-sha256=`
/// and the lowercase hex HMAC-SHA256 of the raw bytes, keyed by the
/// base64-decoded secret. `None` if the secret is not base64.
pub fn content_mac(mac_secret_base64: &str, body: &[u8]) -> Option<String> {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(mac_secret_base64)
        .ok()?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).ok()?;
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("hmac-sha256={hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_is_hex_hmac_sha256_with_the_decoded_secret() {
        // Key "key" (a2V5 in base64) and the classic test vector.
        let mac = content_mac("a2V5", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            mac.as_deref(),
            Some("hmac-sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        );
    }
}
