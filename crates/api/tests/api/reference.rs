use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{assert_error, TestApp};

#[tokio::test]
async fn a_method_is_shown_with_its_goals() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let method = app
        .get(&ann, &format!("/api/methods/{}", r.breathing), 200)
        .await;
    assert_eq!(method["name"], "Breathing");
    assert_eq!(method["isHabit"], false);
    assert_eq!(method["durationMinutes"], 10);
    assert_eq!(
        method["goals"],
        json!([{ "id": r.goal_a, "name": "Less stress" }])
    );
    app.get(&ann, &format!("/api/methods/{}", uuid::Uuid::new_v4()), 404)
        .await;
    let body = app.get(&ann, "/api/methods/xyz", 400).await;
    assert_error(&body, "invalid_field", Some("id"));
}

#[tokio::test]
async fn habits_are_the_active_habits_in_sort_order_paginated() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let habits = app.get(&ann, "/api/methods/habits", 200).await;
    let ids: Vec<&str> = habits["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [r.water.to_string(), r.journal.to_string()]);
    let first = app.get(&ann, "/api/methods/habits?limit=1", 200).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = app
        .get(
            &ann,
            &format!("/api/methods/habits?limit=1&cursor={cursor}"),
            200,
        )
        .await;
    assert_eq!(second["items"][0]["id"], r.journal.to_string());
}

#[tokio::test]
async fn overtuigingen_are_found_by_any_of_their_goals() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let by_a = app
        .get(
            &ann,
            &format!("/api/overtuigingen/by-goals?goalIds={}", r.goal_a),
            200,
        )
        .await;
    let names: Vec<&str> = by_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["I am enough", "Rest is allowed"]);
    let both = app
        .get(
            &ann,
            &format!(
                "/api/overtuigingen/by-goals?goalIds={},{}",
                r.goal_a, r.goal_b
            ),
            200,
        )
        .await;
    assert_eq!(both["items"].as_array().unwrap().len(), 3);
    let body = app.get(&ann, "/api/overtuigingen/by-goals", 400).await;
    assert_error(&body, "invalid_field", Some("goalIds"));
    let body = app
        .get(&ann, "/api/overtuigingen/by-goals?goalIds=a,b", 400)
        .await;
    assert_error(&body, "invalid_field", Some("goalIds"));
}

#[tokio::test]
async fn a_company_is_looked_up_by_code_in_any_case_without_signing_in() {
    let app = TestApp::start().await;
    let r = &app.reference;
    let company = app
        .call(
            Method::GET,
            "/api/companies/lookup?code=acme-01",
            None,
            None,
            200,
        )
        .await;
    assert_eq!(
        company,
        json!({ "id": r.company, "name": "Acme", "code": "ACME-01" })
    );
    let body = app
        .call(
            Method::GET,
            "/api/companies/lookup?code=nope",
            None,
            None,
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("code"));
    let body = app
        .call(Method::GET, "/api/companies/lookup", None, None, 400)
        .await;
    assert_error(&body, "invalid_field", Some("code"));
    sqlx::query("UPDATE companies_pg SET active = false")
        .execute(app.pool())
        .await
        .unwrap();
    app.call(
        Method::GET,
        "/api/companies/lookup?code=ACME-01",
        None,
        None,
        404,
    )
    .await;
}

#[tokio::test]
async fn an_unknown_route_answers_404_in_the_error_shape() {
    let app = TestApp::start().await;
    let body = app
        .call(Method::GET, "/api/nothing-here", None, None, 404)
        .await;
    assert_error(&body, "not_found", None);
}

#[tokio::test]
async fn the_public_company_lookup_is_throttled_per_client_address() {
    let app = TestApp::start().await;
    for n in 0..20 {
        let path = format!("/api/companies/lookup?code=guess-{n}");
        app.call(Method::GET, &path, None, None, 404).await;
    }
    let (status, body) = app
        .send(
            Method::GET,
            "/api/companies/lookup?code=acme-01",
            None,
            None,
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_error(&body, "too_many_attempts", None);
    app.clock.advance(Duration::from_secs(61));
    app.call(
        Method::GET,
        "/api/companies/lookup?code=acme-01",
        None,
        None,
        200,
    )
    .await;
}
