//! Sending one request: wait for a pacing slot, send, classify the answer,
//! pause the base after a 429, back off and try again when that is safe.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tracing::{field, Instrument};
use url::Url;

use crate::clock::Clock;
use crate::config::{ApiToken, RetryPolicy};
use crate::error::{parse_error_body, Error, Result, RATE_LIMIT_REACHED};
use crate::metrics::{Metrics, RequestKind};
use crate::pacing::{Pacer, Priority, Slot};

/// The longest `Retry-After` honoured; a larger one is treated as this, so
/// that a broken header cannot park a base for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Whether a request may be sent again after an attempt whose outcome is
/// unknown (a timeout after sending, a 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Sending it twice has the same effect as once (reads, updates,
    /// upserts, deletes).
    Safe,
    /// Sending it twice could duplicate its effect (creates): only retried
    /// when the failed attempt provably did nothing.
    OnlyIfUnapplied,
}

/// One request to make.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) kind: RequestKind,
    pub(crate) method: Method,
    pub(crate) base: Option<String>,
    pub(crate) table: Option<String>,
    pub(crate) url: Url,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) replay: Replay,
}

impl Call {
    /// A call without a body.
    pub(crate) fn new(kind: RequestKind, method: Method, url: Url) -> Self {
        let replay = if method == Method::POST {
            Replay::OnlyIfUnapplied
        } else {
            Replay::Safe
        };
        Call {
            kind,
            method,
            base: None,
            table: None,
            url,
            body: None,
            replay,
        }
    }

    /// Sets the base (paced and counted per base) and the table (for logs).
    pub(crate) fn on(mut self, base: &str, table: Option<&str>) -> Self {
        self.base = Some(base.to_owned());
        self.table = table.map(str::to_owned);
        self
    }

    /// Sets a JSON body.
    pub(crate) fn json(mut self, body: &serde_json::Value) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            Error::InvalidInput(format!("the request body does not serialize: {e}"))
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    /// Overrides whether the call may be replayed.
    pub(crate) fn replay(mut self, replay: Replay) -> Self {
        self.replay = replay;
        self
    }
}

/// What one attempt gave.
enum Attempt {
    Answer {
        status: u16,
        headers: HeaderMap,
        body: Vec<u8>,
    },
    Failed(Error),
}

/// The shared core of every client clone. Clones made for another
/// priority share the pacer and the metrics.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) api_url: Url,
    pub(crate) token: ApiToken,
    pub(crate) pacer: Arc<Pacer>,
    /// The priority of this handle's requests.
    pub(crate) priority: Priority,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: RetryPolicy,
    pub(crate) rate_limit_pause: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) max_list_restarts: u32,
}

