use serde_json::{json, Value};

use crate::support::{assert_error, TestApp};

fn dates(program: &Value) -> Vec<String> {
    program["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|day| day["date"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_program_generates_a_schedule_day_for_each_chosen_weekday() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    // 2024-03-11 is a Monday; the program runs two weeks on Mon, Wed, Fri.
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    assert_eq!(
        dates(&program),
        [
            "2024-03-11",
            "2024-03-13",
            "2024-03-15",
            "2024-03-18",
            "2024-03-20",
            "2024-03-22"
        ]
    );
    let r = &app.reference;
    for day in program["schedule"].as_array().unwrap() {
        assert_eq!(day["methodIds"], json!([r.breathing, r.walking]));
        assert_eq!(day["completed"], false);
    }
    assert_eq!(program["goalIds"], json!([r.goal_a]));
    assert_eq!(program["dayIds"], json!([r.days[0], r.days[2], r.days[4]]));
    assert_eq!(program["progress"]["totalDays"], 6);
    assert_eq!(program["progress"]["daysToDate"], 3);
    // The schedule is captured for the outbound sync.
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE entity = 'program_schedule'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(events, 6);
}

#[tokio::test]
async fn create_program_rejects_overlapping_dates_naming_the_clashing_program() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let first = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let r = &app.reference;
    let body = app
        .post(
            &ann,
            "/api/programs",
            json!({ "name": "Second", "methodIds": [r.walking], "dayIds": [r.days[1]], "startDate": "2024-03-24", "endDate": "2024-04-10" }),
            409,
        )
        .await;
    assert_error(&body, "program_overlap", None);
    assert_eq!(body["error"]["conflictingId"], first["id"]);
    // Another user's program on the same dates is no clash.
    let bob = app.user("bob@example.com").await;
    app.program(&bob, "2024-03-11", "2024-03-24").await;
}

#[tokio::test]
async fn create_program_names_the_invalid_field() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let valid = json!({ "name": "P", "methodIds": [r.walking], "dayIds": [r.days[0]], "startDate": "2024-03-11", "endDate": "2024-03-24" });
    let cases = [
        ("name", json!({ "name": "   " })),
        ("name", json!({ "name": null })),
        ("startDate", json!({ "startDate": "11-03-2024" })),
        ("endDate", json!({ "endDate": "2024-03-01" })),
        ("endDate", json!({ "endDate": "2025-12-31" })),
        ("methodIds", json!({ "methodIds": [] })),
        ("methodIds", json!({ "methodIds": ["not-a-uuid"] })),
        ("methodIds", json!({ "methodIds": [r.walking, r.walking] })),
        ("dayIds", json!({ "dayIds": "monday" })),
        ("goalIds", json!({ "goalIds": [1] })),
        ("notes", json!({ "notes": 5 })),
        ("colour", json!({ "colour": "blue" })),
    ];
    for (field, change) in cases {
        let mut body = valid.clone();
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        let answer = app.post(&ann, "/api/programs", body, 400).await;
        assert_error(&answer, "invalid_field", Some(field));
    }
}

#[tokio::test]
async fn create_program_answers_404_for_links_to_rows_that_do_not_exist() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    let missing = uuid::Uuid::new_v4();
    for (field, change) in [
        ("methodIds", json!({ "methodIds": [r.walking, missing] })),
        ("dayIds", json!({ "dayIds": [missing] })),
        ("goalIds", json!({ "goalIds": [missing] })),
    ] {
        let mut body = json!({ "name": "P", "methodIds": [r.walking], "dayIds": [r.days[0]], "startDate": "2024-03-11", "endDate": "2024-03-24" });
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let answer = app.post(&ann, "/api/programs", body, 404).await;
        assert_error(&answer, "not_found", Some(field));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn list_programs_pages_through_the_users_programs_latest_first() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.program(&bob, "2024-01-01", "2024-01-10").await;
    for (start, end) in [
        ("2024-01-01", "2024-01-10"),
        ("2024-02-01", "2024-02-10"),
        ("2024-03-01", "2024-03-10"),
    ] {
        app.program(&ann, start, end).await;
    }
    let first = app.get(&ann, "/api/programs?limit=2", 200).await;
    let starts: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["startDate"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["2024-03-01", "2024-02-01"]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = app
        .get(&ann, &format!("/api/programs?limit=2&cursor={cursor}"), 200)
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["startDate"], "2024-01-01");
    assert_eq!(second["nextCursor"], Value::Null);
    let body = app.get(&ann, "/api/programs?limit=0", 400).await;
    assert_error(&body, "invalid_field", Some("limit"));
    let body = app.get(&ann, "/api/programs?cursor=garbage", 400).await;
    assert_error(&body, "invalid_field", Some("cursor"));
}

