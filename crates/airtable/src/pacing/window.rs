//! One sliding window of request starts: the shape of one rate limit.

use std::time::Duration;

use super::Priority;

/// One reserved start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Start {
    pub(super) at: Duration,
    /// The reservation's id, unique in the pacer.
    pub(super) id: u64,
    /// The base it goes to (the token's window holds every base's).
    pub(super) base: Option<String>,
    pub(super) priority: Priority,
}

/// A sliding window: at most `capacity` starts in any `span`, and at least
/// `span / capacity` between two starts.
///
/// Starts are kept sorted and may be inserted anywhere, not only after the
/// last one: the token's window is shared by all bases, and a base that
/// queues far ahead (or waits out a pause) must not hold back the others.
#[derive(Debug)]
pub(super) struct Window {
    capacity: usize,
    span: Duration,
    spacing: Duration,
    starts: Vec<Start>,
}

impl Window {
    pub(super) fn new(capacity: usize, span: Duration) -> Self {
        let mut window = Window {
            capacity: 1,
            span,
            spacing: span,
            starts: Vec::new(),
        };
        window.set(capacity, span);
        window
    }

    /// Sets how many starts any `span` may hold; starts are spread evenly.
    pub(super) fn set(&mut self, capacity: usize, span: Duration) {
        self.capacity = capacity.max(1);
        self.span = span;
        self.spacing = span / u32::try_from(self.capacity).unwrap_or(u32::MAX);
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops starts older than `horizon` before `now`: too old to matter
    /// for any start at or after `now`.
    pub(super) fn prune(&mut self, now: Duration, horizon: Duration) {
        self.starts.retain(|s| s.at + horizon > now);
    }

    /// The earliest start at or after `from` that keeps the limit, given
    /// every start already reserved (before or after it) except those
    /// `ignore` picks.
    pub(super) fn earliest(&self, from: Duration, ignore: impl Fn(&Start) -> bool) -> Duration {
        let times: Vec<Duration> = self
            .starts
            .iter()
            .filter(|s| !ignore(s))
            .map(|s| s.at)
            .collect();
        earliest_among(&times, self.capacity, self.span, self.spacing, from)
    }

    pub(super) fn insert(&mut self, start: Start) {
        let index = self.starts.partition_point(|s| s.at <= start.at);
        self.starts.insert(index, start);
    }

    /// Removes the start with this id; answers whether it was there.
    pub(super) fn remove(&mut self, id: u64) -> bool {
        let before = self.starts.len();
        self.starts.retain(|s| s.id != id);
        self.starts.len() != before
    }

    /// Removes every start `pick` chooses and returns them.
    pub(super) fn take_where(&mut self, pick: impl Fn(&Start) -> bool) -> Vec<Start> {
        let (taken, kept) = std::mem::take(&mut self.starts)
            .into_iter()
            .partition(|s| pick(s));
        self.starts = kept;
        taken
    }

    /// How many starts lie in `(from, to]` (from the first one when `from`
    /// is `None`), not counting `except`.
    pub(super) fn count_between(&self, from: Option<Duration>, to: Duration, except: u64) -> usize {
        self.starts
            .iter()
            .filter(|s| from.is_none_or(|from| s.at > from) && s.at <= to && s.id != except)
            .count()
    }
}

/// The earliest time at or after `from` at which one more start keeps at
/// most `capacity` starts in any `span` and `spacing` between starts, given
/// the sorted `starts`.
pub(super) fn earliest_among(
    starts: &[Duration],
    capacity: usize,
    span: Duration,
    spacing: Duration,
    from: Duration,
) -> Duration {
    let index_of_first = |pred: &dyn Fn(Duration) -> bool| starts.partition_point(|at| !pred(*at));
    let mut t = from;
    loop {
        let mut next = t;
        // Spacing: no reserved start closer than `spacing` to `t`; the
        // latest start before `t + spacing` is the one that matters.
        let below = index_of_first(&|at| at >= t + spacing);
        if let Some(at) = below.checked_sub(1).and_then(|i| starts.get(i)) {
            if *at + spacing > t {
                next = *at + spacing;
            }
        }
        if next == t {
            // Every window `[x, x + span)` holding `t` must have room. The
            // fullest such window starts at `t` or at a reserved start in
            // `(t - span, t]`; a full one pushes `t` past its end.
            let first = index_of_first(&|at| at + span > t);
            let last = index_of_first(&|at| at > t);
            let candidates = starts[first..last]
                .iter()
                .copied()
                .chain(std::iter::once(t));
            for x in candidates {
                let count = index_of_first(&|at| at >= x + span) - index_of_first(&|at| at >= x);
                if count >= capacity {
                    next = next.max(x + span);
                }
            }
        }
        if next == t {
            return t;
        }
        t = next;
    }
}
