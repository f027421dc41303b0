//! Parsing of the date and time strings Airtable accepts, and time zones.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::clock::Millis;

/// A time zone by IANA name; Airtable's `utc` and `client` (the browser's
/// zone, which an API caller does not have) both mean UTC here.
pub fn parse_zone(name: &str) -> Option<Tz> {
    match name {
        "utc" | "UTC" | "client" | "GMT" | "Etc/UTC" => Some(Tz::UTC),
        other => other.parse::<Tz>().ok(),
    }
}

/// Naive date-time layouts accepted after the RFC 3339 forms.
const NAIVE_LAYOUTS: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.fZ",
];

/// Parses an ISO 8601 date or date-time. A zone-less value is read in `zone`.
pub fn parse_datetime(text: &str, zone: Tz) -> Option<Millis> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.timestamp_millis());
    }
    for layout in NAIVE_LAYOUTS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, layout) {
            // A trailing Z in the layout means the value is already UTC.
            let zone = if layout.ends_with('Z') { Tz::UTC } else { zone };
            return local_to_ms(naive, zone);
        }
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    local_to_ms(date.and_hms_opt(0, 0, 0)?, zone)
}

/// A local wall-clock time in `zone` as epoch milliseconds; in a DST gap
/// the earliest valid reading is used.
pub fn local_to_ms(naive: NaiveDateTime, zone: Tz) -> Option<Millis> {
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// Parses a calendar date (`YYYY-MM-DD`, or a date-time whose UTC date is
/// taken) and returns it as `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d.format("%Y-%m-%d").to_string());
    }
    let ms = parse_datetime(text, Tz::UTC)?;
    Some(crate::clock::from_ms(ms).format("%Y-%m-%d").to_string())
}

/// Midnight UTC of a `YYYY-MM-DD` date.
pub fn date_to_ms(date: &str) -> Option<Millis> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
            .timestamp_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_less_times_are_read_in_the_given_zone() {
        let zone = parse_zone("Europe/Paris").expect("known zone");
        let ms = parse_datetime("2024-01-15T10:00", zone).expect("parses");
        assert_eq!(crate::clock::format_ms(ms), "2024-01-15T09:00:00.000Z");
    }

    #[test]
    fn offsets_and_z_are_honoured() {
        let ms = parse_datetime("2024-01-15T10:00:00.250+02:00", Tz::UTC).expect("parses");
        assert_eq!(crate::clock::format_ms(ms), "2024-01-15T08:00:00.250Z");
        let ms = parse_datetime("2024-01-15T10:00:00Z", Tz::UTC).expect("parses");
        assert_eq!(crate::clock::format_ms(ms), "2024-01-15T10:00:00.000Z");
    }

    #[test]
    fn dates_accept_plain_dates_and_date_times() {
        assert_eq!(parse_date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(
            parse_date("2024-02-29T23:00:00Z").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_date("29/02/2024"), None);
    }
}
