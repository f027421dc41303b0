//! The functions the emulator knows. Anything else is an unknown function.

use chrono::{Datelike, Duration, Months, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::eval::{evaluate, is_truthy, to_date, to_number, to_text};
use super::{Context, Expr, Value};

macro_rules! functions {
    ($($variant:ident = $name:literal, $min:literal, $max:expr;)*) => {
        /// A known function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Function { $($variant),* }

        impl Function {
            /// The function with this name (any case).
            pub fn from_name(name: &str) -> Option<Function> {
                match name.to_ascii_uppercase().as_str() {
                    $($name => Some(Function::$variant),)*
                    _ => None,
                }
            }

            /// The function's name in upper case.
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name),* }
            }

            /// Minimum and maximum (None: unbounded) argument counts.
            pub fn arity(self) -> (usize, Option<usize>) {
                match self { $(Function::$variant => ($min, $max)),* }
            }
        }
    };
}

functions! {
    And = "AND", 1, None;
    Or = "OR", 1, None;
    Not = "NOT", 1, Some(1);
    Xor = "XOR", 1, None;
    If = "IF", 2, Some(3);
    Blank = "BLANK", 0, Some(0);
    True = "TRUE", 0, Some(0);
    False = "FALSE", 0, Some(0);
    IsError = "ISERROR", 1, Some(1);
    RecordId = "RECORD_ID", 0, Some(0);
    CreatedTime = "CREATED_TIME", 0, Some(0);
    LastModifiedTime = "LAST_MODIFIED_TIME", 0, None;
    IsAfter = "IS_AFTER", 2, Some(2);
    IsBefore = "IS_BEFORE", 2, Some(2);
    IsSame = "IS_SAME", 2, Some(3);
    DatetimeParse = "DATETIME_PARSE", 1, Some(3);
    DatetimeFormat = "DATETIME_FORMAT", 1, Some(2);
    DatetimeDiff = "DATETIME_DIFF", 2, Some(3);
    DateAdd = "DATEADD", 3, Some(3);
    Now = "NOW", 0, Some(0);
    Today = "TODAY", 0, Some(0);
    Lower = "LOWER", 1, Some(1);
    Upper = "UPPER", 1, Some(1);
    Trim = "TRIM", 1, Some(1);
    Len = "LEN", 1, Some(1);
    Find = "FIND", 2, Some(3);
    Search = "SEARCH", 2, Some(3);
    Concatenate = "CONCATENATE", 1, None;
    ArrayJoin = "ARRAYJOIN", 1, Some(2);
    Value = "VALUE", 1, Some(1);
    Int = "INT", 1, Some(1);
    Round = "ROUND", 1, Some(2);
    Abs = "ABS", 1, Some(1);
    Max = "MAX", 1, None;
    Min = "MIN", 1, None;
    Sum = "SUM", 1, None;
    Left = "LEFT", 2, Some(2);
    Right = "RIGHT", 2, Some(2);
    Mid = "MID", 3, Some(3);
    Substitute = "SUBSTITUTE", 3, Some(3);
}

fn error() -> Value {
    Value::Error("#ERROR!".into())
}

fn bool_number(b: bool) -> Value {
    Value::Number(if b { 1.0 } else { 0.0 })
}

