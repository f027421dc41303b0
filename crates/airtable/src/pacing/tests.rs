//! The pacer's tests: limits kept under any arrival pattern, pauses,
//! budget shares and the jitter and 429 allowances.

use super::*;
use crate::clock::ManualClock;
use std::sync::Arc;

fn limits(share: f64, margin_ms: u64) -> RateLimits {
    RateLimits {
        budget_share: share,
        safety_margin: Duration::from_millis(margin_ms),
        // No jitter allowance unless a test is about it.
        max_jitter_margin: Duration::ZERO,
        ..RateLimits::default()
    }
}

fn with_jitter_cap(cap_ms: u64) -> RateLimits {
    RateLimits {
        max_jitter_margin: Duration::from_millis(cap_ms),
        ..limits(1.0, 0)
    }
}

/// The most starts found in any half-open window `[t, t + span)`.
fn max_in_any_window(starts: &[Duration], span: Duration) -> usize {
    starts
        .iter()
        .map(|&t| starts.iter().filter(|&&s| s >= t && s < t + span).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn no_one_second_window_ever_holds_more_than_five_requests_to_a_base() {
    let pacer = Pacer::new(limits(1.0, 40));
    let starts: Vec<Duration> = (0..100)
        .map(|_| pacer.reserve(Some("appA"), Duration::ZERO).at)
        .collect();
    // Closed windows too, with room to spare: the margin keeps the
    // sixth request 40 ms past the end of the first one's second.
    let closed = Duration::from_millis(1040);
    assert_eq!(max_in_any_window(&starts, closed), 5);
    // Evenly spread: 99 gaps of (1000 + 40) / 5 ms.
    assert_eq!(starts[99], Duration::from_millis(99 * 208));
}

#[test]
fn the_token_limit_holds_across_bases() {
    let pacer = Pacer::new(limits(1.0, 0));
    let mut starts = Vec::new();
    for i in 0..400 {
        let base = format!("app{}", i % 20);
        starts.push(pacer.reserve(Some(&base), Duration::ZERO).at);
    }
    starts.sort();
    assert!(max_in_any_window(&starts, Duration::from_secs(1)) <= 50);
}

#[test]
fn a_base_queued_far_ahead_does_not_hold_back_another_base() {
    let pacer = Pacer::new(limits(1.0, 0));
    let last_of_a = (0..50)
        .map(|_| pacer.reserve(Some("appA"), Duration::ZERO).at)
        .max()
        .unwrap_or_default();
    assert_eq!(last_of_a, Duration::from_millis(49 * 200));
    let first_of_b = pacer.reserve(Some("appB"), Duration::ZERO).at;
    // One token spacing (1 s / 50) after appA's first start.
    assert_eq!(first_of_b, Duration::from_millis(20));
}

#[test]
fn spread_out_latencies_widen_the_window_by_their_spread() {
    let pacer = Pacer::new(with_jitter_cap(250));
    for i in 0..32 {
        pacer.record_latency(Duration::from_millis(50 + i % 2 * 100));
    }
    let starts: Vec<Duration> = (0..11)
        .map(|_| pacer.reserve(Some("appA"), Duration::ZERO).at)
        .collect();
    // (1000 + 100) / 5 ms apart.
    assert_eq!(starts[10], Duration::from_millis(10 * 220));
}

#[test]
fn the_jitter_allowance_is_capped_and_assumed_whole_before_any_answer() {
    let unknown = Pacer::new(with_jitter_cap(250));
    let sixth = (0..6)
        .map(|_| unknown.reserve(Some("appA"), Duration::ZERO).at)
        .last();
    assert_eq!(sixth, Some(Duration::from_millis(1_250)));
    let slow = Pacer::new(with_jitter_cap(250));
    slow.record_latency(Duration::from_secs(5));
    let sixth = (0..6)
        .map(|_| slow.reserve(Some("appA"), Duration::ZERO).at)
        .last();
    assert_eq!(sixth, Some(Duration::from_millis(1_250)));
}

#[test]
fn each_pause_widens_the_windows_until_answers_narrow_them_again() {
    let pacer = Pacer::new(limits(1.0, 0));
    pacer.pause_base("appA", Duration::ZERO, Duration::from_secs(30));
    // A second 429 of the same burst does not count again.
    pacer.pause_base("appA", Duration::ZERO, Duration::from_secs(30));
    let sixth = (0..6)
        .map(|_| pacer.reserve(Some("appB"), Duration::ZERO).at)
        .last();
    assert_eq!(sixth, Some(Duration::from_millis(1_100)));
    for _ in 0..100 {
        pacer.record_latency(Duration::from_millis(1));
    }
    let seventh = pacer.reserve(Some("appC"), Duration::from_secs(10)).at;
    let eighth = pacer.reserve(Some("appC"), Duration::from_secs(10)).at;
    assert_eq!(eighth - seventh, Duration::from_millis(200));
}

#[test]
fn a_budget_share_slows_the_base_proportionally() {
    let pacer = Pacer::new(limits(0.8, 0));
    let starts: Vec<Duration> = (0..41)
        .map(|_| pacer.reserve(Some("appA"), Duration::ZERO).at)
        .collect();
    // 80% of 5/s is 4/s: 40 gaps of 250 ms.
    assert_eq!(starts[40], Duration::from_secs(10));
}

#[test]
fn a_pause_holds_back_every_later_reservation_of_that_base_only() {
    let pacer = Pacer::new(limits(1.0, 0));
    let before = pacer.reserve(Some("appA"), Duration::ZERO);
    pacer.pause_base("appA", Duration::ZERO, Duration::from_secs(30));
    assert!(!pacer.is_current(Some("appA"), before));
    let after = pacer.reserve(Some("appA"), Duration::from_secs(1));
    assert_eq!(after.at, Duration::from_secs(30));
    let other = pacer.reserve(Some("appB"), Duration::from_secs(1));
    assert_eq!(other.at, Duration::from_secs(1));
    let paces = pacer.snapshot(Duration::from_secs(10));
    assert_eq!(paces[0].paused_for, Duration::from_secs(20));
}

#[tokio::test]
async fn concurrent_tasks_on_a_manual_clock_start_at_most_five_per_second() {
    let clock = Arc::new(ManualClock::new());
    let pacer = Arc::new(Pacer::new(limits(1.0, 0)));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (clock, pacer) = (Arc::clone(&clock), Arc::clone(&pacer));
        tasks.push(tokio::spawn(async move {
            pacer.acquire(&*clock, Some("appA")).await;
            clock.now()
        }));
    }
    // Step time to each next wake-up until every task has its slot.
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::task::yield_now().await;
        if let Some(next) = clock.next_deadline() {
            clock.advance_to(next);
        }
    }
    let mut starts = Vec::new();
    for task in tasks {
        starts.push(task.await.unwrap_or_default());
    }
    starts.sort();
    assert_eq!(max_in_any_window(&starts, Duration::from_secs(1)), 5);
    assert_eq!(starts[19], Duration::from_millis(19 * 200));
}

