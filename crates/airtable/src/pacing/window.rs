//! One sliding window of request starts: the shape of one rate limit.

use std::time::Duration;

use super::MAX_LEARNED_MARGIN;
use crate::config::RateLimits;

/// A sliding window: at most `capacity` starts in any `span`, and at least
/// `spacing` between two starts.
///
/// Starts are kept sorted and may be inserted anywhere, not only after the
/// last one: the token's window is shared by all bases, and a base that
/// queues far ahead (or waits out a pause) must not hold back the others.
#[derive(Debug)]
pub(super) struct Window {
    capacity: usize,
    /// The window stretched by the budget share, plus the safety margin.
    base_span: Duration,
    /// The longest `span` can get (with the largest allowances).
    max_span: Duration,
    /// `base_span` plus the current allowances for jitter and 429s.
    span: Duration,
    spacing: Duration,
    /// Reserved starts, sorted by time, tagged with their base (the token's
    /// window holds every base's).
    starts: Vec<(Duration, Option<String>)>,
}

impl Window {
    pub(super) fn new(limit: u32, limits: &RateLimits) -> Self {
        let capacity = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        // A smaller budget stretches the window rather than cutting the
        // count, so fractional shares (e.g. 90% of 5/s) are honoured exactly.
        let base_span = limits.window.div_f64(limits.budget_share) + limits.safety_margin;
        let mut window = Window {
            capacity,
            base_span,
            max_span: base_span + limits.max_jitter_margin + MAX_LEARNED_MARGIN,
            span: base_span,
            spacing: Duration::ZERO,
            starts: Vec::new(),
        };
        window.widen(Duration::ZERO);
        window
    }

    /// Widens the window by `extra`: requests that leave evenly spaced can
    /// arrive bunched by as much as their delays differ.
    pub(super) fn widen(&mut self, extra: Duration) {
        self.span = (self.base_span + extra).min(self.max_span);
        let capacity = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        self.spacing = self.span / capacity;
    }

    /// Drops starts too old to matter for any start at or after `now`,
    /// however wide the window may grow.
    pub(super) fn prune(&mut self, now: Duration) {
        let horizon = self.max_span;
        self.starts.retain(|(at, _)| *at + horizon > now);
    }

    /// The earliest start at or after `from` that keeps the limit, given
    /// every start already reserved (before or after it).
    pub(super) fn earliest(&self, from: Duration) -> Duration {
        let mut t = from;
        loop {
            let mut next = t;
            // Spacing: no reserved start closer than `spacing` to `t`; the
            // latest start before `t + spacing` is the one that matters.
            let below = self.index_of_first(|at| at >= t + self.spacing);
            if let Some((at, _)) = below.checked_sub(1).and_then(|i| self.starts.get(i)) {
                if *at + self.spacing > t {
                    next = *at + self.spacing;
                }
            }
            if next == t {
                // Every window `[x, x + span)` holding `t` must have room.
                // The fullest such window starts at `t` or at a reserved
                // start in `(t - span, t]`; a full one pushes `t` past its end.
                let first = self.index_of_first(|at| at + self.span > t);
                let last = self.index_of_first(|at| at > t);
                let candidates = self.starts[first..last]
                    .iter()
                    .map(|(at, _)| *at)
                    .chain(std::iter::once(t));
                for x in candidates {
                    let count = self.index_of_first(|at| at >= x + self.span)
                        - self.index_of_first(|at| at >= x);
                    if count >= self.capacity {
                        next = next.max(x + self.span);
                    }
                }
            }
            if next == t {
                return t;
            }
            t = next;
        }
    }

    /// The index of the first start for which `pred` holds (`pred` must be
    /// false then true along the sorted starts).
    fn index_of_first(&self, pred: impl Fn(Duration) -> bool) -> usize {
        self.starts.partition_point(|(at, _)| !pred(*at))
    }

    pub(super) fn insert(&mut self, at: Duration, base: Option<&str>) {
        let index = self.starts.partition_point(|(t, _)| *t <= at);
        self.starts.insert(index, (at, base.map(str::to_owned)));
    }

    /// Removes one reserved start (the one at `at` with that tag).
    pub(super) fn remove(&mut self, at: Duration, base: Option<&str>) {
        if let Some(index) = self
            .starts
            .iter()
            .position(|(t, b)| *t == at && b.as_deref() == base)
        {
            self.starts.remove(index);
        }
    }

    /// Forgets the starts after `now` (of one base, or all): their holders
    /// have not sent yet and will reserve again.
    pub(super) fn forget_after(&mut self, now: Duration, base: Option<&str>) {
        self.starts
            .retain(|(at, b)| *at <= now || (base.is_some() && b.as_deref() != base));
    }
}
