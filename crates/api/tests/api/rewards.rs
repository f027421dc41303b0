use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;

use crate::support::{TestApp, TestUser};

async fn habit_on(app: &TestApp, user: &TestUser, day: NaiveDate) -> serde_json::Value {
    app.post(
        user,
        "/api/habit-usage",
        json!({ "methodId": app.reference.water, "usedOn": day.to_string() }),
        201,
    )
    .await
}

/// Sets the clock to noon UTC of `day`.
fn noon(app: &TestApp, day: NaiveDate) {
    app.set_now(Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()));
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn a_streak_runs_across_a_month_end_and_awards_its_bonus_once() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let mut answers = Vec::new();
    for day in [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1)] {
        noon(&app, day);
        answers.push(habit_on(&app, &ann, day).await);
    }
    assert_eq!(answers[2]["streak"], 3);
    assert_eq!(answers[2]["bonusPointsAwarded"], 10);
    assert_eq!(answers[2]["badgesAwarded"], json!(["streak-3"]));
    // More usage on the same day extends nothing and awards nothing.
    let more = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": app.reference.journal }),
            201,
        )
        .await;
    assert_eq!(more["bonusPointsAwarded"], 0);
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["currentStreak"], 3);
    assert_eq!(rewards["longestStreak"], 3);
    assert_eq!(rewards["bonusPoints"], 10);
    assert_eq!(rewards["totalPoints"], 4 * 5 + 10);
    assert_eq!(rewards["badges"], json!(["streak-3"]));
    // The streak still counts tomorrow, and is gone the day after.
    noon(&app, date(2024, 2, 2));
    assert_eq!(app.get(&ann, "/api/rewards", 200).await["currentStreak"], 3);
    noon(&app, date(2024, 2, 3));
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["currentStreak"], 0);
    assert_eq!(rewards["longestStreak"], 3);
}

#[tokio::test]
async fn streak_days_are_the_users_calendar_days() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    sqlx::query("UPDATE users_pg SET time_zone = 'America/New_York' WHERE id = $1")
        .bind(ann.id)
        .execute(app.pool())
        .await
        .unwrap();
    let ann = app.sign_in(ann.id, &ann.email).await;
    // 2024-03-01 03:00 UTC is still 29 February in New York.
    app.set_now(Utc.with_ymd_and_hms(2024, 3, 1, 3, 0, 0).unwrap());
    let posted = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": app.reference.water }),
            201,
        )
        .await;
    assert_eq!(posted["usage"]["usedOn"], "2024-02-29");
    let body = app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": app.reference.water, "usedOn": "2024-03-01" }),
            400,
        )
        .await;
    assert_eq!(body["error"]["field"], "usedOn");
    // An Amsterdam user at the same instant is already on 1 March.
    let bob = app.user("bob@example.com").await;
    let posted = app
        .post(
            &bob,
            "/api/habit-usage",
            json!({ "methodId": app.reference.water }),
            201,
        )
        .await;
    assert_eq!(posted["usage"]["usedOn"], "2024-03-01");
    // Late on 1 March in New York, the usage of 29 February (yesterday there)
    // still carries Ann's streak.
    app.set_now(Utc.with_ymd_and_hms(2024, 3, 2, 4, 30, 0).unwrap());
    assert_eq!(app.get(&ann, "/api/rewards", 200).await["currentStreak"], 1);
    assert_eq!(app.get(&bob, "/api/rewards", 200).await["currentStreak"], 1);
    // An hour later it is 2 March in New York: Ann's streak is over, while
    // Bob's (in Amsterdam, usage of 1 March) lasts until 3 March there.
    app.set_now(Utc.with_ymd_and_hms(2024, 3, 2, 5, 30, 0).unwrap());
    assert_eq!(app.get(&ann, "/api/rewards", 200).await["currentStreak"], 0);
    assert_eq!(app.get(&bob, "/api/rewards", 200).await["currentStreak"], 1);
    app.set_now(Utc.with_ymd_and_hms(2024, 3, 2, 23, 30, 0).unwrap());
    assert_eq!(app.get(&bob, "/api/rewards", 200).await["currentStreak"], 0);
}

