//! What goes wrong during the chaos, and when: workers killed without
//! warning and respawned, 5xx bursts and latency spikes at random moments,
//! a 429 storm, the webhook's expiry and a PostgreSQL restart at set
//! points of the run.
//!
//! The webhook expires in one of two ways. Moving the emulator's clock 8
//! days on is the real thing, but from then on Airtable's change times are
//! 8 days ahead of PostgreSQL's: every conflict judged by time goes to
//! Airtable. A test that checks which change was the later one therefore
//! deletes the webhook instead, which the sync handles the same way
//! (recreation, then a poll over the gap), without skewing the clocks.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airsync_emulator::{Emulator, FaultBurst, FaultKind, RateLimits};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::database::Database;
use crate::processes::Process;
use crate::{BASE, TOKEN};

/// The emulator's latency outside spikes.
pub const LATENCY: RangeInclusive<u64> = 20..=100;

/// Sets the emulator's round-trip latency: half before a request is
/// handled, half on its answer's way back, so that a write is made while
/// its answer is still on the way (a worker killed then never learns it
/// landed) and a read's page ages before the reader applies it.
pub fn set_latency(emulator: &Emulator, range: RangeInclusive<u64>) {
    let half = *range.start() / 2..=*range.end() / 2;
    emulator.set_latency_ms(Some(half.clone()));
    emulator.set_answer_latency_ms(Some(half));
    emulator.set_listing_answer_latency_ms(Some(LISTING_ANSWER));
}

/// What a page's answer takes beyond a write's: pushes made while a poll's
/// page is on its way are often answered and recorded before the page
/// arrives, which a page applied as it was read would undo (cause 2).
const LISTING_ANSWER: RangeInclusive<u64> = 300..=1_500;
/// A 429 storm: the base answers 429 for Airtable's 30 s penalty; once in
/// a short run, every five minutes in a long one.
const STORM_EVERY: Duration = Duration::from_secs(300);

/// How the webhook expires, at 30% of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The emulator's clock jumps 8 days: a weekend without refreshes.
    ClockJump,
    /// The webhook expires now, as after seven days without a refresh, and
    /// the clocks stay together; its payloads stay readable, as Airtable
    /// keeps them seven days.
    Expired,
    /// The webhook is deleted through the API; the clocks stay together.
    Deleted,
    /// The webhook stays.
    Never,
}

struct Slot {
    process: Option<Process>,
    respawn_at: Option<Duration>,
}

pub struct Chaos {
    emulator: Arc<Emulator>,
    env: Vec<(String, String)>,
    logs: PathBuf,
    rng: StdRng,
    slots: Vec<Slot>,
    spawned: usize,
    next_kill: Duration,
    next_fault: Duration,
    spike_until: Option<Duration>,
    next_storm: Option<Duration>,
    expiry: Expiry,
    expired: bool,
    /// When the webhook fault was made (just before its request).
    expired_at: Option<chrono::DateTime<chrono::Utc>>,
    restarted: Option<bool>,
    kills: u32,
    bursts: u32,
    spikes: u32,
    storms: u32,
}

impl Chaos {
    pub fn new(
        emulator: Arc<Emulator>,
        env: Vec<(String, String)>,
        logs: PathBuf,
        workers: usize,
        seed: u64,
        expiry: Expiry,
    ) -> Chaos {
        let mut chaos = Chaos {
            emulator,
            env,
            logs,
            rng: StdRng::seed_from_u64(seed ^ 0xC4A0_5EED),
            slots: Vec::new(),
            spawned: 0,
            next_kill: Duration::from_secs(2),
            next_fault: Duration::from_secs(3),
            spike_until: None,
            next_storm: None,
            expiry,
            expired: false,
            expired_at: None,
            restarted: None,
            kills: 0,
            bursts: 0,
            spikes: 0,
            storms: 0,
        };
        for _ in 0..workers {
            let process = chaos.spawn_worker();
            chaos.slots.push(Slot {
                process: Some(process),
                respawn_at: None,
            });
        }
        chaos
    }

    fn spawn_worker(&mut self) -> Process {
        self.spawned += 1;
        let name = format!("worker-{}", self.spawned);
        Process::spawn(&name, &["worker"], &self.env, &self.logs)
    }

    /// Does whatever is due at `now` of a chaos phase lasting `total`.
    pub async fn tick(&mut self, now: Duration, total: Duration, db: &Database) {
        for i in 0..self.slots.len() {
            if self.slots[i].respawn_at.is_some_and(|at| at <= now) {
                let process = self.spawn_worker();
                self.slots[i] = Slot {
                    process: Some(process),
                    respawn_at: None,
                };
            }
        }
        if now >= self.next_kill {
            self.kill_one(now);
            self.next_kill = now + Duration::from_millis(self.rng.random_range(2_000..5_000));
        }
        if self.spike_until.is_some_and(|until| until <= now) {
            set_latency(&self.emulator, LATENCY);
            self.spike_until = None;
        }
        if now >= self.next_fault {
            self.fault(now);
            self.next_fault = now + Duration::from_millis(self.rng.random_range(2_000..5_000));
        }
        let storm_due = self.next_storm.unwrap_or(total.mul_f64(0.45));
        if now >= storm_due {
            self.emulator
                .penalize_base(BASE.as_str(), Duration::from_secs(30));
            self.storms += 1;
            self.next_storm = Some(now + STORM_EVERY);
        }
        if !self.expired && now >= total.mul_f64(0.3) {
            self.expired_at = Some(chrono::Utc::now());
            match self.expiry {
                // A weekend without refreshes: Airtable's webhooks live 7 days.
                Expiry::ClockJump => self
                    .emulator
                    .advance_clock(Duration::from_secs(8 * 24 * 3600)),
                Expiry::Deleted => self.delete_webhooks().await,
                Expiry::Expired => {
                    self.emulator
                        .expire_webhooks(BASE.as_str())
                        .expect("expire webhooks");
                }
                Expiry::Never => {}
            }
            self.expired = true;
        }
        if self.restarted.is_none() && now >= total.mul_f64(0.6) {
            self.restarted = Some(db.restart().await);
        }
    }

