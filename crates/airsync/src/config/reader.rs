//! Reading variables one by one while collecting every problem, so that a
//! bad configuration is reported whole rather than one variable per start.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// One variable with a bad or missing value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable's name.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in the order the variables were read.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// The error of a variable that a command needs and that is not set.
    pub fn missing(variable: &str, expected: &str) -> ConfigError {
        ConfigError {
            problems: vec![ConfigProblem {
                variable: variable.to_owned(),
                message: format!("is not set; expected {expected}"),
            }],
        }
    }
}

impl ConfigError {
    /// The error of a variable whose value turned out unusable later on.
    pub fn invalid(variable: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![ConfigProblem {
                variable: variable.to_owned(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid configuration: {} {}", one.variable, one.message),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  {} {}", problem.variable, problem.message)?;
                }
                Ok(())
            }
        }
    }
}

pub(super) struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader {
            lookup,
            problems: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, variable: &str, message: String) {
        self.problems.push(ConfigProblem {
            variable: variable.to_owned(),
            message,
        });
    }

    /// The trimmed value; an empty value counts as unset, as in most `.env`
    /// tools.
    fn raw(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// Parses a variable when it is set; records a problem when it is bad.
    pub(super) fn optional<T>(
        &mut self,
        variable: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(variable)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(message) => {
                self.problem(variable, message);
                None
            }
        }
    }

    /// A whole number within `range`, or `default` when unset.
    pub(super) fn number<T>(&mut self, variable: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.optional(variable, |raw| {
            let value: T = raw
                .parse()
                .map_err(|_| format!("must be a whole number, got {raw:?}"))?;
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(format!(
                    "must be between {} and {}, got {value}",
                    range.start(),
                    range.end()
                ))
            }
        })
        .unwrap_or(default)
    }

    /// A number of seconds within `range`.
    pub(super) fn seconds(
        &mut self,
        variable: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Duration {
        Duration::from_secs(self.number(variable, default, range))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    pub(super) fn flag(&mut self, variable: &str, default: bool) -> bool {
        self.optional(variable, |raw| match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("must be true or false, got {raw:?}")),
        })
        .unwrap_or(default)
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}