#[tokio::test]
async fn get_program_reports_progress_to_date_and_overall() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let r = &app.reference;
    // Monday done completely, Wednesday half.
    for (method, day) in [
        (r.breathing, "2024-03-11"),
        (r.walking, "2024-03-11"),
        (r.walking, "2024-03-13"),
    ] {
        app.post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": method, "usedOn": day }),
            201,
        )
        .await;
    }
    let id = program["id"].as_str().unwrap();
    let detail = app.get(&ann, &format!("/api/programs/{id}"), 200).await;
    let completed: Vec<bool> = detail["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["completed"].as_bool().unwrap())
        .collect();
    assert_eq!(completed, [true, false, false, false, false, false]);
    let progress = &detail["progress"];
    assert_eq!(progress["completedDays"], 1);
    assert_eq!(progress["daysToDate"], 3);
    assert_eq!(progress["totalDays"], 6);
    assert!((progress["toDate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!((progress["overall"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-9);
    // The stored flag follows, for Airtable.
    let stored: bool =
        sqlx::query_scalar("SELECT completed FROM program_schedule_pg WHERE date = '2024-03-11'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(stored);
}

#[tokio::test]
async fn get_program_answers_404_for_a_missing_program_and_400_for_a_malformed_id() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let body = app
        .get(
            &ann,
            &format!("/api/programs/{}", uuid::Uuid::new_v4()),
            404,
        )
        .await;
    assert_error(&body, "not_found", None);
    let body = app.get(&ann, "/api/programs/12345", 400).await;
    assert_error(&body, "invalid_field", Some("id"));
}

#[tokio::test]
async fn patching_days_regenerates_the_schedule_from_today_and_keeps_the_past() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let id = program["id"].as_str().unwrap();
    let r = &app.reference;
    let monday = program["schedule"][0].clone();
    app.patch(
        &ann,
        &format!(
            "/api/programs/{id}/schedule/{}",
            monday["id"].as_str().unwrap()
        ),
        json!({ "notes": "felt good" }),
        200,
    )
    .await;
    // Today is Friday 2024-03-15; move to Tuesdays and Thursdays.
    let changed = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "dayIds": [r.days[1], r.days[3]] }),
            200,
        )
        .await;
    assert_eq!(
        dates(&changed),
        ["2024-03-11", "2024-03-13", "2024-03-19", "2024-03-21"]
    );
    assert_eq!(
        changed["schedule"][0]["id"], monday["id"],
        "a past day keeps its row"
    );
    assert_eq!(changed["schedule"][0]["notes"], "felt good");
    assert_eq!(changed["dayIds"], json!([r.days[1], r.days[3]]));
}

#[tokio::test]
async fn patching_methods_replans_future_days_only() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let id = program["id"].as_str().unwrap();
    let r = &app.reference;
    let changed = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "methodIds": [r.walking] }),
            200,
        )
        .await;
    let planned: Vec<Value> = changed["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["methodIds"].clone())
        .collect();
    let both = json!([r.breathing, r.walking]);
    let walking = json!([r.walking]);
    assert_eq!(
        planned,
        [
            both.clone(),
            both,
            walking.clone(),
            walking.clone(),
            walking.clone(),
            walking
        ]
    );
}

