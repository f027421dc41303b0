//! Pacing: keeps airsync's requests to every base within its share of
//! Airtable's 5 requests per second, and the token's under 50, for all
//! clones and tasks of the process together.
//!
//! Airtable counts every client's requests to a base in any one-second
//! window. A share is therefore a count of requests in every such window,
//! as the other clients see it: at 80% airsync sends at most 4 requests in
//! any second (plus a margin for network jitter), so a script's fifth
//! always fits. A share is rounded down to whole requests.
//!
//! Each limit is a sliding window: requests reserve a start time under a
//! single lock (the earliest time that suits both their base's window and
//! the token's), so concurrent tasks can never both take the last slot,
//! then sleep until it. Slots are spread evenly (the window divided by the
//! count) so that a queue of waiting tasks does not reach Airtable as a
//! burst.
//!
//! Requests have a [`Priority`]: a request reserves its slot as though no
//! request of a lower priority were waiting, and the lower ones whose slots
//! it may have taken reserve again behind it. A user's read never waits
//! behind a reconcile's pages.
//!
//! After a 429 the whole base is paused: no reservation for it starts before
//! the pause ends, and reservations made before the 429 are taken again.
//! The first 429 of a pause is judged: when airsync's own requests in the
//! second before it could not have filled the base's window, someone else
//! uses the base, and airsync's share of it falls (see [`share`]); when they
//! could, the margin was too small for the network's jitter, and the
//! windows widen.
//!
//! A process alone paces itself. The processes of one deployment (the API
//! and the worker, each in its own process) share each base's budget
//! through a [`BudgetStore`] (see [`shared`]): the store's record of the
//! base then decides when each request leaves, whether the base is paused,
//! and its share, and every process follows it. When the store cannot be
//! reached, a process falls back to pacing itself alone, and says so.

mod share;
mod shared;
mod window;

pub use shared::{BudgetStore, BudgetStoreError, BudgetUpdate, MemoryBudgetStore};

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use share::{Share, ShareChange, ShareChangeReason};
use shared::{Deployment, Judged, SharedBudget, Take};
use window::{Start, Window};

/// How soon a request must go out, when several wait for a base.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Someone waits for it: a user's read, a webhook's payloads.
    Urgent,
    /// The sync's steady work: pushes, polls, look-ups.
    #[default]
    Normal,
    /// Work that can wait: a reconcile's pages.
    Background,
}

impl Priority {
    /// A label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::Normal => "normal",
            Priority::Background => "background",
        }
    }
}

/// Who most likely caused a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitCause {
    /// airsync's own requests could not have filled the base's window:
    /// another client of the base sent at least this many of its requests.
    Others {
        /// The fewest requests of others the window must have held.
        at_least: u32,
    },
    /// airsync's own requests could have filled the window by themselves
    /// (their arrivals bunched more than the margin allows).
    Airsync,
}

impl RateLimitCause {
    /// A label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitCause::Others { .. } => "others",
            RateLimitCause::Airsync => "airsync",
        }
    }
}

/// One 429 episode of a base: the first 429 of a pause, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitEpisode {
    /// When the 429 came.
    pub at: SystemTime,
    /// airsync's requests to the base in the second before the refused one
    /// left (within the margin), the refused one not counted.
    pub own_requests: u32,
    /// Who most likely caused it.
    pub cause: RateLimitCause,
    /// The share before the episode.
    pub share_before: f64,
    /// The share after it.
    pub share_after: f64,
}

