//! Password hashing with argon2id. Hashing is slow on purpose and takes
//! 19 MiB each time, so it runs on threads of its own, as many as there are
//! cores, never on the request's executor thread. A bounded number more may
//! wait for a thread; past that a request is refused at once as too busy
//! (503), so that a flood of logins costs neither unbounded memory nor
//! unbounded waiting.
//!
//! Threads of their own, not tokio's blocking pool: the blocking pool
//! starts new threads while old ones idle, and an allocator may keep a freed
//! block in the arena of the thread that used it. A fixed set of threads
//! bounds that to one block per thread; the `airsync` binary also has glibc
//! give such blocks back (`src/main.rs` of the `airsync` crate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::{Error, Result};

/// The cost of hashing a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    Standard,
    /// Cheap parameters for tests, where hundreds of hashes run per suite.
    /// Never use in production.
    InsecureFastForTests,
}

/// How many hashes may run, and wait, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes that run at once; the cores of the machine by default.
    pub parallel: usize,
    /// Hashes that may wait for one of those; more are refused at once.
    pub queued: usize,
}

impl Default for HashingLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashingLimits {
            parallel: cores,
            queued: 4 * cores,
        }
    }
}

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when an email is unknown
    /// so that an unknown email costs the same time as a wrong password.
    dummy_hash: String,
    /// Permits to run or wait: `parallel + queued`, taken without waiting.
    admitted: Arc<Semaphore>,
    /// The hashing threads' queue of work; they stop when every hasher
    /// holding it is gone.
    jobs: std::sync::mpsc::Sender<Job>,
    /// Hashes computed (new passwords and verifications), for tests and
    /// metrics.
    computed: Arc<AtomicU64>,
    /// Hashes refused as too busy.
    refused: Arc<AtomicU64>,
}

impl PasswordHasher {
    pub fn new(cost: HashCost, limits: HashingLimits) -> Result<PasswordHasher> {
        let params = match cost {
            HashCost::Standard => Params::new(19 * 1024, 2, 1, None),
            HashCost::InsecureFastForTests => Params::new(256, 1, 1, None),
        }
        .map_err(|err| Error::invariant(format!("argon2 parameters: {err}")))?;
        let parallel = limits.parallel.max(1);
        let mut hasher = PasswordHasher {
            params,
            dummy_hash: String::new(),
            admitted: Arc::new(Semaphore::new(parallel + limits.queued)),
            jobs: start_threads(parallel)?,
            computed: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
        };
        let dummy = uuid::Uuid::new_v4().to_string();
        hasher.dummy_hash = hasher.hash_now(&dummy)?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, clear: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(clear.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| Error::invariant(format!("hashing a password: {err}")))
    }

    /// Hashes computed so far, new passwords and verifications alike.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// Hashes refused so far because the limits were full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread once one is free, or refuses at
    /// once when the limits are full. The permit stays with the work, so a
    /// client that hangs up does not free a place that is still hashing.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingOutcome> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(HashingOutcome::Busy);
        };
        let computed = self.computed.clone();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _admitted = admitted;
            computed.fetch_add(1, Ordering::Relaxed);
            let _ = answer.send(work());
        });
        let stopped = || HashingOutcome::Failed(Error::invariant("the hashing threads stopped"));
        self.jobs.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())
    }

    /// The PHC string of a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, HashingOutcome> {
        let hasher = self.clone();
        let clear = password.expose().to_owned();
        self.run(move || hasher.hash_now(&clear))
            .await?
            .map_err(HashingOutcome::Failed)
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown
    /// email, or no password set yet) a dummy hash is verified instead and
    /// the answer is false, so that every "no" takes about the same time.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, HashingOutcome> {
        let hasher = self.clone();
        let clear = password.expose().to_owned();
        let (hash, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        self.run(move || {
            let parsed = match PasswordHash::new(&hash) {
                Ok(parsed) => parsed,
                Err(_) => {
                    // A stored hash we cannot read: verify the dummy so the
                    // timing stays the same, and refuse.
                    tracing::warn!("a stored password hash does not parse");
                    let dummy = PasswordHash::new(&hasher.dummy_hash).ok();
                    if let Some(dummy) = dummy {
                        let _ = hasher.argon2().verify_password(clear.as_bytes(), &dummy);
                    }
                    return false;
                }
            };
            // The hash's own parameters apply (argon2 reads them from the
            // PHC string), so older hashes keep verifying after a change.
            let matches = hasher
                .argon2()
                .verify_password(clear.as_bytes(), &parsed)
                .is_ok();
            matches && real
        })
        .await
    }
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` hashing threads that take work from one queue until every
/// sender of it is gone.
fn start_threads(count: usize) -> Result<std::sync::mpsc::Sender<Job>> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for n in 0..count {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("password-hash-{n}"))
            .spawn(move || loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                let Ok(job) = job else { break };
                // A panic in one hash must not take the thread with it; its
                // request gets an error when the answer's sender drops.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            })
            .map_err(|err| Error::invariant(format!("starting a hashing thread: {err}")))?;
    }
    Ok(jobs)
}

/// Why a hash gave no answer.
#[derive(Debug)]
pub enum HashingOutcome {
    /// The limits were full: the request is to be refused as too busy.
    Busy,
    /// Hashing itself failed.
    Failed(Error),
}

impl From<HashingOutcome> for Error {
    fn from(outcome: HashingOutcome) -> Error {
        match outcome {
            HashingOutcome::Busy => Error::Overloaded {
                retry_after_secs: 1,
            },
            HashingOutcome::Failed(err) => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hasher =
            PasswordHasher::new(HashCost::InsecureFastForTests, HashingLimits::default()).unwrap();
        let password = Password::parse_new("correct horse battery").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::parse_presented("wrong horse battery").unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }
}

#[cfg(test)]
mod limit_tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn past_the_running_and_waiting_hashes_a_hash_is_refused_at_once() {
        let hasher = PasswordHasher::new(
            HashCost::InsecureFastForTests,
            HashingLimits {
                parallel: 1,
                queued: 1,
            },
        )
        .unwrap();
        let before = hasher.computed();
        // Hold both permits with work that waits for a signal.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let mut holders = Vec::new();
        for _ in 0..2 {
            let hasher = hasher.clone();
            let released = released.clone();
            holders.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        let _ = released.lock().unwrap().recv();
                    })
                    .await
            }));
        }
        while hasher.admitted.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let password = Password::parse_presented("any password").unwrap();
        // Refused without waiting: were it to wait, it would wait for ever.
        let refused = hasher.verify(&password, None).await;
        assert!(matches!(refused, Err(HashingOutcome::Busy)));
        assert_eq!(hasher.refused(), 1);
        release.send(()).unwrap();
        release.send(()).unwrap();
        for holder in holders {
            assert!(holder.await.unwrap().is_ok());
        }
        // With the permits back, hashing works again.
        assert!(!hasher.verify(&password, None).await.unwrap());
        assert_eq!(hasher.computed(), before + 3);
    }
}
