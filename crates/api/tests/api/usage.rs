use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{assert_error, TestApp};

#[tokio::test]
async fn posting_a_method_usage_records_it_and_links_the_schedule_days_program() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let day = &program["schedule"][2];
    let posted = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.breathing, "scheduleDayId": day["id"], "remark": "calm" }),
            201,
        )
        .await;
    let usage = &posted["usage"];
    assert_eq!(usage["programId"], program["id"]);
    assert_eq!(
        usage["usedOn"], "2024-03-15",
        "defaults to today in the user's zone"
    );
    assert_eq!(usage["remark"], "calm");
    assert_eq!(posted["streak"], 1);
    assert_eq!(posted["bonusPointsAwarded"], 0);
}

#[tokio::test]
async fn posting_a_method_usage_names_bad_fields_and_missing_links() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let body = app.post(&ann, "/api/method-usage", json!({}), 400).await;
    assert_error(&body, "invalid_field", Some("methodId"));
    let body = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "usedOn": "2024-03-16" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("usedOn"));
    let body = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("methodId"));
    let body = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "programId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("programId"));
    let body = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "scheduleDayId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("scheduleDayId"));
    let first = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let second = app.program(&ann, "2024-04-01", "2024-04-10").await;
    let body = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "programId": second["id"], "scheduleDayId": first["schedule"][0]["id"] }),
            422,
        )
        .await;
    assert_error(&body, "schedule_day_not_in_program", Some("scheduleDayId"));
}

#[tokio::test]
async fn a_method_usage_linked_to_a_schedule_day_is_on_that_days_date() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let monday = &program["schedule"][0];
    assert_eq!(monday["date"], "2024-03-11");
    // Today (15 March) by default, or another day given: not the day's date.
    for body in [
        json!({ "methodId": r.walking, "scheduleDayId": monday["id"] }),
        json!({ "methodId": r.walking, "scheduleDayId": monday["id"], "usedOn": "2024-03-12" }),
    ] {
        let refused = app.post(&ann, "/api/method-usage", body, 422).await;
        assert_error(&refused, "schedule_day_date_mismatch", Some("usedOn"));
    }
    let posted = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "scheduleDayId": monday["id"], "usedOn": "2024-03-11" }),
            201,
        )
        .await;
    let id = posted["usage"]["id"].as_str().unwrap();
    let refused = app
        .patch(
            &ann,
            &format!("/api/method-usage/{id}"),
            json!({ "usedOn": "2024-03-12" }),
            422,
        )
        .await;
    assert_error(&refused, "schedule_day_date_mismatch", Some("usedOn"));
    // The same date, or a remark alone, is a fine patch; a usage with no
    // schedule day moves freely.
    app.patch(
        &ann,
        &format!("/api/method-usage/{id}"),
        json!({ "usedOn": "2024-03-11", "remark": "done" }),
        200,
    )
    .await;
    let free = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "programId": program["id"], "usedOn": "2024-03-11" }),
            201,
        )
        .await;
    let moved = app
        .patch(
            &ann,
            &format!(
                "/api/method-usage/{}",
                free["usage"]["id"].as_str().unwrap()
            ),
            json!({ "usedOn": "2024-03-12" }),
            200,
        )
        .await;
    assert_eq!(moved["usedOn"], "2024-03-12");
    let stored: Vec<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT used_on FROM method_usage_pg WHERE schedule_day_id IS NOT NULL")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        [chrono::NaiveDate::from_ymd_opt(2024, 3, 11).unwrap()]
    );
}

#[tokio::test]
async fn a_method_usage_post_repeated_with_its_idempotency_key_makes_one_row() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let send = |body: Value| {
        app.client
            .post(format!("{}/api/method-usage", app.base))
            .bearer_auth(&ann.token)
            .header("Idempotency-Key", "tap-42")
            .json(&body)
            .send()
    };
    let body = json!({ "methodId": r.walking, "remark": "once" });
    let (first, second) = tokio::join!(send(body.clone()), send(body));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["usage"]["id"], second["usage"]["id"]);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM method_usage_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let other = send(json!({ "methodId": r.walking, "remark": "another body" }))
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 422);
}

