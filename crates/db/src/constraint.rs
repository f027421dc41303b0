//! Recognising constraint violations by SQLSTATE and constraint name, never
//! by message text, so that callers can turn them into precise answers.

/// The kind of a violated constraint, from its SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// 23505 unique_violation.
    Unique,
    /// 23503 foreign_key_violation.
    ForeignKey,
    /// 23514 check_violation (also raised by the schema's trigger checks).
    Check,
    /// 23502 not_null_violation.
    NotNull,
    /// 23P01 exclusion_violation.
    Exclusion,
}

/// A violated constraint: its kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintViolation {
    /// What kind of constraint it is.
    pub kind: ConstraintKind,
    /// The constraint's name as the schema gives it (empty for NOT NULL).
    pub constraint: String,
}

/// The constraint that `err` violated, if it is a constraint violation.
pub fn constraint_violation(err: &sqlx::Error) -> Option<ConstraintViolation> {
    let db = err.as_database_error()?;
    let kind = match db.code()?.as_ref() {
        "23505" => ConstraintKind::Unique,
        "23503" => ConstraintKind::ForeignKey,
        "23514" => ConstraintKind::Check,
        "23502" => ConstraintKind::NotNull,
        "23P01" => ConstraintKind::Exclusion,
        _ => return None,
    };
    Some(ConstraintViolation {
        kind,
        constraint: db.constraint().unwrap_or_default().to_owned(),
    })
}
