//! Counters and a latency histogram kept inside the client, read as a
//! [`MetricsSnapshot`] that an exporter (Prometheus or other) can render.
//! Plain atomics and one small map: no metrics framework.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::histogram::{micros, AtomicHistogram, Histogram};
use crate::pacing::BasePace;

/// Upper bounds, in seconds, of the latency histogram's buckets; a last,
/// unbounded bucket follows them.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What a request was for; a label of the request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RequestKind {
    /// A page of a record listing.
    ListRecords,
    /// One record by id.
    GetRecord,
    /// Creating records.
    CreateRecords,
    /// Updating records (merge or replace).
    UpdateRecords,
    /// Upserting records.
    UpsertRecords,
    /// Deleting records.
    DeleteRecords,
    /// Reading metadata (bases, schemas).
    ReadSchema,
    /// Changing a schema (tables, fields).
    WriteSchema,
    /// Managing webhooks.
    Webhooks,
    /// Reading webhook payloads.
    WebhookPayloads,
}

impl RequestKind {
    /// The label's text.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::ListRecords => "list_records",
            RequestKind::GetRecord => "get_record",
            RequestKind::CreateRecords => "create_records",
            RequestKind::UpdateRecords => "update_records",
            RequestKind::UpsertRecords => "upsert_records",
            RequestKind::DeleteRecords => "delete_records",
            RequestKind::ReadSchema => "read_schema",
            RequestKind::WriteSchema => "write_schema",
            RequestKind::Webhooks => "webhooks",
            RequestKind::WebhookPayloads => "webhook_payloads",
        }
    }
}

/// The number of HTTP requests with one base, kind and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// The base's id, or `""` for requests outside a base (list bases).
    pub base_id: String,
    /// What the requests were for.
    pub kind: RequestKind,
    /// The HTTP status as text (`"200"`, `"429"`), or `"timeout"` /
    /// `"connection"` when no answer came.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// Everything the client has counted since it was built.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// HTTP requests by base, kind and outcome, sorted.
    pub requests: Vec<RequestCount>,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Requests sent again after a failure (429s included).
    pub retries: u64,
    /// Requests that had to wait for a pacing slot.
    pub token_waits: u64,
    /// Total time spent waiting for pacing slots, in seconds.
    pub token_wait_seconds: f64,
    /// Listings that started over because their offset expired.
    pub list_restarts: u64,
    /// Requests currently on the wire.
    pub in_flight: u64,
    /// Latency of HTTP requests (each attempt, without the wait for a
    /// pacing slot), in the buckets of [`LATENCY_BUCKETS`].
    pub latency: Histogram,
    /// The pause state of every base spoken to.
    pub bases: Vec<BasePace>,
}

impl MetricsSnapshot {
    /// Requests counted for one base (all kinds and outcomes).
    pub fn requests_to_base(&self, base_id: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.base_id == base_id)
            .map(|r| r.count)
            .sum()
    }
}

type RequestKey = (String, RequestKind, String);

/// The live counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    requests: Mutex<HashMap<RequestKey, u64>>,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    token_waits: AtomicU64,
    token_wait_micros: AtomicU64,
    list_restarts: AtomicU64,
    in_flight: AtomicU64,
    latency: AtomicHistogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::default(),
            rate_limited: AtomicU64::default(),
            retries: AtomicU64::default(),
            token_waits: AtomicU64::default(),
            token_wait_micros: AtomicU64::default(),
            list_restarts: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            latency: AtomicHistogram::new(&LATENCY_BUCKETS),
        }
    }
}

impl Metrics {
    pub(crate) fn record_request(
        &self,
        base: Option<&str>,
        kind: RequestKind,
        outcome: &str,
        latency: Duration,
    ) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (base.unwrap_or("").to_owned(), kind, outcome.to_owned());
            *requests.entry(key).or_insert(0) += 1;
        }
        self.latency.observe(latency);
    }

    pub(crate) fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_list_restart(&self) {
        self.list_restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_token_wait(&self, waited: Duration) {
        if !waited.is_zero() {
            self.token_waits.fetch_add(1, Ordering::Relaxed);
            self.token_wait_micros
                .fetch_add(micros(waited), Ordering::Relaxed);
        }
    }

    /// Counts a request as on the wire until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    pub(crate) fn snapshot(&self, bases: Vec<BasePace>) -> MetricsSnapshot {
        let mut requests: Vec<RequestCount> = {
            let map = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            map.iter()
                .map(|((base_id, kind, outcome), count)| RequestCount {
                    base_id: base_id.clone(),
                    kind: *kind,
                    outcome: outcome.clone(),
                    count: *count,
                })
                .collect()
        };
        requests.sort_by(|a, b| {
            (&a.base_id, a.kind, &a.outcome).cmp(&(&b.base_id, b.kind, &b.outcome))
        });
        MetricsSnapshot {
            requests,
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            token_waits: self.token_waits.load(Ordering::Relaxed),
            token_wait_seconds: self.token_wait_micros.load(Ordering::Relaxed) as f64 / 1e6,
            list_restarts: self.list_restarts.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
            bases,
        }
    }
}

/// Keeps a request counted as in flight while it lives.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_base_kind_and_outcome_and_timed() {
        let metrics = Metrics::default();
        let ms = Duration::from_millis;
        metrics.record_request(Some("appA"), RequestKind::ListRecords, "200", ms(3));
        metrics.record_request(Some("appA"), RequestKind::ListRecords, "200", ms(30));
        metrics.record_request(Some("appA"), RequestKind::CreateRecords, "429", ms(2));
        let snap = metrics.snapshot(Vec::new());
        assert_eq!(snap.requests.len(), 2);
        assert_eq!(snap.requests[0].count, 2);
        assert_eq!(snap.requests_to_base("appA"), 3);
        assert_eq!(snap.latency.bounds(), LATENCY_BUCKETS);
        assert_eq!(snap.latency.count(), 3);
        assert_eq!(snap.latency.counts()[0], 2);
        assert_eq!(snap.latency.counts()[3], 1);
        assert!((snap.latency.sum_seconds() - 0.035).abs() < 1e-9);
    }

    #[test]
    fn the_in_flight_gauge_falls_when_the_guard_drops() {
        let metrics = Metrics::default();
        let guard = metrics.in_flight();
        assert_eq!(metrics.snapshot(Vec::new()).in_flight, 1);
        drop(guard);
        assert_eq!(metrics.snapshot(Vec::new()).in_flight, 0);
    }
}