impl Transport {
    /// The API URL with `segments` appended, each percent-encoded as one
    /// path segment (a `/` or `?` in a table name cannot change the route).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// Sends a call and decodes the JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let (status, body) = self.send(call).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            method: call.method.to_string(),
            path: call.url.path().to_owned(),
            status,
            source,
        })
    }

    /// Sends a call, retrying as the policy allows; returns the status and
    /// body of a 2xx answer.
    pub(crate) async fn send(&self, call: &Call) -> Result<(u16, Vec<u8>)> {
        let base = call.base.as_deref();
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let slot = self.pacer.acquire(&*self.clock, base, self.priority).await;
            let waited = slot.waited;
            self.metrics.record_token_wait(waited);
            let span = tracing::info_span!(
                "airtable_request",
                base = base.unwrap_or(""),
                table = call.table.as_deref().unwrap_or(""),
                method = %call.method,
                kind = call.kind.as_str(),
                priority = self.priority.as_str(),
                attempt,
                token_wait_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                status = field::Empty,
                latency_ms = field::Empty,
            );
            let result = self.attempt(call).instrument(span.clone()).await;
            let error = match result {
                Attempt::Answer { status, body, .. } if (200..300).contains(&status) => {
                    return Ok((status, body));
                }
                Attempt::Answer {
                    status,
                    headers,
                    body,
                } => self.api_error(call, status, &headers, &body),
                Attempt::Failed(error) => error,
            };
            if error.is_rate_limited() {
                rate_limited += 1;
                self.after_rate_limit(base, &slot, &error).await;
                if rate_limited > self.retry.max_rate_limited_retries {
                    return Err(error);
                }
            } else {
                failures += 1;
                let unsafe_to_replay =
                    call.replay == Replay::OnlyIfUnapplied && error.may_have_been_applied();
                if !error.is_retryable() || failures >= self.retry.max_attempts || unsafe_to_replay
                {
                    return Err(error);
                }
                let delay = self
                    .backoff(failures)
                    .max(error.retry_after().unwrap_or_default());
                span.in_scope(|| {
                    tracing::warn!(
                        error = %error,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "retrying an Airtable request"
                    );
                });
                let until = self.clock.now() + delay;
                self.clock.sleep_until(until).await;
            }
            self.metrics.record_retry();
        }
    }

    /// One HTTP exchange, timed and counted.
    async fn attempt(&self, call: &Call) -> Attempt {
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(self.token.expose());
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let started = tokio::time::Instant::now();
        let in_flight = self.metrics.in_flight();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Attempt::Answer {
                        status,
                        headers,
                        body: body.to_vec(),
                    },
                    Err(e) => Attempt::Failed(self.transport_error(call, e)),
                }
            }
            Err(e) => Attempt::Failed(self.transport_error(call, e)),
        };
        drop(in_flight);
        let latency = started.elapsed();
        if matches!(outcome, Attempt::Answer { status, .. } if status != 429) {
            self.pacer.record_answer();
        }
        let label = match &outcome {
            Attempt::Answer { status, .. } => status.to_string(),
            Attempt::Failed(Error::Timeout { .. }) => "timeout".to_owned(),
            Attempt::Failed(_) => "connection".to_owned(),
        };
        let span = tracing::Span::current();
        span.record("status", label.as_str());
        span.record(
            "latency_ms",
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        );
        tracing::debug!("airtable answered");
        self.metrics
            .record_request(call.base.as_deref(), call.kind, &label, latency);
        outcome
    }

    fn transport_error(&self, call: &Call, e: reqwest::Error) -> Error {
        let method = call.method.to_string();
        let path = call.url.path().to_owned();
        let connecting = e.is_connect();
        if e.is_timeout() {
            Error::Timeout {
                method,
                path,
                connecting,
            }
        } else {
            Error::Connection {
                method,
                path,
                connecting,
                source: e.without_url(),
            }
        }
    }

    fn api_error(&self, call: &Call, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
        let (mut error_type, message) = parse_error_body(body);
        if status == 429 && error_type.is_none() {
            error_type = Some(RATE_LIMIT_REACHED.to_owned());
        }
        Error::Api {
            method: call.method.to_string(),
            path: call.url.path().to_owned(),
            status,
            error_type,
            message,
            retry_after: retry_after(headers),
        }
    }

    /// Pauses the base (or, for a request outside any base, this request)
    /// for the `Retry-After` Airtable asked for, or the configured pause.
    /// The 429 is counted once the pause is in place, so whoever reads the
    /// metrics never sees the one without the other.
    async fn after_rate_limit(&self, base: Option<&str>, slot: &Slot, error: &Error) {
        let pause = error.retry_after().unwrap_or(self.rate_limit_pause);
        let now = self.clock.now();
        tracing::warn!(
            base = base.unwrap_or(""),
            pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "Airtable rate limit reached; pausing the base"
        );
        match base {
            Some(base) => {
                self.pacer
                    .rate_limited(&*self.clock, base, slot, pause)
                    .await;
                self.metrics.record_rate_limited();
            }
            None => {
                self.metrics.record_rate_limited();
                self.clock.sleep_until(now + pause).await;
            }
        }
    }

    /// Full jitter: a random delay up to the exponential bound.
    fn backoff(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let bound = self
            .retry
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.retry.max_delay);
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=bound_ms))
    }
}

/// `Retry-After` in seconds (the only form Airtable is known to send), capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = text.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        seconds.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_is_read_and_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("99999"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
