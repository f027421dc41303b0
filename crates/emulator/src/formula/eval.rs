//! Evaluation: operators, conversions between value kinds, truthiness.

use super::functions::call;
use super::{BinOp, Expr, Value};

/// What a formula can read about the record it runs on.
pub trait Context {
    /// The value of a field (by name or id); `Blank` when empty.
    fn field(&self, name: &str) -> Value;
    /// The record's id.
    fn record_id(&self) -> String;
    /// When the record was created (ms since the epoch).
    fn created_ms(&self) -> i64;
    /// The latest edit of the named fields (of any field when empty).
    fn last_modified_ms(&self, fields: &[String]) -> Option<i64>;
    /// The time NOW() answers.
    fn now_ms(&self) -> i64;
}

/// Evaluates a parsed formula against one record.
pub fn evaluate(expr: &Expr, ctx: &dyn Context) -> Value {
    match expr {
        Expr::Number(n) => Value::Number(*n),
        Expr::Text(s) => Value::Text(s.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Field(name) => ctx.field(name),
        Expr::Neg(e) => match to_number(&evaluate(e, ctx)) {
            Ok(n) => Value::Number(-n),
            Err(e) => e,
        },
        Expr::Binary(op, a, b) => binary(*op, evaluate(a, ctx), evaluate(b, ctx)),
        Expr::Call(f, args) => call(*f, args, ctx),
    }
}

/// Whether a filter keeps the record: everything but 0, false, "", NaN,
/// [], blank and errors.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Blank | Value::Error(_) => false,
        Value::Number(n) => *n != 0.0 && !n.is_nan(),
        Value::Text(s) => !s.is_empty(),
        Value::Bool(b) => *b,
        Value::Date(_) => true,
        Value::Array(items) => !items.is_empty(),
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Value {
    if let Value::Error(e) = &a {
        return Value::Error(e.clone());
    }
    if let Value::Error(e) = &b {
        return Value::Error(e.clone());
    }
    match op {
        BinOp::Concat => Value::Text(to_text(&a) + &to_text(&b)),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => arithmetic(op, &a, &b),
        BinOp::Eq => Value::Bool(equals(&a, &b)),
        BinOp::Ne => Value::Bool(!equals(&a, &b)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => match compare(&a, &b) {
            Some(ord) => Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }),
            None => Value::Bool(false),
        },
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Value {
    // Date plus or minus a number of days is not Airtable's way (DATEADD
    // is), so dates only take part as errors here.
    let (x, y) = match (to_number(a), to_number(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let n = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Value::Error("#DIV/0!".into());
            }
            x / y
        }
    };
    Value::Number(n)
}

/// A number, as arithmetic sees a value: blank is 0, true is 1, numeric
/// text is its number; other text and dates are errors.
pub(super) fn to_number(v: &Value) -> Result<f64, Value> {
    match v {
        Value::Blank => Ok(0.0),
        Value::Number(n) => Ok(*n),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Text(s) if s.trim().is_empty() => Ok(0.0),
        Value::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| Value::Error("#ERROR!".into())),
        Value::Array(items) if items.len() == 1 => to_number(&items[0]),
        Value::Error(e) => Err(Value::Error(e.clone())),
        Value::Date(_) | Value::Array(_) => Err(Value::Error("#ERROR!".into())),
    }
}

