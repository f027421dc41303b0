//! Airtable formulas, as `filterByFormula` uses them: a parser and an
//! evaluator for the subset clients and the sync engine send.
//!
//! ```
//! use airsync_emulator::formula::{self, Value};
//! let expr = formula::parse("AND({Age} >= 18, LOWER({Name}) = 'ada')").unwrap();
//! assert_eq!(expr.field_names(), vec!["Age".to_string(), "Name".to_string()]);
//! ```

mod eval;
mod functions;
mod lexer;
mod parser;

pub use eval::{evaluate, is_truthy, Context};
pub use functions::Function;
pub use parser::{parse, MAX_DEPTH};

/// A parse or reference error; the text goes after Airtable's prefix
/// "The formula for filtering records is invalid: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormulaError(pub String);

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `&` (text concatenation)
    Concat,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal.
    Number(f64),
    /// A string literal, escapes resolved.
    Text(String),
    /// `TRUE` / `FALSE` written without parentheses.
    Bool(bool),
    /// A field reference, `{Name}`, `{fld…}` or a bare single word.
    Field(String),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Function, Vec<Expr>),
}

impl Expr {
    /// Every field the formula references, in order of first appearance.
    pub fn field_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::Field(name) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Expr::Neg(e) => e.collect_fields(out),
            Expr::Binary(_, a, b) => {
                a.collect_fields(out);
                b.collect_fields(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.collect_fields(out)),
            Expr::Number(_) | Expr::Text(_) | Expr::Bool(_) => {}
        }
    }
}

/// A formula value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty cell or `BLANK()`.
    Blank,
    /// A number (NaN possible).
    Number(f64),
    /// Text.
    Text(String),
    /// A logical value.
    Bool(bool),
    /// An instant, in ms since the epoch.
    Date(i64),
    /// A list (multiple selects, links, attachments).
    Array(Vec<Value>),
    /// `#ERROR!` and its kin.
    Error(String),
}
