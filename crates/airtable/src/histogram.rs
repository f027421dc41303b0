//! The one histogram of durations that every part of airsync keeps (the
//! client's request latency, the inbound sync's user provisioning, the
//! server's HTTP latency), and the lock-free recorder the client fills on
//! its request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram of durations in seconds: a count per bucket, their sum and
/// their number, as an exporter (Prometheus or other) renders it.
///
/// The buckets are those of `bounds` (upper bounds, ascending, inclusive),
/// then one overflow bucket for the values above the last bound. A value
/// falls in the first bucket whose bound holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum_seconds: f64,
    count: u64,
}

/// The index of the first bucket whose upper bound holds `seconds`, or
/// `bounds.len()` (the overflow bucket) when none does.
fn bucket_of(bounds: &[f64], seconds: f64) -> usize {
    bounds
        .iter()
        .position(|&bound| seconds <= bound)
        .unwrap_or(bounds.len())
}

impl Histogram {
    /// An empty histogram with these bucket upper bounds, in seconds,
    /// ascending.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }

    /// Counts one duration. A negative or non-finite one (a clock that went
    /// back, a bad subtraction) is counted as 0 s, so that the count stays
    /// that of the events and the sum stays finite.
    pub fn observe(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        if let Some(count) = self.counts.get_mut(bucket_of(self.bounds, seconds)) {
            *count += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }

    /// The buckets' upper bounds, in seconds.
    pub fn bounds(&self) -> &[f64] {
        self.bounds
    }

    /// The values per bucket (not cumulative): one entry per bound, then
    /// the overflow bucket, for values above the last bound.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The sum of all values, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_seconds
    }

    /// The number of values.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// A [`Histogram`] filled without a lock, for the client's request path;
/// the sum is kept in whole microseconds.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    /// An empty recorder with these bucket upper bounds, in seconds,
    /// ascending.
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one duration.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let bucket = bucket_of(self.bounds, elapsed.as_secs_f64());
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(micros(elapsed), Ordering::Relaxed);
    }

    /// The histogram now. Each counter is read on its own, so a value
    /// recorded meanwhile may be in the counts and not yet in the sum.
    pub(crate) fn snapshot(&self) -> Histogram {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Histogram {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A duration in whole microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[0.1, 1.0];

    #[test]
    fn a_value_falls_in_the_first_bucket_that_holds_it_or_the_overflow_bucket() {
        let mut h = Histogram::new(BOUNDS);
        for seconds in [0.0625, 0.1, 0.5, 1.0, 1.25, 8.0] {
            h.observe(seconds);
        }
        assert_eq!(h.bounds(), BOUNDS);
        assert_eq!(h.counts(), [2, 2, 2], "a bound holds its own value");
        assert_eq!(h.count(), 6);
        assert!((h.sum_seconds() - 10.9125).abs() < 1e-9, "{h:?}");
    }

    #[test]
    fn negative_and_non_finite_values_count_as_zero_seconds() {
        let mut h = Histogram::new(BOUNDS);
        for seconds in [-3.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            h.observe(seconds);
        }
        assert_eq!(h.counts(), [4, 0, 0]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum_seconds(), 0.0);
    }

    #[test]
    fn the_atomic_recorder_snapshots_as_the_histogram_would_count() {
        let recorder = AtomicHistogram::new(BOUNDS);
        let mut expected = Histogram::new(BOUNDS);
        for millis in [3, 100, 250, 1_000, 4_500] {
            let elapsed = Duration::from_millis(millis);
            recorder.observe(elapsed);
            expected.observe(elapsed.as_secs_f64());
        }
        let snapshot = recorder.snapshot();
        assert_eq!(snapshot.counts(), expected.counts());
        assert_eq!(snapshot.count(), 5);
        assert!(
            (snapshot.sum_seconds() - 5.853).abs() < 1e-9,
            "{snapshot:?}"
        );
    }
}
