//! One budget per base for a whole deployment: every process that speaks
//! to a base takes each request's start from one record kept in a
//! [`BudgetStore`] (airsync keeps it in PostgreSQL), under the store's lock
//! and on the store's clock.
//!
//! The record holds what the base's limit needs across processes: the
//! starts of the last two minutes, the pause after a 429, the share (see
//! [`super::share`]) and the widening that 429s taught, and the requests
//! waiting at each priority. A process still paces its own requests first
//! (its tasks, priorities and the token's limit); the record then decides
//! whether the request may leave now or when to ask again. A request of a
//! lower priority does not take a start while a more urgent one of another
//! process waits for the base.
//!
//! The functions here are pure: they change the record for one request at
//! one instant of the store's clock, so the rule is the same whatever keeps
//! the record, and tests run it on a manual clock.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::share::{Share, ShareChange};
use super::window::earliest_among;
use super::RateLimits;
use super::{
    Priority, RateLimitCause, JUDGED_WITHIN, LEARN_STEP, MAX_LEARNED_MARGIN, UNLEARN_STEP,
};
use crate::clock::Clock;

/// An update of a base's record: it gets the stored record (`None` for a
/// base never seen) and the store's time (since the Unix epoch), and
/// answers the record to store.
pub type BudgetUpdate<'a> =
    Box<dyn FnOnce(Option<serde_json::Value>, Duration) -> serde_json::Value + Send + 'a>;

/// Why a [`BudgetStore`] could not run an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetStoreError(pub String);

impl fmt::Display for BudgetStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BudgetStoreError {}

/// Where the processes of a deployment keep each base's pacing record.
///
/// `update` must run the whole update under a lock on the base's record
/// (no other update of that base between reading and writing) and give it
/// one clock that every process shares.
pub trait BudgetStore: Send + Sync + fmt::Debug {
    /// Runs `update` on the base's record.
    fn update<'a>(
        &'a self,
        base: &'a str,
        update: BudgetUpdate<'a>,
    ) -> BoxFuture<'a, Result<(), BudgetStoreError>>;
}

/// A [`BudgetStore`] in memory, on a [`Clock`]: for tests, where several
/// clients stand for several processes.
#[derive(Debug)]
pub struct MemoryBudgetStore {
    clock: Arc<dyn Clock>,
    records: Mutex<HashMap<String, serde_json::Value>>,
}

impl MemoryBudgetStore {
    /// A store whose time is `clock`'s.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryBudgetStore {
            clock,
            records: Mutex::new(HashMap::new()),
        }
    }
}

impl BudgetStore for MemoryBudgetStore {
    fn update<'a>(
        &'a self,
        base: &'a str,
        update: BudgetUpdate<'a>,
    ) -> BoxFuture<'a, Result<(), BudgetStoreError>> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let stored = records.get(base).cloned();
        let record = update(stored, self.clock.now());
        records.insert(base.to_owned(), record);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// How long a waiting request keeps lower priorities of other processes
/// back past the time it was told to ask again (a process late to wake
/// still gets its start; a process that died holds nobody back for long).
const WAITER_SLACK: Duration = Duration::from_millis(500);

/// One process's most urgent request waiting for the base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Waiter {
    process: String,
    priority: Priority,
    until: Duration,
}

/// A base's record, as the store keeps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Record {
    /// Every process's request starts of the last [`JUDGED_WITHIN`],
    /// sorted, in microseconds.
    #[serde(default, with = "micros")]
    starts: Vec<Duration>,
    #[serde(default)]
    paused_until: Duration,
    #[serde(default)]
    learned: Duration,
    #[serde(default)]
    share: Option<Share>,
    #[serde(default)]
    waiting: Vec<Waiter>,
    #[serde(default)]
    episodes_by_others: u64,
    #[serde(default)]
    episodes_by_airsync: u64,
}

/// What a process learns of the base from one update.
#[derive(Debug, Clone)]
pub(super) struct Deployment {
    /// The deployment's share of the base.
    pub(super) share: Share,
    /// How long the base stays paused.
    pub(super) paused_for: Duration,
    /// The widening that 429s taught.
    pub(super) learned: Duration,
    /// The share's changes this update made (to be logged by the process
    /// that made them).
    pub(super) changes: Vec<ShareChange>,
    /// Whether the stored record had to be started again (unreadable, or
    /// kept for another limit or budget).
    pub(super) reset: Option<String>,
}

