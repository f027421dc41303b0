//! airsync's clock. The client's pacing, the pause after a 429 and retry
//! back-off read and wait on its monotonic time ([`Clock::now`],
//! [`Clock::sleep_until`]); the coaching API reads its time of day
//! ([`Clock::wall`]) for token expiry, streaks and throttling windows. Tests
//! run both on a [`ManualClock`] without sleeping for real.
//!
//! (The Airtable emulator keeps a clock of its own: it stands for Airtable's
//! time, which tests move apart from airsync's.)

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A clock that can be read and waited on: monotonic time for pacing and
/// waits, and the time of day for what is compared with other machines'
/// times.
///
/// Monotonic times are durations since the clock's own start; only
/// differences matter. Request timeouts are not measured on this clock:
/// they guard against a stuck network, which only real time can tell.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic time.
    fn now(&self) -> Duration;
    /// A future that completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Duration) -> Sleep;
    /// The time of day (UTC): token expiry, streaks, throttling windows.
    fn wall(&self) -> DateTime<Utc>;
}

/// Real time, from tokio's timer.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        SystemClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        Box::pin(tokio::time::sleep_until(self.start + deadline))
    }

    fn wall(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, for tests.
///
/// It also knows when its sleepers want to wake
/// ([`ManualClock::next_deadline`]), so a test can step time forward to the
/// next event instead of guessing.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use airsync_airtable::{Clock, ManualClock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let clock = Arc::new(ManualClock::new());
/// let sleeper = tokio::spawn(clock.sleep_until(Duration::from_secs(30)));
/// tokio::task::yield_now().await;
/// assert_eq!(clock.next_deadline(), Some(Duration::from_secs(30)));
/// clock.advance(Duration::from_secs(30));
/// sleeper.await.unwrap();
/// # });
/// ```
pub struct ManualClock {
    now: watch::Sender<Duration>,
    /// The time of day when [`Clock::now`] was zero.
    wall_origin: Mutex<DateTime<Utc>>,
    /// Deadlines of pending sleeps, with how many wait for each.
    deadlines: Arc<Mutex<BTreeMap<Duration, usize>>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.now.borrow())
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    /// A clock standing at zero, at the Unix epoch.
    pub fn new() -> Self {
        Self::at(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// A clock standing at zero, whose time of day is `wall`.
    pub fn at(wall: DateTime<Utc>) -> Self {
        let (now, _) = watch::channel(Duration::ZERO);
        ManualClock {
            now,
            wall_origin: Mutex::new(wall),
            deadlines: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Sets the time of day without moving monotonic time, as a machine's
    /// clock is set: nothing that waits wakes.
    pub fn set_wall(&self, wall: DateTime<Utc>) {
        let since_zero = chrono::Duration::from_std(self.now()).unwrap_or(chrono::Duration::MAX);
        *self
            .wall_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = wall - since_zero;
    }

    /// Moves the clock forward and wakes every sleeper whose time has come.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// Moves the clock to `at` if that is later than now.
    pub fn advance_to(&self, at: Duration) {
        self.now.send_modify(|now| *now = (*now).max(at));
    }

    /// The earliest deadline a sleeper still waits for.
    pub fn next_deadline(&self) -> Option<Duration> {
        let deadlines = self
            .deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        deadlines.keys().next().copied()
    }

    /// How many sleeps are pending.
    pub fn sleepers(&self) -> usize {
        let deadlines = self
            .deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        deadlines.values().sum()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Removes a sleeper's deadline when its sleep ends or is dropped.
struct DeadlineGuard {
    deadlines: Arc<Mutex<BTreeMap<Duration, usize>>>,
    deadline: Duration,
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        let mut deadlines = self
            .deadlines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = deadlines.get_mut(&self.deadline) {
            *count -= 1;
            if *count == 0 {
                deadlines.remove(&self.deadline);
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.borrow()
    }

    fn wall(&self) -> DateTime<Utc> {
        let origin = *self
            .wall_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        origin + chrono::Duration::from_std(self.now()).unwrap_or(chrono::Duration::MAX)
    }

    fn sleep_until(&self, deadline: Duration) -> Sleep {
        let mut rx = self.now.subscribe();
        if *rx.borrow() >= deadline {
            return Box::pin(std::future::ready(()));
        }
        {
            let mut deadlines = self
                .deadlines
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *deadlines.entry(deadline).or_insert(0) += 1;
        }
        let guard = DeadlineGuard {
            deadlines: Arc::clone(&self.deadlines),
            deadline,
        };
        Box::pin(async move {
            let _guard = guard;
            // The sender lives as long as the clock; if the clock is gone
            // nobody can advance it, and waking is the only way out.
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_only_when_the_clock_reaches_its_deadline() {
        let clock = Arc::new(ManualClock::new());
        let sleep = tokio::spawn(clock.sleep_until(Duration::from_secs(2)));
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(1));
        tokio::task::yield_now().await;
        assert!(!sleep.is_finished());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_secs(1));
        assert!(sleep.await.is_ok());
        assert_eq!(clock.sleepers(), 0);
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn the_time_of_day_moves_with_the_clock_and_is_set_without_moving_it() {
        let start = DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let clock = ManualClock::at(start);
        assert_eq!(clock.wall(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.wall(), start + chrono::Duration::seconds(90));
        let later = start + chrono::Duration::days(3);
        clock.set_wall(later);
        assert_eq!(clock.wall(), later);
        assert_eq!(clock.now(), Duration::from_secs(90), "monotonic time stays");
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.wall(), later + chrono::Duration::seconds(1));
    }

    #[tokio::test]
    async fn a_deadline_in_the_past_does_not_wait() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(5));
        clock.sleep_until(Duration::from_secs(1)).await;
        assert_eq!(clock.sleepers(), 0);
    }
}
