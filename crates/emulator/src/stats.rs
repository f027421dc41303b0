//! Request counters per base and status, for tests and `/_emulator/stats`.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::Serialize;

/// Counters of one base (or `-` for requests that name no base).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BaseStats {
    /// Every request answered.
    pub total: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Requests by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every request to the Web API (`/v0/...`).
    pub total: u64,
    /// Requests answered 429, all bases.
    pub rate_limited: u64,
    /// Per base id; requests naming no base are under `-`.
    pub bases: BTreeMap<String, BaseStats>,
}

impl Stats {
    /// The counters of one base (zero if it saw no request).
    pub fn base(&self, base_id: &str) -> BaseStats {
        self.bases.get(base_id).cloned().unwrap_or_default()
    }

    /// How many requests of a base got this status.
    pub fn count(&self, base_id: &str, status: u16) -> u64 {
        self.bases
            .get(base_id)
            .and_then(|b| b.by_status.get(&status))
            .copied()
            .unwrap_or(0)
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    inner: Mutex<Stats>,
}

impl Counters {
    pub fn record(&self, base: Option<&str>, status: u16) {
        let mut s = self.inner.lock();
        s.total += 1;
        if status == 429 {
            s.rate_limited += 1;
        }
        let key = base.unwrap_or("-");
        let b = match s.bases.get_mut(key) {
            Some(b) => b,
            None => s.bases.entry(key.to_owned()).or_default(),
        };
        b.total += 1;
        if status == 429 {
            b.rate_limited += 1;
        }
        *b.by_status.entry(status).or_default() += 1;
    }

    pub fn snapshot(&self) -> Stats {
        self.inner.lock().clone()
    }

    pub fn reset(&self) {
        *self.inner.lock() = Stats::default();
    }
}
