//! A builder of Airtable formulas (`filterByFormula`) in which a value can
//! never change a formula's meaning.
//!
//! Text becomes a single-quoted literal with backslashes escaped first and
//! quotes second, so no input can close the literal early; numbers,
//! booleans and dates become typed literals; a field is referenced by id or
//! by a name that cannot close its braces. Operands that are themselves
//! comparisons are parenthesised, so composition keeps its structure.
//!
//! ```
//! use airsync_airtable::formula::{self, and, field, field_id, text};
//!
//! let hostile = "x', TRUE(), '";
//! let f = and([
//!     field("Email").unwrap().equals(text(hostile)),
//!     field_id("fldAAAAAAAAAAAAAA").unwrap().greater_than(formula::int(3)),
//! ]);
//! assert_eq!(
//!     f.as_str(),
//!     r"AND({Email} = 'x\', TRUE(), \'', {fldAAAAAAAAAAAAAA} > 3)"
//! );
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// A well-formed formula (or formula fragment: a field reference, a
/// literal), ready for [`ListOptions::filter`](crate::ListOptions::filter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Formula {
    text: String,
    /// Whether the text can be an operand without parentheses.
    atomic: bool,
}

impl Formula {
    fn atom(text: String) -> Self {
        Formula { text, atomic: true }
    }

    /// A formula written by hand. Only for text that comes from the code or
    /// its configuration, never from a user: nothing in it is escaped.
    pub fn from_trusted(text: impl Into<String>) -> Self {
        Formula {
            text: text.into(),
            atomic: false,
        }
    }

    /// The formula's text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The formula's text, by value.
    pub fn into_string(self) -> String {
        self.text
    }

    fn operand(&self) -> String {
        if self.atomic {
            self.text.clone()
        } else {
            format!("({})", self.text)
        }
    }

    fn compare(self, op: &str, other: Formula) -> Formula {
        Formula {
            text: format!("{} {op} {}", self.operand(), other.operand()),
            atomic: false,
        }
    }

    /// `self = other`.
    pub fn equals(self, other: Formula) -> Formula {
        self.compare("=", other)
    }

    /// `self != other`.
    pub fn not_equals(self, other: Formula) -> Formula {
        self.compare("!=", other)
    }

    /// `self < other`.
    pub fn less_than(self, other: Formula) -> Formula {
        self.compare("<", other)
    }

    /// `self <= other`.
    pub fn at_most(self, other: Formula) -> Formula {
        self.compare("<=", other)
    }

    /// `self > other`.
    pub fn greater_than(self, other: Formula) -> Formula {
        self.compare(">", other)
    }