/// The pace of one base as a snapshot shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BasePace {
    /// The base's id.
    pub base_id: String,
    /// How long the base stays paused after a 429 (zero when it is not).
    pub paused_for: Duration,
    /// The share of the base's requests airsync takes now, in (0, 1].
    pub share: f64,
    /// The configured budget, the most the share can climb back to.
    pub budget: f64,
    /// The requests airsync sends in any window now.
    pub requests_per_window: u32,
    /// The window those requests are counted in (Airtable's second, plus
    /// the margins).
    pub window: Duration,
    /// The current length of one recovery step (one percentage point).
    pub recovery_step: Duration,
    /// 429 episodes of the base, by cause, since the process started.
    pub episodes_by_others: u64,
    /// Episodes that airsync's own requests explain.
    pub episodes_by_airsync: u64,
    /// The latest episodes, newest last.
    pub recent_episodes: Vec<RateLimitEpisode>,
    /// Whether the share and the pause are the deployment's (kept in the
    /// budget store for every process) rather than this process's alone.
    pub deployment_wide: bool,
}

/// How many episodes a base keeps for the ops page.
const RECENT_EPISODES: usize = 20;

#[derive(Debug)]
struct BaseState {
    window: Window,
    share: Share,
    paused_until: Duration,
    /// Bumped by every pause, so that a reservation made before it is known
    /// to be stale.
    generation: u64,
    /// Reservations that a more urgent request overtook, by id, with the
    /// time they were for: their holders reserve again when they wake.
    overtaken: HashMap<u64, Duration>,
    episodes_by_others: u64,
    episodes_by_airsync: u64,
    recent: VecDeque<RateLimitEpisode>,
    /// Whether the share follows the deployment's record (and does not
    /// recover on its own).
    followed: bool,
}

#[derive(Debug)]
struct State {
    token: Window,
    bases: HashMap<String, BaseState>,
    next_id: u64,
    /// Widening learnt from 429s that airsync's own requests explain; each
    /// adds [`LEARN_STEP`], each answer takes back [`UNLEARN_STEP`].
    learned: Duration,
}

/// How much each 429 that airsync's own requests explain widens every
/// window: their arrivals bunched more than the margin allowed.
const LEARN_STEP: Duration = Duration::from_millis(100);
/// The most such 429s can widen a window.
const MAX_LEARNED_MARGIN: Duration = Duration::from_secs(1);
/// How much each answer narrows the learnt widening again (a hundred
/// answers take one step back).
const UNLEARN_STEP: Duration = Duration::from_millis(1);

/// How long after a request left its 429 can still be judged (the
/// longest a request may take, and then some).
const JUDGED_WITHIN: Duration = Duration::from_secs(120);

/// How long an overtaken reservation is remembered past its time.
const OVERTAKEN_KEPT: Duration = Duration::from_secs(60);

/// A slot: when the request may start, and what must not have changed
/// for it to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reservation {
    pub(crate) at: Duration,
    pub(crate) id: u64,
    priority: Priority,
    generation: u64,
}

/// A slot that holds: when the request left and how long it waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) at: Duration,
    pub(crate) id: u64,
    pub(crate) waited: Duration,
    /// The start the deployment's budget granted, on the store's clock.
    pub(crate) shared_at: Option<Duration>,
}

/// How long a budget store may take to answer before the request goes on
/// this process's pacing alone.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a process paces itself alone after the store failed, before
/// it asks the store again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// The process-wide pacer shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct Pacer {
    limits: RateLimits,
    state: Mutex<State>,
    /// The deployment's budget, when the processes share one.
    shared: Option<SharedBudget>,
    /// Whether the budget store failed last time (logged once per change).
    store_failing: AtomicBool,
    /// When the store last failed (the pacer's clock): it is left alone
    /// for [`STORE_RETRY`] after, so that an outage of the database does
    /// not cost every request the store's timeout.
    store_failed_at: Mutex<Option<Duration>>,
}

impl Pacer {
    pub(crate) fn new(limits: RateLimits) -> Self {
        let token_capacity = share::requests_for(limits.per_token, limits.budget_share);
        let token = Window::new(token_capacity, limits.window + limits.safety_margin);
        Pacer {
            limits,
            state: Mutex::new(State {
                token,
                bases: HashMap::new(),
                next_id: 0,
                learned: Duration::ZERO,
            }),
            shared: None,
            store_failing: AtomicBool::new(false),
            store_failed_at: Mutex::new(None),
        }
    }

