//! Recursive-descent parser. Precedence, lowest first: comparisons, `&`,
//! `+ -`, `* /`, unary minus.

use super::lexer::{tokenize, Token};
use super::{BinOp, Expr, FormulaError, Function};

/// Parses a formula. Unknown functions, wrong argument counts and
/// malformed text are errors; field names are checked by the caller.
pub fn parse(src: &str) -> Result<Expr, FormulaError> {
    let tokens = tokenize(src)?;
    if tokens.is_empty() {
        return Err(FormulaError("the formula is empty".into()));
    }
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.comparison()?;
    match parser.peek() {
        None => Ok(expr),
        Some(t) => Err(FormulaError(format!("unexpected {t:?}"))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
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

    fn comparison(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.concat()?;
        while let Some(op) = self.peek_op(&["=", "!=", "<", "<=", ">", ">="]) {
            self.pos += 1;
            let right = self.concat()?;
            let op = match op {
                "=" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                _ => BinOp::Ge,
            };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn concat(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.additive()?;
        while self.peek_op(&["&"]).is_some() {
            self.pos += 1;
            let right = self.additive()?;
            left = Expr::Binary(BinOp::Concat, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.term()?;
        while let Some(op) = self.peek_op(&["+", "-"]) {
            self.pos += 1;
            let right = self.term()?;
            let op = if op == "+" { BinOp::Add } else { BinOp::Sub };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, FormulaError> {
        let mut left = self.unary()?;
        while let Some(op) = self.peek_op(&["*", "/"]) {
            self.pos += 1;
            let right = self.unary()?;
            let op = if op == "*" { BinOp::Mul } else { BinOp::Div };
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FormulaError> {
        match self.peek_op(&["-", "+"]) {
            Some("-") => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(_) => {
                self.pos += 1;
                self.unary()
            }
            None => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, FormulaError> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Text(s)) => Ok(Expr::Text(s)),
            Some(Token::Field(name)) => Ok(Expr::Field(name)),
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
                    match name.to_ascii_uppercase().as_str() {
                        "TRUE" => Ok(Expr::Bool(true)),
                        "FALSE" => Ok(Expr::Bool(false)),
                        _ => Ok(Expr::Field(name)),
                    }
                }
            }
            Some(t) => Err(FormulaError(format!("unexpected {t:?}"))),
            None => Err(FormulaError("the formula ends too early".into())),
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, FormulaError> {
        let function = Function::from_name(name)
            .ok_or_else(|| FormulaError(format!("Unknown function names: {name}")))?;
        let mut args = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.comparison()?);
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
        Ok(Expr::Call(function, args))
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
    fn function_names_are_case_insensitive() {
        assert!(parse("and(TRUE(), not(FALSE()))").is_ok());
    }
}
