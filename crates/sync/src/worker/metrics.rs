//! The worker's counters, for the metrics endpoint and tests.

use std::sync::atomic::{AtomicU64, Ordering};

use super::BatchReport;

/// Counters of everything the worker did since it started.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    batches: AtomicU64,
    claimed: AtomicU64,
    sent: AtomicU64,
    requests: AtomicU64,
    retried: AtomicU64,
    deferred: AtomicU64,
    dead_lettered: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerMetricsSnapshot {
    pub batches: u64,
    pub claimed: u64,
    /// Records written to or deleted from Airtable.
    pub sent: u64,
    /// Requests made to Airtable.
    pub requests: u64,
    /// Events put back after a transient failure.
    pub retried: u64,
    /// Events that waited for a linked row.
    pub deferred: u64,
    pub dead_lettered: u64,
}

impl WorkerMetrics {
    pub(crate) fn record(&self, report: &BatchReport) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.claimed.fetch_add(report.claimed, Ordering::Relaxed);
        self.sent.fetch_add(report.sent, Ordering::Relaxed);
        self.requests.fetch_add(report.requests, Ordering::Relaxed);
        self.retried.fetch_add(report.retried, Ordering::Relaxed);
        self.deferred.fetch_add(report.deferred, Ordering::Relaxed);
        self.dead_lettered.fetch_add(report.dead, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> WorkerMetricsSnapshot {
        WorkerMetricsSnapshot {
            batches: self.batches.load(Ordering::Relaxed),
            claimed: self.claimed.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
        }
    }
}