#[tokio::test]
async fn idempotency_keys_are_kept_thirty_days_then_purged_by_later_posts() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let post = |key: &'static str| {
        app.client
            .post(format!("{}/api/method-usage", app.base))
            .bearer_auth(&ann.token)
            .header("Idempotency-Key", key)
            .json(&json!({ "methodId": r.walking }))
            .send()
    };
    assert_eq!(post("old").await.unwrap().status().as_u16(), 201);
    assert_eq!(post("recent").await.unwrap().status().as_u16(), 201);
    sqlx::query(
        "UPDATE api_idempotency_keys
            SET created_at = now() - CASE key WHEN 'old' THEN interval '31 days' ELSE interval '29 days' END
          WHERE key IN ('old', 'recent')",
    )
    .execute(app.pool())
    .await
    .unwrap();
    // Any later post purges the expired key (of any user); the recent one
    // still answers a repeat with the first usage.
    assert_eq!(post("next").await.unwrap().status().as_u16(), 201);
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM api_idempotency_keys ORDER BY key")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(keys, ["next", "recent"]);
    assert_eq!(post("recent").await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn patching_a_method_usage_changes_its_day_and_remark() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = &app.reference;
    let posted = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking }),
            201,
        )
        .await;
    let id = posted["usage"]["id"].as_str().unwrap();
    let changed = app
        .patch(
            &ann,
            &format!("/api/method-usage/{id}"),
            json!({ "usedOn": "2024-03-14", "remark": "yesterday" }),
            200,
        )
        .await;
    assert_eq!(changed["usedOn"], "2024-03-14");
    assert_eq!(changed["remark"], "yesterday");
    let body = app
        .patch(
            &ann,
            &format!("/api/method-usage/{id}"),
            json!({ "usedOn": "tomorrow" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("usedOn"));
    app.patch(
        &bob,
        &format!("/api/method-usage/{id}"),
        json!({ "remark": "mine" }),
        404,
    )
    .await;
    app.patch(
        &ann,
        &format!("/api/method-usage/{}", uuid::Uuid::new_v4()),
        json!({ "remark": "x" }),
        404,
    )
    .await;
}

#[tokio::test]
async fn method_usage_by_program_returns_the_latest_usage_of_each_method() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let pid = &program["id"];
    for (method, day) in [
        (r.walking, "2024-03-11"),
        (r.walking, "2024-03-13"),
        (r.breathing, "2024-03-12"),
    ] {
        app.post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": method, "programId": pid, "usedOn": day }),
            201,
        )
        .await;
    }
    app.post(
        &ann,
        "/api/method-usage",
        json!({ "methodId": r.walking, "usedOn": "2024-03-14" }),
        201,
    )
    .await;
    let latest = app
        .get(
            &ann,
            &format!(
                "/api/method-usage/by-program?programId={}",
                pid.as_str().unwrap()
            ),
            200,
        )
        .await;
    let seen: Vec<(String, String)> = latest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["methodId"].as_str().unwrap().to_owned(),
                u["usedOn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (r.walking.to_string(), "2024-03-13".into()),
            (r.breathing.to_string(), "2024-03-12".into())
        ]
    );
    let body = app.get(&ann, "/api/method-usage/by-program", 400).await;
    assert_error(&body, "invalid_field", Some("programId"));
    let body = app
        .get(&ann, "/api/method-usage/by-program?programId=rec123", 400)
        .await;
    assert_error(&body, "invalid_field", Some("programId"));
    // A record id the sync has not mapped to a program, or another user's.
    app.get(
        &ann,
        "/api/method-usage/by-program?programId=recAAAAAAAAAAAAAA",
        404,
    )
    .await;
    let bob = app.user("bob@example.com").await;
    sqlx::query(
        "INSERT INTO airtable_id_map (entity, row_id, airtable_id) VALUES ('program', $1, 'recPROGRAMOFANN01')",
    )
    .bind(uuid::Uuid::parse_str(pid.as_str().unwrap()).unwrap())
    .execute(app.pool())
    .await
    .unwrap();
    let by_record = app
        .get(
            &ann,
            "/api/method-usage/by-program?programId=recPROGRAMOFANN01",
            200,
        )
        .await;
    assert_eq!(by_record, latest);
    app.get(
        &bob,
        "/api/method-usage/by-program?programId=recPROGRAMOFANN01",
        404,
    )
    .await;
    app.get(
        &ann,
        &format!(
            "/api/method-usage/by-program?programId={}",
            uuid::Uuid::new_v4()
        ),
        404,
    )
    .await;
}

