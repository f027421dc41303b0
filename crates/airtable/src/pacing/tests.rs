//! The pacer's tests: limits kept under any arrival pattern, pauses,
//! budget shares and the jitter and 429 allowances.

use super::*;
use crate::clock::ManualClock;
use std::sync::Arc;

fn limits(share: f64, margin_ms: u64) -> RateLimits {
    RateLimits {
        budget_share: share,
        safety_margin: Duration::from_millis(margin_ms),
        ..RateLimits::default()
    }
}

const N: Priority = Priority::Normal;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A slot as `acquire` would give it for a reservation.
fn slot(r: Reservation) -> Slot {
    Slot {
        at: r.at,
        id: r.id,
        waited: Duration::ZERO,
        shared_at: None,
    }
}

/// The most starts found in any half-open window `[t, t + span)`.
pub(super) fn max_in_any_window(starts: &[Duration], span: Duration) -> usize {
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
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO).at)
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
        starts.push(pacer.reserve(Some(&base), N, Duration::ZERO).at);
    }
    starts.sort();
    assert!(max_in_any_window(&starts, Duration::from_secs(1)) <= 50);
}

#[test]
fn a_base_queued_far_ahead_does_not_hold_back_another_base() {
    let pacer = Pacer::new(limits(1.0, 0));
    let last_of_a = (0..50)
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO).at)
        .max()
        .unwrap_or_default();
    assert_eq!(last_of_a, Duration::from_millis(49 * 200));
    let first_of_b = pacer.reserve(Some("appB"), N, Duration::ZERO).at;
    // One token spacing (1 s / 50) after appA's first start.
    assert_eq!(first_of_b, Duration::from_millis(20));
}

#[test]
fn a_budget_share_slows_the_base_proportionally() {
    let pacer = Pacer::new(limits(0.8, 0));
    let starts: Vec<Duration> = (0..41)
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO).at)
        .collect();
    // 80% of 5/s is 4/s: 40 gaps of 250 ms.
    assert_eq!(starts[40], Duration::from_secs(10));
}

#[test]
fn a_pause_holds_back_every_later_reservation_of_that_base_only() {
    let pacer = Pacer::new(limits(1.0, 0));
    let before = pacer.reserve(Some("appA"), N, Duration::ZERO);
    pacer.pause_base(
        "appA",
        &slot(before),
        Duration::ZERO,
        Duration::from_secs(30),
    );
    assert!(!pacer.is_current(Some("appA"), &before));
    let after = pacer.reserve(Some("appA"), N, Duration::from_secs(1));
    assert_eq!(after.at, Duration::from_secs(30));
    let other = pacer.reserve(Some("appB"), N, Duration::from_secs(1));
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
            pacer.acquire(&*clock, Some("appA"), N).await;
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
    pacer.reserve(Some("appA"), N, Duration::ZERO);
    let task = {
        let (clock, pacer) = (Arc::clone(&clock), Arc::clone(&pacer));
        tokio::spawn(async move { pacer.acquire(&*clock, Some("appA"), N).await })
    };
    tokio::task::yield_now().await;
    assert_eq!(clock.next_deadline(), Some(Duration::from_millis(208)));
    // A starved process wakes 92 ms after its slot.
    clock.advance_to(Duration::from_millis(300));
    assert!(task.await.is_ok());
    // The next slot keeps its spacing from when the request really left.
    let next = pacer
        .reserve(Some("appA"), N, Duration::from_millis(300))
        .at;
    assert_eq!(next, Duration::from_millis(508));
}

