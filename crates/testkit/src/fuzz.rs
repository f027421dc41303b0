//! A proptest runner with a time budget, for the fuzz suites
//! (`tests/fuzz_*.rs`, see `docs/fuzzing.md`).
//!
//! In a plain `cargo test` a suite runs one round of its CI case count.
//! With `AIRSYNC_FUZZ_SECS=N` it runs rounds with fresh seeds until N
//! seconds have passed. `AIRSYNC_FUZZ_SEED=<64 hex digits>` replays the one
//! round a finding reported. Either way it prints one line:
//! `fuzz <suite>: <cases> cases in <secs> s, <findings> findings`.
//!
//! A failing case is also saved by proptest next to the suite, in
//! `tests/fuzz_<suite>.proptest-regressions`, and replayed first by every
//! later run.
//!
//! ```no_run
//! use proptest::prelude::*;
//! airsync_testkit::fuzz::run("lengths", file!(), 256, any::<String>(), |s| {
//!     prop_assert!(s.chars().count() <= s.len());
//!     Ok(())
//! });
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

/// The variable giving a suite's time budget in seconds.
pub const SECS_VAR: &str = "AIRSYNC_FUZZ_SECS";
/// The variable giving the seed of the one round to replay.
pub const SEED_VAR: &str = "AIRSYNC_FUZZ_SEED";

/// Runs `test` on values of `strategy`: `cases` of them in one round, or
/// rounds of `cases` until the budget of [`SECS_VAR`] is spent. Panics on
/// the first finding, with the seed that replays its round.
///
/// `source_file` is the suite's `file!()`, under which proptest keeps the
/// failing cases it saw.
pub fn run<S: Strategy>(
    suite: &str,
    source_file: &'static str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let budget = budget();
    let fixed_seed = std::env::var(SEED_VAR).ok().map(|hex| {
        parse_seed(&hex).unwrap_or_else(|| panic!("{SEED_VAR} must be 64 hex digits, not {hex:?}"))
    });
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        let seed = fixed_seed.unwrap_or_else(fresh_seed);
        let config = Config {
            cases,
            source_file: Some(source_file),
            // Next to the suite: `tests/fuzz_x.proptest-regressions`.
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
                "proptest-regressions",
            ))),
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        if let Err(err) = runner.run(&strategy, &test) {
            println!(
                "fuzz {suite}: {total} cases in {:.1} s, 1 findings",
                started.elapsed().as_secs_f64()
            );
            panic!(
                "fuzz {suite}: finding after {total} cases: {err}\n\
                 replay its round with {SEED_VAR}={}",
                hex(&seed)
            );
        }
        total += u64::from(cases);
        let spent = budget.is_none_or(|b| started.elapsed() >= b);
        if spent || fixed_seed.is_some() {
            break;
        }
    }
    println!(
        "fuzz {suite}: {total} cases in {:.1} s, 0 findings",
        started.elapsed().as_secs_f64()
    );
}

/// The time budget, when one is set.
pub fn budget() -> Option<Duration> {
    let secs = std::env::var(SECS_VAR).ok()?;
    let secs: u64 = secs
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{SECS_VAR} must be a whole number of seconds, not {secs:?}"));
    Some(Duration::from_secs(secs))
}

fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(8) {
        // Every `RandomState` is keyed afresh by the standard library.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    seed
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_seed_parses_back_to_itself() {
        let seed = fresh_seed();
        assert_eq!(parse_seed(&hex(&seed)), Some(seed));
        assert_eq!(parse_seed("xyz"), None);
        assert_eq!(parse_seed(&"zz".repeat(32)), None);
    }

    #[test]
    fn fresh_seeds_differ() {
        assert_ne!(fresh_seed(), fresh_seed());
    }
}
