//! Splits a formula into tokens.

use super::FormulaError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    Number(f64),
    Text(String),
    Field(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, FormulaError> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '{' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| FormulaError("unterminated field reference".into()))?;
                let name: String = chars[i + 1..i + 1 + end].iter().collect();
                if name.is_empty() {
                    return Err(FormulaError("empty field reference".into()));
                }
                tokens.push(Token::Field(name));
                i += end + 2;
            }
            '\'' | '"' => {
                let (text, next) = string_literal(&chars, i)?;
                tokens.push(Token::Text(text));
                i = next;
            }
            '0'..='9' | '.' => {
                let (n, next) = number_literal(&chars, i)?;
                tokens.push(Token::Number(n));
                i = next;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    "!=" => Some("!="),
                    "<=" => Some("<="),
                    ">=" => Some(">="),
                    _ => None,
                };
                if let Some(op) = op {
                    tokens.push(Token::Op(op));
                    i += 2;
                    continue;
                }
                let op = match c {
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '&' => "&",
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    other => {
                        return Err(FormulaError(format!("unexpected character '{other}'")));
                    }
                };
                tokens.push(Token::Op(op));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// A quoted string; a backslash escapes the next character (`\n` and `\t`
/// are a newline and a tab), as Airtable and pyairtable's `quoted()` expect.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), FormulaError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let next = *chars
                    .get(i + 1)
                    .ok_or_else(|| FormulaError("unterminated string".into()))?;
                out.push(match next {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
                i += 2;
            }
            c if c == quote => return Ok((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(FormulaError("unterminated string".into()))
}

fn number_literal(chars: &[char], start: usize) -> Result<(f64, usize), FormulaError> {
    let mut i = start;
    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
        i += 1;
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            i = j;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text: String = chars[start..i].iter().collect();
    text.parse::<f64>()
        .map(|n| (n, i))
        .map_err(|_| FormulaError(format!("invalid number '{text}'")))
}
