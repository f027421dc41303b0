//! Fuzzing of the API's request bodies: arbitrary JSON, mutated JSON,
//! arbitrary bytes and wrong content types, sent to every POST and PATCH
//! route (with real, random and malformed ids, signed in or not). The
//! answer is always a 2xx, or a 4xx in the API's error shape; never a 5xx,
//! never a panic.
//!
//! Each case is a request to a server on a real database, so the CI run is
//! small. `AIRSYNC_FUZZ_SECS=600 cargo test -p airsync-api --test
//! fuzz_requests -- --nocapture` runs it for that long; see docs/fuzzing.md.

#[path = "api/contract.rs"]
mod contract;
#[allow(dead_code)]
#[path = "api/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use airsync_api::Verb;
use airsync_testkit::fuzz;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::{TestApp, TestUser};

struct Target {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    user: TestUser,
    admin: TestUser,
    /// Ids the API handed out (from 2xx answers), for the `{id}` of later
    /// cases.
    ids: Mutex<Vec<String>>,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let (app, user, admin) = runtime.block_on(async {
            let app = TestApp::start().await;
            let user = app.user("fuzz@example.com").await;
            let admin = app.admin("fuzz-admin@example.com").await;
            (app, user, admin)
        });
        let mut ids: Vec<String> = app.reference.days.iter().map(|d| d.to_string()).collect();
        ids.extend(
            [
                app.reference.goal_a,
                app.reference.breathing,
                app.reference.water,
                app.reference.company,
            ]
            .iter()
            .map(|u| u.to_string()),
        );
        ids.push(user.id.to_string());
        Target {
            runtime,
            app,
            user,
            admin,
            ids: Mutex::new(ids),
        }
    })
}

/// The routes that take a body: every POST and PATCH the API serves.
fn body_routes() -> Vec<(Verb, &'static str)> {
    airsync_api::served_routes()
        .into_iter()
        .filter(|(verb, _)| matches!(verb, Verb::Post | Verb::Patch))
        .collect()
}

const FIELDS: [&str; 28] = [
    "active",
    "code",
    "currentPassword",
    "date",
    "dayIds",
    "description",
    "email",
    "endDate",
    "from",
    "goalIds",
    "methodId",
    "methodIds",
    "name",
    "newPassword",
    "notes",
    "overtuigingId",
    "password",
    "personalGoalId",
    "programId",
    "refreshToken",
    "remark",
    "scheduleDayId",
    "setupToken",
    "startDate",
    "to",
    "usedOn",
    "start_date",
    "",
];

/// An id: one the API knows, a fresh one, or not an id at all.
#[derive(Debug, Clone)]
enum Id {
    Known(prop::sample::Index),
    Random(u128),
    Text(String),
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        4 => any::<prop::sample::Index>().prop_map(Id::Known),
        1 => any::<u128>().prop_map(Id::Random),
        1 => prop_oneof![
            any::<String>(),
            Just("00000000-0000-0000-0000-000000000000".to_owned()),
            Just("not-a-uuid".to_owned()),
            Just("%00".to_owned()),
        ]
        .prop_map(Id::Text),
    ]
}

impl Id {
    fn render(&self, known: &[String]) -> Value {
        match self {
            Id::Known(i) if !known.is_empty() => json!(known[i.index(known.len())]),
            Id::Known(_) | Id::Random(_) => {
                let n = match self {
                    Id::Random(n) => *n,
                    _ => 0,
                };
                json!(uuid::Uuid::from_u128(n).to_string())
            }
            Id::Text(t) => json!(t),
        }
    }
}

/// A field value before its ids are chosen.
#[derive(Debug, Clone)]
enum Field {
    Json(Value),
    Id(Id),
    Ids(Vec<Id>),
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_value() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => id().prop_map(Field::Id),
        2 => prop::collection::vec(id(), 0..4).prop_map(Field::Ids),
        2 => prop_oneof![
            Just(json!("2024-03-15")),
            Just(json!("2024-02-30")),
            Just(json!("2024-03-01")),
            Just(json!("2025-03-15")),
            Just(json!("+275760-09-13")),
            Just(json!("0000-01-01")),
            Just(json!("fuzz@example.com")),
            Just(json!("correct horse battery")),
            Just(json!("")),
            (-400i64..400).prop_map(|d| {
                json!((chrono::NaiveDate::from_ymd_opt(2024, 3, 15).unwrap_or_default()
                    + chrono::Duration::days(d))
                .to_string())
            }),
        ]
        .prop_map(Field::Json),
        2 => any_json().prop_map(Field::Json),
    ]
}

