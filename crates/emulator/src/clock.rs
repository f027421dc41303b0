//! The emulator's clock: real time plus an offset that tests can advance, or
//! a frozen instant that moves only when advanced.
//!
//! Every time the emulator reasons about (offset expiry, rate-limit windows,
//! penalties, webhook expiry, payload retention, notification back-off,
//! record timestamps) is read from here, so advancing it moves them all.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch, the emulator's unit of time.
pub type Millis = i64;

/// How the clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Real time plus whatever has been added with `advance`.
    Real,
    /// Stands still at this instant (ms since the epoch) until advanced;
    /// makes rate-limit tests independent of the machine's speed.
    Frozen(Millis),
}

/// A shared clock; cheap to read from any thread.
#[derive(Debug)]
pub struct Clock {
    frozen: bool,
    /// Added to real time, or the frozen instant itself.
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock in the given mode.
    pub fn new(mode: ClockMode) -> Self {
        match mode {
            ClockMode::Real => Clock {
                frozen: false,
                offset_ms: AtomicI64::new(0),
            },
            ClockMode::Frozen(at) => Clock {
                frozen: true,
                offset_ms: AtomicI64::new(at),
            },
        }
    }

    /// The current time in milliseconds since the epoch.
    pub fn now_ms(&self) -> Millis {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if self.frozen {
            offset
        } else {
            Utc::now().timestamp_millis() + offset
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        from_ms(self.now_ms())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// A time from milliseconds since the epoch (clamped to chrono's range).
pub fn from_ms(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Airtable's timestamp format: UTC, milliseconds, `Z`.
pub fn format_ms(ms: Millis) -> String {
    from_ms(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::new(ClockMode::Frozen(1_000));
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(30));
        assert_eq!(clock.now_ms(), 31_000);
    }

    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        assert_eq!(format_ms(1_640_520_000_000), "2021-12-26T12:00:00.000Z");
    }
}
