//! Fuzzing of the formula parser and evaluator (`filterByFormula` is outside
//! input): arbitrary text, token soup and grammar-shaped formulas are parsed
//! and, when they parse, evaluated against records holding every kind of
//! value, extreme ones included. Nothing may panic, and a formula nested
//! deeper than the parser allows is an error, not a stack overflow.
//!
//! `AIRSYNC_FUZZ_SECS=600 cargo test -p airsync-emulator --test fuzz_formula
//! -- --nocapture` runs each property for that long; see docs/fuzzing.md.

use airsync_emulator::formula::{self, Context, Value};
use airsync_testkit::fuzz;
use proptest::prelude::*;

/// A record as the fuzzed formulas see it: a value per field name.
#[derive(Debug, Clone)]
struct Record {
    fields: Vec<(String, Value)>,
    created_ms: i64,
    modified_ms: Option<i64>,
    now_ms: i64,
}

impl Context for Record {
    fn field(&self, name: &str) -> Value {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Error("#ERROR!".into()))
    }

    fn record_id(&self) -> String {
        "recAAAAAAAAAAAAAA".into()
    }

    fn created_ms(&self) -> i64 {
        self.created_ms
    }

    fn last_modified_ms(&self, _fields: &[String]) -> Option<i64> {
        self.modified_ms
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

const FIELD_NAMES: [&str; 6] = ["Name", "Age", "When", "Tags", "Done", "Odd 'x' \"y\" {z"];

const FUNCTIONS: [&str; 42] = [
    "AND",
    "OR",
    "NOT",
    "XOR",
    "IF",
    "BLANK",
    "TRUE",
    "FALSE",
    "ISERROR",
    "RECORD_ID",
    "CREATED_TIME",
    "LAST_MODIFIED_TIME",
    "IS_AFTER",
    "IS_BEFORE",
    "IS_SAME",
    "DATETIME_PARSE",
    "DATETIME_FORMAT",
    "DATETIME_DIFF",
    "DATEADD",
    "NOW",
    "TODAY",
    "LOWER",
    "UPPER",
    "TRIM",
    "LEN",
    "FIND",
    "SEARCH",
    "CONCATENATE",
    "ARRAYJOIN",
    "VALUE",
    "INT",
    "ROUND",
    "ABS",
    "MAX",
    "MIN",
    "SUM",
    "LEFT",
    "RIGHT",
    "MID",
    "SUBSTITUTE",
    "nope",
    "lower",
];

const OPERATORS: [&str; 11] = ["+", "-", "*", "/", "&", "=", "!=", "<", "<=", ">", ">="];

/// Numbers that stress conversions: huge, tiny, negative, fractional.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6..1e6f64,
        Just(1e300),
        Just(-1e300),
        Just(9.3e18),
        Just(-9.3e18),
        Just(0.0),
        (-30i64..30).prop_map(|n| n as f64),
    ]
}

/// Instants from the far past to the far future, and out of range.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -8_000_000_000_000_000i64..8_000_000_000_000_000,
        0i64..4_000_000_000_000,
        Just(i64::MIN),
        Just(i64::MAX),
    ]
}

/// Text values: formula syntax, dates, units, moment tokens, unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 '\"\\\\{}(),.:TZ+-]{0,20}",
        Just("2024-05-01T09:30:00.000Z".to_owned()),
        Just("2024-02-29".to_owned()),
        Just("+275760-09-13T00:00:00Z".to_owned()),
        Just("YYYY-MM-DD[T]HH:mm:ss.SSS[Z] Q Do X x".to_owned()),
        prop::sample::select(vec!["days", "M", "Q", "y", "w", "ms", "hours", ""])
            .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Blank),
        number().prop_map(Value::Number),
        text().prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        instant().prop_map(Value::Date),
        Just(Value::Error("#ERROR!".into())),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Array)
    })
}

fn record() -> impl Strategy<Value = Record> {
    (
        prop::collection::vec(value(), FIELD_NAMES.len()),
        instant(),
        prop::option::of(instant()),
        instant(),
    )
        .prop_map(|(values, created_ms, modified_ms, now_ms)| Record {
            fields: FIELD_NAMES
                .iter()
                .map(|n| (*n).to_owned())
                .zip(values)
                .collect(),
            created_ms,
            modified_ms,
            now_ms,
        })
}