/// Which field a body sets: one of the route's own (from its OpenAPI
/// request schema), with a value of its type or not, or a stray one.
#[derive(Debug, Clone)]
enum Name {
    Own(prop::sample::Index, bool),
    Stray(&'static str),
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        15 => (any::<prop::sample::Index>(), prop::bool::weighted(0.9))
            .prop_map(|(i, typed)| Name::Own(i, typed)),
        1 => prop::sample::select(FIELDS.to_vec()).prop_map(Name::Stray),
    ]
}

/// The request body properties of each route (`"post /api/..."`), with
/// their JSON types, from the API's OpenAPI document.
fn route_fields() -> &'static BTreeMap<String, Vec<(String, String)>> {
    static FIELDS_BY_ROUTE: OnceLock<BTreeMap<String, Vec<(String, String)>>> = OnceLock::new();
    FIELDS_BY_ROUTE.get_or_init(|| {
        let document = airsync_api::openapi::inlined();
        let mut out = BTreeMap::new();
        let Some(paths) = document["paths"].as_object() else {
            return out;
        };
        for (path, operations) in paths {
            for verb in ["post", "patch"] {
                let schema =
                    &operations[verb]["requestBody"]["content"]["application/json"]["schema"];
                let Some(properties) = schema["properties"].as_object() else {
                    continue;
                };
                let fields = properties
                    .iter()
                    .map(|(name, p)| (name.clone(), json_type(p)))
                    .collect();
                out.insert(format!("{verb} {path}"), fields);
            }
        }
        out
    })
}

/// A property's JSON type: its `type`, or the first that is not null when
/// it may also be null.
fn json_type(property: &Value) -> String {
    match &property["type"] {
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("")
            .to_owned(),
        _ => property["oneOf"]
            .as_array()
            .and_then(|options| options.iter().find(|o| o["type"] != "null"))
            .map(json_type)
            .unwrap_or_default(),
    }
}

/// A value of the field's type, made from the generated one.
fn typed(name: &str, kind: &str, field: &Field, known: &[String], t: &Target) -> Value {
    let id = |field: &Field| match field {
        Field::Id(id) => id.render(known),
        Field::Ids(ids) => ids
            .first()
            .map(|i| i.render(known))
            .unwrap_or_else(|| json!(uuid::Uuid::nil().to_string())),
        Field::Json(v) => v.clone(),
    };
    match kind {
        "array" => match field {
            Field::Ids(ids) => ids.iter().map(|i| i.render(known)).collect(),
            other => json!([id(other)]),
        },
        "boolean" => json!(matches!(field, Field::Ids(ids) if ids.len() % 2 == 0)),
        _ if name.ends_with("Id") => id(field),
        _ if name.ends_with("Date") || name == "usedOn" => match field {
            Field::Json(Value::String(s)) if s.len() == 10 => json!(s),
            _ => json!("2024-03-15"),
        },
        _ if name == "email" => json!(t.user.email),
        _ if name.ends_with("assword") => json!(support::PASSWORD),
        _ if name == "refreshToken" => json!(t.user.refresh_token),
        _ => match field {
            Field::Json(Value::String(s)) => json!(s),
            _ => json!("Fuzz"),
        },
    }
}

#[derive(Debug, Clone)]
enum Body {
    /// A JSON object of the route's field names (and strays), rendered then
    /// mutated.
    Object(Vec<(Name, Field)>, Vec<(prop::sample::Index, u8, u8)>),
    Json(Value),
    Bytes(Vec<u8>),
    Empty,
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        6 => (
            prop::collection::vec((name(), field_value()), 0..8),
            prop_oneof![
                4 => Just(Vec::new()),
                1 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..3),
            ],
        )
            .prop_map(|(fields, edits)| Body::Object(fields, edits)),
        1 => any_json().prop_map(Body::Json),
        1 => any::<Vec<u8>>().prop_map(Body::Bytes),
        1 => Just(Body::Empty),
    ]
}

