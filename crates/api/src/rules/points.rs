//! Points and levels (docs/domain.md, "Points" and "Level").

use serde::Serialize;

/// Points for one method usage.
pub const METHOD_USAGE_POINTS: i64 = 10;
/// Points for one habit usage.
pub const HABIT_USAGE_POINTS: i64 = 5;
/// Points for one personal goal usage.
pub const PERSONAL_GOAL_USAGE_POINTS: i64 = 5;
/// Points for one overtuiging usage.
pub const OVERTUIGING_USAGE_POINTS: i64 = 3;

/// Total points at which each level after the first begins.
pub const LEVEL_THRESHOLDS: [i64; 9] = [50, 150, 300, 500, 800, 1200, 1700, 2300, 3000];

/// How many usages of each kind a user has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageCounts {
    pub method_usage: i64,
    pub habit_usage: i64,
    pub personal_goal_usage: i64,
    pub overtuiging_usage: i64,
}

impl UsageCounts {
    /// The points earned by usages, bonuses not included.
    pub fn usage_points(&self) -> i64 {
        self.method_usage * METHOD_USAGE_POINTS
            + self.habit_usage * HABIT_USAGE_POINTS
            + self.personal_goal_usage * PERSONAL_GOAL_USAGE_POINTS
            + self.overtuiging_usage * OVERTUIGING_USAGE_POINTS
    }
}

/// The level of a point total: 1 plus the thresholds reached.
pub fn level(total_points: i64) -> i32 {
    let reached = LEVEL_THRESHOLDS
        .iter()
        .filter(|threshold| total_points >= **threshold)
        .count();
    1 + reached as i32
}

/// Points still needed for the next level; `None` at the top level.
pub fn points_to_next_level(total_points: i64) -> Option<i64> {
    LEVEL_THRESHOLDS
        .iter()
        .find(|threshold| total_points < **threshold)
        .map(|threshold| threshold - total_points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rise_at_each_threshold() {
        assert_eq!(level(0), 1);
        assert_eq!(level(49), 1);
        assert_eq!(level(50), 2);
        assert_eq!(level(149), 2);
        assert_eq!(level(150), 3);
        assert_eq!(level(2999), 9);
        assert_eq!(level(3000), 10);
        assert_eq!(level(1_000_000), 10);
    }

    #[test]
    fn points_to_next_level_count_down_and_stop_at_the_top() {
        assert_eq!(points_to_next_level(0), Some(50));
        assert_eq!(points_to_next_level(50), Some(100));
        assert_eq!(points_to_next_level(3000), None);
    }

    #[test]
    fn usage_points_weigh_each_kind() {
        let counts = UsageCounts {
            method_usage: 1,
            habit_usage: 1,
            personal_goal_usage: 1,
            overtuiging_usage: 1,
        };
        assert_eq!(counts.usage_points(), 23);
    }
}
