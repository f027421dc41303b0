//! Which dates a program plans.

use chrono::{Datelike, NaiveDate};

use crate::domain::DateRange;

/// The dates of `range` whose ISO weekday (Monday = 1) is among `weekdays`.
pub fn planned_dates(range: DateRange, weekdays: &[u32]) -> Vec<NaiveDate> {
    range
        .days()
        .filter(|day| weekdays.contains(&day.weekday().number_from_monday()))
        .collect()
}

/// What regenerating a schedule from `today` on does: the dates to remove
/// and the dates to add. Days before `today` are the past and are kept
/// whatever changed; days from `today` on follow the new plan, and a day that
/// stays planned keeps its row (and so its notes and the usages linked to
/// it).
pub fn regeneration(
    existing: &[NaiveDate],
    planned: &[NaiveDate],
    today: NaiveDate,
) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
    let remove = existing
        .iter()
        .copied()
        .filter(|day| *day >= today && !planned.contains(day))
        .collect();
    let add = planned
        .iter()
        .copied()
        .filter(|day| *day >= today && !existing.contains(day))
        .collect();
    (remove, add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, month, day).unwrap()
    }

    #[test]
    fn planned_dates_keep_the_chosen_weekdays_only() {
        // 2024-01-01 is a Monday.
        let range = DateRange::new(day(1, 1), day(1, 14), 366).unwrap();
        assert_eq!(
            planned_dates(range, &[1, 3]),
            vec![day(1, 1), day(1, 3), day(1, 8), day(1, 10)]
        );
    }

    #[test]
    fn regeneration_leaves_the_past_alone() {
        let existing = [day(1, 1), day(1, 3), day(1, 8), day(1, 10)];
        let planned = [day(1, 2), day(1, 9), day(1, 10)];
        let (remove, add) = regeneration(&existing, &planned, day(1, 5));
        assert_eq!(remove, vec![day(1, 8)]);
        assert_eq!(add, vec![day(1, 9)]);
    }
}
