//! What every handler shares: the emulator's state, clock, limits, faults
//! and counters.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::changes::ChangeSet;
use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::faults::Faults;
use crate::limits::RateLimiter;
use crate::model::{Base, State as Store};
use crate::records::list::Iterators;
use crate::stats::Counters;

/// Everything the handlers share.
pub(crate) struct App {
    pub state: RwLock<Store>,
    pub clock: Clock,
    pub config: EmulatorConfig,
    pub iterators: Mutex<Iterators>,
    pub limiter: RateLimiter,
    pub faults: Faults,
    pub counters: Counters,
    /// Wakes the notification sender.
    pub pings: tokio::sync::Notify,
    /// Wakes the snapshot writer.
    pub dirty: tokio::sync::Notify,
    pub http: reqwest::Client,
}

pub(crate) type Shared = Arc<App>;

impl App {
    /// Records a transaction on a base (webhook payloads); call with the
    /// state lock held, then [`App::after_write`] once it is released.
    pub fn commit(base: &mut Base, changes: &ChangeSet) -> bool {
        crate::webhooks::payload::publish(base, changes)
    }

    /// Wakes the ping sender and the snapshot writer after a write.
    pub fn after_write(&self, ping: bool) {
        if ping {
            self.pings.notify_one();
        }
        self.dirty.notify_one();
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}
