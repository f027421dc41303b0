//! Moment.js-style date format specifiers, as Airtable's DATETIME_FORMAT,
//! DATETIME_PARSE and date field formats use them.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use chrono_tz::Tz;

use crate::clock::Millis;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Tokens, longest first so that `MMMM` wins over `MM`.
const TOKENS: [&str; 30] = [
    "YYYY", "MMMM", "dddd", "SSS", "MMM", "ddd", "Do", "YY", "MM", "DD", "HH", "hh", "mm", "ss",
    "SS", "ZZ", "M", "D", "H", "h", "m", "s", "S", "A", "a", "X", "x", "Z", "E", "d",
];

/// Formats an instant in `zone` with a moment-style specifier. Text in
/// square brackets is copied as is.
pub fn format(ms: Millis, zone: Tz, spec: &str) -> String {
    let t: DateTime<Tz> = crate::clock::from_ms(ms).with_timezone(&zone);
    let mut out = String::with_capacity(spec.len() + 8);
    let mut rest = spec;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            if let Some(end) = rest.find(']') {
                out.push_str(&rest[1..end]);
                rest = &rest[end + 1..];
                continue;
            }
        }
        match TOKENS.iter().find(|tok| rest.starts_with(**tok)) {
            Some(tok) => {
                out.push_str(&format_token(&t, tok));
                rest = &rest[tok.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

fn format_token(t: &DateTime<Tz>, token: &str) -> String {
    let month0 = t.month0() as usize;
    let weekday = t.weekday().num_days_from_monday() as usize;
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    match token {
        "YYYY" => format!("{:04}", t.year()),
        "YY" => format!("{:02}", t.year().rem_euclid(100)),
        "MMMM" => MONTHS[month0].to_owned(),
        "MMM" => MONTHS[month0][..3].to_owned(),
        "MM" => format!("{:02}", t.month()),
        "M" => t.month().to_string(),
        "DD" => format!("{:02}", t.day()),
        "D" => t.day().to_string(),
        "Do" => ordinal(t.day()),
        "dddd" => DAYS[weekday].to_owned(),
        "ddd" => DAYS[weekday][..3].to_owned(),
        "d" => t.weekday().num_days_from_sunday().to_string(),
        "E" => (weekday + 1).to_string(),
        "HH" => format!("{:02}", t.hour()),
        "H" => t.hour().to_string(),
        "hh" => format!("{hour12:02}"),
        "h" => hour12.to_string(),
        "mm" => format!("{:02}", t.minute()),
        "m" => t.minute().to_string(),
        "ss" => format!("{:02}", t.second()),
        "s" => t.second().to_string(),
        "SSS" => format!("{:03}", t.timestamp_subsec_millis()),
        "SS" => format!("{:02}", t.timestamp_subsec_millis() / 10),
        "S" => (t.timestamp_subsec_millis() / 100).to_string(),
        "A" => if t.hour() < 12 { "AM" } else { "PM" }.to_owned(),
        "a" => if t.hour() < 12 { "am" } else { "pm" }.to_owned(),
        "X" => t.timestamp().to_string(),
        "x" => t.timestamp_millis().to_string(),
        "Z" => t.format("%:z").to_string(),
        "ZZ" => t.format("%z").to_string(),
        _ => String::new(),
    }
}

fn ordinal(day: u32) -> String {
    let suffix = match (day % 10, day % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    };
    format!("{day}{suffix}")
}

/// Parses `text` with a moment-style specifier, reading a zone-less result
/// in `zone`. Supports the numeric tokens, month names and AM/PM.
pub fn parse(text: &str, spec: &str, zone: Tz) -> Option<Millis> {
    if spec == "X" {
        return text.trim().parse::<i64>().ok().map(|s| s * 1000);
    }
    if spec == "x" {
        return text.trim().parse::<i64>().ok();
    }
    let (mut year, mut month, mut day) = (1970i32, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut milli) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut input = text.trim();
    let mut rest = spec;
    while let Some(c) = rest.chars().next() {
        let token = TOKENS.iter().find(|tok| rest.starts_with(**tok));
        match token {
            Some(tok) => {
                rest = &rest[tok.len()..];
                match *tok {
                    "MMMM" | "MMM" => {
                        let (m, used) = month_name(input)?;
                        month = m;
                        input = &input[used..];
                    }
                    "A" | "a" => {
                        let lower = input.get(..2)?.to_ascii_lowercase();
                        pm = Some(match lower.as_str() {
                            "am" => false,
                            "pm" => true,
                            _ => return None,
                        });
                        input = &input[2..];
                    }
                    _ => {
                        let max = match *tok {
                            "YYYY" => 4,
                            "SSS" => 3,
                            _ => 2,
                        };
                        let digits = input
                            .bytes()
                            .take(max)
                            .take_while(u8::is_ascii_digit)
                            .count();
                        if digits == 0 {
                            return None;
                        }
                        let n: u32 = input[..digits].parse().ok()?;
                        input = &input[digits..];
                        match *tok {
                            "YYYY" => year = i32::try_from(n).ok()?,
                            "YY" => year = 2000 + i32::try_from(n).ok()?,
                            "MM" | "M" => month = n,
                            "DD" | "D" => day = n,
                            "HH" | "H" | "hh" | "h" => hour = n,
                            "mm" | "m" => minute = n,
                            "ss" | "s" => second = n,
                            "SSS" => milli = n,
                            _ => {}
                        }
                    }
                }
            }
            None => {
                // Literal characters must match the input.
                let next = input.chars().next()?;
                if next != c {
                    return None;
                }
                input = &input[next.len_utf8()..];
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !input.trim().is_empty() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let naive: NaiveDateTime = date.and_hms_milli_opt(hour, minute, second, milli)?;
    crate::dates::local_to_ms(naive, zone)
}

fn month_name(input: &str) -> Option<(u32, usize)> {
    let lower = input.to_ascii_lowercase();
    for (i, name) in MONTHS.iter().enumerate() {
        let full = name.to_ascii_lowercase();
        let month = u32::try_from(i + 1).ok()?;
        if lower.starts_with(&full) {
            return Some((month, full.len()));
        }
        if lower.starts_with(&full[..3]) {
            return Some((month, 3));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Millis = 1_704_103_445_123; // 2024-01-01T10:04:05.123Z

    #[test]
    fn common_specifiers_format_as_moment_does() {
        assert_eq!(format(T, Tz::UTC, "YYYY-MM-DD"), "2024-01-01");
        assert_eq!(format(T, Tz::UTC, "M/D/YYYY h:mma"), "1/1/2024 10:04am");
        assert_eq!(format(T, Tz::UTC, "LL"), "LL");
        assert_eq!(format(T, Tz::UTC, "MMMM Do, YYYY"), "January 1st, 2024");
        assert_eq!(format(T, Tz::UTC, "HH:mm:ss.SSS"), "10:04:05.123");
        assert_eq!(format(T, Tz::UTC, "[Week] ddd"), "Week Mon");
    }

    #[test]
    fn parsing_with_a_specifier_reverses_formatting() {
        let spec = "DD/MM/YYYY HH:mm";
        let text = format(T, Tz::UTC, spec);
        let parsed = parse(&text, spec, Tz::UTC).expect("parses");
        assert_eq!(parsed, T - 5_123);
        assert_eq!(
            parse("3 March 2024", "D MMMM YYYY", Tz::UTC).map(|_| ()),
            Some(())
        );
        assert_eq!(parse("not a date", "YYYY-MM-DD", Tz::UTC), None);
    }
}
