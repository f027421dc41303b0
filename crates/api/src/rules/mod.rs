//! The coaching rules of docs/domain.md as plain functions, shared by every
//! data backend: schedule dates, points, levels, streaks and their bonuses.

pub mod points;
pub mod schedule;
pub mod streak;
