//! filterByFormula through the API, and the evaluator against a small
//! reference model (property test).

use airsync_emulator::formula::{self, Context, Value};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{emulator, enc, people, Client, BASE};

async fn names_matching(client: &Client, formula: &str) -> Vec<String> {
    let page = client
        .get(&format!(
            "/v0/{BASE}/People?filterByFormula={}",
            enc(formula)
        ))
        .await
        .expect(200);
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["fields"]["Name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn formulas_filter_records_with_airtable_semantics() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            vec![
                json!({"Name": "Ada", "Age": 36, "Done": true, "Level": "High"}),
                json!({"Name": "bob", "Age": 0, "Notes": "it's \"quoted\""}),
                json!({"Name": "Cy"}),
            ],
        )
        .await;
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("{Age} > 10", vec!["Ada"]),
        ("{Age} = 0", vec!["bob", "Cy"]),
        ("{Age} = BLANK()", vec!["bob", "Cy"]),
        ("{Done}", vec!["Ada"]),
        ("{Done} = TRUE()", vec!["Ada"]),
        ("NOT({Done})", vec!["bob", "Cy"]),
        ("AND({Age} >= 0, LEN({Name}) = 3)", vec!["Ada", "bob"]),
        ("OR(LOWER({Name}) = 'ada', UPPER({Name}) = \"CY\")", vec!["Ada", "Cy"]),
        (r#"{Notes} = 'it\'s "quoted"'"#, vec!["bob"]),
        ("FIND('o', {Name})", vec!["bob"]),
        ("SEARCH('A', {Name}) = 1", vec!["Ada"]),
        ("IF({Level} = 'High', 1, 0)", vec!["Ada"]),
        ("{Name} & '-' & {Age} = 'Ada-36'", vec!["Ada"]),
        ("CONCATENATE({Name}, '!') = 'Cy!'", vec!["Cy"]),
        ("VALUE('36') = {Age}", vec!["Ada"]),
        ("INT({Age} / 5) = 7", vec!["Ada"]),
        ("TRIM('  x ') = 'x'", vec!["Ada", "bob", "Cy"]),
        ("RECORD_ID() != ''", vec!["Ada", "bob", "Cy"]),
        ("IS_AFTER(CREATED_TIME(), DATETIME_PARSE('2000-01-01'))", vec!["Ada", "bob", "Cy"]),
        ("IS_AFTER(LAST_MODIFIED_TIME({Age}), NOW())", vec![]),
        ("IS_SAME(DATEADD(DATETIME_PARSE('2024-01-31'), 1, 'months'), '2024-02-29', 'day')", vec!["Ada", "bob", "Cy"]),
        ("DATETIME_FORMAT(DATETIME_PARSE('05/03/2024', 'DD/MM/YYYY'), 'YYYY-MM-DD') = '2024-03-05'", vec!["Ada", "bob", "Cy"]),
        ("IS_AFTER(TODAY(), '2020-01-01')", vec!["Ada", "bob", "Cy"]),
        ("ARRAYJOIN({Level}) = 'High'", vec!["Ada"]),
    ];
    for (formula, expected) in cases {
        assert_eq!(
            names_matching(&client, formula).await,
            expected,
            "{formula}"
        );
    }
    // LAST_MODIFIED_TIME of a field that was written is set, for the rest blank.
    assert_eq!(
        names_matching(&client, "LAST_MODIFIED_TIME({Age})").await,
        vec!["Ada", "bob"]
    );
}

#[tokio::test]
async fn malformed_formulas_unknown_functions_and_unknown_fields_answer_invalid_filter_by_formula()
{
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    for bad in [
        "{Name} = ",
        "AND(1,",
        "NOPE({Name})",
        "{Missing} = 1",
        "Missing = 1",
        "'unterminated",
    ] {
        let body = client
            .get(&format!("/v0/{BASE}/People?filterByFormula={}", enc(bad)))
            .await
            .expect_error(422, "INVALID_FILTER_BY_FORMULA");
        assert!(
            body["error"]["message"]
                .as_str()
                .expect("message")
                .starts_with("The formula for filtering records is invalid"),
            "{bad}"
        );
    }
}

/// The reference model: a tiny typed language with obvious semantics.
#[derive(Debug, Clone)]
enum Num {
    Lit(i64),
    FieldA,
    Add(Box<Num>, Box<Num>),
    Sub(Box<Num>, Box<Num>),
    Mul(Box<Num>, Box<Num>),
    Neg(Box<Num>),
    Len(Box<Text>),
    If(Box<Bool>, Box<Num>, Box<Num>),
}

