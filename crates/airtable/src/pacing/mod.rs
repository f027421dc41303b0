//! Pacing: keeps every base under Airtable's 5 requests per second and the
//! token under 50, for all clones and tasks of the process together.
//!
//! Each limit is a token bucket whose tokens come back exactly one window
//! after they were spent (a sliding window): Airtable counts requests in any
//! one-second window, and a classic bucket that refills continuously lets
//! `capacity + rate` requests into some windows, one too many. Requests
//! reserve a start time under a single lock (the earliest time that suits
//! both their base's window and the token's), so concurrent tasks can never
//! both take the last slot, then sleep until it. Slots are also spread
//! evenly (one window divided by the limit) so that a queue of waiting
//! tasks does not reach Airtable as a burst.
//!
//! After a 429 the whole base is paused: no reservation for it starts before
//! the pause ends, and reservations made before the 429 are taken again.
//!
//! Airtable counts arrivals, not departures: windows are widened by the
//! spread of recent latencies (requests delayed differently arrive bunched)
//! and by what 429s taught (see [`RateLimits`]).

mod window;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::RateLimits;
use window::Window;

#[derive(Debug)]
struct BaseState {
    window: Window,
    paused_until: Duration,
    /// Bumped by every pause, so that a reservation made before it is known
    /// to be stale.
    generation: u64,
}

#[derive(Debug)]
struct State {
    token: Window,
    bases: HashMap<String, BaseState>,
    /// Latencies of the latest answers, newest last.
    latencies: VecDeque<Duration>,
    /// Widening learnt from 429s that came despite the pacing; each one
    /// adds [`LEARN_STEP`], each answer takes back [`UNLEARN_STEP`].
    learned: Duration,
}

/// How much each 429 widens every window. A 429 that came despite the
/// pacing means Airtable saw the requests closer together than they left
/// (delays the latency spread does not show), and it costs the base 30 s:
/// far more than running a little slower for a while.
const LEARN_STEP: Duration = Duration::from_millis(100);
/// The most the 429s can widen a window.
const MAX_LEARNED_MARGIN: Duration = Duration::from_secs(1);
/// How much each answer narrows the learnt widening again (a hundred
/// answers take one step back).
const UNLEARN_STEP: Duration = Duration::from_millis(1);

/// How many recent latencies the jitter estimate looks at.
const LATENCY_SAMPLES: usize = 32;

impl State {
    /// How much the delays of two requests may differ, judged from recent
    /// latencies: their spread once there are enough, their maximum before
    /// (the fastest could have been instant), and `unknown` before any
    /// answer (the first requests are reserved before anything is known).
    fn jitter(&self, unknown: Duration) -> Duration {
        let Some(&max) = self.latencies.iter().max() else {
            return unknown;
        };
        let min = if self.latencies.len() >= LATENCY_SAMPLES / 2 {
            self.latencies.iter().min().copied().unwrap_or_default()
        } else {
            Duration::ZERO
        };
        max - min
    }
}

/// A slot: when the request may start, and the base's pause generation at
/// the time it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    pub(crate) at: Duration,
    generation: u64,
}

/// The pace of one base as a snapshot shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BasePace {
    /// The base's id.
    pub base_id: String,
    /// How long the base stays paused after a 429 (zero when it is not).
    pub paused_for: Duration,
}

/// The process-wide pacer shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct Pacer {
    limits: RateLimits,
    state: Mutex<State>,
}

