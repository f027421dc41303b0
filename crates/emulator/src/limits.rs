//! Airtable's request-rate limits: 5 requests/s per base and 50/s per
//! token, then 429 `RATE_LIMIT_REACHED` and a penalty during which every
//! request of that base (or token) answers 429.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use crate::clock::Millis;

/// Rates and penalty; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per base (Airtable: 5).
    pub per_base: u32,
    /// Requests per second per token (Airtable: 50).
    pub per_token: u32,
    /// Seconds a base (or token) answers 429 after exceeding its rate
    /// (Airtable: 30).
    pub penalty_secs: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_base: 5,
            per_token: 50,
            penalty_secs: 30,
        }
    }
}

impl RateLimits {
    /// No limits at all.
    pub fn off() -> Self {
        RateLimits {
            per_base: 0,
            per_token: 0,
            penalty_secs: 0,
        }
    }
}

/// A sliding one-second window of accepted requests, and a penalty end.
#[derive(Debug, Default)]
struct Window {
    hits: VecDeque<Millis>,
    penalized_until: Millis,
}

impl Window {
    fn is_penalized(&self, now: Millis) -> bool {
        self.penalized_until > now
    }

    fn is_full(&mut self, limit: u32, now: Millis) -> bool {
        while self.hits.front().is_some_and(|t| *t <= now - 1000) {
            self.hits.pop_front();
        }
        self.hits.len() >= limit as usize
    }
}

/// The limiter shared by all requests.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Mutex<RateLimits>,
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits: Mutex::new(limits),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_limits(&self, limits: RateLimits) {
        *self.limits.lock() = limits;
    }

    pub fn limits(&self) -> RateLimits {
        *self.limits.lock()
    }

    /// Admits a request or refuses it (429). A refusal because a window is
    /// full starts the penalty of that base or token. Refused requests do
    /// not count towards the window.
    pub fn admit(&self, base: Option<&str>, token: &str, now: Millis) -> bool {
        let limits = *self.limits.lock();
        if limits.per_base == 0 && limits.per_token == 0 {
            return true;
        }
        let base_key = base.map(|b| format!("base:{b}"));
        let token_key = format!("token:{token}");
        let mut windows = self.windows.lock();
        let penalty =
            i64::try_from(limits.penalty_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        let checks = [
            (base_key.as_deref(), limits.per_base),
            (Some(token_key.as_str()), limits.per_token),
        ];
        for (key, limit) in checks {
            let Some(key) = key else { continue };
            if limit == 0 {
                continue;
            }
            let window = windows.entry(key.to_owned()).or_default();
            if window.is_penalized(now) {
                return false;
            }
            if window.is_full(limit, now) {
                window.penalized_until = now + penalty;
                return false;
            }
        }
        for (key, limit) in checks {
            if let (Some(key), true) = (key, limit > 0) {
                windows
                    .entry(key.to_owned())
                    .or_default()
                    .hits
                    .push_back(now);
            }
        }
        true
    }

    /// Answers every request to `base` with 429 until `until`, as after it
    /// exceeded its rate.
    pub fn penalize(&self, base: &str, until: Millis) {
        let mut windows = self.windows.lock();
        let window = windows.entry(format!("base:{base}")).or_default();
        window.penalized_until = window.penalized_until.max(until);
    }

    /// Forgets every window and penalty.
    pub fn reset(&self) {
        self.windows.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_request_in_a_second_is_refused_and_the_base_stays_refused_for_the_penalty() {
        let limiter = RateLimiter::new(RateLimits::default());
        for _ in 0..5 {
            assert!(limiter.admit(Some("appA"), "t", 0));
        }
        assert!(!limiter.admit(Some("appA"), "t", 10));
        assert!(!limiter.admit(Some("appA"), "t", 29_000));
        assert!(limiter.admit(Some("appB"), "t", 29_000));
        assert!(limiter.admit(Some("appA"), "t", 30_011));
    }

    #[test]
    fn a_penalized_base_is_refused_until_the_penalty_ends() {
        let limiter = RateLimiter::new(RateLimits::default());
        limiter.penalize("appA", 30_000);
        assert!(!limiter.admit(Some("appA"), "t", 0));
        assert!(!limiter.admit(Some("appA"), "t", 29_999));
        assert!(limiter.admit(Some("appB"), "t", 100));
        assert!(limiter.admit(Some("appA"), "t", 30_000));
    }

    #[test]
    fn the_token_limit_spans_bases() {
        let limiter = RateLimiter::new(RateLimits {
            per_base: 0,
            per_token: 3,
            penalty_secs: 1,
        });
        assert!(limiter.admit(Some("a"), "t", 0));
        assert!(limiter.admit(Some("b"), "t", 0));
        assert!(limiter.admit(Some("c"), "t", 0));
        assert!(!limiter.admit(Some("d"), "t", 0));
        assert!(limiter.admit(Some("d"), "other", 0));
    }
}
