//! Security pass, hostile input: SQL injection attempts, NUL bytes and very
//! long strings in every path parameter, query parameter, header parameter
//! and body field of every operation, enumerated from the OpenAPI document
//! (which a test keeps equal to the router), so a new route or field is
//! swept without anyone remembering to add it. Then oversized and deeply
//! nested bodies.
//!
//! Every answer must be a clean 4xx in the error shape, or a success that
//! stored the value verbatim; a NUL byte must be a 400 (PostgreSQL's text
//! cannot hold one); afterwards every table is still there and holds what
//! it should.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{assert_error, TestApp, TestUser};

/// Values that try to break out of a SQL (or formula) literal, or that a
/// database may choke on.
fn hostile_values() -> Vec<String> {
    vec![
        "'; DROP TABLE users_pg; --".into(),
        "1 OR 1=1".into(),
        "' OR '1'='1".into(),
        "%' --".into(),
        "%".into(),
        "_".into(),
        "x\0y".into(),
        "\0".into(),
        "\\'; SELECT pg_sleep(0); --".into(),
        "$1::text".into(),
        "\"), TRUE(), (\"".into(),
        "{Email}".into(),
        "🙂 ünïcödé \u{202e}".into(),
        format!("{}'", "a".repeat(10_000)),
    ]
}

fn method(verb: airsync_api::Verb) -> Method {
    match verb {
        airsync_api::Verb::Get => Method::GET,
        airsync_api::Verb::Post => Method::POST,
        airsync_api::Verb::Patch => Method::PATCH,
        airsync_api::Verb::Delete => Method::DELETE,
    }
}

/// One input of an operation, as the document lists it.
#[derive(Debug, Clone)]
enum Slot {
    Path(String),
    Query(String),
    Header(String),
    Body { field: String, is_list: bool },
}

/// A valid request of an operation, into which one hostile value is put.
struct Baseline {
    path_params: BTreeMap<&'static str, String>,
    query: Vec<(&'static str, String)>,
    /// A valid body; `n` makes each one distinct where the domain needs it
    /// (programs must not overlap).
    body: Option<Box<dyn Fn(usize) -> Value>>,
    /// Who sends it; `None` for the public operations.
    token: Option<String>,
}

/// What the tests send and what answered.
struct Sweep<'a> {
    app: &'a TestApp,
    sent: usize,
    accepted: Vec<String>,
}

impl Sweep<'_> {
    async fn send(
        &mut self,
        verb: airsync_api::Verb,
        template: &str,
        baseline: &Baseline,
        slot: &Slot,
        value: &str,
    ) {
        let mut path = template.to_owned();
        for (name, valid) in &baseline.path_params {
            let given = match slot {
                Slot::Path(hostile) if hostile == name => encode_segment(value),
                _ => valid.clone(),
            };
            path = path.replace(&format!("{{{name}}}"), &given);
        }
        assert!(
            !path.contains('{'),
            "{template}: a path parameter has no baseline"
        );
        let mut query: Vec<(String, String)> = baseline
            .query
            .iter()
            .filter(|(name, _)| !matches!(slot, Slot::Query(q) if q == name))
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        if let Slot::Query(name) = slot {
            query.push((name.clone(), value.to_owned()));
        }
        if !query.is_empty() {
            let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish();
            path = format!("{path}?{encoded}");
        }
        let mut request = self
            .app
            .client
            .request(method(verb), format!("{}{}", self.app.base, path));
        if let Some(token) = &baseline.token {
            request = request.bearer_auth(token);
        }
        if let Slot::Header(name) = slot {
            // A header cannot carry control characters; those values cannot
            // be sent at all, which is the protection.
            match reqwest::header::HeaderValue::from_str(value) {
                Ok(header) => request = request.header(name.as_str(), header),
                Err(_) => return,
            }
        }
        let mut sent_body = None;
        if let Some(make) = &baseline.body {
            let mut body = make(self.sent);
            if let Slot::Body { field, is_list } = slot {
                body[field.as_str()] = if *is_list {
                    json!([value])
                } else {
                    json!(value)
                };
            }
            request = request.json(&body);
            sent_body = Some(body);
        }
        self.sent += 1;
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let what = format!(
            "{verb:?} {template} with {slot:?} = {:.60?}: {status} {answer:#}",
            value
        );
        assert!(status < 500, "{what}");
        if value.contains('\0') && !matches!(slot, Slot::Header(_)) {
            assert_eq!(
                status, 400,
                "a NUL byte must be refused as bad input; {what}"
            );
        }
        if template.starts_with("/api/auth/") && verb == airsync_api::Verb::Post {
            assert_ne!(status, 200, "a hostile credential was accepted; {what}");
        }
        if status >= 400 {
            assert!(
                answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
                "not the error shape; {what}"
            );
            return;
        }
        // Accepted: a text field comes back exactly as sent.
        if let (
            Slot::Body {
                field,
                is_list: false,
            },
            Some(_),
        ) = (slot, &sent_body)
        {
            let echoed = answer
                .get(field.as_str())
                .or_else(|| answer.get("usage").and_then(|u| u.get(field.as_str())));
            if let Some(Value::String(echoed)) = echoed {
                assert_eq!(echoed, value, "stored differently; {what}");
                self.accepted.push(value.to_owned());
            }
        }
    }
}