    /// `self >= other`.
    pub fn at_least(self, other: Formula) -> Formula {
        self.compare(">=", other)
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A reference to a field by name, `{Name}`.
///
/// Airtable has no reliable escape for `}` inside a field reference, so a
/// name containing one (or an empty name) is refused: reference such a
/// field by id.
pub fn field(name: &str) -> Result<Formula> {
    if name.is_empty() || name.contains('}') {
        return Err(Error::InvalidInput(format!(
            "field name {name:?} cannot be referenced in a formula; use its field id"
        )));
    }
    Ok(Formula::atom(format!("{{{name}}}")))
}

/// A reference to a field by id, `{fld…}`, which survives renames.
pub fn field_id(id: &str) -> Result<Formula> {
    let valid = id
        .strip_prefix("fld")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !valid {
        return Err(Error::InvalidInput(format!("{id:?} is not a field id")));
    }
    Ok(Formula::atom(format!("{{{id}}}")))
}

/// A text literal holding exactly `value`, whatever it contains.
pub fn text(value: &str) -> Formula {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        // Backslash first (so the escapes added for quotes stay escapes),
        // then the quote that delimits the literal.
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Formula::atom(out)
}

/// A whole-number literal.
pub fn int(value: i64) -> Formula {
    let text = value.to_string();
    if value < 0 {
        Formula::from_trusted(text)
    } else {
        Formula::atom(text)
    }
}

/// A number literal; NaN and infinities have no literal and are refused.
pub fn number(value: f64) -> Result<Formula> {
    if !value.is_finite() {
        return Err(Error::InvalidInput(format!(
            "{value} cannot be written in a formula"
        )));
    }
    // Rust prints floats in plain decimal notation (never with an
    // exponent), which Airtable's parser reads.
    let text = value.to_string();
    Ok(if value.is_sign_negative() {
        Formula::from_trusted(text)
    } else {
        Formula::atom(text)
    })
}

/// `TRUE()` or `FALSE()`.
pub fn boolean(value: bool) -> Formula {
    Formula::atom(if value { "TRUE()" } else { "FALSE()" }.to_owned())
}

/// A date, `DATETIME_PARSE('2024-05-01')`.
pub fn date(value: NaiveDate) -> Formula {
    let literal = text(&value.format("%Y-%m-%d").to_string());
    Formula::atom(format!("DATETIME_PARSE({literal})"))
}

/// An instant, `DATETIME_PARSE('2024-05-01T09:30:00.000Z')`.
pub fn date_time(value: DateTime<Utc>) -> Formula {
    let literal = text(&value.to_rfc3339_opts(SecondsFormat::Millis, true));
    Formula::atom(format!("DATETIME_PARSE({literal})"))
}

/// `BLANK()`, the empty value.
pub fn blank() -> Formula {
    Formula::atom("BLANK()".to_owned())
}

fn call(function: &str, args: impl IntoIterator<Item = Formula>) -> Formula {
    let args: Vec<String> = args.into_iter().map(|f| f.text).collect();
    Formula::atom(format!("{function}({})", args.join(", ")))
}

/// `AND(…)`; `TRUE()` when there is nothing to combine.
pub fn and(conditions: impl IntoIterator<Item = Formula>) -> Formula {
    let conditions: Vec<Formula> = conditions.into_iter().collect();
    if conditions.is_empty() {
        return boolean(true);
    }
    call("AND", conditions)
}

/// `OR(…)`; `FALSE()` when there is nothing to combine.
pub fn or(conditions: impl IntoIterator<Item = Formula>) -> Formula {
    let conditions: Vec<Formula> = conditions.into_iter().collect();
    if conditions.is_empty() {
        return boolean(false);
    }
    call("OR", conditions)
}

/// `NOT(…)`.
pub fn not(condition: Formula) -> Formula {
    call("NOT", [condition])
}

/// `RECORD_ID()`, the id of the record being tested.
pub fn record_id() -> Formula {
    Formula::atom("RECORD_ID()".to_owned())
}

/// True for the records with these ids: `OR(RECORD_ID() = 'rec…', …)`.
/// Long lists are fine: the client switches to `POST …/listRecords` when
/// the URL would be too long.
pub fn record_id_in<I, S>(ids: I) -> Formula
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    or(ids
        .into_iter()
        .map(|id| record_id().equals(text(id.as_ref()))))
}

/// True for records edited after `since`:
/// `IS_AFTER(LAST_MODIFIED_TIME(), DATETIME_PARSE('…'))`.
///
/// Airtable's modification times look second-grained and changes to
/// computed fields do not move them: poll with an overlap (subtract a few
/// seconds from the last checkpoint) and skip records already applied.
pub fn modified_since(since: DateTime<Utc>) -> Formula {
    call(
        "IS_AFTER",
        [call("LAST_MODIFIED_TIME", []), date_time(since)],
    )
}

/// True for records whose given fields were edited after `since`:
/// `IS_AFTER(LAST_MODIFIED_TIME({a}, {b}), DATETIME_PARSE('…'))`.
pub fn fields_modified_since(
    fields: impl IntoIterator<Item = Formula>,
    since: DateTime<Utc>,
) -> Formula {
    call(
        "IS_AFTER",
        [call("LAST_MODIFIED_TIME", fields), date_time(since)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_backslashes_before_quotes() {
        assert_eq!(text(r"a\'b").as_str(), r"'a\\\'b'");
        assert_eq!(text("it's").as_str(), r"'it\'s'");
        assert_eq!(text(r"ends with \").as_str(), r"'ends with \\'");
        assert_eq!(text("say \"hi\"").as_str(), "'say \"hi\"'");
        assert_eq!(text("").as_str(), "''");
    }

    #[test]
    fn an_injection_attempt_stays_inside_its_literal() {
        let f = or([field("Email")
            .unwrap_or_else(|e| panic!("{e}"))
            .equals(text("x', TRUE(), '"))]);
        assert_eq!(f.as_str(), r"OR({Email} = 'x\', TRUE(), \'')");
    }

    #[test]
    fn field_names_that_could_close_their_braces_are_refused() {
        assert!(field("a}b").is_err());
        assert!(field("").is_err());
        assert_eq!(field("Due {date}").ok().map(|f| f.into_string()), None);
        assert_eq!(
            field("Due date").ok().map(|f| f.into_string()),
            Some("{Due date}".into())
        );
        assert!(field_id("fldAB12").is_ok());
        assert!(field_id("fld}").is_err());
        assert!(field_id("Name").is_err());
    }

    #[test]
    fn comparisons_of_comparisons_are_parenthesised() {
        let inner = field("A").map(|a| a.equals(int(1)));
        let f = inner.map(|inner| inner.equals(boolean(true)));
        assert_eq!(
            f.ok().map(Formula::into_string),
            Some("({A} = 1) = TRUE()".into())
        );
        assert_eq!(
            field("N")
                .map(|n| n.greater_than(int(-3)).into_string())
                .ok(),
            Some("{N} > (-3)".into())
        );
    }

    #[test]
    fn numbers_booleans_and_dates_are_typed_literals() {
        assert_eq!(
            number(0.5).ok().map(Formula::into_string),
            Some("0.5".into())
        );
        assert_eq!(
            number(1e21).ok().map(Formula::into_string),
            Some("1000000000000000000000".into())
        );
        assert!(number(f64::NAN).is_err());
        assert_eq!(boolean(false).as_str(), "FALSE()");
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap_or_default();
        assert_eq!(date(day).as_str(), "DATETIME_PARSE('2024-05-01')");
    }

    #[test]
    fn id_lists_and_modification_filters_have_airtables_shape() {
        assert_eq!(
            record_id_in(["recA", "recB"]).as_str(),
            "OR(RECORD_ID() = 'recA', RECORD_ID() = 'recB')"
        );
        assert_eq!(record_id_in(Vec::<String>::new()).as_str(), "FALSE()");
        assert_eq!(and([]).as_str(), "TRUE()");
        let since = DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            modified_since(since).as_str(),
            "IS_AFTER(LAST_MODIFIED_TIME(), DATETIME_PARSE('2024-05-01T00:00:00.000Z'))"
        );
        let fields = field("Name").into_iter();
        assert_eq!(
            fields_modified_since(fields, since).as_str(),
            "IS_AFTER(LAST_MODIFIED_TIME({Name}), DATETIME_PARSE('2024-05-01T00:00:00.000Z'))"
        );
        assert_eq!(not(boolean(true)).as_str(), "NOT(TRUE())");
    }
}