impl Body {
    fn render(&self, route: &str, known: &[String], t: &Target) -> Vec<u8> {
        match self {
            Body::Object(fields, edits) => {
                let own = route_fields()
                    .get(route)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut object = serde_json::Map::new();
                for (name, field) in fields {
                    let untyped = match field {
                        Field::Json(v) => v.clone(),
                        Field::Id(id) => id.render(known),
                        Field::Ids(ids) => ids.iter().map(|i| i.render(known)).collect(),
                    };
                    let (name, value) = match name {
                        Name::Own(i, is_typed) if !own.is_empty() => {
                            let (name, kind) = &own[i.index(own.len())];
                            let value = if *is_typed {
                                typed(name, kind, field, known, t)
                            } else {
                                untyped
                            };
                            (name.clone(), value)
                        }
                        Name::Own(..) => ("name".to_owned(), untyped),
                        Name::Stray(name) => ((*name).to_owned(), untyped),
                    };
                    object.insert(name, value);
                }
                let mut bytes = serde_json::to_vec(&object).unwrap_or_default();
                for (at, byte, how) in edits {
                    if bytes.is_empty() {
                        break;
                    }
                    let i = at.index(bytes.len());
                    match how {
                        0 => bytes[i] = *byte,
                        1 => bytes.insert(i, *byte),
                        _ => bytes.truncate(i),
                    }
                }
                bytes
            }
            Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Body::Bytes(b) => b.clone(),
            Body::Empty => Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    route: prop::sample::Index,
    path_ids: (Id, Id),
    token: u8,
    content_type: Option<&'static str>,
    body: Body,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<prop::sample::Index>(),
        (id(), id()),
        0u8..8,
        prop_oneof![
            6 => Just(Some("application/json")),
            1 => Just(Some("application/json; charset=utf-8")),
            1 => Just(Some("text/plain")),
            1 => Just(Some("application/x-www-form-urlencoded")),
            1 => Just(None),
        ],
        body(),
    )
        .prop_map(|(route, path_ids, token, content_type, body)| Case {
            route,
            path_ids,
            token,
            content_type,
            body,
        })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn any_body_to_any_write_route_gets_a_2xx_or_a_4xx_in_the_error_shape() {
    let routes = body_routes();
    assert!(!routes.is_empty(), "the API serves POST and PATCH routes");
    // How many answers of each status: shows how far the cases got.
    let statuses: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());
    fuzz::run("api request bodies", file!(), 150, case(), |case| {
        let t = target();
        let (verb, template) = routes[case.route.index(routes.len())];
        let known = t.ids.lock().map(|ids| ids.clone()).unwrap_or_default();
        let path_id = |id: &Id| match id.render(&known) {
            Value::String(s) => percent_encode(&s),
            other => other.to_string(),
        };
        let path = template
            .replace("{id}", &path_id(&case.path_ids.0))
            .replace("{planningId}", &path_id(&case.path_ids.1));
        let route_key = format!("{} {template}", verb.as_openapi());
        let bytes = case.body.render(&route_key, &known, t);
        let token = match case.token {
            0 => None,
            1 => Some("not-a-token".to_owned()),
            2 | 3 => Some(t.admin.token.clone()),
            _ => Some(t.user.token.clone()),
        };
        let method = match verb {
            Verb::Patch => reqwest::Method::PATCH,
            _ => reqwest::Method::POST,
        };
        let (status, text) = t
            .runtime
            .block_on(async {
                let mut request = t
                    .app
                    .client
                    .request(method.clone(), format!("{}{path}", t.app.base))
                    .body(bytes.clone());
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                if let Some(content_type) = case.content_type {
                    request = request.header("content-type", content_type);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let text = response.text().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, text))
            })
            .map_err(|e| TestCaseError::fail(format!("{method} {path}: no answer: {e}")))?;
        if let Ok(mut statuses) = statuses.lock() {
            *statuses.entry(status).or_default() += 1;
        }
        let shown = String::from_utf8_lossy(&bytes);
        prop_assert!(
            status < 500,
            "{} {} with {:?} answered {}: {}",
            method,
            path,
            shown,
            status,
            text
        );
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(problem) = contract::violation(method.as_str(), &path, status, &answer) {
            return Err(TestCaseError::fail(format!("with {shown:?}: {problem}")));
        }
        if status >= 400 {
            let error = &answer["error"];
            prop_assert!(
                error["code"].is_string() && error["message"].is_string(),
                "{} {} with {:?} answered {} without the error shape: {:?}",
                method,
                path,
                shown,
                status,
                text
            );
        } else if let Some(id) = answer["id"].as_str() {
            if let Ok(mut ids) = t.ids.lock() {
                ids.push(id.to_owned());
            }
        }
        Ok(())
    });
    let statuses = statuses.into_inner().unwrap_or_default();
    println!("fuzz api request bodies: answers by status {statuses:?}");
}
