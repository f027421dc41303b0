//! Every route, walked with another user's ids (404) and without a token
//! (401). The case table must cover every served route, so a new route
//! cannot skip these checks.

use airsync_api::Verb;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{assert_error, TestApp};

fn method(verb: Verb) -> Method {
    match verb {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
        Verb::Patch => Method::PATCH,
        Verb::Delete => Method::DELETE,
    }
}

/// How a route is probed with the other user's ids: the concrete path and
/// body, or `None` when the route takes no user-owned id (reference data,
/// the caller's own profile, creating something new).
type Probe = Option<Vec<(String, Option<Value>)>>;

#[tokio::test]
async fn every_route_answers_404_for_another_users_ids() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = &app.reference;
    // Bob's data.
    let program = app.program(&bob, "2024-03-11", "2024-03-24").await;
    let pid = program["id"].as_str().unwrap().to_owned();
    let day = program["schedule"][0]["id"].as_str().unwrap().to_owned();
    let method_usage = app
        .post(
            &bob,
            "/api/method-usage",
            json!({ "methodId": r.walking }),
            201,
        )
        .await;
    let muid = method_usage["usage"]["id"].as_str().unwrap().to_owned();
    let habit = app
        .post(
            &bob,
            "/api/habit-usage",
            json!({ "methodId": r.water }),
            201,
        )
        .await;
    let huid = habit["usage"]["id"].as_str().unwrap().to_owned();
    let goal = app
        .post(
            &bob,
            "/api/personal-goals",
            json!({ "name": "Bob's goal" }),
            201,
        )
        .await;
    let gid = goal["id"].as_str().unwrap().to_owned();
    let bob_id = bob.id;
    // Ann's own program, to pair with Bob's schedule day.
    let own = app.program(&ann, "2024-05-01", "2024-05-10").await;
    let own_pid = own["id"].as_str().unwrap().to_owned();

    let probe = |verb: Verb, path: &str| -> Probe {
        use Verb::*;
        let cases = match (verb, path) {
            (Get, "/api/auth/me")
            | (Patch, "/api/auth/me")
            | (Post, "/api/programs")
            | (Post, "/api/habit-usage")
            | (Post, "/api/personal-goals") => return None,
            (Get, "/api/methods/habits")
            | (Get, "/api/methods/{id}")
            | (Get, "/api/overtuigingen/by-goals") => return None,
            (Get, "/api/programs") => vec![(format!("/api/programs?userId={bob_id}"), None)],
            (Get, "/api/programs/{id}") => vec![(format!("/api/programs/{pid}"), None)],
            (Patch, "/api/programs/{id}") => vec![(
                format!("/api/programs/{pid}"),
                Some(json!({ "name": "taken" })),
            )],
            (Delete, "/api/programs/{id}") => vec![(format!("/api/programs/{pid}"), None)],
            (Patch, "/api/programs/{id}/schedule/{planningId}") => vec![
                (
                    format!("/api/programs/{pid}/schedule/{day}"),
                    Some(json!({ "notes": "taken" })),
                ),
                (
                    format!("/api/programs/{own_pid}/schedule/{day}"),
                    Some(json!({ "notes": "taken" })),
                ),
            ],
            (Post, "/api/method-usage") => vec![
                (
                    "/api/method-usage".into(),
                    Some(json!({ "methodId": r.walking, "programId": pid })),
                ),
                (
                    "/api/method-usage".into(),
                    Some(json!({ "methodId": r.walking, "scheduleDayId": day })),
                ),
            ],
            (Patch, "/api/method-usage/{id}") => vec![(
                format!("/api/method-usage/{muid}"),
                Some(json!({ "remark": "taken" })),
            )],
            (Get, "/api/method-usage/by-program") => vec![(
                format!("/api/method-usage/by-program?programId={pid}"),
                None,
            )],
            (Get, "/api/habit-usage") => vec![(
                format!("/api/habit-usage?date=2024-03-15&userId={bob_id}"),
                None,
            )],
            (Delete, "/api/habit-usage/{id}") => vec![(format!("/api/habit-usage/{huid}"), None)],
            (Get, "/api/personal-goals") => {
                vec![(format!("/api/personal-goals?userId={bob_id}"), None)]
            }
            (Get, "/api/personal-goals/{id}") => vec![(format!("/api/personal-goals/{gid}"), None)],
            (Patch, "/api/personal-goals/{id}") => vec![(
                format!("/api/personal-goals/{gid}"),
                Some(json!({ "name": "taken" })),
            )],
            (Delete, "/api/personal-goals/{id}") => {
                vec![(format!("/api/personal-goals/{gid}"), None)]
            }
            (Get, "/api/personal-goal-usage") => {
                vec![(format!("/api/personal-goal-usage?userId={bob_id}"), None)]
            }
            (Post, "/api/personal-goal-usage") => vec![(
                "/api/personal-goal-usage".into(),
                Some(json!({ "personalGoalId": gid })),
            )],
            (Get, "/api/overtuiging-usage") => {
                vec![(format!("/api/overtuiging-usage?userId={bob_id}"), None)]
            }
            (Post, "/api/overtuiging-usage") => vec![(
                "/api/overtuiging-usage".into(),
                Some(json!({ "overtuigingId": r.overtuigingen[0], "programId": pid })),
            )],
            (Get, "/api/rewards") => vec![(format!("/api/rewards?userId={bob_id}"), None)],
            other => panic!("no authorization case for {other:?}: add one to this test"),
        };
        Some(cases)
    };

    let mut probed = 0;
    for (verb, path) in airsync_api::served_routes() {
        if airsync_api::openapi::is_public(verb, path) {
            continue;
        }
        let Some(cases) = probe(verb, path) else {
            continue;
        };
        for (concrete, body) in cases {
            let answer = app
                .call(method(verb), &concrete, Some(&ann.token), body, 404)
                .await;
            assert_error(&answer, "not_found", None);
            probed += 1;
        }
    }
    assert!(probed >= 20, "only {probed} probes ran");

    // Bob's data is untouched.
    let still = app.get(&bob, &format!("/api/programs/{pid}"), 200).await;
    assert_eq!(still["name"], program["name"]);
    assert_eq!(still["schedule"][0]["notes"], "");
    app.get(&bob, &format!("/api/personal-goals/{gid}"), 200)
        .await;
    let habits = app.get(&bob, "/api/habit-usage?date=2024-03-15", 200).await;
    assert_eq!(habits["items"].as_array().unwrap().len(), 1);
    let usages: i64 = sqlx::query_scalar("SELECT count(*) FROM method_usage_pg WHERE user_id = $1")
        .bind(ann.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(usages, 0);
}