#[tokio::test]
async fn each_streak_threshold_awards_its_bonus_once_and_its_badge_once_ever() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let start = date(2024, 1, 1);
    let mut awarded = Vec::new();
    for offset in 0..100 {
        let day = start + chrono::Duration::days(offset);
        noon(&app, day);
        let answer = habit_on(&app, &ann, day).await;
        if answer["bonusPointsAwarded"] != 0 {
            awarded.push((
                answer["streak"].as_i64().unwrap(),
                answer["bonusPointsAwarded"].as_i64().unwrap(),
            ));
        }
    }
    assert_eq!(
        awarded,
        [(3, 10), (7, 25), (14, 50), (30, 100), (60, 200), (100, 400)]
    );
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["bonusPoints"], 785);
    assert_eq!(
        rewards["badges"],
        json!([
            "streak-3",
            "streak-7",
            "streak-14",
            "streak-30",
            "streak-60",
            "streak-100"
        ])
    );
    // A new run after a break earns the 3-day bonus again, but no badge.
    let restart = start + chrono::Duration::days(102);
    for offset in 0..3 {
        let day = restart + chrono::Duration::days(offset);
        noon(&app, day);
        habit_on(&app, &ann, day).await;
    }
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["bonusPoints"], 795);
    assert_eq!(rewards["badges"].as_array().unwrap().len(), 6);
    assert_eq!(rewards["longestStreak"], 100);
    assert_eq!(rewards["currentStreak"], 3);
}

#[tokio::test]
async fn a_late_usage_that_lengthens_a_run_backwards_does_not_award_its_bonus_again() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    noon(&app, date(2024, 3, 15));
    for day in [date(2024, 3, 13), date(2024, 3, 14), date(2024, 3, 15)] {
        habit_on(&app, &ann, day).await;
    }
    // Filling in 12 March moves the run's first day; it is still the same run.
    let late = habit_on(&app, &ann, date(2024, 3, 12)).await;
    assert_eq!(late["streak"], 4);
    assert_eq!(late["bonusPointsAwarded"], 0);
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["bonusPoints"], 10);
}

#[tokio::test]
async fn rewards_total_every_kind_of_usage_and_set_the_level() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    // Five method usages on separate, non-consecutive days: 50 points, no bonus.
    for day in [
        "2024-03-01",
        "2024-03-03",
        "2024-03-05",
        "2024-03-07",
        "2024-03-09",
    ] {
        // Posted on the day itself: a usage is dated at most a week back.
        noon(&app, day.parse().unwrap());
        app.post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "usedOn": day }),
            201,
        )
        .await;
    }
    noon(&app, date(2024, 3, 15));
    let goal = app
        .post(&ann, "/api/personal-goals", json!({ "name": "Run" }), 201)
        .await;
    app.post(
        &ann,
        "/api/personal-goal-usage",
        json!({ "personalGoalId": goal["id"], "usedOn": "2024-03-11" }),
        201,
    )
    .await;
    app.post(
        &ann,
        "/api/overtuiging-usage",
        json!({ "overtuigingId": r.overtuigingen[0], "usedOn": "2024-03-13" }),
        201,
    )
    .await;
    app.post(
        &ann,
        "/api/habit-usage",
        json!({ "methodId": r.water, "usedOn": "2024-03-15" }),
        201,
    )
    .await;
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(
        rewards["counts"],
        json!({ "methodUsage": 5, "habitUsage": 1, "personalGoalUsage": 1, "overtuigingUsage": 1 })
    );
    assert_eq!(rewards["totalPoints"], 50 + 5 + 5 + 3);
    assert_eq!(rewards["level"], 2);
    assert_eq!(rewards["pointsToNextLevel"], 150 - 63);
    assert_eq!(rewards["currentStreak"], 1);
    let stored: i32 = sqlx::query_scalar("SELECT level FROM users_pg WHERE id = $1")
        .bind(ann.id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(
        stored, 2,
        "the stored level follows the points, for Airtable"
    );
}

