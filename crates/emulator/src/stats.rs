//! Request counters per base and status, for tests and `/_emulator/stats`.

use std::collections::{BTreeMap, HashMap};

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
    /// Pages of records read, by table id: counted when the page is made,
    /// before its answer's way back (a test can act while a page is on its
    /// way).
    pub pages: BTreeMap<String, u64>,
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

    /// How many pages of records of a table (by id) a base has made.
    pub fn pages(&self, base_id: &str, table_id: &str) -> u64 {
        self.bases
            .get(base_id)
            .and_then(|b| b.pages.get(table_id))
            .copied()
            .unwrap_or(0)
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
    /// How many pages listed each record, by base id and record id.
    listed: Mutex<HashMap<(String, String), u64>>,
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

    /// A page of records of `table_id` was made, listing `records`.
    pub fn page_read<'a>(
        &self,
        base_id: &str,
        table_id: &str,
        records: impl Iterator<Item = &'a str>,
    ) {
        {
            let mut s = self.inner.lock();
            let b = s.bases.entry(base_id.to_owned()).or_default();
            *b.pages.entry(table_id.to_owned()).or_default() += 1;
        }
        let mut listed = self.listed.lock();
        for record in records {
            *listed
                .entry((base_id.to_owned(), record.to_owned()))
                .or_default() += 1;
        }
    }

    /// How many pages have listed a record.
    pub fn pages_listing(&self, base_id: &str, record_id: &str) -> u64 {
        self.listed
            .lock()
            .get(&(base_id.to_owned(), record_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> Stats {
        self.inner.lock().clone()
    }

    pub fn reset(&self) {
        *self.inner.lock() = Stats::default();
        self.listed.lock().clear();
    }
}