/// Text, as `&` and the text functions see a value.
pub(super) fn to_text(v: &Value) -> String {
    match v {
        Value::Blank => String::new(),
        Value::Number(n) => number_text(*n),
        Value::Text(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Date(ms) => crate::clock::format_ms(*ms),
        Value::Array(items) => items.iter().map(to_text).collect::<Vec<_>>().join(", "),
        Value::Error(e) => e.clone(),
    }
}

/// A number as text: whole numbers without a decimal point.
pub(super) fn number_text(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_owned()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Whether a value counts as empty in a comparison with BLANK().
fn is_blankish(v: &Value) -> bool {
    match v {
        Value::Blank => true,
        Value::Text(s) => s.is_empty(),
        Value::Number(n) => *n == 0.0,
        Value::Bool(b) => !b,
        Value::Array(items) => items.is_empty(),
        Value::Date(_) | Value::Error(_) => false,
    }
}

/// `=`: blank equals every empty value (0, "", false, []) as in Airtable;
/// numbers compare with numeric text; dates with date text.
pub(super) fn equals(a: &Value, b: &Value) -> bool {
    if matches!(a, Value::Blank) || matches!(b, Value::Blank) {
        return is_blankish(a) && is_blankish(b);
    }
    compare(a, b).is_some_and(|o| o.is_eq())
}

/// Ordering between two values, `None` when they cannot be compared.
pub(super) fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    match (a, b) {
        (Date(x), other) | (other, Date(x)) => {
            let y = to_date(other)?;
            let (l, r) = if matches!(a, Date(_)) {
                (*x, y)
            } else {
                (y, *x)
            };
            Some(l.cmp(&r))
        }
        (Text(x), Text(y)) => Some(x.cmp(y)),
        (Array(_), _) | (_, Array(_)) => Some(to_text(a).cmp(&to_text(b))),
        (Text(t), other) | (other, Text(t)) => {
            let n = to_number(other).ok()?;
            let (l, r) = match t.trim().parse::<f64>() {
                Ok(tn) if matches!(a, Text(_)) => (tn, n),
                Ok(tn) => (n, tn),
                // Text that is not a number compares as text.
                Err(_) if matches!(a, Text(_)) => return Some(t.as_str().cmp(&to_text(other))),
                Err(_) => return Some(to_text(other).as_str().cmp(t.as_str())),
            };
            l.partial_cmp(&r)
        }
        _ => {
            let x = to_number(a).ok()?;
            let y = to_number(b).ok()?;
            x.partial_cmp(&y)
        }
    }
}

/// An instant from a value: dates, and ISO text.
pub(super) fn to_date(v: &Value) -> Option<i64> {
    match v {
        Value::Date(ms) => Some(*ms),
        Value::Text(s) => crate::dates::parse_datetime(s, chrono_tz::Tz::UTC),
        Value::Array(items) if items.len() == 1 => to_date(&items[0]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_equals_every_empty_value_but_not_a_filled_one() {
        for empty in [
            Value::Blank,
            Value::Number(0.0),
            Value::Text(String::new()),
            Value::Bool(false),
            Value::Array(vec![]),
        ] {
            assert!(equals(&Value::Blank, &empty), "{empty:?}");
        }
        assert!(!equals(&Value::Blank, &Value::Text("x".into())));
        assert!(!equals(&Value::Blank, &Value::Number(1.0)));
    }

    #[test]
    fn numeric_text_compares_as_a_number_and_other_text_as_text() {
        assert!(equals(&Value::Text("36".into()), &Value::Number(36.0)));
        assert_eq!(
            compare(&Value::Text("10".into()), &Value::Number(9.0)),
            Some(std::cmp::Ordering::Greater)
        );
        assert_eq!(
            compare(&Value::Text("b".into()), &Value::Text("a".into())),
            Some(std::cmp::Ordering::Greater)
        );
    }

    #[test]
    fn truthiness_follows_airtables_filter_rule() {
        for falsy in [
            Value::Blank,
            Value::Number(0.0),
            Value::Number(f64::NAN),
            Value::Text(String::new()),
            Value::Bool(false),
            Value::Array(vec![]),
            Value::Error("#ERROR!".into()),
        ] {
            assert!(!is_truthy(&falsy), "{falsy:?}");
        }
        for truthy in [
            Value::Number(-1.0),
            Value::Text("0".into()),
            Value::Bool(true),
            Value::Date(0),
            Value::Array(vec![Value::Blank]),
        ] {
            assert!(is_truthy(&truthy), "{truthy:?}");
        }
    }

    #[test]
    fn arithmetic_treats_blank_as_zero_and_rejects_words() {
        assert_eq!(
            binary(BinOp::Add, Value::Blank, Value::Number(2.0)),
            Value::Number(2.0)
        );
        assert!(matches!(
            binary(BinOp::Add, Value::Text("x".into()), Value::Number(2.0)),
            Value::Error(_)
        ));
        assert!(matches!(
            binary(BinOp::Div, Value::Number(1.0), Value::Number(0.0)),
            Value::Error(_)
        ));
        assert_eq!(
            binary(BinOp::Concat, Value::Number(1.5), Value::Bool(true)),
            Value::Text("1.51".into())
        );
    }
}