/// A path segment with everything but unreserved characters escaped.
fn encode_segment(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The inputs of an operation, as the OpenAPI document lists them.
fn slots_of(operation: &Value) -> Vec<Slot> {
    let mut slots = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().expect("name").to_owned();
        slots.push(match parameter["in"].as_str() {
            Some("path") => Slot::Path(name),
            Some("query") => Slot::Query(name),
            Some("header") => Slot::Header(name),
            other => panic!("parameter in {other:?}"),
        });
    }
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    for (field, property) in schema["properties"].as_object().into_iter().flatten() {
        slots.push(Slot::Body {
            field: field.clone(),
            is_list: property["type"] == "array"
                || property["type"]
                    .as_array()
                    .is_some_and(|kinds| kinds.contains(&Value::from("array"))),
        });
    }
    slots
}

struct Seeded {
    ann: TestUser,
    program: String,
    day: String,
    method_usage: String,
    habit_usage: String,
    goal: String,
}

async fn seed(app: &TestApp) -> Seeded {
    let r = &app.reference;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let method_usage = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking }),
            201,
        )
        .await;
    let habit_usage = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water }),
            201,
        )
        .await;
    let goal = app
        .post(&ann, "/api/personal-goals", json!({ "name": "Run" }), 201)
        .await;
    Seeded {
        program: program["id"].as_str().unwrap().to_owned(),
        day: program["schedule"][0]["id"].as_str().unwrap().to_owned(),
        method_usage: method_usage["usage"]["id"].as_str().unwrap().to_owned(),
        habit_usage: habit_usage["usage"]["id"].as_str().unwrap().to_owned(),
        goal: goal["id"].as_str().unwrap().to_owned(),
        ann,
    }
}