/// The answer to a request for a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// The request may leave now; `at` is its start on the store's clock.
    Granted { at: Duration },
    /// The base is full, paused or wanted by a more urgent request: ask
    /// again after this long.
    Wait(Duration),
}

/// The judgement of the first 429 of a pause, deployment-wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Judged {
    pub(super) own_requests: u32,
    pub(super) cause: RateLimitCause,
    pub(super) share_before: f64,
    pub(super) share_after: f64,
}

impl Record {
    /// Reads a stored record; an unreadable one, or one kept for other
    /// limits, starts again (and says why).
    pub(super) fn load(
        stored: Option<serde_json::Value>,
        limits: &RateLimits,
        now: Duration,
    ) -> (Record, Option<String>) {
        let fresh_share = || Share::new(limits.per_base, limits.budget_share, limits.recovery_step);
        let (mut record, mut reset) = match stored {
            None => (Record::default(), None),
            Some(value) => match serde_json::from_value::<Record>(value) {
                Ok(record) => (record, None),
                Err(e) => (
                    Record::default(),
                    Some(format!("the stored record did not read ({e})")),
                ),
            },
        };
        match &record.share {
            Some(share) if !share.kept_for(limits.per_base, limits.budget_share) => {
                reset = Some(format!(
                    "the stored share was kept for {} requests a second at {}%, this process has {} at {}%",
                    share.per_base(),
                    share.budget() * 100.0,
                    limits.per_base,
                    limits.budget_share * 100.0
                ));
                record.share = Some(fresh_share());
            }
            Some(_) => {}
            None => record.share = Some(fresh_share()),
        }
        record.prune(now);
        (record, reset)
    }

    fn share_mut(&mut self) -> &mut Share {
        // `load` always sets it.
        self.share
            .get_or_insert_with(|| Share::new(5, 1.0, Duration::from_secs(60)))
    }

    fn prune(&mut self, now: Duration) {
        self.starts.retain(|at| *at + JUDGED_WITHIN > now);
        self.waiting.retain(|w| w.until > now);
    }

    fn span(&self, limits: &RateLimits) -> Duration {
        limits.window + limits.safety_margin + self.learned
    }

    fn deployment(
        &mut self,
        now: Duration,
        changes: Vec<ShareChange>,
        reset: Option<String>,
    ) -> Deployment {
        Deployment {
            share: self.share_mut().clone(),
            paused_for: self.paused_until.saturating_sub(now),
            learned: self.learned,
            changes,
            reset,
        }
    }

    /// Asks for a start for `process`'s request at `priority`.
    pub(super) fn take(
        &mut self,
        limits: &RateLimits,
        now: Duration,
        process: &str,
        priority: Priority,
    ) -> (Take, Vec<ShareChange>) {
        let changes = self.share_mut().recover(now);
        let capacity = self.share_mut().requests_per_window();
        let span = self.span(limits);
        let spacing = span / u32::try_from(capacity).unwrap_or(u32::MAX).max(1);
        let mut at = now.max(self.paused_until);
        if at == now {
            at = earliest_among(&self.starts, capacity, span, spacing, now);
        }
        if at == now {
            // A more urgent request of another process waits for the base:
            // leave it the start, and ask again one spacing later.
            let urgent = self
                .waiting
                .iter()
                .filter(|w| w.process != process && w.priority < priority)
                .map(|w| w.until)
                .min();
            if let Some(until) = urgent {
                at = now + spacing.min(until - now);
            }
        }
        if at > now {
            self.wait(process, priority, at + WAITER_SLACK);
            return (Take::Wait(at - now), changes);
        }
        let index = self.starts.partition_point(|s| *s <= now);
        self.starts.insert(index, now);
        self.waiting
            .retain(|w| !(w.process == process && w.priority == priority));
        self.learned = self.learned.saturating_sub(UNLEARN_STEP);
        (Take::Granted { at: now }, changes)
    }

    /// Records that `process` waits at `priority` until `until`.
    fn wait(&mut self, process: &str, priority: Priority, until: Duration) {
        match self
            .waiting
            .iter_mut()
            .find(|w| w.process == process && w.priority == priority)
        {
            Some(waiter) => waiter.until = waiter.until.max(until),
            None => self.waiting.push(Waiter {
                process: process.to_owned(),
                priority,
                until,
            }),
        }
    }

