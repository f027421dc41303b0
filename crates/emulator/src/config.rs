//! The emulator's configuration, shared by the command line and in-process
//! use. Defaults are Airtable's real values.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::{ClockMode, Millis};
use crate::limits::RateLimits;

/// How to run an emulator. Build one with [`EmulatorConfig::new`] and the
/// `with_*` methods, then call [`EmulatorConfig::start`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Accepted bearer tokens; when empty, any non-empty token is accepted.
    pub tokens: Vec<String>,
    /// Bases (ids) that exist, empty, from the start.
    pub bases: Vec<String>,
    /// Where state is persisted; in memory only when `None`.
    pub data_dir: Option<PathBuf>,
    /// Rate limits and penalty.
    pub limits: RateLimits,
    /// Added latency per request, in ms, drawn uniformly from the range,
    /// before the request is counted and handled.
    pub latency_ms: Option<RangeInclusive<u64>>,
    /// Added latency per request after it is handled, before the answer
    /// leaves (Airtable's own time).
    pub answer_latency_ms: Option<RangeInclusive<u64>>,
    /// Probability of a random fault (500, 502, 503 or a dropped
    /// connection) per request.
    pub fault_rate: f64,
    /// Serve the control endpoints under `/_emulator/`.
    pub control: bool,
    /// Real or frozen clock.
    pub clock: ClockMode,
    /// How long a list offset stays usable after the page that issued it.
    pub offset_ttl: Duration,
    /// URLs of this many characters or more (counted as Airtable sees them,
    /// `https://api.airtable.com` included) answer 414.
    pub max_url_len: usize,
    /// Request bodies above this size answer 413.
    pub max_body_bytes: usize,
    /// Delay before the first retry of a failed notification ping; each
    /// further retry waits twice as long.
    pub webhook_first_retry: Duration,
    /// Retries of a failed ping before notifications are switched off.
    pub webhook_max_retries: u32,
    /// How long a notification receiver has to answer.
    pub webhook_timeout: Duration,
    /// Delay between a change and the snapshot written to `data_dir`.
    pub persist_debounce: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: Vec::new(),
            bases: Vec::new(),
            data_dir: None,
            limits: RateLimits::default(),
            latency_ms: None,
            answer_latency_ms: None,
            fault_rate: 0.0,
            control: false,
            clock: ClockMode::Real,
            offset_ttl: Duration::from_secs(60),
            max_url_len: 16_000,
            max_body_bytes: 2 * 1024 * 1024,
            webhook_first_retry: Duration::from_secs(10),
            webhook_max_retries: 13,
            webhook_timeout: Duration::from_secs(25),
            persist_debounce: Duration::from_millis(500),
        }
    }
}

impl EmulatorConfig {
    /// Airtable's limits, port 0 on 127.0.0.1, no tokens, no bases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on this address.
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Accepts this bearer token (repeat for more).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Creates this empty base at start (repeat for more).
    pub fn with_base(mut self, base_id: impl Into<String>) -> Self {
        self.bases.push(base_id.into());
        self
    }

    /// Persists state in this directory.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Uses these rate limits.
    pub fn with_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Turns every rate limit off.
    pub fn without_limits(mut self) -> Self {
        self.limits = RateLimits::off();
        self
    }

    /// Adds latency to every request.
    pub fn with_latency_ms(mut self, range: RangeInclusive<u64>) -> Self {
        self.latency_ms = Some(range);
        self
    }

    /// Adds latency to every answer, after the request is handled.
    pub fn with_answer_latency_ms(mut self, range: RangeInclusive<u64>) -> Self {
        self.answer_latency_ms = Some(range);
        self
    }

    /// Fails this fraction of requests at random.
    pub fn with_fault_rate(mut self, rate: f64) -> Self {
        self.fault_rate = rate;
        self
    }

    /// Serves the control endpoints.
    pub fn with_control(mut self) -> Self {
        self.control = true;
        self
    }

    /// Freezes the clock at this instant; it then moves only when advanced.
    pub fn with_frozen_clock(mut self, at_ms: Millis) -> Self {
        self.clock = ClockMode::Frozen(at_ms);
        self
    }

    /// Sets how long list offsets live.
    pub fn with_offset_ttl(mut self, ttl: Duration) -> Self {
        self.offset_ttl = ttl;
        self
    }

    /// Sets the notification retry schedule.
    pub fn with_webhook_retries(mut self, first_retry: Duration, max_retries: u32) -> Self {
        self.webhook_first_retry = first_retry;
        self.webhook_max_retries = max_retries;
        self
    }
}
