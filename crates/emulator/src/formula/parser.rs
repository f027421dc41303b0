//! Recursive-descent parser. Precedence, lowest first: comparisons, `&`,
//! `+ -`, `* /`, unary minus.

use super::lexer::{tokenize, Token};
use super::{BinOp, Expr, FormulaError, Function};

/// How deep a formula may nest: parentheses, calls, operators and signs
/// each count. Far beyond any real filter, and shallow enough that parsing,
/// evaluating and dropping a formula fits the stack of any thread.
pub const MAX_DEPTH: usize = 128;

/// Parses a formula. Unknown functions, wrong argument counts, malformed
/// text and nesting deeper than [`MAX_DEPTH`] are errors; field names are
/// checked by the caller.
pub fn parse(src: &str) -> Result<Expr, FormulaError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(FormulaError("the formula is empty".into()));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        nesting: 0,
    };
    let expr = parser.comparison()?;
    match parser.peek() {
        None => Ok(expr.expr),
        Some(t) => Err(FormulaError(format!("unexpected {t:?}"))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// How many `comparison`/`unary` calls are under way: bounds the
    /// parser's own recursion (parentheses and `+` signs add none to the
    /// tree).
    nesting: usize,
}

/// An expression and the depth of its tree.
struct Node {
    expr: Expr,
    depth: usize,
}

fn too_deep() -> FormulaError {
    FormulaError(format!(
        "the formula is nested more than {MAX_DEPTH} levels deep"
    ))
}

impl Node {
    fn leaf(expr: Expr) -> Node {
        Node { expr, depth: 1 }
    }

    fn binary(op: BinOp, left: Node, right: Node) -> Result<Node, FormulaError> {
        let depth = 1 + left.depth.max(right.depth);
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(Node {
            expr: Expr::Binary(op, Box::new(left.expr), Box::new(right.expr)),
            depth,
        })
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_op(&self, ops: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(Token::Op(op)) if ops.contains(op) => Some(op),
            _ => None,
        }
    }

    /// Runs one nested step of the parser, refusing to go deeper than the
    /// limit.
    fn nested(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<Node, FormulaError>,
    ) -> Result<Node, FormulaError> {
        if self.nesting >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.nesting += 1;
        let node = step(self);
        self.nesting -= 1;
        node
    }

    fn comparison(&mut self) -> Result<Node, FormulaError> {
        self.nested(|p| {
            let mut left = p.concat()?;
            while let Some(op) = p.peek_op(&["=", "!=", "<", "<=", ">", ">="]) {
                p.pos += 1;
                let right = p.concat()?;
                let op = match op {
                    "=" => BinOp::Eq,
                    "!=" => BinOp::Ne,
                    "<" => BinOp::Lt,
                    "<=" => BinOp::Le,
                    ">" => BinOp::Gt,
                    _ => BinOp::Ge,
                };
                left = Node::binary(op, left, right)?;
            }
            Ok(left)
        })
    }

    fn concat(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.additive()?;
        while self.peek_op(&["&"]).is_some() {
            self.pos += 1;
            let right = self.additive()?;
            left = Node::binary(BinOp::Concat, left, right)?;
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.term()?;
        while let Some(op) = self.peek_op(&["+", "-"]) {
            self.pos += 1;
            let right = self.term()?;
            let op = if op == "+" { BinOp::Add } else { BinOp::Sub };
            left = Node::binary(op, left, right)?;
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.unary()?;
        while let Some(op) = self.peek_op(&["*", "/"]) {
            self.pos += 1;
            let right = self.unary()?;
            let op = if op == "*" { BinOp::Mul } else { BinOp::Div };
            left = Node::binary(op, left, right)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, FormulaError> {
        match self.peek_op(&["-", "+"]) {
            Some("-") => {
                self.pos += 1;
                let inner = self.nested(Self::unary)?;
                if inner.depth >= MAX_DEPTH {
                    return Err(too_deep());
                }
                Ok(Node {
                    expr: Expr::Neg(Box::new(inner.expr)),
                    depth: inner.depth + 1,
                })
            }
            Some(_) => {
                self.pos += 1;
                self.nested(Self::unary)
            }
            None => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, FormulaError> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Node::leaf(Expr::Number(n))),
            Some(Token::Text(s)) => Ok(Node::leaf(Expr::Text(s))),
            Some(Token::Field(name)) => Ok(Node::leaf(Expr::Field(name))),
            Some(Token::LParen) => {
                let inner = self.comparison()?;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    _ => Err(FormulaError("missing closing parenthesis".into())),
                }
            }
            Some(Token::Ident(name)) => {
                if self.peek() == Some(&Token::LParen) {
                    self.pos += 1;
                    self.call(&name)
                } else {
                    Ok(Node::leaf(match name.to_ascii_uppercase().as_str() {
                        "TRUE" => Expr::Bool(true),
                        "FALSE" => Expr::Bool(false),
                        _ => Expr::Field(name),
                    }))
                }
            }
            Some(t) => Err(FormulaError(format!("unexpected {t:?}"))),
            None => Err(FormulaError("the formula ends too early".into())),
        }
    }

    fn call(&mut self, name: &str) -> Result<Node, FormulaError> {
        let function = Function::from_name(name)
            .ok_or_else(|| FormulaError(format!("Unknown function names: {name}")))?;
        let mut args = Vec::new();
        let mut depth = 1;
        if self.peek() == Some(&Token::RParen) {
            self.pos += 1;
        } else {
            loop {
                let arg = self.comparison()?;
                depth = depth.max(arg.depth + 1);
                if depth > MAX_DEPTH {
                    return Err(too_deep());
                }
                args.push(arg.expr);
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::RParen) => break,
                    _ => return Err(FormulaError(format!("malformed arguments of {name}"))),
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || max.is_some_and(|m| args.len() > m) {
            return Err(FormulaError(format!(
                "{} takes {}{} arguments, not {}",
                function.name(),
                min,
                max.map(|m| if m == min {
                    String::new()
                } else {
                    format!(" to {m}")
                })
                .unwrap_or_else(|| " or more".into()),
                args.len()
            )));
        }
        if function == Function::LastModifiedTime
            && args.iter().any(|a| !matches!(a, Expr::Field(_)))
        {
            return Err(FormulaError(
                "LAST_MODIFIED_TIME takes field references only".into(),
            ));
        }
        Ok(Node {
            expr: Expr::Call(function, args),
            depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_puts_comparison_lowest_and_multiplication_highest() {
        let e = parse("1 + 2 * 3 = 7").expect("parses");
        let Expr::Binary(BinOp::Eq, left, _) = e else {
            panic!("expected a comparison at the top, got {e:?}");
        };
        assert!(matches!(*left, Expr::Binary(BinOp::Add, _, _)));
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let e = parse(r"{Name} = 'it\'s \\ fine'").expect("parses");
        let Expr::Binary(_, _, right) = e else {
            panic!("expected a comparison");
        };
        assert_eq!(*right, Expr::Text(r"it's \ fine".into()));
    }

    #[test]
    fn malformed_formulas_and_unknown_functions_are_errors() {
        for bad in [
            "",
            "AND(",
            "{Name",
            "'open",
            "1 +",
            "NOPE(1)",
            "IF()",
            "1 2",
            "LEN(1, 2)",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn nesting_is_refused_past_the_limit_and_allowed_up_to_it() {
        let parens = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&parens(MAX_DEPTH - 1)).is_ok());
        assert!(parse(&parens(MAX_DEPTH + 1)).is_err());
        let chain = |n: usize| format!("1{}", " + 1".repeat(n));
        assert!(parse(&chain(MAX_DEPTH - 1)).is_ok());
        let err = parse(&chain(MAX_DEPTH)).expect_err("too deep");
        assert!(err.0.contains("nested"), "{err}");
        let calls = |n: usize| format!("{}1{}", "NOT(".repeat(n), ")".repeat(n));
        assert!(parse(&calls(MAX_DEPTH - 1)).is_ok());
        assert!(parse(&calls(MAX_DEPTH)).is_err());
    }

    #[test]
    fn a_long_flat_formula_is_not_too_deep() {
        let many = vec!["RECORD_ID() = 'rec1'"; 5_000].join(", ");
        assert!(parse(&format!("OR({many})")).is_ok());
    }

    #[test]
    fn function_names_are_case_insensitive() {
        assert!(parse("and(TRUE(), not(FALSE()))").is_ok());
    }
}