#[derive(Debug, Clone)]
enum Text {
    Lit(String, bool),
    FieldS,
    Concat(Box<Text>, Box<Text>),
    FromNum(Box<Num>),
    Upper(Box<Text>),
    Lower(Box<Text>),
}

#[derive(Debug, Clone)]
enum Bool {
    Lit(bool),
    Lt(Box<Num>, Box<Num>),
    Eq(Box<Num>, Box<Num>),
    TextEq(Box<Text>, Box<Text>),
    Ne(Box<Num>, Box<Num>),
    And(Box<Bool>, Box<Bool>),
    Or(Box<Bool>, Box<Bool>),
    Not(Box<Bool>),
}

const A: i64 = 7;
const S: &str = "Zoë's \"x\"";

fn eval_num(n: &Num) -> f64 {
    match n {
        Num::Lit(v) => *v as f64,
        Num::FieldA => A as f64,
        Num::Add(a, b) => eval_num(a) + eval_num(b),
        Num::Sub(a, b) => eval_num(a) - eval_num(b),
        Num::Mul(a, b) => eval_num(a) * eval_num(b),
        Num::Neg(a) => -eval_num(a),
        Num::Len(t) => eval_text(t).chars().count() as f64,
        Num::If(c, a, b) => {
            if eval_bool(c) {
                eval_num(a)
            } else {
                eval_num(b)
            }
        }
    }
}

fn eval_text(t: &Text) -> String {
    match t {
        Text::Lit(s, _) => s.clone(),
        Text::FieldS => S.to_owned(),
        Text::Concat(a, b) => eval_text(a) + &eval_text(b),
        Text::FromNum(n) => eval_num(n).to_string(),
        Text::Upper(a) => eval_text(a).to_uppercase(),
        Text::Lower(a) => eval_text(a).to_lowercase(),
    }
}

fn eval_bool(b: &Bool) -> bool {
    match b {
        Bool::Lit(v) => *v,
        Bool::Lt(a, b) => eval_num(a) < eval_num(b),
        Bool::Eq(a, b) => eval_num(a) == eval_num(b),
        Bool::TextEq(a, b) => eval_text(a) == eval_text(b),
        Bool::Ne(a, b) => eval_num(a) != eval_num(b),
        Bool::And(a, b) => eval_bool(a) && eval_bool(b),
        Bool::Or(a, b) => eval_bool(a) || eval_bool(b),
        Bool::Not(a) => !eval_bool(a),
    }
}

/// Airtable's string literal: a backslash escapes the quote and itself.
fn quote(s: &str, double: bool) -> String {
    let q = if double { '"' } else { '\'' };
    let mut out = String::from(q);
    for c in s.chars() {
        if c == '\\' || c == q {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(q);
    out
}

fn num_src(n: &Num) -> String {
    match n {
        Num::Lit(v) if *v < 0 => format!("({v})"),
        Num::Lit(v) => v.to_string(),
        Num::FieldA => "{A}".into(),
        Num::Add(a, b) => format!("({} + {})", num_src(a), num_src(b)),
        Num::Sub(a, b) => format!("({}-{})", num_src(a), num_src(b)),
        Num::Mul(a, b) => format!("{} * {}", paren(num_src(a)), paren(num_src(b))),
        Num::Neg(a) => format!("-{}", paren(num_src(a))),
        Num::Len(t) => format!("LEN({})", text_src(t)),
        Num::If(c, a, b) => format!("IF({}, {}, {})", bool_src(c), num_src(a), num_src(b)),
    }
}

fn paren(s: String) -> String {
    format!("({s})")
}

fn text_src(t: &Text) -> String {
    match t {
        Text::Lit(s, double) => quote(s, *double),
        Text::FieldS => "{S}".into(),
        Text::Concat(a, b) => format!("({} & {})", text_src(a), text_src(b)),
        Text::FromNum(n) => format!("CONCATENATE({})", num_src(n)),
        Text::Upper(a) => format!("UPPER({})", text_src(a)),
        Text::Lower(a) => format!("lower({})", text_src(a)),
    }
}

fn bool_src(b: &Bool) -> String {
    match b {
        Bool::Lit(true) => "TRUE()".into(),
        Bool::Lit(false) => "FALSE()".into(),
        Bool::Lt(a, b) => format!("({} < {})", num_src(a), num_src(b)),
        Bool::Eq(a, b) => format!("({}={})", num_src(a), num_src(b)),
        Bool::TextEq(a, b) => format!("({} = {})", text_src(a), text_src(b)),
        Bool::Ne(a, b) => format!("({} != {})", num_src(a), num_src(b)),
        Bool::And(a, b) => format!("AND({}, {})", bool_src(a), bool_src(b)),
        Bool::Or(a, b) => format!("OR({},{})", bool_src(a), bool_src(b)),
        Bool::Not(a) => format!("NOT({})", bool_src(a)),
    }
}

fn text_lit() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('B'),
            Just(' '),
            Just('\''),
            Just('"'),
            Just('\\'),
            Just('é'),
            Just('{'),
            Just(')')
        ],
        0..6,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn num_strategy() -> impl Strategy<Value = Num> {
    let leaf = prop_oneof![(-20i64..20).prop_map(Num::Lit), Just(Num::FieldA)];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Num::Add(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Num::Sub(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Num::Mul(a.into(), b.into())),
            inner.clone().prop_map(|a| Num::Neg(a.into())),
            text_leaf().prop_map(|t| Num::Len(t.into())),
            (bool_leaf(), inner.clone(), inner).prop_map(|(c, a, b)| Num::If(
                c.into(),
                a.into(),
                b.into()
            )),
        ]
    })
}