#[tokio::test]
async fn every_route_but_the_public_ones_answers_401_without_a_valid_token() {
    let app = TestApp::start().await;
    let some_id = uuid::Uuid::new_v4();
    let mut checked = 0;
    for (verb, path) in airsync_api::served_routes() {
        if airsync_api::openapi::is_public(verb, path) {
            continue;
        }
        let concrete = path
            .replace("{id}", &some_id.to_string())
            .replace("{planningId}", &some_id.to_string());
        let body = matches!(verb, Verb::Post | Verb::Patch).then(|| json!({}));
        for token in [None, Some("garbage"), Some("a.b.c")] {
            let answer = app
                .call(method(verb), &concrete, token, body.clone(), 401)
                .await;
            assert_error(&answer, "unauthorized", None);
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} routes checked");
}

#[tokio::test]
async fn a_deleted_users_valid_token_gets_401_on_every_write_never_500() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    sqlx::query("DELETE FROM users_pg WHERE id = $1")
        .bind(ann.id)
        .execute(app.pool())
        .await
        .unwrap();
    let writes = [
        (
            "/api/programs",
            json!({ "name": "P", "methodIds": [r.walking], "dayIds": [r.days[0]],
                    "startDate": "2024-03-11", "endDate": "2024-03-24" }),
        ),
        ("/api/personal-goals", json!({ "name": "Run" })),
        (
            "/api/habit-usage",
            json!({ "methodId": r.water, "usedOn": "2024-03-14" }),
        ),
        (
            "/api/method-usage",
            json!({ "methodId": r.walking, "usedOn": "2024-03-14" }),
        ),
        (
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[0], "usedOn": "2024-03-14" }),
        ),
    ];
    for (path, body) in writes {
        let answer = app.post(&ann, path, body, 401).await;
        assert_error(&answer, "unauthorized", None);
    }
}
