//! Login throttling: failed attempts are counted per email and per client
//! address in fixed windows; past the limit, logins for that key answer 429
//! until the window ends. Counting failures (not attempts) keeps a user who
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

    fn keys(email: &str, address: Option<IpAddr>) -> [(String, bool); 2] {
        [
            (format!("email:{email}"), true),
            (
                format!(
                    "addr:{}",
                    address.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
                ),
                false,
            ),
        ]
    }

    fn window_len(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::minutes(15))
    }

    /// Seconds to wait when `email` or `address` is over its limit.
    pub fn check(&self, email: &str, address: Option<IpAddr>, now: DateTime<Utc>) -> Option<u64> {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window_len = self.window_len();
        Self::keys(email, address)
            .iter()
            .filter_map(|(key, is_email)| {
                let window = windows.get(key)?;
                let limit = if *is_email {
                    self.limits.per_email
                } else {
                    self.limits.per_address
                };
                let ends = window.started + window_len;
                (window.failures >= limit && ends > now)
                    .then(|| (ends - now).num_seconds().max(1) as u64)
            })
            .max()
    }

    /// Counts a failed login.
    pub fn record_failure(&self, email: &str, address: Option<IpAddr>, now: DateTime<Utc>) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window_len = self.window_len();
        // Forget finished windows now and then, so the map stays small.
        if windows.len() > 10_000 {
            windows.retain(|_, window| window.started + window_len > now);
        }
        for (key, _) in Self::keys(email, address) {
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
    }

    /// Forgets the failures of `email` after a successful login. The
    /// address keeps its count: one success must not reset a guesser's
    /// budget for the other emails it tries.
    pub fn record_success(&self, email: &str) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        windows.remove(&format!("email:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_throttled_after_its_limit_of_failures_until_the_window_ends() {
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_email: 2,
            per_address: 100,
            window: Duration::from_secs(60),
        });
        let now = Utc::now();
        assert_eq!(throttle.check("a@x", None, now), None);
        throttle.record_failure("a@x", None, now);
        throttle.record_failure("a@x", None, now);
        assert_eq!(throttle.check("a@x", None, now), Some(60));
        assert_eq!(throttle.check("b@x", None, now), None);
        assert_eq!(
            throttle.check("a@x", None, now + chrono::Duration::seconds(61)),
            None
        );
    }

    #[test]
    fn an_address_is_throttled_across_emails() {
        let throttle = LoginThrottle::new(ThrottleLimits {
            per_email: 100,
            per_address: 3,
            window: Duration::from_secs(60),
        });
        let now = Utc::now();
        let address = Some("10.0.0.1".parse().unwrap());
        for email in ["a@x", "b@x", "c@x"] {
            throttle.record_failure(email, address, now);
        }
        assert!(throttle.check("d@x", address, now).is_some());
        assert!(throttle
            .check("d@x", Some("10.0.0.2".parse().unwrap()), now)
            .is_none());
    }
}