#[tokio::test]
async fn ticking_a_habit_twice_on_a_day_keeps_one_row() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let first = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water }),
            201,
        )
        .await;
    let again = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water }),
            200,
        )
        .await;
    assert_eq!(first["usage"]["id"], again["usage"]["id"]);
    assert_eq!(first["usage"]["usedOn"], "2024-03-15");
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["counts"]["habitUsage"], 1);
    assert_eq!(rewards["totalPoints"], 5);
}

#[tokio::test]
async fn a_habit_usage_needs_a_habit_that_exists() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let body = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.walking }),
            422,
        )
        .await;
    assert_error(&body, "not_a_habit", Some("methodId"));
    let body = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("methodId"));
    let body = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": "water" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("methodId"));
    let body = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water, "usedOn": "2024-02-30" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("usedOn"));
}

#[tokio::test]
async fn habit_usage_is_listed_by_date_or_range_and_paginated() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = &app.reference;
    for day in ["2024-03-10", "2024-03-11", "2024-03-12"] {
        for habit in [r.water, r.journal] {
            app.post(
                &ann,
                "/api/habit-usage",
                json!({ "methodId": habit, "usedOn": day }),
                201,
            )
            .await;
        }
    }
    app.post(
        &bob,
        "/api/habit-usage",
        json!({ "methodId": r.water, "usedOn": "2024-03-11" }),
        201,
    )
    .await;
    let one_day = app.get(&ann, "/api/habit-usage?date=2024-03-11", 200).await;
    assert_eq!(one_day["items"].as_array().unwrap().len(), 2);
    let first = app
        .get(
            &ann,
            "/api/habit-usage?from=2024-03-10&to=2024-03-12&limit=4",
            200,
        )
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest = app
        .get(
            &ann,
            &format!("/api/habit-usage?from=2024-03-10&to=2024-03-12&limit=4&cursor={cursor}"),
            200,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest["items"][1]["usedOn"], "2024-03-12");
    for (query, field) in [
        ("", "from"),
        ("?from=2024-03-10", "to"),
        ("?from=2024-03-12&to=2024-03-10", "to"),
        ("?date=yesterday", "date"),
        ("?date=2024-03-10&from=2024-03-10", "date"),
        ("?from=2023-01-01&to=2024-03-10", "to"),
    ] {
        let body = app
            .get(&ann, &format!("/api/habit-usage{query}"), 400)
            .await;
        assert_error(&body, "invalid_field", Some(field));
    }
}

#[tokio::test]
async fn deleting_a_habit_usage_removes_its_points() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = &app.reference;
    let posted = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water }),
            201,
        )
        .await;
    let id = posted["usage"]["id"].as_str().unwrap();
    app.delete(&bob, &format!("/api/habit-usage/{id}"), 404)
        .await;
    app.delete(&ann, &format!("/api/habit-usage/{id}"), 204)
        .await;
    app.delete(&ann, &format!("/api/habit-usage/{id}"), 404)
        .await;
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["totalPoints"], 0);
}

