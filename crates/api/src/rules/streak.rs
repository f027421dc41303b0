//! Streaks and streak bonuses (docs/domain.md, "Streak" and "Bonus").

use chrono::NaiveDate;

/// Streak lengths that earn a bonus, with the bonus points.
pub const STREAK_BONUSES: [(i32, i32); 6] =
    [(3, 10), (7, 25), (14, 50), (30, 100), (60, 200), (100, 400)];

/// The badge for reaching a streak of `threshold` days.
pub fn badge(threshold: i32) -> String {
    format!("streak-{threshold}")
}

/// A run of consecutive days with at least one usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Run {
    pub fn days(&self) -> i32 {
        i32::try_from((self.end - self.start).num_days() + 1).unwrap_or(i32::MAX)
    }
}

/// Groups days with usages into runs. `days` may be in any order and repeat.
pub fn runs(days: &[NaiveDate]) -> Vec<Run> {
    let mut sorted = days.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<Run> = Vec::new();
    for day in sorted {
        match runs.last_mut() {
            Some(run) if run.end.succ_opt() == Some(day) => run.end = day,
            _ => runs.push(Run {
                start: day,
                end: day,
            }),
        }
    }
    runs
}

/// The run that counts as the current streak: the one ending today or
/// yesterday (in the user's time zone), if any.
pub fn current_run(runs: &[Run], today: NaiveDate) -> Option<Run> {
    let yesterday = today.pred_opt()?;
    runs.iter()
        .copied()
        .filter(|run| run.end == today || run.end == yesterday)
        .max_by_key(|run| run.end)
}

/// Current and longest streak, in days.
pub fn streaks(runs: &[Run], today: NaiveDate) -> (i32, i32) {
    let current = current_run(runs, today).map_or(0, |run| run.days());
    let longest = runs.iter().map(Run::days).max().unwrap_or(0);
    (current, longest)
}

/// The bonuses a run of `days` days has reached, as (threshold, points).
pub fn reached_bonuses(days: i32) -> impl Iterator<Item = (i32, i32)> {
    STREAK_BONUSES
        .into_iter()
        .filter(move |(threshold, _)| days >= *threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, month, day).unwrap()
    }

    #[test]
    fn runs_join_consecutive_days_across_a_month_end() {
        let days = [day(2, 1), day(1, 31), day(1, 30), day(1, 30), day(2, 3)];
        assert_eq!(
            runs(&days),
            vec![
                Run {
                    start: day(1, 30),
                    end: day(2, 1)
                },
                Run {
                    start: day(2, 3),
                    end: day(2, 3)
                }
            ]
        );
    }

    #[test]
    fn the_current_streak_ends_today_or_yesterday() {
        let all = runs(&[day(1, 29), day(1, 30), day(1, 31)]);
        assert_eq!(streaks(&all, day(1, 31)), (3, 3));
        assert_eq!(streaks(&all, day(2, 1)), (3, 3));
        assert_eq!(streaks(&all, day(2, 2)), (0, 3));
    }

    #[test]
    fn bonuses_are_reached_at_each_threshold() {
        assert_eq!(reached_bonuses(2).count(), 0);
        assert_eq!(reached_bonuses(3).collect::<Vec<_>>(), vec![(3, 10)]);
        assert_eq!(reached_bonuses(14).count(), 3);
        assert_eq!(reached_bonuses(100).count(), 6);
    }
}