#[tokio::test]
async fn a_task_that_wakes_late_leaves_at_its_real_time_and_pushes_the_next() {
    let clock = Arc::new(ManualClock::new());
    let pacer = Arc::new(Pacer::new(limits(1.0, 40)));
    pacer.reserve(Some("appA"), Duration::ZERO);
    let task = {
        let (clock, pacer) = (Arc::clone(&clock), Arc::clone(&pacer));
        tokio::spawn(async move { pacer.acquire(&*clock, Some("appA")).await })
    };
    tokio::task::yield_now().await;
    assert_eq!(clock.next_deadline(), Some(Duration::from_millis(208)));
    // A starved process wakes 92 ms after its slot.
    clock.advance_to(Duration::from_millis(300));
    task.await.unwrap_or_default();
    // The next slot keeps its spacing from when the request really left.
    let next = pacer.reserve(Some("appA"), Duration::from_millis(300)).at;
    assert_eq!(next, Duration::from_millis(508));
}

#[test]
fn a_late_start_that_would_crowd_a_later_slot_is_reserved_again() {
    let pacer = Pacer::new(limits(1.0, 40));
    let first = pacer.reserve(Some("appA"), Duration::ZERO);
    let second = pacer.reserve(Some("appA"), Duration::ZERO);
    assert_eq!(second.at, Duration::from_millis(208));
    // Leaving at 150 ms would put it 58 ms before the second request.
    assert!(!pacer.restamp(Some("appA"), first, Duration::from_millis(150)));
    let again = pacer.reserve(Some("appA"), Duration::from_millis(150));
    assert_eq!(again.at, Duration::from_millis(416));
    // Leaving late at 624 ms, well after the second, is accepted.
    assert!(pacer.restamp(Some("appA"), again, Duration::from_millis(624)));
}

proptest::proptest! {
    #[test]
    fn any_mix_of_bases_and_arrival_times_keeps_both_limits(
        steps in proptest::collection::vec((0usize..4, 0u64..150), 1..300)
    ) {
        // A token limit under the bases' sum, so both limits bind.
        let pacer = Pacer::new(RateLimits { per_token: 8, ..limits(1.0, 0) });
        let mut now = Duration::ZERO;
        let mut by_base: Vec<Vec<Duration>> = vec![Vec::new(); 4];
        let mut all = Vec::new();
        for (base, advance_ms) in steps {
            now += Duration::from_millis(advance_ms);
            let at = pacer.reserve(Some(&format!("app{base}")), now).at;
            proptest::prop_assert!(at >= now);
            by_base[base].push(at);
            all.push(at);
        }
        for starts in &mut by_base {
            starts.sort();
            proptest::prop_assert!(max_in_any_window(starts, Duration::from_secs(1)) <= 5);
        }
        all.sort();
        proptest::prop_assert!(max_in_any_window(&all, Duration::from_secs(1)) <= 8);
    }
}
