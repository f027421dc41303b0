//! The share of a base's requests airsync takes, and how it adapts when
//! someone else uses the base: additive increase, multiplicative decrease.
//!
//! Airtable counts every client's requests to a base together (5 in any
//! second). The configured budget is the most airsync takes; a 429 that
//! airsync's own requests cannot explain shows that others need more room
//! than the budget leaves, and the share falls to at most four fifths of
//! itself, at least one request a second fewer. It then climbs back one
//! percentage point per recovery step. Climbing back to a level that drew
//! a 429 draws it again while the other client is still there, so every
//! episode that comes before the share has held its budget for
//! [`CALM`] doubles the step (up to [`MAX_STEP_FACTOR`] times): a base
//! shared with a steady script settles below the level that overflows it,
//! and probes that level ever more rarely.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The factor a foreign 429 multiplies the share by.
pub(super) const DECREASE: f64 = 0.8;
/// How much one recovery step adds to the share.
pub(super) const STEP: f64 = 0.01;
/// How long the share must hold its budget without a foreign 429 before
/// the recovery step is back to its configured length.
pub(super) const CALM: Duration = Duration::from_secs(3600);
/// The most the recovery step can grow, as a multiple of its configured
/// length.
pub(super) const MAX_STEP_FACTOR: u32 = 32;

/// Why the share changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ShareChangeReason {
    /// A 429 that airsync's own requests could not explain.
    OthersTraffic,
    /// A recovery step: no 429 from others for a step's length.
    Recovery,
}

impl ShareChangeReason {
    /// A label for logs and metrics.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ShareChangeReason::OthersTraffic => "others_traffic",
            ShareChangeReason::Recovery => "recovery",
        }
    }
}

/// One change of a base's share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ShareChange {
    pub(super) from: f64,
    pub(super) to: f64,
    pub(super) reason: ShareChangeReason,
}

/// A base's share and its recovery. Its times are on whatever clock its
/// caller reads (the process's, or the deployment's store's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Share {
    per_base: u32,
    budget: f64,
    share: f64,
    /// The configured length of a recovery step.
    first_step: Duration,
    /// The current length of a recovery step.
    step: Duration,
    /// When the share last changed (the next step counts from there).
    changed_at: Duration,
    /// Since when the share has held its budget, if it does.
    full_since: Option<Duration>,
    /// Whether a foreign 429 has lowered the share before.
    lowered_before: bool,
}

impl Share {
    pub(super) fn new(per_base: u32, budget: f64, first_step: Duration) -> Self {
        Share {
            per_base: per_base.max(1),
            budget,
            share: budget,
            first_step,
            step: first_step,
            changed_at: Duration::ZERO,
            full_since: Some(Duration::ZERO),
            lowered_before: false,
        }
    }

    /// Whether the share was made for this limit and budget.
    pub(super) fn kept_for(&self, per_base: u32, budget: f64) -> bool {
        self.per_base == per_base.max(1) && (self.budget - budget).abs() < 1e-9
    }

    /// The base's limit the share is of.
    pub(super) fn per_base(&self) -> u32 {
        self.per_base
    }

    /// The same share and step, counted from `now` on another clock.
    pub(super) fn rebased(&self, now: Duration) -> Share {
        Share {
            changed_at: now,
            full_since: (self.share >= self.budget).then_some(now),
            ..self.clone()
        }
    }

    /// The current share, in (0, 1].
    pub(super) fn current(&self) -> f64 {
        self.share
    }

    /// The configured budget, the most the share can be.
    pub(super) fn budget(&self) -> f64 {
        self.budget
    }

    /// The requests a second the share allows: the share of the base's
    /// limit rounded down (another client needs a whole request), at least
    /// one.
    pub(super) fn requests_per_window(&self) -> usize {
        requests_for(self.per_base, self.share)
    }

    /// The current length of a recovery step.
    pub(super) fn step(&self) -> Duration {
        self.step
    }

    /// Takes the recovery steps due by `now`; returns the changes made.
    pub(super) fn recover(&mut self, now: Duration) -> Vec<ShareChange> {
        let mut changes = Vec::new();
        while self.share < self.budget && now >= self.changed_at + self.step {
            let from = self.share;
            self.share = (self.share + STEP).min(self.budget);
            // Rounding must not leave the share a hair under its budget.
            if self.budget - self.share < STEP / 100.0 {
                self.share = self.budget;
            }
            self.changed_at += self.step;
            if self.share >= self.budget {
                self.full_since = Some(self.changed_at);
            }
            changes.push(ShareChange {
                from,
                to: self.share,
                reason: ShareChangeReason::Recovery,
            });
        }
        if self
            .full_since
            .is_some_and(|since| now >= since + CALM && self.step != self.first_step)
        {
            self.step = self.first_step;
        }
        changes
    }

    /// Lowers the share after a 429 that others' traffic caused: to four
    /// fifths, and at least one request a second fewer (never under one).
    /// The recovery steps due by `now` must have been taken first.
    pub(super) fn lower(&mut self, now: Duration) -> Option<ShareChange> {
        let calm = self.full_since.is_some_and(|since| now >= since + CALM);
        if self.lowered_before && !calm {
            self.step = (self.step * 2).min(self.first_step * MAX_STEP_FACTOR);
        } else {
            self.step = self.first_step;
        }
        self.lowered_before = true;
        let requests = self.requests_per_window();
        let floor = 1.0 / f64::from(self.per_base);
        let fewer = (requests.saturating_sub(1).max(1)) as f64 / f64::from(self.per_base);
        let to = (self.share * DECREASE)
            .min(fewer)
            .max(floor)
            .min(self.budget);
        self.changed_at = now;
        if to >= self.share {
            return None;
        }
        let from = self.share;
        self.share = to;
        self.full_since = None;
        Some(ShareChange {
            from,
            to,
            reason: ShareChangeReason::OthersTraffic,
        })
    }
}

/// The whole requests a second that `share` of `per_base` allows, at least
/// one.
pub(super) fn requests_for(per_base: u32, share: f64) -> usize {
    // A tiny allowance, so that 0.6 * 5 is 3 and not 2.999….
    let exact = f64::from(per_base) * share + 1e-9;
    (exact.floor() as usize).max(1)
}
