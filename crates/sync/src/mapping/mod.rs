//! The mapping between PostgreSQL and the Airtable base: each entity's table
//! on both sides, each column's field and how its values convert, and who
//! owns the truth. It is read from a TOML file (`config/mapping.toml` by
//! default, `SYNC_MAPPING_PATH` otherwise) and checked whole: structure here,
//! the PostgreSQL schema in [`check_against_database`], the base's schema in
//! [`check_against_base`]. Every mismatch is reported in one message that
//! names the entity and the field.

mod base_check;
mod db_check;
mod file;
mod model;

pub use base_check::{check_against_base, BaseField, BaseSchemaView, BaseTable};
pub use db_check::check_against_database;
pub use model::{
    DeletePolicy, Direction, EntityMapping, FieldKind, FieldMapping, JoinTable, Mapping, Owner,
};

use std::fmt;
use std::path::PathBuf;

/// The default mapping for the base of docs/domain.md, shipped with the binary.
pub const DEFAULT_MAPPING_TOML: &str = include_str!("../../../../config/mapping.toml");

/// Why a mapping cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file could not be read.
    #[error("reading the mapping {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the mapping's shape.
    #[error("the mapping {source_name} does not parse: {message}")]
    Parse {
        /// The file, or "(built-in)".
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The mapping parsed but disagrees with itself, the database or the base.
    #[error("{0}")]
    Mismatch(Mismatches),
    /// Reading the database's schema failed.
    #[error("reading the database schema: {0}")]
    Database(#[from] sqlx::Error),
}

/// Every mismatch found by one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatches {
    /// What was checked against, e.g. "the PostgreSQL schema".
    pub against: String,
    /// One line per mismatch, each naming the entity and field.
    pub problems: Vec<String>,
}

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the mapping does not match {} ({} problem{}):",
            self.against,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Collects problems and turns them into an error when there are any.
pub(crate) struct ProblemList {
    against: &'static str,
    problems: Vec<String>,
}

impl ProblemList {
    pub(crate) fn new(against: &'static str) -> Self {
        Self {
            against,
            problems: Vec::new(),
        }
    }

    pub(crate) fn entity(&mut self, entity: &str, message: impl fmt::Display) {
        self.problems.push(format!("entity {entity}: {message}"));
    }

    pub(crate) fn field(&mut self, entity: &str, field: &str, message: impl fmt::Display) {
        self.problems
            .push(format!("entity {entity}, field {field:?}: {message}"));
    }

    pub(crate) fn finish(self) -> Result<(), MappingError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(MappingError::Mismatch(Mismatches {
                against: self.against.to_owned(),
                problems: self.problems,
            }))
        }
    }
}

#[cfg(test)]
mod tests;