impl Pacer {
    pub(crate) fn new(limits: RateLimits) -> Self {
        let token = Window::new(limits.per_token, &limits);
        Pacer {
            limits,
            state: Mutex::new(State {
                token,
                bases: HashMap::new(),
                latencies: VecDeque::with_capacity(LATENCY_SAMPLES),
                learned: Duration::ZERO,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic while
        // holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves the earliest slot at or after `now` that keeps the token's
    /// limit and, for a request to a base, that base's limit and pause.
    pub(crate) fn reserve(&self, base: Option<&str>, now: Duration) -> Reservation {
        let mut state = self.lock();
        let cap = self.limits.max_jitter_margin;
        let extra = state.jitter(cap).min(cap) + state.learned;
        let State { token, bases, .. } = &mut *state;
        token.prune(now);
        token.widen(extra);
        let Some(base) = base else {
            let at = token.earliest(now);
            token.insert(at, None);
            return Reservation { at, generation: 0 };
        };
        let limits = &self.limits;
        let base_state = bases.entry(base.to_owned()).or_insert_with(|| BaseState {
            window: Window::new(limits.per_base, limits),
            paused_until: Duration::ZERO,
            generation: 0,
        });
        base_state.window.prune(now);
        base_state.window.widen(extra);
        // Alternate until one time suits both windows; each step only moves
        // later, and past the last reserved start both are free.
        let mut at = now.max(base_state.paused_until);
        loop {
            let for_base = base_state.window.earliest(at);
            let for_token = token.earliest(for_base);
            if for_token == for_base {
                at = for_base;
                break;
            }
            at = for_token;
        }
        base_state.window.insert(at, None);
        token.insert(at, Some(base));
        Reservation {
            at,
            generation: base_state.generation,
        }
    }

    /// Records how long an answer took, for the jitter estimate.
    pub(crate) fn record_latency(&self, latency: Duration) {
        let mut state = self.lock();
        if state.latencies.len() >= LATENCY_SAMPLES {
            state.latencies.pop_front();
        }
        state.latencies.push_back(latency);
        state.learned = state.learned.saturating_sub(UNLEARN_STEP);
    }

    /// Whether a reservation still holds (no pause of its base since).
    pub(crate) fn is_current(&self, base: Option<&str>, reservation: Reservation) -> bool {
        let Some(base) = base else { return true };
        let state = self.lock();
        state
            .bases
            .get(base)
            .is_none_or(|b| b.generation == reservation.generation)
    }

    /// Moves a reservation whose holder woke late to the time it really
    /// leaves, when that time keeps every limit; otherwise gives the slot
    /// back and answers false (the holder reserves again).
    pub(crate) fn restamp(
        &self,
        base: Option<&str>,
        reservation: Reservation,
        now: Duration,
    ) -> bool {
        let mut state = self.lock();
        let State { token, bases, .. } = &mut *state;
        let base_window = match base {
            Some(base) => match bases.get_mut(base) {
                Some(b) if b.generation == reservation.generation => Some(&mut b.window),
                _ => return false,
            },
            None => None,
        };
        token.remove(reservation.at, base);
        let fits_token = token.earliest(now) == now;
        match base_window {
            Some(window) => {
                window.remove(reservation.at, None);
                if fits_token && window.earliest(now) == now {
                    window.insert(now, None);
                    token.insert(now, base);
                    return true;
                }
                false
            }
            None if fits_token => {
                token.insert(now, None);
                true
            }
            None => false,
        }
    }

    /// Waits for a slot; returns how long the caller waited.
    pub(crate) async fn acquire(&self, clock: &dyn Clock, base: Option<&str>) -> Duration {
        let started = clock.now();
        let mut slept = false;
        loop {
            let reservation = self.reserve(base, clock.now());
            if reservation.at > clock.now() {
                clock.sleep_until(reservation.at).await;
                slept = true;
            }
            // A process starved of CPU wakes late, and a request that leaves
            // late arrives closer to the next ones than its slot promised.
            // Half the safety margin is absorbed; later, the slot is taken
            // again at the time the request really leaves (or given back).
            let now = clock.now();
            let late_wake = self.limits.safety_margin / 2;
            if now > reservation.at + late_wake && !self.restamp(base, reservation, now) {
                continue;
            }
            if self.is_current(base, reservation) {
                // Only a real wait counts: reading a running clock twice
                // always shows a few microseconds.
                return if slept {
                    clock.now().saturating_sub(started)
                } else {
                    Duration::ZERO
                };
            }
        }
    }

    /// Pauses a base until `until` (a later pause wins over an earlier one).
    pub(crate) fn pause_base(&self, base: &str, now: Duration, until: Duration) {
        let mut state = self.lock();
        let State {
            token,
            bases,
            learned,
            ..
        } = &mut *state;
        let limits = &self.limits;
        let base_state = bases.entry(base.to_owned()).or_insert_with(|| BaseState {
            window: Window::new(limits.per_base, limits),
            paused_until: Duration::ZERO,
            generation: 0,
        });
        // Requests in flight together all get the 429: learn once per pause.
        if base_state.paused_until <= now {
            *learned = (*learned + LEARN_STEP).min(MAX_LEARNED_MARGIN);
        }
        base_state.paused_until = base_state.paused_until.max(until);
        base_state.generation += 1;
        base_state.window.forget_after(now, None);
        token.forget_after(now, Some(base));
    }

    /// The pause of every base the process has spoken to.
    pub(crate) fn snapshot(&self, now: Duration) -> Vec<BasePace> {
        let state = self.lock();
        let mut paces: Vec<BasePace> = state
            .bases
            .iter()
            .map(|(id, b)| BasePace {
                base_id: id.clone(),
                paused_for: b.paused_until.saturating_sub(now),
            })
            .collect();
        paces.sort_by(|a, b| a.base_id.cmp(&b.base_id));
        paces
    }
}