    /// The same pacer, sharing each base's budget with the deployment's
    /// other processes through `store`.
    pub(crate) fn sharing(mut self, store: std::sync::Arc<dyn BudgetStore>) -> Self {
        self.shared = Some(SharedBudget::new(store));
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic while
        // holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The span of every window now: Airtable's second, the margin, and
    /// what 429s taught.
    fn span(&self, learned: Duration) -> Duration {
        self.limits.window + self.limits.safety_margin + learned
    }

    /// How long a start matters: the widest a window can get.
    fn horizon(&self) -> Duration {
        self.limits.window + self.limits.safety_margin + MAX_LEARNED_MARGIN
    }

    fn new_base(&self) -> BaseState {
        let limits = &self.limits;
        let share = Share::new(limits.per_base, limits.budget_share, limits.recovery_step);
        BaseState {
            window: Window::new(share.requests_per_window(), self.span(Duration::ZERO)),
            share,
            paused_until: Duration::ZERO,
            generation: 0,
            overtaken: HashMap::new(),
            episodes_by_others: 0,
            episodes_by_airsync: 0,
            recent: VecDeque::new(),
            followed: false,
        }
    }

    /// A base's state (made on first use), with the recovery steps due by
    /// `now` taken and logged.
    fn base_now<'a>(
        &self,
        bases: &'a mut HashMap<String, BaseState>,
        base: &str,
        now: Duration,
    ) -> &'a mut BaseState {
        let base_state = bases
            .entry(base.to_owned())
            .or_insert_with(|| self.new_base());
        if !base_state.followed {
            for change in base_state.share.recover(now) {
                log_change(base, &change, &base_state.share);
            }
        }
        base_state
    }

    /// Reserves the earliest slot at or after `now` that keeps the token's
    /// limit and, for a request to a base, that base's share and pause,
    /// ahead of every waiting request of a lower priority.
    pub(crate) fn reserve(
        &self,
        base: Option<&str>,
        priority: Priority,
        now: Duration,
    ) -> Reservation {
        let mut state = self.lock();
        let span = self.span(state.learned);
        let horizon = self.horizon();
        let id = state.next_id;
        state.next_id += 1;
        let State { token, bases, .. } = &mut *state;
        token.prune(now, horizon);
        token.set(token.capacity(), span);
        let Some(base) = base else {
            let at = token.earliest(now, |_| false);
            token.insert(Start {
                at,
                id,
                base: None,
                priority,
            });
            return Reservation {
                at,
                id,
                priority,
                generation: 0,
            };
        };
        let base_state = self.base_now(bases, base, now);
        // A base keeps its starts longer than they matter for the limit: a
        // 429 answered late is judged against the second it was sent in.
        base_state.window.prune(now, horizon.max(JUDGED_WITHIN));
        base_state
            .window
            .set(base_state.share.requests_per_window(), span);
        // Waiting reservations of lower priority do not hold this one back.
        let overtaken = |s: &Start| s.at > now && s.priority > priority;
        let of_base = |s: &Start| s.base.as_deref() == Some(base);
        // Alternate until one time suits both windows; each step only moves
        // later, and past the last reserved start both are free.
        let mut at = now.max(base_state.paused_until);
        loop {
            let for_base = base_state.window.earliest(at, overtaken);
            let for_token = token.earliest(for_base, |s| of_base(s) && overtaken(s));
            if for_token == for_base {
                at = for_base;
                break;
            }
            at = for_token;
        }
        // The overtaken reserve again, behind this one. A holder that never
        // woke (its task was dropped) is forgotten after a while.
        base_state
            .overtaken
            .retain(|_, at| *at + OVERTAKEN_KEPT > now);
        for start in base_state.window.take_where(overtaken) {
            token.remove(start.id);
            base_state.overtaken.insert(start.id, start.at);
        }
        base_state.window.insert(Start {
            at,
            id,
            base: None,
            priority,
        });
        token.insert(Start {
            at,
            id,
            base: Some(base.to_owned()),
            priority,
        });
        Reservation {
            at,
            id,
            priority,
            generation: base_state.generation,
        }
    }

    /// Records that an answer came: each one narrows what 429s taught.
    pub(crate) fn record_answer(&self) {
        let mut state = self.lock();
        state.learned = state.learned.saturating_sub(UNLEARN_STEP);
    }

    /// Whether a reservation still holds (no pause of its base since, and
    /// no more urgent request took its place).
    fn is_current(&self, base: Option<&str>, reservation: &Reservation) -> bool {
        let Some(base) = base else { return true };
        let state = self.lock();
        state.bases.get(base).is_none_or(|b| {
            b.generation == reservation.generation && !b.overtaken.contains_key(&reservation.id)
        })
    }

    /// Gives a reservation's slot back.
    fn release(&self, base: Option<&str>, reservation: &Reservation) {
        let mut state = self.lock();
        let State { token, bases, .. } = &mut *state;
        token.remove(reservation.id);
        if let Some(b) = base.and_then(|base| bases.get_mut(base)) {
            b.window.remove(reservation.id);
            b.overtaken.remove(&reservation.id);
        }
    }

    /// Moves a reservation whose holder woke late to the time it really
    /// leaves, when that time keeps every limit; otherwise gives the slot
    /// back and answers false (the holder reserves again).
    pub(crate) fn restamp(
        &self,
        base: Option<&str>,
        reservation: &mut Reservation,
        now: Duration,
    ) -> bool {
        let mut state = self.lock();
        let State { token, bases, .. } = &mut *state;
        token.remove(reservation.id);
        let base_window = match base {
            Some(base) => match bases.get_mut(base) {
                Some(b) => {
                    b.window.remove(reservation.id);
                    if b.generation != reservation.generation
                        || b.overtaken.remove(&reservation.id).is_some()
                    {
                        return false;
                    }
                    Some(&mut b.window)
                }
                None => return false,
            },
            None => None,
        };
        if token.earliest(now, |_| false) != now {
            return false;
        }
        let start = |base: Option<&str>| Start {
            at: now,
            id: reservation.id,
            base: base.map(str::to_owned),
            priority: reservation.priority,
        };
        if let Some(window) = base_window {
            if window.earliest(now, |_| false) != now {
                return false;
            }
            window.insert(start(None));
        }
        token.insert(start(base));
        reservation.at = now;
        true
    }

    /// Waits for a slot at `priority`: this process's, then (for a base,
    /// when the deployment shares its budget) the deployment's.
    pub(crate) async fn acquire(
        &self,
        clock: &dyn Clock,
        base: Option<&str>,
        priority: Priority,
    ) -> Slot {
        let slot = self.acquire_here(clock, base, priority).await;
        match (&self.shared, base) {
            (Some(shared), Some(base)) => {
                self.acquire_shared(clock, shared, base, priority, slot)
                    .await
            }
            _ => slot,
        }
    }

    /// Waits until the deployment's budget grants the request a start.
    async fn acquire_shared(
        &self,
        clock: &dyn Clock,
        shared: &SharedBudget,
        base: &str,
        priority: Priority,
        mut slot: Slot,
    ) -> Slot {
        let started = clock.now();
        loop {
            let update = shared.take(&self.limits, base, priority);
            let answer = self.with_store(base, clock.now(), update).await;
            let Some((take, deployment)) = answer else {
                return slot;
            };
            self.follow(base, &deployment, clock.now());
            match take {
                Take::Granted { at } => {
                    slot.shared_at = Some(at);
                    slot.waited += clock.now().saturating_sub(started);
                    return slot;
                }
                Take::Wait(wait) => clock.sleep_until(clock.now() + wait).await,
            }
        }
    }

    /// Runs one update of the budget store, within [`STORE_TIMEOUT`]; a
    /// failure is logged when the store starts and stops failing, and
    /// answers `None` (the request goes on this process's pacing alone).
    async fn with_store<T>(
        &self,
        base: &str,
        now: Duration,
        update: impl std::future::Future<Output = Result<T, BudgetStoreError>>,
    ) -> Option<T> {
        let failed_at = *self
            .store_failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if failed_at.is_some_and(|at| now < at + STORE_RETRY) {
            return None;
        }
        let result = match tokio::time::timeout(STORE_TIMEOUT, update).await {
            Ok(result) => result,
            Err(_) => Err(BudgetStoreError(format!(
                "no answer within {} s",
                STORE_TIMEOUT.as_secs()
            ))),
        };
        match result {
            Ok(value) => {
                if self.store_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(base, "the deployment's Airtable budget is shared again");
                }
                Some(value)
            }
            Err(error) => {
                *self
                    .store_failed_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
                if !self.store_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        base,
                        error = %error,
                        "the deployment's Airtable budget cannot be read; this process paces its requests alone until it can"
                    );
                }
                let mut state = self.lock();
                if let Some(b) = state.bases.get_mut(base) {
                    if b.followed {
                        b.followed = false;
                        b.share = b.share.rebased(now);
                    }
                }
                None
            }
        }
    }

    /// Adopts the deployment's record of a base: its share, its pause and
    /// what 429s taught; logs the share's changes this process made.
    fn follow(&self, base: &str, deployment: &Deployment, now: Duration) {
        if let Some(reason) = &deployment.reset {
            tracing::warn!(
                base,
                reason = reason.as_str(),
                "started the base's shared budget record again"
            );
        }
        let mut state = self.lock();
        state.learned = deployment.learned;
        let span = self.span(state.learned);
        let base_state = state
            .bases
            .entry(base.to_owned())
            .or_insert_with(|| self.new_base());
        base_state.followed = true;
        base_state.share = deployment.share.clone();
        for change in &deployment.changes {
            log_change(base, change, &base_state.share);
        }
        base_state
            .window
            .set(base_state.share.requests_per_window(), span);
        if !deployment.paused_for.is_zero() {
            base_state.paused_until = base_state.paused_until.max(now + deployment.paused_for);
        }
    }

    /// Waits for this process's own slot at `priority`.
    async fn acquire_here(
        &self,
        clock: &dyn Clock,
        base: Option<&str>,
        priority: Priority,
    ) -> Slot {
        let started = clock.now();
        let mut slept = false;
        loop {
            let mut reservation = self.reserve(base, priority, clock.now());
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
            if now > reservation.at + late_wake && !self.restamp(base, &mut reservation, now) {
                continue;
            }
            if self.is_current(base, &reservation) {
                // Only a real wait counts: reading a running clock twice
                // always shows a few microseconds.
                let waited = if slept {
                    clock.now().saturating_sub(started)
                } else {
                    Duration::ZERO
                };
                return Slot {
                    at: reservation.at,
                    id: reservation.id,
                    waited,
                    shared_at: None,
                };
            }
            self.release(base, &reservation);
        }
    }

    /// After a 429 to the request that left in `slot`: pauses the base for
    /// `pause` (a later pause wins over an earlier one), deployment-wide
    /// when the budget is shared. The first 429 of a pause is judged: see
    /// [`RateLimitCause`].
    pub(crate) async fn rate_limited(
        &self,
        clock: &dyn Clock,
        base: &str,
        slot: &Slot,
        pause: Duration,
    ) {
        let now = clock.now();
        if let (Some(shared), Some(started)) = (&self.shared, slot.shared_at) {
            let update = shared.rate_limited(&self.limits, base, started, pause);
            if let Some((judged, deployment)) = self.with_store(base, now, update).await {
                let now = clock.now();
                self.follow(base, &deployment, now);
                let mut state = self.lock();
                let State { token, bases, .. } = &mut *state;
                let base_state = self.base_now(bases, base, now);
                if let Some(judged) = judged {
                    self.record_episode(base, base_state, judged);
                }
                pause_here(token, base, base_state, now, now + deployment.paused_for);
                return;
            }
        }
        self.pause_base(base, slot, now, now + pause);
    }

    /// Pauses a base of this process's pacing until `until` after a 429 to
    /// the request that left in `slot`, judging the first 429 of a pause
    /// against this process's own starts.
    pub(crate) fn pause_base(&self, base: &str, slot: &Slot, now: Duration, until: Duration) {
        let mut state = self.lock();
        let span = self.span(state.learned);
        let State {
            token,
            bases,
            learned,
            ..
        } = &mut *state;
        let base_state = self.base_now(bases, base, now);
        // Requests in flight together all get the 429: judge once per pause.
        if base_state.paused_until <= now {
            let margin = span.saturating_sub(self.limits.window);
            let own = base_state.window.count_between(
                slot.at.checked_sub(self.limits.window + margin),
                slot.at + margin,
                slot.id,
            );
            let own = u32::try_from(own).unwrap_or(u32::MAX);
            let share_before = base_state.share.current();
            let cause = if own >= self.limits.per_base {
                *learned = (*learned + LEARN_STEP).min(MAX_LEARNED_MARGIN);
                RateLimitCause::Airsync
            } else {
                if let Some(change) = base_state.share.lower(now) {
                    log_change(base, &change, &base_state.share);
                }
                RateLimitCause::Others {
                    at_least: self.limits.per_base - own,
                }
            };
            let judged = Judged {
                own_requests: own,
                cause,
                share_before,
                share_after: base_state.share.current(),
            };
            self.record_episode(base, base_state, judged);
        }
        pause_here(token, base, base_state, now, until);
    }

    /// Counts, keeps and logs a judged 429 episode.
    fn record_episode(&self, base: &str, base_state: &mut BaseState, judged: Judged) {
        let own = judged.own_requests;
        match judged.cause {
            RateLimitCause::Airsync => {
                base_state.episodes_by_airsync += 1;
                tracing::warn!(
                    base,
                    own_requests = own,
                    "Airtable answered 429 after airsync's own requests could have filled the base's second: their arrivals bunched; widening the margin"
                );
            }
            RateLimitCause::Others { at_least } => {
                base_state.episodes_by_others += 1;
                tracing::warn!(
                    base,
                    own_requests = own,
                    others_at_least = at_least,
                    share_percent = judged.share_after * 100.0,
                    "Airtable answered 429 though airsync sent only {own} of the base's {} requests in that second: another client uses the base",
                    self.limits.per_base
                );
            }
        }
        if base_state.recent.len() >= RECENT_EPISODES {
            base_state.recent.pop_front();
        }
        base_state.recent.push_back(RateLimitEpisode {
            at: SystemTime::now(),
            own_requests: own,
            cause: judged.cause,
            share_before: judged.share_before,
            share_after: judged.share_after,
        });
    }

    /// The pace of every base the process has spoken to.
    pub(crate) fn snapshot(&self, now: Duration) -> Vec<BasePace> {
        let mut state = self.lock();
        let span = self.span(state.learned);
        let mut paces: Vec<BasePace> = state
            .bases
            .iter_mut()
            .map(|(id, b)| {
                if !b.followed {
                    for change in b.share.recover(now) {
                        log_change(id, &change, &b.share);
                    }
                }
                BasePace {
                    base_id: id.clone(),
                    paused_for: b.paused_until.saturating_sub(now),
                    share: b.share.current(),
                    budget: b.share.budget(),
                    requests_per_window: u32::try_from(b.share.requests_per_window())
                        .unwrap_or(u32::MAX),
                    window: span,
                    recovery_step: b.share.step(),
                    episodes_by_others: b.episodes_by_others,
                    episodes_by_airsync: b.episodes_by_airsync,
                    recent_episodes: b.recent.iter().cloned().collect(),
                    deployment_wide: b.followed,
                }
            })
            .collect();
        paces.sort_by(|a, b| a.base_id.cmp(&b.base_id));
        paces
    }
}

