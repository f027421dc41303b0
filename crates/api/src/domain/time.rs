//! Dates, date ranges and the user's time zone.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The longest program: a year and a day, so that a schedule (one row per
/// planned day) stays small enough to answer in one response.
pub const MAX_PROGRAM_DAYS: i64 = 366;

/// Parses a calendar date written `YYYY-MM-DD`: four digits of a year from
/// 0001 to 9999, no sign. chrono alone also takes signed and longer years
/// (`-5000-01-01`, `+10000-01-01`), which PostgreSQL's `date` cannot all hold
/// and no client means.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    let wrong = || "must be a date written YYYY-MM-DD, with a year from 0001 to 9999".to_owned();
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, byte)| match i {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped || raw.starts_with("0000") {
        return Err(wrong());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| wrong())
}

/// A range of dates, both ends included, that runs forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    /// A range from `start` to `end`; the error says what is wrong with
    /// `end`, the field that is checked against the other.
    pub fn new(start: NaiveDate, end: NaiveDate, max_days: i64) -> Result<DateRange, String> {
        if end < start {
            return Err("must not be before the start date".into());
        }
        if (end - start).num_days() + 1 > max_days {
            return Err(format!("the range may span at most {max_days} days"));
        }
        Ok(DateRange { start, end })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }

    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Every date of the range, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let end = self.end;
        self.start.iter_days().take_while(move |day| *day <= end)
    }
}

/// The IANA zone that decides which calendar day it is for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserTimeZone(Tz);

impl UserTimeZone {
    /// The zone of users who have not chosen one (docs/domain.md).
    pub const DEFAULT: UserTimeZone = UserTimeZone(chrono_tz::Europe::Amsterdam);

    /// Reads a stored zone name; an unknown name falls back to the default
    /// rather than failing every request of that user.
    pub fn from_stored(raw: &str) -> UserTimeZone {
        match raw.parse::<Tz>() {
            Ok(tz) => UserTimeZone(tz),
            Err(_) => {
                tracing::warn!(time_zone = raw, "unknown time zone; using Europe/Amsterdam");
                UserTimeZone::DEFAULT
            }
        }
    }

    /// Parses a zone name given as input.
    pub fn parse(raw: &str) -> Result<UserTimeZone, String> {
        raw.trim()
            .parse::<Tz>()
            .map(UserTimeZone)
            .map_err(|_| "must be an IANA time zone such as Europe/Amsterdam".to_owned())
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The calendar date at instant `now` in this zone.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.0).date_naive()
    }
}

impl utoipa::PartialSchema for UserTimeZone {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::text(
            "An IANA time zone; it decides which calendar day it is for the user.",
            1,
            64,
            "Europe/Amsterdam",
        )
    }
}

impl utoipa::ToSchema for UserTimeZone {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_date_has_a_four_digit_year_from_0001_and_no_sign() {
        assert_eq!(
            parse_date(" 2024-02-29 "),
            Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        assert!(parse_date("0001-01-01").is_ok());
        assert!(parse_date("9999-12-31").is_ok());
        for wrong in [
            "-5000-01-01",
            "+2024-01-01",
            "+10000-01-01",
            "0000-01-01",
            "12024-01-01",
            "2024-1-01",
            "2023-02-29",
            "2024-02-30",
            "２０２４-01-01",
        ] {
            assert!(parse_date(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_range_may_not_run_backwards_or_be_too_long() {
        let day = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        assert!(DateRange::new(day(2), day(1), 10).is_err());
        assert!(DateRange::new(day(1), day(10), 10).is_ok());
        assert!(DateRange::new(day(1), day(11), 10).is_err());
        assert_eq!(
            DateRange::new(day(1), day(3), 10).unwrap().days().count(),
            3
        );
    }

    #[test]
    fn today_depends_on_the_users_zone() {
        let now = Utc.with_ymd_and_hms(2024, 1, 31, 23, 30, 0).unwrap();
        assert_eq!(
            UserTimeZone::DEFAULT.today(now),
            NaiveDate::from_ymd_opt(2024, 2, 1).unwrap()
        );
        let new_york = UserTimeZone::parse("America/New_York").unwrap();
        assert_eq!(
            new_york.today(now),
            NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()
        );
    }
}