    /// Deletes the base's webhooks through the Web API. The base's rate
    /// limits are off for these few requests, so that they cost serve and
    /// the workers nothing (a request over the limit would bring a 30 s
    /// penalty); an injected fault they meet is tried again.
    async fn delete_webhooks(&self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http");
        let url = format!("{}/v0/bases/{BASE}/webhooks", self.emulator.url());
        let send = |request: reqwest::RequestBuilder| async move {
            for _ in 0..30 {
                let Some(attempt) = request.try_clone() else {
                    break;
                };
                self.emulator.set_limits(RateLimits::off());
                let answer = attempt.bearer_auth(TOKEN).send().await;
                self.emulator.set_limits(RateLimits::default());
                match answer {
                    // A 404: a delete tried again after its answer was lost.
                    Ok(answer) if answer.status().is_success() || answer.status() == 404 => {
                        return answer.json::<serde_json::Value>().await.ok();
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            panic!("the emulator's webhooks API failed 30 times");
        };
        let hooks = send(http.get(&url)).await.unwrap_or_default();
        for hook in hooks["webhooks"].as_array().into_iter().flatten() {
            if let Some(id) = hook["id"].as_str() {
                send(http.delete(format!("{url}/{id}"))).await;
            }
        }
    }

    fn kill_one(&mut self, now: Duration) {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].process.is_some())
            .collect();
        if running.is_empty() {
            return;
        }
        let i = running[self.rng.random_range(0..running.len())];
        if let Some(process) = self.slots[i].process.take() {
            process.kill();
            self.kills += 1;
        }
        let after = Duration::from_millis(self.rng.random_range(0..1_500));
        self.slots[i].respawn_at = Some(now + after);
    }

    fn fault(&mut self, now: Duration) {
        if self.rng.random_bool(0.25) && self.spike_until.is_none() {
            set_latency(&self.emulator, 800..=2_000);
            self.spikes += 1;
            self.spike_until = Some(now + Duration::from_secs(2));
            return;
        }
        let kinds = [
            FaultKind::ServerError,
            FaultKind::BadGateway,
            FaultKind::Unavailable,
            FaultKind::Drop,
        ];
        self.emulator.inject_faults(FaultBurst {
            count: self.rng.random_range(3..9),
            kind: kinds[self.rng.random_range(0..kinds.len())],
            base: None,
        });
        self.bursts += 1;
    }

    /// Ends the faults and brings every worker back. A worker that exited
    /// by itself (it never should: killed ones are respawned by the test)
    /// fails the test.
    pub async fn calm(&mut self) {
        set_latency(&self.emulator, LATENCY);
        self.spike_until = None;
        for slot in &mut self.slots {
            if let Some(process) = slot.process.as_mut() {
                assert!(
                    process.is_running(),
                    "{} exited by itself:\n{}",
                    process.name,
                    process.log_tail(30)
                );
            }
        }
        for i in 0..self.slots.len() {
            if self.slots[i].process.is_none() {
                let process = self.spawn_worker();
                self.slots[i] = Slot {
                    process: Some(process),
                    respawn_at: None,
                };
            }
        }
    }

    pub fn workers(&self) -> impl Iterator<Item = &Process> {
        self.slots.iter().filter_map(|s| s.process.as_ref())
    }

    /// How the webhook was taken away, and when (`None`: it was not).
    pub fn webhook_fault(&self) -> Option<(Expiry, chrono::DateTime<chrono::Utc>)> {
        match self.expiry {
            Expiry::Never => None,
            expiry => self.expired_at.map(|at| (expiry, at)),
        }
    }

    pub fn stop_workers(&mut self) {
        for slot in &mut self.slots {
            if let Some(process) = slot.process.take() {
                process.stop();
            }
        }
    }

    pub fn summary(&self) -> String {
        let restart = match self.restarted {
            Some(true) => "PostgreSQL restarted once",
            Some(false) => "PostgreSQL restart skipped (DATABASE_URL's server)",
            None => "PostgreSQL not restarted",
        };
        format!(
            "{} worker kills, {} 5xx/dropped-connection bursts, {} latency spikes, {} 429 storms, webhook {}, {restart}",
            self.kills,
            self.bursts,
            self.spikes,
            self.storms,
            match (self.expiry, self.expired) {
                (Expiry::ClockJump | Expiry::Expired, true) => "expired once",
                (Expiry::Deleted, true) => "deleted once",
                _ => "kept",
            },
        )
    }
}