/// A valid request of every operation. An operation missing here fails the
/// sweep, so a new route cannot skip it.
fn baseline(app: &TestApp, s: &Seeded, verb: airsync_api::Verb, path: &str) -> Baseline {
    use airsync_api::Verb::*;
    let r = app.reference.clone();
    let token = Some(s.ann.token.clone());
    let ids = |pairs: &[(&'static str, &String)]| -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).clone())).collect()
    };
    let none = BTreeMap::new;
    let b = |path_params, query, body: Option<Box<dyn Fn(usize) -> Value>>, token| Baseline {
        path_params,
        query,
        body,
        token,
    };
    let program_body = move |n: usize| {
        // Each program its own 10 days, far from the others.
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
            + chrono::Duration::days(20 * n as i64);
        json!({
            "name": "Calm start",
            "goalIds": [r.goal_a],
            "methodIds": [r.breathing],
            "dayIds": [r.days[0], r.days[2]],
            "startDate": start.to_string(),
            "endDate": (start + chrono::Duration::days(9)).to_string(),
            "notes": "some notes",
        })
    };
    let r = app.reference.clone();
    match (verb, path) {
        (Post, "/api/auth/login") => b(
            none(),
            vec![],
            Some(Box::new(
                |_| json!({ "email": "ann@example.com", "password": "wrong password" }),
            )),
            None,
        ),
        (Get, "/api/auth/me") => b(none(), vec![], None, token),
        (Patch, "/api/auth/me") => b(
            none(),
            vec![],
            Some(Box::new(|_| json!({ "timeZone": "Europe/Amsterdam" }))),
            token,
        ),
        (Post, "/api/auth/refresh") => b(
            none(),
            vec![],
            Some(Box::new(|_| json!({ "refreshToken": "made-up" }))),
            None,
        ),
        (Post, "/api/auth/set-password") => b(
            none(),
            vec![],
            Some(Box::new(
                |_| json!({ "setupToken": "made-up", "newPassword": "a fine new password" }),
            )),
            None,
        ),
        (Get, "/api/programs") => b(none(), vec![("limit", "10".into())], None, token),
        (Post, "/api/programs") => b(none(), vec![], Some(Box::new(program_body)), token),
        (Get | Delete, "/api/programs/{id}") => b(ids(&[("id", &s.program)]), vec![], None, token),
        (Patch, "/api/programs/{id}") => b(
            ids(&[("id", &s.program)]),
            vec![],
            Some(Box::new(|_| json!({ "notes": "changed" }))),
            token,
        ),
        (Patch, "/api/programs/{id}/schedule/{planningId}") => b(
            ids(&[("id", &s.program), ("planningId", &s.day)]),
            vec![],
            Some(Box::new(|_| json!({ "notes": "day notes" }))),
            token,
        ),
        (Post, "/api/method-usage") => b(
            none(),
            vec![],
            Some(Box::new(
                move |_| json!({ "methodId": r.walking, "remark": "fine" }),
            )),
            token,
        ),
        (Patch, "/api/method-usage/{id}") => b(
            ids(&[("id", &s.method_usage)]),
            vec![],
            Some(Box::new(|_| json!({ "remark": "changed" }))),
            token,
        ),
        (Get, "/api/method-usage/by-program") => {
            b(none(), vec![("programId", s.program.clone())], None, token)
        }
        (Get, "/api/habit-usage") => b(none(), vec![("date", "2024-03-15".into())], None, token),
        (Post, "/api/habit-usage") => {
            let water = app.reference.water;
            b(
                none(),
                vec![],
                Some(Box::new(move |_| json!({ "methodId": water }))),
                token,
            )
        }
        (Delete, "/api/habit-usage/{id}") => b(ids(&[("id", &s.habit_usage)]), vec![], None, token),
        (Get, "/api/personal-goals") => b(none(), vec![], None, token),
        (Post, "/api/personal-goals") => b(
            none(),
            vec![],
            Some(Box::new(
                |_| json!({ "name": "Goal", "description": "why", "active": false }),
            )),
            token,
        ),
        (Get | Delete, "/api/personal-goals/{id}") => {
            b(ids(&[("id", &s.goal)]), vec![], None, token)
        }
        (Patch, "/api/personal-goals/{id}") => b(
            ids(&[("id", &s.goal)]),
            vec![],
            Some(Box::new(|_| json!({ "description": "changed" }))),
            token,
        ),
        (Get, "/api/personal-goal-usage") => b(none(), vec![], None, token),
        (Post, "/api/personal-goal-usage") => {
            let goal = s.goal.clone();
            b(
                none(),
                vec![],
                Some(Box::new(move |_| json!({ "personalGoalId": goal }))),
                token,
            )
        }
        (Get, "/api/overtuiging-usage") => b(none(), vec![], None, token),
        (Post, "/api/overtuiging-usage") => {
            let overtuiging = app.reference.overtuigingen[0];
            b(
                none(),
                vec![],
                Some(Box::new(move |_| json!({ "overtuigingId": overtuiging }))),
                token,
            )
        }
        (Get, "/api/rewards") => b(none(), vec![], None, token),
        (Get, "/api/methods/habits") => b(none(), vec![], None, token),
        (Get, "/api/methods/{id}") => {
            let method = app.reference.breathing.to_string();
            b(ids(&[("id", &method)]), vec![], None, token)
        }
        (Get, "/api/overtuigingen/by-goals") => b(
            none(),
            vec![("goalIds", app.reference.goal_a.to_string())],
            None,
            token,
        ),
        (Get, "/api/companies/lookup") => b(none(), vec![("code", "ACME-01".into())], None, None),
        (Get, "/api/openapi.json") => b(none(), vec![], None, None),
        other => panic!("no baseline for {other:?}: add one so the sweep covers it"),
    }
}

/// The tables of the schema and the rows of those that the sweep must not
/// touch.
async fn snapshot(app: &TestApp) -> (Vec<String>, Vec<(String, i64)>) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let mut counts = Vec::new();
    for table in [
        "users_pg",
        "companies_pg",
        "reference_days_pg",
        "reference_goals_pg",
        "reference_methods_pg",
        "reference_overtuigingen_pg",
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(app.pool())
            .await
            .unwrap();
        counts.push((table.to_owned(), count));
    }
    (tables, counts)
}