    /// Pauses the base until `now + pause` after a 429 to the request that
    /// started at `started` (the store's clock). The first 429 of a pause
    /// is judged against every process's starts.
    pub(super) fn rate_limited(
        &mut self,
        limits: &RateLimits,
        now: Duration,
        started: Duration,
        pause: Duration,
    ) -> (Option<Judged>, Vec<ShareChange>) {
        let mut changes = self.share_mut().recover(now);
        let mut judged = None;
        if self.paused_until <= now {
            let margin = self.span(limits).saturating_sub(limits.window);
            let from = started.checked_sub(limits.window + margin);
            let in_window = self
                .starts
                .iter()
                .filter(|at| from.is_none_or(|from| **at > from) && **at <= started + margin)
                .count();
            // The refused request's own start is not counted.
            let own = u32::try_from(in_window.saturating_sub(1)).unwrap_or(u32::MAX);
            let share_before = self.share_mut().current();
            let cause = if own >= limits.per_base {
                self.learned = (self.learned + LEARN_STEP).min(MAX_LEARNED_MARGIN);
                self.episodes_by_airsync += 1;
                RateLimitCause::Airsync
            } else {
                self.episodes_by_others += 1;
                changes.extend(self.share_mut().lower(now));
                RateLimitCause::Others {
                    at_least: limits.per_base - own,
                }
            };
            judged = Some(Judged {
                own_requests: own,
                cause,
                share_before,
                share_after: self.share_mut().current(),
            });
        }
        self.paused_until = self.paused_until.max(now + pause);
        (judged, changes)
    }
}

/// One process's handle on the deployment's budget.
#[derive(Debug, Clone)]
pub(super) struct SharedBudget {
    store: Arc<dyn BudgetStore>,
    /// This process's name in the records: its pid and a random part.
    process: String,
}

impl SharedBudget {
    pub(super) fn new(store: Arc<dyn BudgetStore>) -> Self {
        SharedBudget {
            store,
            process: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
        }
    }

    /// Asks the store for a start.
    pub(super) async fn take(
        &self,
        limits: &RateLimits,
        base: &str,
        priority: Priority,
    ) -> Result<(Take, Deployment), BudgetStoreError> {
        let process = self.process.as_str();
        self.update(limits, base, move |record, now| {
            record.take(limits, now, process, priority)
        })
        .await
    }

    /// Tells the store of a 429 to the request that started at `started`.
    pub(super) async fn rate_limited(
        &self,
        limits: &RateLimits,
        base: &str,
        started: Duration,
        pause: Duration,
    ) -> Result<(Option<Judged>, Deployment), BudgetStoreError> {
        self.update(limits, base, move |record, now| {
            record.rate_limited(limits, now, started, pause)
        })
        .await
    }

    /// Runs `change` on the base's record in the store; answers what it
    /// answered and what the process learns of the base.
    async fn update<T: Send>(
        &self,
        limits: &RateLimits,
        base: &str,
        change: impl FnOnce(&mut Record, Duration) -> (T, Vec<ShareChange>) + Send,
    ) -> Result<(T, Deployment), BudgetStoreError> {
        let mut answer = None;
        let answer_slot = &mut answer;
        self.store
            .update(
                base,
                Box::new(move |stored, now| {
                    let (mut record, reset) = Record::load(stored, limits, now);
                    let (value, changes) = change(&mut record, now);
                    let deployment = record.deployment(now, changes, reset);
                    *answer_slot = Some((value, deployment));
                    serde_json::to_value(&record).unwrap_or(serde_json::Value::Null)
                }),
            )
            .await?;
        answer.ok_or_else(|| BudgetStoreError("the store did not run the update".to_owned()))
    }
}