#[tokio::test]
async fn personal_goals_are_created_read_changed_and_deleted() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let goal = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "name": " Run 5k ", "description": "by summer" }),
            201,
        )
        .await;
    assert_eq!(goal["name"], "Run 5k");
    assert_eq!(goal["active"], true);
    let id = goal["id"].as_str().unwrap();
    let read = app
        .get(&ann, &format!("/api/personal-goals/{id}"), 200)
        .await;
    assert_eq!(read, goal);
    let changed = app
        .patch(
            &ann,
            &format!("/api/personal-goals/{id}"),
            json!({ "active": false }),
            200,
        )
        .await;
    assert_eq!(changed["active"], false);
    assert_eq!(changed["description"], "by summer");
    let listed = app.get(&ann, "/api/personal-goals?active=false", 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let listed = app.get(&ann, "/api/personal-goals?active=true", 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    app.delete(&ann, &format!("/api/personal-goals/{id}"), 204)
        .await;
    app.get(&ann, &format!("/api/personal-goals/{id}"), 404)
        .await;
    app.patch(
        &ann,
        &format!("/api/personal-goals/{id}"),
        json!({ "name": "x" }),
        404,
    )
    .await;
    app.delete(&ann, &format!("/api/personal-goals/{id}"), 404)
        .await;
}

#[tokio::test]
async fn personal_goals_validate_their_fields() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let body = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "description": "no name" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("name"));
    let body = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "name": "x", "active": "yes" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("active"));
    let body = app.get(&ann, "/api/personal-goals?active=maybe", 400).await;
    assert_error(&body, "invalid_field", Some("active"));
}

#[tokio::test]
async fn an_eleventh_active_personal_goal_is_refused() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    for n in 0..10 {
        app.post(
            &ann,
            "/api/personal-goals",
            json!({ "name": format!("Goal {n}") }),
            201,
        )
        .await;
    }
    let body = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "name": "One too many" }),
            422,
        )
        .await;
    assert_error(&body, "too_many_active_goals", Some("active"));
    let resting = app
        .post(
            &ann,
            "/api/personal-goals",
            json!({ "name": "Resting", "active": false }),
            201,
        )
        .await;
    let id = resting["id"].as_str().unwrap();
    app.patch(
        &ann,
        &format!("/api/personal-goals/{id}"),
        json!({ "active": true }),
        422,
    )
    .await;
    let page = app.get(&ann, "/api/personal-goals?limit=5", 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = app
        .get(
            &ann,
            &format!("/api/personal-goals?limit=50&cursor={cursor}"),
            200,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn personal_goal_usage_is_recorded_once_per_day_and_listed() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let goal = app
        .post(&ann, "/api/personal-goals", json!({ "name": "Run" }), 201)
        .await;
    let gid = &goal["id"];
    let first = app
        .post(
            &ann,
            "/api/personal-goal-usage",
            json!({ "personalGoalId": gid }),
            201,
        )
        .await;
    let again = app
        .post(
            &ann,
            "/api/personal-goal-usage",
            json!({ "personalGoalId": gid }),
            200,
        )
        .await;
    assert_eq!(first["usage"]["id"], again["usage"]["id"]);
    app.post(
        &ann,
        "/api/personal-goal-usage",
        json!({ "personalGoalId": gid, "usedOn": "2024-03-10" }),
        201,
    )
    .await;
    let listed = app.get(&ann, "/api/personal-goal-usage", 200).await;
    let days: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["usedOn"].as_str().unwrap())
        .collect();
    assert_eq!(days, ["2024-03-15", "2024-03-10"]);
    let ranged = app
        .get(
            &ann,
            "/api/personal-goal-usage?from=2024-03-01&to=2024-03-12",
            200,
        )
        .await;
    assert_eq!(ranged["items"].as_array().unwrap().len(), 1);
    let body = app
        .get(&ann, "/api/personal-goal-usage?from=2024-03-01", 400)
        .await;
    assert_error(&body, "invalid_field", Some("to"));
    // Filtering by one's own goal lists its usage; by another user's goal
    // (or one that does not exist) answers 404, as docs/api.md promises.
    let own = app
        .get(
            &ann,
            &format!(
                "/api/personal-goal-usage?personalGoalId={}",
                gid.as_str().unwrap()
            ),
            200,
        )
        .await;
    assert_eq!(own["items"].as_array().unwrap().len(), 2);
    let body = app
        .get(
            &bob,
            &format!(
                "/api/personal-goal-usage?personalGoalId={}",
                gid.as_str().unwrap()
            ),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("personalGoalId"));
    let body = app
        .get(
            &ann,
            &format!(
                "/api/personal-goal-usage?personalGoalId={}",
                uuid::Uuid::new_v4()
            ),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("personalGoalId"));
    let body = app
        .post(
            &bob,
            "/api/personal-goal-usage",
            json!({ "personalGoalId": gid }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("personalGoalId"));
    let body = app
        .post(&ann, "/api/personal-goal-usage", json!({}), 400)
        .await;
    assert_error(&body, "invalid_field", Some("personalGoalId"));
}

#[tokio::test]
async fn overtuiging_usage_is_recorded_once_per_overtuiging() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let first = app
        .post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[0], "programId": program["id"] }),
            201,
        )
        .await;
    assert_eq!(first["usage"]["programId"], program["id"]);
    assert_eq!(first["streak"], 1);
    let again = app
        .post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[0], "usedOn": "2024-03-14" }),
            200,
        )
        .await;
    assert_eq!(again["usage"]["id"], first["usage"]["id"]);
    assert_eq!(
        again["usage"]["usedOn"], "2024-03-15",
        "the first answer stands"
    );
    assert_eq!(again["bonusPointsAwarded"], 0);
    let listed = app.get(&ann, "/api/overtuiging-usage", 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let body = app
        .post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("overtuigingId"));
    let body = app
        .post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[1], "programId": uuid::Uuid::new_v4() }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("programId"));
    let body = app
        .post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[1], "usedOn": "2024-03-16" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("usedOn"));
}