fn text_leaf() -> impl Strategy<Value = Text> {
    prop_oneof![
        (text_lit(), any::<bool>()).prop_map(|(s, d)| Text::Lit(s, d)),
        Just(Text::FieldS)
    ]
}

fn text_strategy() -> impl Strategy<Value = Text> {
    text_leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Text::Concat(a.into(), b.into())),
            (-50i64..50).prop_map(|n| Text::FromNum(Num::Lit(n).into())),
            inner.clone().prop_map(|a| Text::Upper(a.into())),
            inner.prop_map(|a| Text::Lower(a.into())),
        ]
    })
}

fn bool_leaf() -> impl Strategy<Value = Bool> {
    prop_oneof![
        any::<bool>().prop_map(Bool::Lit),
        (-10i64..10).prop_map(|n| Bool::Lt(Num::FieldA.into(), Num::Lit(n).into())),
    ]
}

fn bool_strategy() -> impl Strategy<Value = Bool> {
    let leaf = prop_oneof![
        bool_leaf(),
        (num_strategy(), num_strategy()).prop_map(|(a, b)| Bool::Lt(a.into(), b.into())),
        (num_strategy(), num_strategy()).prop_map(|(a, b)| Bool::Eq(a.into(), b.into())),
        (num_strategy(), num_strategy()).prop_map(|(a, b)| Bool::Ne(a.into(), b.into())),
        (text_strategy(), text_strategy()).prop_map(|(a, b)| Bool::TextEq(a.into(), b.into())),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Bool::And(a.into(), b.into())),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Bool::Or(a.into(), b.into())),
            inner.prop_map(|a| Bool::Not(a.into())),
        ]
    })
}

struct Row;

impl Context for Row {
    fn field(&self, name: &str) -> Value {
        match name {
            "A" => Value::Number(A as f64),
            "S" => Value::Text(S.into()),
            _ => Value::Error("#ERROR!".into()),
        }
    }
    fn record_id(&self) -> String {
        "recAAAAAAAAAAAAAA".into()
    }
    fn created_ms(&self) -> i64 {
        0
    }
    fn last_modified_ms(&self, _: &[String]) -> Option<i64> {
        None
    }
    fn now_ms(&self) -> i64 {
        0
    }
}

fn run(src: &str) -> Value {
    let expr = formula::parse(src).unwrap_or_else(|e| panic!("{src:?} does not parse: {e}"));
    formula::evaluate(&expr, &Row)
}

proptest! {
    #[test]
    fn numeric_formulas_evaluate_as_the_reference_model(n in num_strategy()) {
        let src = num_src(&n);
        prop_assert_eq!(run(&src), Value::Number(eval_num(&n)), "{}", src);
    }

    #[test]
    fn text_formulas_evaluate_as_the_reference_model(t in text_strategy()) {
        let src = text_src(&t);
        prop_assert_eq!(run(&src), Value::Text(eval_text(&t)), "{}", src);
    }

    #[test]
    fn logical_formulas_evaluate_as_the_reference_model_and_filter_alike(b in bool_strategy()) {
        let src = bool_src(&b);
        let value = run(&src);
        prop_assert_eq!(&value, &Value::Bool(eval_bool(&b)), "{}", src);
        prop_assert_eq!(formula::is_truthy(&value), eval_bool(&b));
    }
}