#[tokio::test]
async fn the_top_level_has_no_next_level() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    sqlx::query("UPDATE users_pg SET bonus_points = 3000 WHERE id = $1")
        .bind(ann.id)
        .execute(app.pool())
        .await
        .unwrap();
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["level"], 10);
    assert_eq!(rewards["pointsToNextLevel"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_admin_reads_another_users_rewards() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let admin = app.admin("admin@example.com").await;
    app.post(
        &ann,
        "/api/habit-usage",
        json!({ "methodId": app.reference.water }),
        201,
    )
    .await;
    let rewards = app
        .get(&admin, &format!("/api/rewards?userId={}", ann.id), 200)
        .await;
    assert_eq!(rewards["totalPoints"], 5);
    app.get(&bob, &format!("/api/rewards?userId={}", ann.id), 404)
        .await;
    app.get(
        &admin,
        &format!("/api/rewards?userId={}", uuid::Uuid::new_v4()),
        404,
    )
    .await;
}

#[tokio::test]
async fn deleting_and_reposting_usage_inside_a_run_awards_no_bonus_again() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let today = date(2024, 3, 15);
    noon(&app, today);
    let mut ids = std::collections::BTreeMap::new();
    for back in (0..7).rev() {
        let day = today - chrono::Duration::days(back);
        let answer = habit_on(&app, &ann, day).await;
        ids.insert(back, answer["usage"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(app.get(&ann, "/api/rewards", 200).await["bonusPoints"], 35);
    // Each deletion splits the run; the later part is still the run the
    // bonuses were given for, and filling the gap again joins the parts.
    for back in [5, 4, 3] {
        app.delete(&ann, &format!("/api/habit-usage/{}", ids[&back]), 204)
            .await;
        let day = today - chrono::Duration::days(back);
        let answer = habit_on(&app, &ann, day).await;
        assert_eq!(
            answer["bonusPointsAwarded"], 0,
            "after deleting day -{back}"
        );
        ids.insert(back, answer["usage"]["id"].as_str().unwrap().to_owned());
    }
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["bonusPoints"], 35);
    assert_eq!(rewards["currentStreak"], 7);
}

#[tokio::test]
async fn a_usage_is_dated_at_most_a_week_back() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let today = date(2024, 3, 15);
    noon(&app, today);
    let week_ago = today - chrono::Duration::days(7);
    habit_on(&app, &ann, week_ago).await;
    for (path, body) in [
        (
            "/api/habit-usage",
            json!({ "methodId": app.reference.journal, "usedOn": "2024-03-07" }),
        ),
        (
            "/api/method-usage",
            json!({ "methodId": app.reference.walking, "usedOn": "2024-03-07" }),
        ),
        (
            "/api/overtuiging-usage",
            json!({ "overtuigingId": app.reference.overtuigingen[0], "usedOn": "2023-03-15" }),
        ),
    ] {
        let answer = app.post(&ann, path, body, 400).await;
        assert_eq!(answer["error"]["field"], "usedOn", "{path}: {answer}");
    }
}

#[tokio::test]
async fn deleting_a_personal_goal_takes_its_usages_points_and_settles_the_level_again() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let r = &app.reference;
    // 40 points of method usage and 10 of a goal's: level 2 at 50. No
    // three days in a row, so no streak bonus.
    for day in ["2024-03-08", "2024-03-11", "2024-03-14", "2024-03-15"] {
        app.post(
            &ann,
            "/api/method-usage",
            json!({ "methodId": r.walking, "usedOn": day }),
            201,
        )
        .await;
    }
    let goal = app
        .post(&ann, "/api/personal-goals", json!({ "name": "Run" }), 201)
        .await;
    for day in ["2024-03-09", "2024-03-12"] {
        app.post(
            &ann,
            "/api/personal-goal-usage",
            json!({ "personalGoalId": goal["id"], "usedOn": day }),
            201,
        )
        .await;
    }
    let stored = || async {
        let level: i32 = sqlx::query_scalar("SELECT level FROM users_pg WHERE id = $1")
            .bind(ann.id)
            .fetch_one(app.pool())
            .await
            .unwrap();
        level
    };
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(
        (rewards["totalPoints"].clone(), rewards["level"].clone()),
        (json!(50), json!(2))
    );
    assert_eq!(stored().await, 2);

    app.delete(
        &ann,
        &format!("/api/personal-goals/{}", goal["id"].as_str().unwrap()),
        204,
    )
    .await;
    let rewards = app.get(&ann, "/api/rewards", 200).await;
    assert_eq!(rewards["counts"]["personalGoalUsage"], 0);
    assert_eq!(
        (rewards["totalPoints"].clone(), rewards["level"].clone()),
        (json!(40), json!(1))
    );
    assert_eq!(
        stored().await,
        1,
        "the stored level (Airtable's Level) follows"
    );
}
