//! Injected latency and faults: random ones at a configured rate, and
//! bursts that tests ask for.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// 500 with a JSON error body.
    ServerError,
    /// 502 with an HTML body, as a proxy answers.
    BadGateway,
    /// 503 `RETRIABLE_ERROR`.
    Unavailable,
    /// 429 `RATE_LIMIT_REACHED` (without starting a penalty).
    RateLimited,
    /// The connection drops after the status line, before the body.
    Drop,
}

impl FaultKind {
    /// The kinds drawn by `--fault-rate`.
    const RANDOM: [FaultKind; 4] = [
        FaultKind::ServerError,
        FaultKind::BadGateway,
        FaultKind::Unavailable,
        FaultKind::Drop,
    ];
}

fn draw_ms(range: Option<RangeInclusive<u64>>) -> Option<std::time::Duration> {
    let ms = rand::rng().random_range(range?);
    Some(std::time::Duration::from_millis(ms))
}

/// The next `count` requests (of `base`, or any) fail with `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultBurst {
    /// How many requests fail.
    pub count: u32,
    /// How they fail.
    pub kind: FaultKind,
    /// Only requests to this base; any request when `None`.
    #[serde(default)]
    pub base: Option<String>,
}

/// Latency and fault settings plus pending bursts.
#[derive(Debug)]
pub(crate) struct Faults {
    latency_ms: Mutex<Option<RangeInclusive<u64>>>,
    answer_latency_ms: Mutex<Option<RangeInclusive<u64>>>,
    listing_answer_latency_ms: Mutex<Option<RangeInclusive<u64>>>,
    rate: Mutex<f64>,
    bursts: Mutex<VecDeque<FaultBurst>>,
}

impl Faults {
    pub fn new(
        latency_ms: Option<RangeInclusive<u64>>,
        answer_latency_ms: Option<RangeInclusive<u64>>,
        rate: f64,
    ) -> Self {
        Faults {
            latency_ms: Mutex::new(latency_ms),
            answer_latency_ms: Mutex::new(answer_latency_ms),
            listing_answer_latency_ms: Mutex::new(None),
            rate: Mutex::new(rate),
            bursts: Mutex::new(VecDeque::new()),
        }
    }

    /// A delay to add before handling a request, if latency is configured.
    pub fn delay(&self) -> Option<std::time::Duration> {
        draw_ms(self.latency_ms.lock().clone())
    }

    /// A delay to add after handling a request, before its answer leaves:
    /// the answer's way back, during which the change is already made.
    pub fn answer_delay(&self) -> Option<std::time::Duration> {
        draw_ms(self.answer_latency_ms.lock().clone())
    }

    /// The fault this request suffers, if any: a pending burst first, then
    /// the random rate.
    pub fn draw(&self, base: Option<&str>) -> Option<FaultKind> {
        {
            let mut bursts = self.bursts.lock();
            let pos = bursts
                .iter()
                .position(|b| b.base.is_none() || b.base.as_deref() == base);
            if let Some(pos) = pos {
                let kind = bursts[pos].kind;
                bursts[pos].count = bursts[pos].count.saturating_sub(1);
                if bursts[pos].count == 0 {
                    bursts.remove(pos);
                }
                return Some(kind);
            }
        }
        let rate = *self.rate.lock();
        if rate <= 0.0 {
            return None;
        }
        let mut rng = rand::rng();
        if rng.random_bool(rate.min(1.0)) {
            let i = rng.random_range(0..FaultKind::RANDOM.len());
            Some(FaultKind::RANDOM[i])
        } else {
            None
        }
    }

    pub fn inject(&self, burst: FaultBurst) {
        if burst.count > 0 {
            self.bursts.lock().push_back(burst);
        }
    }

    pub fn set_rate(&self, rate: f64) {
        *self.rate.lock() = rate.clamp(0.0, 1.0);
    }

    pub fn set_latency(&self, latency_ms: Option<RangeInclusive<u64>>) {
        *self.latency_ms.lock() = latency_ms;
    }

    pub fn set_answer_latency(&self, latency_ms: Option<RangeInclusive<u64>>) {
        *self.answer_latency_ms.lock() = latency_ms;
    }

    pub fn set_listing_answer_latency(&self, latency_ms: Option<RangeInclusive<u64>>) {
        *self.listing_answer_latency_ms.lock() = latency_ms;
    }

    /// A further delay for the answer of a listing: a page takes longer to
    /// come back than a write's answer.
    pub fn listing_answer_delay(&self) -> Option<std::time::Duration> {
        draw_ms(self.listing_answer_latency_ms.lock().clone())
    }

    pub fn reset(&self) {
        self.bursts.lock().clear();
    }
}