/// A list of times as whole microseconds: a record holds hundreds.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(times: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let micros: Vec<u64> = times
            .iter()
            .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX))
            .collect();
        micros.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let mut times: Vec<Duration> = Vec::<u64>::deserialize(d)?
            .into_iter()
            .map(Duration::from_micros)
            .collect();
        times.sort();
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacing::tests::max_in_any_window;

    const EPOCH: Duration = Duration::from_secs(1_800_000_000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limits(share: f64) -> RateLimits {
        RateLimits {
            budget_share: share,
            ..RateLimits::default()
        }
    }

    /// Runs one request for a start through a stored record, as a store
    /// would.
    fn take(
        stored: &mut Option<serde_json::Value>,
        limits: &RateLimits,
        now: Duration,
        process: &str,
        priority: Priority,
    ) -> Take {
        let (mut record, _) = Record::load(stored.take(), limits, now);
        let (answer, _) = record.take(limits, now, process, priority);
        *stored = Some(serde_json::to_value(&record).unwrap_or_default());
        answer
    }

    fn record(stored: &Option<serde_json::Value>, limits: &RateLimits, now: Duration) -> Record {
        Record::load(stored.clone(), limits, now).0
    }

    /// Two busy processes, each asking again when told: returns every
    /// start granted in `length`, by process.
    fn two_busy_processes(limits: &RateLimits, length: Duration) -> Vec<(Duration, &'static str)> {
        let mut stored = None;
        let mut next = [(EPOCH, "api"), (EPOCH + ms(3), "worker")];
        let mut granted = Vec::new();
        loop {
            next.sort();
            let (now, process) = next[0];
            if now > EPOCH + length {
                return granted;
            }
            next[0].0 = match take(&mut stored, limits, now, process, Priority::Normal) {
                Take::Granted { at } => {
                    granted.push((at, process));
                    at + ms(1)
                }
                Take::Wait(wait) => now + wait,
            };
        }
    }

    #[test]
    fn two_processes_together_keep_one_base_budget() {
        let limits = limits(1.0);
        let granted = two_busy_processes(&limits, Duration::from_secs(20));
        let starts: Vec<Duration> = granted.iter().map(|(at, _)| *at).collect();
        // Never more than 5 in a second plus the margin, and the budget
        // used: 20 s of 5 per 1.04 s.
        assert_eq!(max_in_any_window(&starts, ms(1040)), 5);
        assert!(starts.len() >= 96, "{} starts", starts.len());
        // Both processes get their turns.
        let api = granted.iter().filter(|(_, p)| *p == "api").count();
        assert!(
            api >= starts.len() / 3,
            "api took {api} of {}",
            starts.len()
        );
    }

    #[test]
    fn a_share_of_the_budget_holds_for_the_processes_together() {
        let limits = limits(0.8);
        let granted = two_busy_processes(&limits, Duration::from_secs(20));
        let starts: Vec<Duration> = granted.iter().map(|(at, _)| *at).collect();
        assert_eq!(max_in_any_window(&starts, ms(1040)), 4);
    }

    #[test]
    fn an_urgent_request_of_another_process_gets_the_next_start() {
        let limits = limits(1.0);
        let mut stored = None;
        let mut now = EPOCH;
        for _ in 0..5 {
            match take(&mut stored, &limits, now, "worker", Priority::Background) {
                Take::Granted { .. } => now += ms(208),
                Take::Wait(wait) => panic!("the worker waited {wait:?} with room"),
            }
        }
        // Just after the fifth start: the window is full.
        now -= ms(207);
        // The window is full: both learn when the next start is free.
        let Take::Wait(urgent_wait) = take(&mut stored, &limits, now, "api", Priority::Urgent)
        else {
            panic!("the base had room");
        };
        let Take::Wait(worker_wait) =
            take(&mut stored, &limits, now, "worker", Priority::Background)
        else {
            panic!("the base had room");
        };
        assert_eq!(urgent_wait, worker_wait);
        // The worker asks first when the start is free, and is held back.
        let free = now + worker_wait;
        let Take::Wait(held) = take(&mut stored, &limits, free, "worker", Priority::Background)
        else {
            panic!("the worker took the urgent request's start");
        };
        assert!(held <= ms(208), "held for {held:?}");
        assert_eq!(
            take(&mut stored, &limits, free + ms(2), "api", Priority::Urgent),
            Take::Granted { at: free + ms(2) }
        );
        // Once the urgent request left, the worker goes on at the base's pace.
        let after = free + ms(2) + ms(208);
        assert_eq!(
            take(&mut stored, &limits, after, "worker", Priority::Background),
            Take::Granted { at: after }
        );
    }

    #[test]
    fn a_process_that_stopped_waiting_holds_others_back_only_briefly() {
        let limits = limits(1.0);
        let mut stored = None;
        for i in 0..5 {
            take(
                &mut stored,
                &limits,
                EPOCH + ms(208 * i),
                "worker",
                Priority::Normal,
            );
        }
        let now = EPOCH + ms(1000);
        let Take::Wait(wait) = take(&mut stored, &limits, now, "api", Priority::Urgent) else {
            panic!("the base had room");
        };
        // The API process died while waiting; the worker goes on after
        // the waiter's slack.
        let later = now + wait + WAITER_SLACK + ms(1);
        assert_eq!(
            take(&mut stored, &limits, later, "worker", Priority::Normal),
            Take::Granted { at: later }
        );
    }

    #[test]
    fn a_pause_after_one_process_429_holds_every_process() {
        let limits = limits(1.0);
        let mut stored = None;
        let Take::Granted { at } = take(&mut stored, &limits, EPOCH, "worker", Priority::Normal)
        else {
            panic!("the first request waited");
        };
        let mut r = record(&stored, &limits, EPOCH + ms(200));
        let (judged, _) = r.rate_limited(&limits, EPOCH + ms(200), at, Duration::from_secs(30));
        assert!(judged.is_some());
        stored = Some(serde_json::to_value(&r).unwrap_or_default());
        assert_eq!(
            take(
                &mut stored,
                &limits,
                EPOCH + ms(300),
                "api",
                Priority::Urgent
            ),
            Take::Wait(Duration::from_secs(30) - ms(100))
        );
        // Only the first 429 of the pause is judged.
        let mut r = record(&stored, &limits, EPOCH + ms(400));
        let (judged, _) = r.rate_limited(&limits, EPOCH + ms(400), at, Duration::from_secs(30));
        assert_eq!(judged, None);
    }

    #[test]
    fn a_429_is_judged_against_every_process_starts() {
        let limits = limits(1.0);
        // Five starts from two processes crowded into 400 ms (as when a
        // store lost its record), then a sixth that drew the 429.
        let mut r = record(&None, &limits, EPOCH);
        r.starts = (0..6).map(|i| EPOCH + ms(80 * i)).collect();
        let (judged, _) = r.rate_limited(&limits, EPOCH + ms(500), EPOCH + ms(400), ms(30_000));
        let judged = judged.expect("the first 429 is judged");
        assert_eq!(judged.own_requests, 5);
        assert_eq!(judged.cause, RateLimitCause::Airsync);
        assert_eq!(r.learned, LEARN_STEP);
        // Three of the deployment's starts: someone else sent the rest.
        let mut r = record(&None, &limits, EPOCH);
        r.starts = (0..4).map(|i| EPOCH + ms(250 * i)).collect();
        let (judged, changes) =
            r.rate_limited(&limits, EPOCH + ms(900), EPOCH + ms(750), ms(30_000));
        let judged = judged.expect("the first 429 is judged");
        assert_eq!(judged.cause, RateLimitCause::Others { at_least: 2 });
        assert_eq!(changes.len(), 1);
        assert_eq!(r.share_mut().requests_per_window(), 4);
        // The lowered share holds for every process's next starts.
        let mut stored = Some(serde_json::to_value(&r).unwrap_or_default());
        let later = EPOCH + ms(40_000);
        let mut granted = Vec::new();
        let mut now = later;
        while now < later + Duration::from_secs(5) {
            match take(
                &mut stored,
                &limits,
                now,
                if granted.len() % 2 == 0 {
                    "api"
                } else {
                    "worker"
                },
                Priority::Normal,
            ) {
                Take::Granted { at } => {
                    granted.push(at);
                    now = at + ms(1);
                }
                Take::Wait(wait) => now += wait,
            }
        }
        assert_eq!(max_in_any_window(&granted, ms(1040)), 4);
    }

    #[test]
    fn an_unreadable_or_foreign_record_starts_again_and_says_why() {
        let limits = limits(1.0);
        let (record, reset) =
            Record::load(Some(serde_json::json!({"starts": "x"})), &limits, EPOCH);
        assert!(record.starts.is_empty());
        assert!(reset.is_some_and(|r| r.contains("did not read")));
        let mut stored = None;
        take(&mut stored, &limits, EPOCH, "worker", Priority::Normal);
        let (record, reset) = Record::load(stored, &self::limits(0.6), EPOCH + ms(10));
        assert_eq!(record.starts, vec![EPOCH]);
        assert!(reset.is_some_and(|r| r.contains("60%")));
    }
}