/// Pauses a base of this process's pacing until `until`: reservations
/// made before are taken again after it.
fn pause_here(
    token: &mut Window,
    base: &str,
    base_state: &mut BaseState,
    now: Duration,
    until: Duration,
) {
    base_state.paused_until = base_state.paused_until.max(until);
    base_state.generation += 1;
    base_state.window.take_where(|s| s.at > now);
    token.take_where(|s| s.at > now && s.base.as_deref() == Some(base));
}

/// Logs a change of a base's share with its reason.
fn log_change(base: &str, change: &ShareChange, share: &Share) {
    let requests = share.requests_per_window();
    match change.reason {
        ShareChangeReason::OthersTraffic => tracing::warn!(
            base,
            from_percent = change.from * 100.0,
            to_percent = change.to * 100.0,
            requests_per_second = requests,
            recovery_step_secs = share.step().as_secs(),
            reason = change.reason.as_str(),
            "lowered airsync's share of the base: another client's requests drew a 429"
        ),
        ShareChangeReason::Recovery => tracing::info!(
            base,
            from_percent = change.from * 100.0,
            to_percent = change.to * 100.0,
            requests_per_second = requests,
            reason = change.reason.as_str(),
            "raised airsync's share of the base: no 429 from others for a recovery step"
        ),
    }
}