#[tokio::test]
async fn patching_dates_regenerates_and_checks_overlap_and_order() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let later = app.program(&ann, "2024-04-01", "2024-04-30").await;
    let id = program["id"].as_str().unwrap();
    let shorter = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "endDate": "2024-03-18" }),
            200,
        )
        .await;
    assert_eq!(
        dates(&shorter),
        ["2024-03-11", "2024-03-13", "2024-03-15", "2024-03-18"]
    );
    let body = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "endDate": "2024-04-02" }),
            409,
        )
        .await;
    assert_error(&body, "program_overlap", None);
    assert_eq!(body["error"]["conflictingId"], later["id"]);
    let body = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "endDate": "2024-03-01" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("endDate"));
    let body = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "startDate": "2024-03-30" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("startDate"));
    let renamed = app
        .patch(
            &ann,
            &format!("/api/programs/{id}"),
            json!({ "name": "Renamed", "notes": "n" }),
            200,
        )
        .await;
    assert_eq!(renamed["name"], "Renamed");
    assert_eq!(dates(&renamed).len(), 4);
}

#[tokio::test]
async fn deleting_a_program_deletes_its_schedule_and_keeps_usage_history() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let id = program["id"].as_str().unwrap();
    let day = program["schedule"][0]["id"].as_str().unwrap();
    let r = &app.reference;
    let posted = app
        .post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "scheduleDayId": day, "usedOn": "2024-03-11" }),
            201,
        )
        .await;
    assert_eq!(posted["usage"]["programId"], id);
    app.delete(&ann, &format!("/api/programs/{id}"), 204).await;
    app.get(&ann, &format!("/api/programs/{id}"), 404).await;
    app.delete(&ann, &format!("/api/programs/{id}"), 404).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM program_schedule_pg")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let (program_id, schedule_day_id): (Option<uuid::Uuid>, Option<uuid::Uuid>) =
        sqlx::query_as("SELECT program_id, schedule_day_id FROM method_usage_pg")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((program_id, schedule_day_id), (None, None));
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["counts"]["methodUsage"], 1);
}

#[tokio::test]
async fn patching_a_schedule_day_changes_its_methods_and_notes() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let id = program["id"].as_str().unwrap();
    let day = program["schedule"][0]["id"].as_str().unwrap();
    let r = &app.reference;
    app.post(
        &ann,
        "/api/method-usage",
        json!({ "methodId": r.walking, "usedOn": "2024-03-11" }),
        201,
    )
    .await;
    let changed = app
        .patch(
            &ann,
            &format!("/api/programs/{id}/schedule/{day}"),
            json!({ "methodIds": [r.walking], "notes": "only a walk" }),
            200,
        )
        .await;
    assert_eq!(changed["methodIds"], json!([r.walking]));
    assert_eq!(changed["notes"], "only a walk");
    assert_eq!(changed["completed"], true);
    let body = app
        .patch(
            &ann,
            &format!("/api/programs/{id}/schedule/{day}"),
            json!({ "methodIds": [uuid::Uuid::new_v4()] }),
            404,
        )
        .await;
    assert_error(&body, "not_found", Some("methodIds"));
    let body = app
        .patch(
            &ann,
            &format!("/api/programs/{id}/schedule/{day}"),
            json!({ "methodIds": [] }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("methodIds"));
    let other = app.program(&ann, "2024-05-01", "2024-05-10").await;
    let other_id = other["id"].as_str().unwrap();
    app.patch(
        &ann,
        &format!("/api/programs/{other_id}/schedule/{day}"),
        json!({ "notes": "x" }),
        404,
    )
    .await;
}

#[tokio::test]
async fn an_admin_reads_any_users_programs_and_a_user_reads_only_their_own() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let admin = app.admin("admin@example.com").await;
    let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
    let id = program["id"].as_str().unwrap();
    app.get(&admin, &format!("/api/programs/{id}"), 200).await;
    let listed = app
        .get(&admin, &format!("/api/programs?userId={}", ann.id), 200)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    app.get(&bob, &format!("/api/programs/{id}"), 404).await;
    let body = app
        .get(&bob, &format!("/api/programs?userId={}", ann.id), 404)
        .await;
    assert_error(&body, "not_found", Some("userId"));
    // Reading is all an admin may do with another user's program.
    app.patch(
        &admin,
        &format!("/api/programs/{id}"),
        json!({ "name": "Mine now" }),
        404,
    )
    .await;
    app.delete(&admin, &format!("/api/programs/{id}"), 404)
        .await;
}
