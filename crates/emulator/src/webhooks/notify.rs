//! Notification pings: POSTed to each webhook's notificationUrl, signed
//! with `X-Airtable-Content-MAC`, retried with exponential back-off, and
//! switched off after too many failures.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::app::Shared;
use crate::clock::{format_ms, Millis};
use crate::webhooks::content_mac;

/// One ping to send.
struct Due {
    base_id: String,
    hook_id: String,
    url: String,
    secret: String,
    retry_number: u32,
}

/// How often the sender looks for due pings even when not woken (retries
/// are due by the clock, which tests may advance).
const TICK: Duration = Duration::from_millis(100);

/// Sends pings until `stop` turns true.
pub(crate) async fn run(app: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = app.pings.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        for due in take_due(&app) {
            tokio::spawn(deliver(app.clone(), due));
        }
    }
}

/// Marks due pings in flight and returns them.
fn take_due(app: &Shared) -> Vec<Due> {
    let now = app.now();
    let mut state = app.state.write();
    let mut out = Vec::new();
    for base in &mut state.bases {
        for hook in &mut base.webhooks {
            let due = hook.ping_pending
                && !hook.in_flight
                && hook.notifications_enabled
                && hook.next_attempt_ms <= now;
            let Some(url) = hook.notification_url.clone().filter(|_| due) else {
                continue;
            };
            hook.in_flight = true;
            hook.ping_pending = false;
            out.push(Due {
                base_id: base.id.clone(),
                hook_id: hook.id.clone(),
                url,
                secret: hook.mac_secret_base64.clone(),
                retry_number: hook.retry_number,
            });
        }
    }
    out
}

/// The delay before retry `n` (1-based): first, then doubling.
fn backoff_ms(first: Duration, n: u32) -> Millis {
    let first = i64::try_from(first.as_millis()).unwrap_or(i64::MAX / 4);
    first.saturating_mul(1i64 << n.saturating_sub(1).min(30))
}

async fn deliver(app: Shared, due: Due) {
    let now = app.now();
    let body = json!({
        "base": {"id": due.base_id},
        "webhook": {"id": due.hook_id},
        "timestamp": format_ms(now),
    })
    .to_string();
    let started = Instant::now();
    let outcome = match content_mac(&due.secret, body.as_bytes()) {
        Some(mac) => send(&app, &due.url, &mac, body).await,
        None => Err("the webhook secret is not valid base64".to_owned()),
    };
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let done = app.now();
    let mut state = app.state.write();
    let Some(hook) = state
        .base_mut(&due.base_id)
        .and_then(|b| b.webhooks.iter_mut().find(|w| w.id == due.hook_id))
    else {
        return;
    };
    hook.in_flight = false;
    let mut result = json!({
        "success": outcome.is_ok(),
        "completionTimestamp": format_ms(done),
        "durationMs": duration_ms,
        "retryNumber": due.retry_number,
    });
    match outcome {
        Ok(()) => {
            hook.last_success_ms = Some(done);
            hook.retry_number = 0;
        }
        Err(message) => {
            hook.retry_number = due.retry_number + 1;
            let will_retry = hook.retry_number <= app.config.webhook_max_retries;
            if will_retry {
                hook.ping_pending = true;
                hook.next_attempt_ms =
                    done + backoff_ms(app.config.webhook_first_retry, hook.retry_number);
            } else {
                hook.notifications_enabled = false;
                hook.ping_pending = false;
                hook.retry_number = 0;
            }
            result["error"] = json!({ "message": message });
            result["willBeRetried"] = Value::Bool(will_retry);
            tracing::warn!(webhook = %due.hook_id, will_retry, "notification ping failed: {message}");
        }
    }
    hook.last_result = Some(result);
}

/// POSTs one ping; success is a 200 or 204 answer.
async fn send(app: &Shared, url: &str, mac: &str, body: String) -> Result<(), String> {
    let response = app
        .http
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Airtable-Content-MAC", mac)
        .body(body)
        .timeout(app.config.webhook_timeout)
        .send()
        .await
        .map_err(|e| format!("The HTTP request failed: {e}"))?;
    let status = response.status().as_u16();
    if status == 200 || status == 204 {
        Ok(())
    } else {
        Err(format!(
            "The HTTP request returned a {status} status code instead of 200 or 204"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_the_first_delay() {
        let first = Duration::from_secs(10);
        assert_eq!(backoff_ms(first, 1), 10_000);
        assert_eq!(backoff_ms(first, 2), 20_000);
        assert_eq!(backoff_ms(first, 4), 80_000);
    }
}
