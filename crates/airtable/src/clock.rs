//! Time as the client sees it: pacing, the pause after a 429 and retry
//! back-off all read and wait on a [`Clock`], so tests can run them on a
//! [`ManualClock`] without sleeping for real.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A monotonic clock the client can read and wait on.
///
/// Times are durations since the clock's own start; only differences
/// matter. Request timeouts are not measured on this clock: they guard
/// against a stuck network, which only real time can tell.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Duration;
    /// A future that completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Duration) -> Sleep;
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
    /// A clock standing at zero.
    pub fn new() -> Self {
        let (now, _) = watch::channel(Duration::ZERO);
        ManualClock {
            now,
            deadlines: Arc::new(Mutex::new(BTreeMap::new())),
        }
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

    #[tokio::test]
    async fn a_deadline_in_the_past_does_not_wait() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(5));
        clock.sleep_until(Duration::from_secs(1)).await;
        assert_eq!(clock.sleepers(), 0);
    }
}