/// A string literal as a formula writes it: either quote, escapes,
/// unicode, sometimes left open.
fn string_literal() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!['\'', '"']),
        prop::collection::vec(
            prop_oneof![
                "\\PC".prop_map(|s: String| s),
                Just("\\'".to_owned()),
                Just("\\\"".to_owned()),
                Just("\\\\".to_owned()),
                Just("\\n".to_owned()),
                Just("{".to_owned()),
                Just("}".to_owned()),
                Just(")".to_owned()),
            ],
            0..8,
        ),
        prop::bool::weighted(0.97),
    )
        .prop_map(|(quote, parts, closed)| {
            let body: String = parts
                .concat()
                .chars()
                .filter(|&c| c != quote && c != '\\')
                .collect::<String>();
            let mut out = String::from(quote);
            out.push_str(&body);
            if closed {
                out.push(quote);
            }
            out
        })
}

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        number().prop_map(|n| {
            let t = format!("{n}");
            // Literals have no sign and no inf/NaN: those become words.
            t.trim_start_matches('-').to_owned()
        }),
        prop::sample::select(vec![
            "1e308", "1e400", ".", "1.2.3", "0.5e", "007", "1e-400"
        ])
        .prop_map(str::to_owned),
        string_literal(),
        prop::sample::select(FIELD_NAMES.to_vec()).prop_map(|n| format!("{{{n}}}")),
        prop::sample::select(vec![
            "{Missing}",
            "{}",
            "{Name",
            "Name",
            "TRUE",
            "false",
            "x_1"
        ])
        .prop_map(str::to_owned),
        Just("BLANK()".to_owned()),
        Just("NOW()".to_owned()),
        text().prop_map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "\\'"))),
    ]
}

/// Arguments that push functions to their edges: huge and negative
/// counts, every date unit, dates near and far.
fn edge_argument() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1e300",
            "-1e300",
            "9.3e18",
            "-9.3e18",
            "99999999999999999999",
            "2",
            "-2",
            "0",
            "0.5",
            "'y'",
            "'Q'",
            "'M'",
            "'w'",
            "'days'",
            "'ms'",
            "'h'",
            "'seconds'",
            "''",
            "'abc'",
            "'1e300'",
            "NOW()",
            "TODAY()",
            "CREATED_TIME()",
            "LAST_MODIFIED_TIME()",
            "{When}",
            "{Age}",
            "{Tags}",
            "DATETIME_PARSE('2024-05-01')",
            "DATETIME_PARSE('+275760-09-13T00:00:00Z')",
            "DATEADD(NOW(), 1e300, 'days')",
            "BLANK()",
            "'YYYY Q Do X x [T]'",
        ])
        .prop_map(str::to_owned),
        atom(),
    ]
}

/// A known function called with edge arguments.
fn edge_call() -> impl Strategy<Value = String> {
    (
        prop::sample::select(FUNCTIONS.to_vec()),
        prop::collection::vec(edge_argument(), 0..4),
    )
        .prop_map(|(f, args)| format!("{f}({})", args.join(", ")))
}