#[test]
fn a_late_start_that_would_crowd_a_later_slot_is_reserved_again() {
    let pacer = Pacer::new(limits(1.0, 40));
    let mut first = pacer.reserve(Some("appA"), N, Duration::ZERO);
    let second = pacer.reserve(Some("appA"), N, Duration::ZERO);
    assert_eq!(second.at, Duration::from_millis(208));
    // Leaving at 150 ms would put it 58 ms before the second request.
    assert!(!pacer.restamp(Some("appA"), &mut first, Duration::from_millis(150)));
    let mut again = pacer.reserve(Some("appA"), N, Duration::from_millis(150));
    assert_eq!(again.at, Duration::from_millis(416));
    // Leaving late at 624 ms, well after the second, is accepted.
    assert!(pacer.restamp(Some("appA"), &mut again, Duration::from_millis(624)));
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
            let at = pacer.reserve(Some(&format!("app{base}")), N, now).at;
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

/// The most starts found in any half-open window `(t - span, t]`, the
/// way Airtable counts a request against the ones before it.
fn max_before_any(starts: &[Duration], span: Duration) -> usize {
    starts
        .iter()
        .map(|&t| starts.iter().filter(|&&s| s <= t && s + span > t).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_share_is_a_whole_number_of_requests_in_every_second() {
    assert_eq!(share::requests_for(5, 1.0), 5);
    assert_eq!(share::requests_for(5, 0.9), 4);
    assert_eq!(share::requests_for(5, 0.8), 4);
    assert_eq!(share::requests_for(5, 0.6), 3);
    assert_eq!(share::requests_for(5, 0.1), 1);
}

#[test]
fn at_eighty_percent_a_script_reading_once_a_second_always_fits() {
    let pacer = Pacer::new(limits(0.8, 40));
    let ours: Vec<Duration> = (0..200)
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO).at)
        .collect();
    // Four in any second and its margin: (1000 + 40) / 4 ms apart.
    assert_eq!(max_in_any_window(&ours, ms(1040)), 4);
    assert_eq!(ours[4] - ours[0], ms(1040));
    // Whatever the script's phase, Airtable never counts a sixth request.
    for phase in (0..1000).step_by(7) {
        let mut all = ours.clone();
        all.extend((0..50).map(|i| ms(phase + i * 1000)));
        all.sort();
        assert!(max_before_any(&all, ms(1000)) <= 5, "phase {phase} ms");
    }
}

#[test]
fn a_429_that_airsyncs_requests_cannot_explain_lowers_the_share_one_request() {
    let pacer = Pacer::new(limits(1.0, 40));
    let sent: Vec<Reservation> = (0..4)
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO))
        .collect();
    // The fourth request (at 624 ms) draws the 429: three of ours came in
    // the second before it, so others sent at least two.
    let refused = sent[3];
    pacer.pause_base("appA", &slot(refused), ms(700), ms(30_700));
    let pace = &pacer.snapshot(ms(700))[0];
    assert_eq!(pace.share, 0.8);
    assert_eq!(pace.requests_per_window, 4);
    assert_eq!(pace.episodes_by_others, 1);
    let episode = &pace.recent_episodes[0];
    assert_eq!(episode.own_requests, 3);
    assert_eq!(episode.cause, RateLimitCause::Others { at_least: 2 });
    assert_eq!((episode.share_before, episode.share_after), (1.0, 0.8));
    // After the pause, four requests in any second and its margin.
    let after: Vec<Duration> = (0..9)
        .map(|_| pacer.reserve(Some("appA"), N, ms(30_700)).at)
        .collect();
    assert_eq!(after[0], ms(30_700));
    assert_eq!(after[8] - after[0], ms(8 * 260));
    // Another base keeps its whole share.
    assert!(pacer.snapshot(ms(700)).iter().all(|p| p.base_id != "appB"));
    pacer.reserve(Some("appB"), N, ms(700));
    assert_eq!(pacer.snapshot(ms(700))[1].share, 1.0);
}

#[test]
fn a_lowered_share_falls_by_a_fifth_and_never_under_one_request() {
    let pacer = Pacer::new(limits(0.8, 0));
    let mut shares = Vec::new();
    for round in 0..5u64 {
        let now = Duration::from_secs(round * 40);
        let r = pacer.reserve(Some("appA"), N, now);
        pacer.pause_base("appA", &slot(r), now, now + ms(30_000));
        let pace = &pacer.snapshot(now)[0];
        shares.push((pace.share * 100.0).round() as u32);
        assert_eq!(pace.episodes_by_others, round + 1);
    }
    // 80% → 60% (4 → 3 requests), → 40%, → 20%, and one request stays.
    assert_eq!(shares, vec![60, 40, 20, 20, 20]);
}

#[test]
fn the_share_climbs_back_a_point_per_step_and_each_quick_relapse_doubles_the_step() {
    let pacer = Pacer::new(limits(1.0, 0));
    let share_at = |secs: u64| pacer.snapshot(Duration::from_secs(secs))[0].share;
    let r = pacer.reserve(Some("appA"), N, Duration::ZERO);
    pacer.pause_base("appA", &slot(r), Duration::ZERO, ms(30_000));
    assert_eq!(share_at(59), 0.8);
    assert!((share_at(60) - 0.81).abs() < 1e-9);
    assert!((share_at(1_199) - 0.99).abs() < 1e-9);
    assert_eq!(share_at(1_200), 1.0);
    // Back at the budget, the other client draws a 429 again within the
    // hour: the next climb takes twice as long per point.
    let now = Duration::from_secs(1_230);
    let r = pacer.reserve(Some("appA"), N, now);
    pacer.pause_base("appA", &slot(r), now, now + ms(30_000));
    let pace = &pacer.snapshot(now)[0];
    assert_eq!(pace.recovery_step, Duration::from_secs(120));
    assert_eq!(share_at(1_230 + 119), 0.8);
    assert!((share_at(1_230 + 120) - 0.81).abs() < 1e-9);
    assert_eq!(share_at(1_230 + 2_400), 1.0);
    // An hour at the budget without a 429 from others: the step is back
    // to its configured length, and the next episode keeps it.
    let calm = 1_230 + 2_400 + 3_600;
    assert_eq!(
        pacer.snapshot(Duration::from_secs(calm))[0].recovery_step,
        Duration::from_secs(60)
    );
    let now = Duration::from_secs(calm + 10);
    let r = pacer.reserve(Some("appA"), N, now);
    pacer.pause_base("appA", &slot(r), now, now + ms(30_000));
    assert_eq!(
        pacer.snapshot(now)[0].recovery_step,
        Duration::from_secs(60)
    );
}

