//! Throttling of password and token guesses: failed attempts are counted
//! per subject (the email a login names, the user whose current password is
//! given) and per client address in fixed windows; past the limit, attempts
//! for that key answer 429 until the window ends. An attempt is counted as a
//! failure when it is admitted, before its work starts, so that parallel
//! guesses cannot all pass the check before any is counted. Counting failures (not attempts) keeps a user who
//! signs in often from being locked out, and keying by the email as typed
//! (whether or not it exists) tells an attacker nothing about which exist.
//!
//! The counters live in the process. With several API processes each keeps
//! its own, so the limits apply per process; that still caps guessing at a
//! small multiple and costs no database round trip on the hot path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Limits of the login throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failed logins allowed per email in one window.
    pub per_email: u32,
    /// Failed logins allowed per client address in one window.
    pub per_address: u32,
    /// Length of the window.
    pub window: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            per_email: 5,
            per_address: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The two counters an attempt can touch.
#[derive(Debug, Clone, Copy)]
enum Counter {
    Subject,
    Address,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Failed-login counters.
#[derive(Debug)]
pub struct LoginThrottle {
    limits: ThrottleLimits,
    windows: Mutex<HashMap<String, Window>>,
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> LoginThrottle {
        LoginThrottle {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The counters an attempt touches: its subject's (an email as typed,
    /// or a user), when it has one, and its client address's.
    fn keys(subject: Option<&str>, address: Option<IpAddr>) -> Vec<(String, Counter)> {
        let mut keys = Vec::with_capacity(2);
        if let Some(subject) = subject {
            keys.push((format!("subject:{subject}"), Counter::Subject));
        }
        keys.push((
            format!(
                "addr:{}",
                address.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
            ),
            Counter::Address,
        ));
        keys
    }

    fn limit(&self, counter: Counter) -> u32 {
        match counter {
            Counter::Subject => self.limits.per_email,
            Counter::Address => self.limits.per_address,
        }
    }

    fn window_len(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::minutes(15))
    }

    /// Reserves one attempt for `subject` from `address`: counts it as a
    /// failure at once, under the lock that checked the limits, so that
    /// parallel guesses cannot all pass the check before any is counted.
    /// Over a limit, answers the seconds to wait and counts nothing. A
    /// successful attempt gives its reservation back with [`Self::succeeded`],
    /// one that never ran (the server was too busy) with [`Self::cancel`].
    pub fn reserve(
        &self,
        subject: Option<&str>,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), u64> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window_len = self.window_len();
        // Forget finished windows now and then, so the map stays small.
        if windows.len() > 10_000 {
            windows.retain(|_, window| window.started + window_len > now);
        }
        let keys = Self::keys(subject, address);
        let wait = keys
            .iter()
            .filter_map(|(key, counter)| {
                let window = windows.get(key)?;
                let ends = window.started + window_len;
                (window.failures >= self.limit(*counter) && ends > now)
                    .then(|| (ends - now).num_seconds().max(1) as u64)
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if window.started + window_len <= now {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
        Ok(())
    }

    /// The reserved attempt succeeded: the subject's failures are forgotten
    /// and the address gets its reservation back. The address keeps its
    /// other failures: one success must not reset a guesser's budget for
    /// the other emails it tries.
    pub fn succeeded(&self, subject: Option<&str>, address: Option<IpAddr>) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, counter) in Self::keys(subject, address) {
            match counter {
                Counter::Subject => {
                    windows.remove(&key);
                }
                Counter::Address => {
                    if let Some(window) = windows.get_mut(&key) {
                        window.failures = window.failures.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// The reserved attempt never ran (e.g. the server refused it as too
    /// busy): it gives back its reservation and counts as nothing.
    pub fn cancel(&self, subject: Option<&str>, address: Option<IpAddr>) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, _) in Self::keys(subject, address) {
            if let Some(window) = windows.get_mut(&key) {
                window.failures = window.failures.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_email: u32, per_address: u32) -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            per_email,
            per_address,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_subject_is_throttled_after_its_limit_of_failures_until_the_window_ends() {
        let throttle = throttle(2, 100);
        let now = Utc::now();
        assert_eq!(throttle.reserve(Some("a@x"), None, now), Ok(()));
        assert_eq!(throttle.reserve(Some("a@x"), None, now), Ok(()));
        assert_eq!(throttle.reserve(Some("a@x"), None, now), Err(60));
        assert_eq!(throttle.reserve(Some("b@x"), None, now), Ok(()));
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(throttle.reserve(Some("a@x"), None, later), Ok(()));
    }

    #[test]
    fn an_address_is_throttled_across_subjects_and_without_one() {
        let throttle = throttle(100, 3);
        let now = Utc::now();
        let address = Some("10.0.0.1".parse().unwrap());
        for email in ["a@x", "b@x"] {
            throttle.reserve(Some(email), address, now).unwrap();
        }
        throttle.reserve(None, address, now).unwrap();
        assert!(throttle.reserve(Some("d@x"), address, now).is_err());
        assert!(throttle.reserve(None, address, now).is_err());
        let other = Some("10.0.0.2".parse().unwrap());
        assert!(throttle.reserve(Some("d@x"), other, now).is_ok());
    }

    #[test]
    fn a_success_forgets_the_subject_and_returns_only_its_own_reservation_to_the_address() {
        let throttle = throttle(2, 3);
        let now = Utc::now();
        let address = Some("10.0.0.1".parse().unwrap());
        throttle.reserve(Some("a@x"), address, now).unwrap();
        throttle.reserve(Some("b@x"), address, now).unwrap();
        throttle.reserve(Some("b@x"), address, now).unwrap();
        throttle.succeeded(Some("b@x"), address);
        // b's failures are gone, and the address has two left of three.
        throttle.reserve(Some("b@x"), address, now).unwrap();
        assert!(throttle.reserve(Some("c@x"), address, now).is_err());
    }

    #[test]
    fn a_cancelled_reservation_counts_as_nothing() {
        let throttle = throttle(1, 100);
        let now = Utc::now();
        throttle.reserve(Some("a@x"), None, now).unwrap();
        throttle.cancel(Some("a@x"), None);
        assert_eq!(throttle.reserve(Some("a@x"), None, now), Ok(()));
        assert!(throttle.reserve(Some("a@x"), None, now).is_err());
    }

    #[test]
    fn parallel_reservations_never_pass_the_limit() {
        let throttle = std::sync::Arc::new(throttle(5, 1000));
        let now = Utc::now();
        let admitted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..10 {
                        if throttle.reserve(Some("a@x"), None, now).is_ok() {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 5);
    }
}