#[tokio::test]
async fn two_concurrent_identical_overtuiging_posts_make_one_row_and_award_once() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    // Two days of habits before today: today's post makes a 3-day streak.
    for day in ["2024-03-13", "2024-03-14"] {
        app.post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": r.water, "usedOn": day }),
            201,
        )
        .await;
    }
    for round in 0..5 {
        let body = json!({ "overtuigingId": r.overtuigingen[round % 3] });
        let send = || {
            app.send(
                Method::POST,
                "/api/overtuiging-usage",
                Some(&ann.token),
                Some(body.clone()),
            )
        };
        let ((first_status, first), (second_status, second)) = tokio::join!(send(), send());
        if round < 3 {
            let mut statuses = [first_status, second_status];
            statuses.sort();
            assert_eq!(statuses, [200, 201], "{first:#} {second:#}");
            assert_eq!(first["usage"]["id"], second["usage"]["id"]);
        }
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM overtuiging_usage_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(rows, 3);
    let (bonus, badges): (i32, Vec<String>) =
        sqlx::query_as("SELECT bonus_points, badges FROM users_pg WHERE id = $1")
            .bind(ann.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((bonus, badges), (10, vec!["streak-3".to_owned()]));
    let awards: i64 = sqlx::query_scalar("SELECT count(*) FROM streak_bonus_awards")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(awards, 1);
}

#[tokio::test]
async fn a_date_with_a_signed_or_long_year_is_a_400_naming_the_field() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    for date in ["-5000-01-01", "+10000-01-01", "0000-06-01"] {
        let body = app
            .post(
                &ann,
                "/api/habit-usage",
                json!({ "methodId": r.water, "usedOn": date }),
                400,
            )
            .await;
        assert_error(&body, "invalid_field", Some("usedOn"));
        let body = app
            .post(
                &ann,
                "/api/programs",
                json!({ "name": "P", "methodIds": [r.walking], "dayIds": [r.days[0]],
                        "startDate": date, "endDate": "2024-01-31" }),
                400,
            )
            .await;
        assert_error(&body, "invalid_field", Some("startDate"));
    }
}