#[tokio::test]
async fn hostile_strings_in_every_input_of_every_operation_get_a_clean_4xx_or_are_stored_verbatim()
{
    let app = TestApp::start().await;
    let seeded = seed(&app).await;
    let before = snapshot(&app).await;
    let document = airsync_api::openapi::inlined();
    let mut sweep = Sweep {
        app: &app,
        sent: 0,
        accepted: Vec::new(),
    };
    let mut swept_slots = 0;
    for (verb, path) in airsync_api::served_routes() {
        let operation = &document["paths"][path][verb.as_openapi()];
        let baseline = baseline(&app, &seeded, verb, path);
        for slot in slots_of(operation) {
            swept_slots += 1;
            for value in hostile_values() {
                sweep.send(verb, path, &baseline, &slot, &value).await;
            }
        }
    }
    assert!(swept_slots > 50, "only {swept_slots} inputs were swept");

    let after = snapshot(&app).await;
    assert_eq!(before, after, "a table or its rows changed");
    // The accepted values are there, verbatim, as data.
    for value in ["'; DROP TABLE users_pg; --", "' OR '1'='1", "%' --"] {
        assert!(
            sweep.accepted.iter().any(|v| v == value),
            "{value:?} was never accepted anywhere: {:?}",
            sweep.accepted
        );
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM programs_pg WHERE name = $1 AND user_id = $2")
            .bind("'; DROP TABLE users_pg; --")
            .bind(seeded.ann.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(stored >= 1, "the name was not stored verbatim");
    // The server still answers, and Ann still sees only her data.
    let me = app.get(&seeded.ann, "/api/auth/me", 200).await;
    assert_eq!(me["email"], "ann@example.com");
    eprintln!("{} hostile requests over {swept_slots} inputs", sweep.sent);
}

#[tokio::test]
async fn like_wildcards_and_quotes_match_nothing_in_lookups() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    app.call(
        Method::GET,
        "/api/companies/lookup?code=acme-01",
        None,
        None,
        200,
    )
    .await;
    for code in ["%", "ACME%", "ACME-0_", "' OR '1'='1", "ACME-01' --", "*"] {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .finish();
        let body = app
            .call(
                Method::GET,
                &format!("/api/companies/lookup?{query}"),
                None,
                None,
                404,
            )
            .await;
        assert_error(&body, "not_found", None);
    }
    // A login with a wildcard or an always-true condition finds nobody.
    for email in [
        "%@example.com",
        "_nn@example.com",
        "' OR '1'='1'@x",
        "ann@example.com' --",
    ] {
        let (status, body) = app
            .send(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({ "email": email, "password": crate::support::PASSWORD })),
            )
            .await;
        assert!(status == 400 || status == 401, "{email}: {status} {body:#}");
        assert_error(
            &body,
            if status == 400 {
                "invalid_field"
            } else {
                "unauthorized"
            },
            None,
        );
    }
    app.get(&ann, "/api/auth/me", 200).await;
}

#[tokio::test]
async fn a_nul_byte_anywhere_is_a_400_naming_the_field() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let body = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "name": "Run\u{0}" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("name"));
    let body = app
        .call(
            Method::GET,
            "/api/companies/lookup?code=AC%00ME",
            None,
            None,
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("code"));
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "ann@example.com\u{0}", "password": "x" })),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("email"));
    let body = app
        .call(
            Method::GET,
            "/api/programs/%00",
            Some(&ann.token),
            None,
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("id"));
    // Nothing of it reached the database.
    let goals: i64 = sqlx::query_scalar("SELECT count(*) FROM personal_goals_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(goals, 0);
}

/// Sends a raw body to `path`; answers the status and the body.
async fn post_raw(app: &TestApp, user: &TestUser, path: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_get_a_clean_4xx_and_the_server_keeps_answering() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let notes = "n".repeat(70 * 1024);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a body over the 64 KiB limit",
            json!({ "name": "Run", "description": notes })
                .to_string()
                .into_bytes(),
        ),
        (
            "a 200 KiB body",
            json!({ "name": "n".repeat(200 * 1024) })
                .to_string()
                .into_bytes(),
        ),
        ("100,000 [", vec![b'['; 100_000]),
        ("10,000 [ (under the size limit)", vec![b'['; 10_000]),
        (
            "10,000 nested objects, closed",
            format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)).into_bytes(),
        ),
        (
            "nesting inside a field",
            format!("{{\"name\": {}1{}}}", "[".repeat(2_000), "]".repeat(2_000)).into_bytes(),
        ),
        ("not JSON", b"name=Run".to_vec()),
        ("invalid UTF-8", vec![b'"', 0xff, 0xfe, b'"']),
        ("a JSON string, not an object", b"\"Run\"".to_vec()),
    ];
    for (what, body) in cases {
        let (status, answer) = post_raw(&app, &ann, "/api/personal-goals", body).await;
        assert!(
            (400..500).contains(&status),
            "{what}: answered {status}: {answer:.200}"
        );
        assert!(
            answer["error"]["code"].is_string(),
            "{what}: not the error shape: {answer:.200}"
        );
        app.get(&ann, "/api/auth/me", 200).await;
    }
    let goals: i64 = sqlx::query_scalar("SELECT count(*) FROM personal_goals_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(goals, 0);
}