#[test]
fn a_429_that_airsyncs_own_requests_explain_widens_the_windows_instead() {
    let pacer = Pacer::new(limits(1.0, 0));
    // Five of ours left within a second (as though another process of the
    // same pacer had bypassed it), then a sixth drew the 429.
    {
        let mut state = pacer.lock();
        let base = pacer.new_base();
        state.bases.insert("appA".to_owned(), base);
        let window = &mut state.bases.get_mut("appA").expect("inserted").window;
        for (i, at) in [50u64, 150, 250, 350, 450].into_iter().enumerate() {
            window.insert(Start {
                at: ms(at),
                id: 1_000 + i as u64,
                base: None,
                priority: N,
            });
        }
    }
    let refused = Slot {
        at: ms(500),
        id: 2_000,
        waited: Duration::ZERO,
        shared_at: None,
    };
    pacer.pause_base("appA", &refused, ms(600), ms(30_600));
    let pace = &pacer.snapshot(ms(600))[0];
    assert_eq!(pace.share, 1.0);
    assert_eq!(pace.episodes_by_airsync, 1);
    assert_eq!(pace.recent_episodes[0].cause, RateLimitCause::Airsync);
    assert_eq!(pace.window, ms(1_100));
    // A second 429 of the same pause is not judged again.
    pacer.pause_base("appA", &refused, ms(700), ms(30_700));
    assert_eq!(pacer.snapshot(ms(700))[0].recent_episodes.len(), 1);
    // A hundred answers take the widening back.
    for _ in 0..100 {
        pacer.record_answer();
    }
    assert_eq!(pacer.snapshot(ms(700))[0].window, ms(1_000));
}

#[test]
fn an_urgent_request_goes_ahead_of_waiting_background_requests() {
    let pacer = Pacer::new(limits(1.0, 0));
    let background: Vec<Reservation> = (0..10)
        .map(|_| pacer.reserve(Some("appA"), Priority::Background, Duration::ZERO))
        .collect();
    assert_eq!(background[9].at, ms(1_800));
    // At 100 ms a user's read waits only for the spacing after the first
    // background request, which already left.
    let urgent = pacer.reserve(Some("appA"), Priority::Urgent, ms(100));
    assert_eq!(urgent.at, ms(200));
    assert!(pacer.is_current(Some("appA"), &urgent));
    // The background requests that had not left reserve again, behind it.
    assert!(!pacer.is_current(Some("appA"), &background[1]));
    assert!(pacer.is_current(Some("appA"), &background[0]));
    let again = pacer.reserve(Some("appA"), Priority::Background, ms(100));
    assert_eq!(again.at, ms(400));
    // A normal request overtakes the background one, not the urgent one.
    let normal = pacer.reserve(Some("appA"), N, ms(100));
    assert_eq!(normal.at, ms(400));
    assert!(pacer.is_current(Some("appA"), &urgent));
    assert!(!pacer.is_current(Some("appA"), &again));
}

#[tokio::test]
async fn on_a_manual_clock_an_urgent_task_starts_before_queued_background_tasks() {
    let clock = Arc::new(ManualClock::new());
    let pacer = Arc::new(Pacer::new(limits(1.0, 40)));
    let spawn = |priority: Priority| {
        let (clock, pacer) = (Arc::clone(&clock), Arc::clone(&pacer));
        tokio::spawn(async move {
            pacer.acquire(&*clock, Some("appA"), priority).await;
            clock.now()
        })
    };
    let background: Vec<_> = (0..10).map(|_| spawn(Priority::Background)).collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    clock.advance_to(ms(208));
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    let urgent = spawn(Priority::Urgent);
    while !urgent.is_finished() || background.iter().any(|t| !t.is_finished()) {
        tokio::task::yield_now().await;
        if let Some(next) = clock.next_deadline() {
            clock.advance_to(next);
        }
    }
    let urgent_at = urgent.await.unwrap_or_default();
    let mut starts = vec![urgent_at];
    let mut later = 0;
    for task in background {
        let at = task.await.unwrap_or_default();
        later += usize::from(at > urgent_at);
        starts.push(at);
    }
    assert_eq!(urgent_at, ms(416));
    // Only the background requests that had left before it started earlier.
    assert_eq!(later, 8);
    starts.sort();
    assert_eq!(max_in_any_window(&starts, ms(1_040)), 5);
}

#[test]
fn a_429_answered_late_is_judged_against_the_second_its_request_left_in() {
    let pacer = Pacer::new(limits(1.0, 40));
    let sent: Vec<Reservation> = (0..4)
        .map(|_| pacer.reserve(Some("appA"), N, Duration::ZERO))
        .collect();
    // Later requests come and go while the fourth one's answer is slow.
    for at in [3_000, 3_300, 3_600] {
        pacer.reserve(Some("appA"), N, ms(at));
    }
    pacer.pause_base("appA", &slot(sent[3]), ms(5_000), ms(35_000));
    let episode = &pacer.snapshot(ms(5_000))[0].recent_episodes[0];
    assert_eq!(episode.own_requests, 3);
    assert_eq!(episode.cause, RateLimitCause::Others { at_least: 2 });
}