/// Grammar-shaped formulas: known (and unknown) functions with any
/// number of arguments, operators, unary minus, parentheses.
fn formula_text() -> impl Strategy<Value = String> {
    atom().prop_recursive(6, 48, 5, |inner| {
        prop_oneof![
            (
                prop::sample::select(FUNCTIONS.to_vec()),
                prop::collection::vec(inner.clone(), 0..5)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (
                inner.clone(),
                prop::sample::select(OPERATORS.to_vec()),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// Token soup: the right tokens in the wrong order.
fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(FUNCTIONS.to_vec()).prop_map(str::to_owned),
            prop::sample::select(OPERATORS.to_vec()).prop_map(str::to_owned),
            prop::sample::select(vec!["(", ")", ",", "{", "}", "'", "\"", "\\", "!", " "])
                .prop_map(str::to_owned),
            atom(),
        ],
        0..24,
    )
    .prop_map(|tokens| tokens.concat())
}

fn any_formula() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => formula_text(),
        3 => edge_call(),
        1 => token_soup(),
        1 => any::<String>(),
        1 => "[{}()'\"\\\\,=<>!&+*/.0-9eE a-zA-Z_\n\u{e9}\u{1F600}-]{0,40}",
    ]
}

/// Parses, and when it parses evaluates against the record: the values
/// themselves are not checked here, only that every step answers.
fn parse_and_evaluate(src: &str, record: &Record) {
    if let Ok(expr) = formula::parse(src) {
        let _ = expr.field_names();
        let value = formula::evaluate(&expr, record);
        let _ = formula::is_truthy(&value);
    }
}

#[test]
fn any_formula_parses_and_evaluates_without_panicking() {
    fuzz::run(
        "formula",
        file!(),
        2_000,
        (any_formula(), record()),
        |(src, record)| {
            parse_and_evaluate(&src, &record);
            Ok(())
        },
    );
}

/// Deep nesting of every kind the grammar has.
fn deep_formulas(depth: usize) -> Vec<String> {
    vec![
        format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
        format!("{}1", "-".repeat(depth)),
        format!("{}1", "+".repeat(depth)),
        format!("{}1", "- ".repeat(depth)),
        format!("{}TRUE(){}", "NOT(".repeat(depth), ")".repeat(depth)),
        format!("{}'x'{}", "MID(".repeat(depth), ", 1, 2)".repeat(depth)),
        format!("{}1{}", "IF(1, ".repeat(depth), ")".repeat(depth)),
        format!("{}1{}", "CONCATENATE(".repeat(depth), ")".repeat(depth)),
        format!("1{}", " + 1".repeat(depth)),
        format!("1{}", " & 1".repeat(depth)),
        format!("1{}", " = 1".repeat(depth)),
        format!("{{Age}}{}", " * {Age}".repeat(depth)),
        format!("{}1{}", "(1 + ".repeat(depth), ")".repeat(depth)),
        format!("{}1{}", "AND(1, ".repeat(depth), ")".repeat(depth)),
    ]
}

#[test]
fn a_deeply_nested_formula_is_an_error_not_a_stack_overflow() {
    for src in deep_formulas(100_000) {
        let head: String = src.chars().take(24).collect();
        assert!(
            formula::parse(&src).is_err(),
            "a formula nested 100000 deep ({head}...) should be refused"
        );
    }
}

#[test]
fn the_deepest_formula_allowed_evaluates_on_a_test_thread() {
    // Whatever depth the parser allows, evaluating (and dropping) it must
    // fit the stack of an ordinary thread; find the deepest accepted
    // formula of each shape and run it.
    let record = Record {
        fields: vec![("Age".into(), Value::Number(2.0))],
        created_ms: 0,
        modified_ms: None,
        now_ms: 0,
    };
    for shape in 0..deep_formulas(1).len() {
        let mut depth = 1;
        while depth < 100_000 && formula::parse(&deep_formulas(depth * 2)[shape]).is_ok() {
            depth *= 2;
        }
        let mut low = depth;
        let mut high = depth * 2;
        while high - low > 1 {
            let mid = (low + high) / 2;
            if formula::parse(&deep_formulas(mid)[shape]).is_ok() {
                low = mid;
            } else {
                high = mid;
            }
        }
        let src = &deep_formulas(low)[shape];
        parse_and_evaluate(src, &record);
    }
}

/// Cases the fuzzing found: counts that overflowed date and text
/// arithmetic. They answer an error (or a clipped text), not a panic.
#[test]
fn huge_counts_in_date_and_text_functions_are_errors_not_panics() {
    let record = Record {
        fields: vec![],
        created_ms: i64::MIN,
        modified_ms: None,
        now_ms: i64::MAX,
    };
    for (src, expected) in [
        ("DATEADD(NOW(), 1e300, 'days')", None),
        ("DATEADD(DATETIME_PARSE('2024-05-01'), 1e300, 'days')", None),
        ("DATEADD(DATETIME_PARSE('2024-05-01'), -1e300, 'y')", None),
        ("DATEADD(DATETIME_PARSE('2024-05-01'), 1e300, 'Q')", None),
        ("DATEADD(DATETIME_PARSE('2024-05-01'), 9.3e18, 'M')", None),
        (
            "DATETIME_DIFF(NOW(), CREATED_TIME(), 'ms')",
            Some(Value::Number(-1.0)),
        ),
        ("IS_SAME(CREATED_TIME(), CREATED_TIME(), 's')", None),
        ("MID('abc', 2, 1e300)", Some(Value::Text("bc".into()))),
    ] {
        let expr = formula::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let value = formula::evaluate(&expr, &record);
        match expected {
            None => assert!(matches!(value, Value::Error(_)), "{src} gave {value:?}"),
            Some(Value::Number(_)) => assert!(matches!(value, Value::Number(_)), "{src}"),
            Some(v) => assert_eq!(value, v, "{src}"),
        }
    }
}