/// Runs a function; `IF`, `AND` and `OR` evaluate their arguments lazily.
pub(super) fn call(f: Function, args: &[Expr], ctx: &dyn Context) -> Value {
    let arg = |i: usize| {
        args.get(i)
            .map(|a| evaluate(a, ctx))
            .unwrap_or(Value::Blank)
    };
    match f {
        Function::And => Value::Bool(args.iter().all(|a| is_truthy(&evaluate(a, ctx)))),
        Function::Or => Value::Bool(args.iter().any(|a| is_truthy(&evaluate(a, ctx)))),
        Function::Xor => {
            let trues = args.iter().filter(|a| is_truthy(&evaluate(a, ctx))).count();
            Value::Bool(trues % 2 == 1)
        }
        Function::Not => Value::Bool(!is_truthy(&arg(0))),
        Function::If => match arg(0) {
            Value::Error(e) => Value::Error(e),
            cond if is_truthy(&cond) => arg(1),
            _ => arg(2),
        },
        Function::Blank => Value::Blank,
        Function::True => Value::Bool(true),
        Function::False => Value::Bool(false),
        Function::IsError => Value::Bool(matches!(arg(0), Value::Error(_))),
        Function::RecordId => Value::Text(ctx.record_id()),
        Function::CreatedTime => Value::Date(ctx.created_ms()),
        Function::LastModifiedTime => {
            let names: Vec<String> = args
                .iter()
                .filter_map(|a| match a {
                    Expr::Field(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            ctx.last_modified_ms(&names)
                .map(Value::Date)
                .unwrap_or(Value::Blank)
        }
        Function::IsAfter | Function::IsBefore => match (to_date(&arg(0)), to_date(&arg(1))) {
            (Some(a), Some(b)) => bool_number(if f == Function::IsAfter { a > b } else { a < b }),
            _ => bool_number(false),
        },
        Function::IsSame => {
            let unit = if args.len() > 2 {
                to_text(&arg(2))
            } else {
                String::new()
            };
            match (to_date(&arg(0)), to_date(&arg(1))) {
                (Some(a), Some(b)) => match truncate(a, &unit).zip(truncate(b, &unit)) {
                    Some((x, y)) => bool_number(x == y),
                    None => error(),
                },
                _ => bool_number(false),
            }
        }
        Function::DatetimeParse => datetime_parse(&arg(0), args.get(1).map(|_| arg(1))),
        Function::DatetimeFormat => match to_date(&arg(0)) {
            Some(ms) => {
                let spec = if args.len() > 1 {
                    to_text(&arg(1))
                } else {
                    "YYYY-MM-DD[T]HH:mm:ss.SSS[Z]".to_owned()
                };
                Value::Text(crate::moment::format(ms, Tz::UTC, &spec))
            }
            None => error(),
        },
        Function::DatetimeDiff => {
            let unit = if args.len() > 2 {
                to_text(&arg(2))
            } else {
                "seconds".into()
            };
            match (to_date(&arg(0)), to_date(&arg(1)), unit_ms(&unit)) {
                // In i128: two far-apart instants overflow an i64 difference.
                (Some(a), Some(b), Some(per)) => {
                    Value::Number(((i128::from(a) - i128::from(b)) / i128::from(per)) as f64)
                }
                _ => error(),
            }
        }
        Function::DateAdd => match (to_date(&arg(0)), to_number(&arg(1))) {
            (Some(ms), Ok(count)) => date_add(ms, count, &to_text(&arg(2))).unwrap_or_else(error),
            _ => error(),
        },
        Function::Now => Value::Date(ctx.now_ms()),
        Function::Today => truncate(ctx.now_ms(), "day")
            .map(Value::Date)
            .unwrap_or_else(error),
        Function::Lower => Value::Text(to_text(&arg(0)).to_lowercase()),
        Function::Upper => Value::Text(to_text(&arg(0)).to_uppercase()),
        Function::Trim => Value::Text(to_text(&arg(0)).trim().to_owned()),
        Function::Len => Value::Number(to_text(&arg(0)).chars().count() as f64),
        Function::Find | Function::Search => find(f, &arg(0), &arg(1), args.get(2).map(|_| arg(2))),
        Function::Concatenate => {
            Value::Text(args.iter().map(|a| to_text(&evaluate(a, ctx))).collect())
        }
        Function::ArrayJoin => {
            let sep = if args.len() > 1 {
                to_text(&arg(1))
            } else {
                ", ".into()
            };
            match arg(0) {
                Value::Array(items) => {
                    Value::Text(items.iter().map(to_text).collect::<Vec<_>>().join(&sep))
                }
                other => Value::Text(to_text(&other)),
            }
        }
        Function::Value => {
            let text: String = to_text(&arg(0))
                .chars()
                .filter(|c| !matches!(c, ',' | '$' | ' '))
                .collect();
            text.parse::<f64>()
                .map(Value::Number)
                .unwrap_or_else(|_| error())
        }
        Function::Int => numeric(&arg(0), f64::floor),
        Function::Abs => numeric(&arg(0), f64::abs),
        Function::Round => {
            let digits = if args.len() > 1 {
                to_number(&arg(1)).unwrap_or(0.0)
            } else {
                0.0
            };
            let scale = 10f64.powi(digits as i32);
            numeric(&arg(0), |n| (n * scale).round() / scale)
        }
        Function::Max | Function::Min | Function::Sum => aggregate(f, args, ctx),
        Function::Left | Function::Right => {
            let text: Vec<char> = to_text(&arg(0)).chars().collect();
            let n = (to_number(&arg(1)).unwrap_or(0.0).max(0.0) as usize).min(text.len());
            let part = if f == Function::Left {
                &text[..n]
            } else {
                &text[text.len() - n..]
            };
            Value::Text(part.iter().collect())
        }
        Function::Mid => {
            let text: Vec<char> = to_text(&arg(0)).chars().collect();
            let start = (to_number(&arg(1)).unwrap_or(1.0).max(1.0) as usize - 1).min(text.len());
            let count = to_number(&arg(2)).unwrap_or(0.0).max(0.0) as usize;
            Value::Text(
                text[start..start.saturating_add(count).min(text.len())]
                    .iter()
                    .collect(),
            )
        }
        Function::Substitute => {
            let (text, old, new) = (to_text(&arg(0)), to_text(&arg(1)), to_text(&arg(2)));
            if old.is_empty() {
                Value::Text(text)
            } else {
                Value::Text(text.replace(&old, &new))
            }
        }
    }
}

fn numeric(v: &Value, f: impl Fn(f64) -> f64) -> Value {
    match to_number(v) {
        Ok(n) => Value::Number(f(n)),
        Err(e) => e,
    }
}

fn aggregate(f: Function, args: &[Expr], ctx: &dyn Context) -> Value {
    let mut numbers = Vec::new();
    for a in args {
        match evaluate(a, ctx) {
            Value::Array(items) => numbers.extend(items.iter().filter_map(|v| to_number(v).ok())),
            v => match to_number(&v) {
                Ok(n) => numbers.push(n),
                Err(e) => return e,
            },
        }
    }
    let n = match f {
        Function::Max => numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Function::Min => numbers.iter().copied().fold(f64::INFINITY, f64::min),
        _ => numbers.iter().sum(),
    };
    Value::Number(if n.is_infinite() { 0.0 } else { n })
}

fn find(f: Function, needle: &Value, haystack: &Value, start: Option<Value>) -> Value {
    let (mut needle, mut hay) = (to_text(needle), to_text(haystack));
    if f == Function::Search {
        needle = needle.to_lowercase();
        hay = hay.to_lowercase();
    }
    let start = start
        .and_then(|s| to_number(&s).ok())
        .unwrap_or(1.0)
        .max(1.0) as usize
        - 1;
    let chars: Vec<char> = hay.chars().collect();
    let skip: String = chars.iter().take(start).collect();
    let found = hay
        .get(skip.len()..)
        .and_then(|rest| rest.find(&needle))
        .map(|byte| hay[..skip.len() + byte].chars().count() + 1);
    match (found, f) {
        (Some(pos), _) => Value::Number(pos as f64),
        // FIND answers 0 and SEARCH answers blank when there is no match.
        (None, Function::Find) => Value::Number(0.0),
        (None, _) => Value::Blank,
    }
}

fn datetime_parse(text: &Value, format: Option<Value>) -> Value {
    if let Value::Date(ms) = text {
        return Value::Date(*ms);
    }
    let text = to_text(text);
    let parsed = match format {
        Some(spec) => crate::moment::parse(&text, &to_text(&spec), Tz::UTC),
        None => crate::dates::parse_datetime(&text, Tz::UTC),
    };
    parsed.map(Value::Date).unwrap_or_else(error)
}

/// Milliseconds in a fixed-length unit.
fn unit_ms(unit: &str) -> Option<i64> {
    Some(match canonical_unit(unit)? {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    })
}

fn canonical_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.trim() {
        "ms" | "millisecond" | "milliseconds" => "ms",
        "s" | "second" | "seconds" => "s",
        "m" | "minute" | "minutes" => "m",
        "h" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        "w" | "week" | "weeks" => "w",
        "M" | "month" | "months" => "M",
        "Q" | "quarter" | "quarters" => "Q",
        "y" | "year" | "years" => "y",
        _ => return None,
    })
}

/// `DATEADD`; `None` (an error) when the count is not finite or the result
/// is out of the range of dates.
fn date_add(ms: i64, count: f64, unit: &str) -> Option<Value> {
    let unit = canonical_unit(unit)?;
    if let Some(per) = unit_ms(unit) {
        let delta = count * per as f64;
        // Out of this range the sum below would not be a date anyway (the
        // cast saturates, the sum would overflow).
        if !delta.is_finite() || delta.abs() > 1e18 {
            return None;
        }
        let moved = ms.checked_add(delta as i64)?;
        return Utc
            .timestamp_millis_opt(moved)
            .single()
            .map(|_| Value::Date(moved));
    }
    if !count.is_finite() || count.abs() > f64::from(u32::MAX) {
        return None;
    }
    let months = match unit {
        "M" => count as i64,
        "Q" => count as i64 * 3,
        _ => count as i64 * 12,
    };
    let t = crate::clock::from_ms(ms);
    let span = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let moved = if months >= 0 {
        t.checked_add_months(span)
    } else {
        t.checked_sub_months(span)
    }?;
    Some(Value::Date(moved.timestamp_millis()))
}

/// The start of the unit (UTC) containing `ms`; exact ms when no unit.
fn truncate(ms: i64, unit: &str) -> Option<i64> {
    if unit.trim().is_empty() {
        return Some(ms);
    }
    let t = crate::clock::from_ms(ms);
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()?;
    let start = match canonical_unit(unit)? {
        "ms" => return Some(ms),
        "s" => return ms.checked_sub(ms.rem_euclid(1_000)),
        "m" => return ms.checked_sub(ms.rem_euclid(60_000)),
        "h" => day + Duration::hours(i64::from(t.hour())),
        "d" => day,
        "w" => day - Duration::days(i64::from(t.weekday().num_days_from_sunday())),
        "M" => Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single()?,
        "Q" => Utc
            .with_ymd_and_hms(t.year(), (t.month0() / 3) * 3 + 1, 1, 0, 0, 0)
            .single()?,
        _ => Utc.with_ymd_and_hms(t.year(), 1, 1, 0, 0, 0).single()?,
    };
    Some(start.timestamp_millis())
}