/// How fast the client lets requests go.
///
/// Airtable allows `per_base` requests per `window` to one base, counted
/// over every client of the base, and `per_token` per `window` for one
/// token across all bases; a request over either limit gets a 429 and costs
/// the base a pause. The client takes `budget_share` of each limit as a
/// whole number of requests in any `window` (plus `safety_margin` for the
/// network's jitter), rounded down: at 0.8 it sends at most 4 requests to a
/// base in any second, so that another client's fifth always fits.
/// Consecutive requests are spread evenly inside the window.
///
/// A 429 that the client's own requests cannot explain (someone else used
/// the base) lowers the base's share to at most four fifths, at least one
/// request fewer; it climbs back one percentage point per `recovery_step`.
/// A 429 they can explain (their arrivals bunched more than the margin
/// allows) widens every window by 100 ms instead (up to 1 s), and every
/// answer narrows it by 1 ms again.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Requests per window to one base (Airtable: 5).
    pub per_base: u32,
    /// Requests per window for the token, all bases together (Airtable: 50).
    pub per_token: u32,
    /// The window the limits are counted over (Airtable: one second).
    pub window: Duration,
    /// The share of Airtable's limits this process may use, in (0, 1]; e.g.
    /// 0.8 leaves one request a second of each base to the team's own
    /// scripts.
    pub budget_share: f64,
    /// Added to every window so that the network's jitter cannot squeeze
    /// the requests of one window into Airtable's second.
    pub safety_margin: Duration,
    /// How long a base's share waits, after it was lowered, for each
    /// percentage point it climbs back (doubled for every further 429 from
    /// others until the share has held its budget for an hour).
    pub recovery_step: Duration,
    /// How long a base is left alone after a 429 when the answer has no
    /// `Retry-After` (Airtable: 30 seconds).
    pub rate_limit_pause: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_base: 5,
            per_token: 50,
            window: Duration::from_secs(1),
            budget_share: 1.0,
            safety_margin: Duration::from_millis(40),
            recovery_step: Duration::from_secs(60),
            rate_limit_pause: Duration::from_secs(30),
        }
    }
}
