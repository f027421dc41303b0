use std::time::Duration;

use airsync_api::ThrottleLimits;
use chrono::TimeZone;
use reqwest::Method;
use serde_json::json;

use crate::support::{assert_error, statuses_of, test_config, TestApp, PASSWORD};

#[tokio::test]
async fn login_returns_tokens_and_the_user() {
    let app = TestApp::start().await;
    let id = app.create_user("ann@example.com", "user").await;
    let session = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "ANN@example.com", "password": PASSWORD })),
            200,
        )
        .await;
    assert!(session["accessToken"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert!(session["refreshToken"]
        .as_str()
        .is_some_and(|t| t.len() >= 40));
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["user"]["id"], id.to_string());
    assert_eq!(session["user"]["email"], "ann@example.com");
    assert!(session["user"].get("passwordHash").is_none());
}

#[tokio::test]
async fn login_answers_an_unknown_email_and_a_wrong_password_alike() {
    let app = TestApp::start().await;
    app.create_user("ann@example.com", "user").await;
    let (wrong_status, wrong) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "ann@example.com", "password": "not the password" })),
        )
        .await;
    let (unknown_status, unknown) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "bob@example.com", "password": "not the password" })),
        )
        .await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert_eq!(wrong, unknown);
    assert_error(&wrong, "unauthorized", None);
}

#[tokio::test]
async fn login_takes_about_the_same_time_for_an_unknown_email_and_a_wrong_password() {
    // Standard hashing cost, so that the verification dominates the time.
    let mut config = test_config();
    config.password_hash_cost = airsync_api::HashCost::Standard;
    config.login_throttle.per_address = 1000;
    let app = TestApp::start_with(config).await;
    let hash = airsync_api::accounts::hash_password(PASSWORD, airsync_api::HashCost::Standard)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users_pg (email, password_hash) VALUES ('ann@example.com', $1)")
        .bind(hash)
        .execute(app.pool())
        .await
        .unwrap();
    let mut timings = [Duration::ZERO; 2];
    for round in 0..4 {
        for (slot, email) in ["ann@example.com", &format!("nobody{round}@example.com")]
            .into_iter()
            .enumerate()
        {
            let started = std::time::Instant::now();
            app.call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({ "email": email, "password": "not the password" })),
                401,
            )
            .await;
            timings[slot] += started.elapsed();
        }
    }
    let (known, unknown) = (timings[0].as_secs_f64(), timings[1].as_secs_f64());
    let ratio = known.max(unknown) / known.min(unknown);
    assert!(
        ratio < 2.0,
        "wrong password took {known:.3}s, unknown email {unknown:.3}s"
    );
}

#[tokio::test]
async fn login_names_the_field_that_is_missing_or_malformed() {
    let app = TestApp::start().await;
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "password": "x" })),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("email"));
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "no-at-sign", "password": "x" })),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("email"));
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "a@b.c" })),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("password"));
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "a@b.c", "password": "x", "remember": true })),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("remember"));
    let (status, body) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!(["not", "an", "object"])),
        )
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "bad_request", None);
}

#[tokio::test]
async fn login_is_throttled_per_email_after_repeated_failures() {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 3,
        per_address: 100,
        window: Duration::from_secs(600),
    };
    let app = TestApp::start_with(config).await;
    app.create_user("ann@example.com", "user").await;
    let wrong = json!({ "email": "ann@example.com", "password": "not the password" });
    for _ in 0..3 {
        app.call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(wrong.clone()),
            401,
        )
        .await;
    }
    let right = json!({ "email": "ann@example.com", "password": PASSWORD });
    let body = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(right.clone()),
            429,
        )
        .await;
    assert_error(&body, "too_many_attempts", None);
    // Another email from the same address is not affected.
    app.create_user("bob@example.com", "user").await;
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": "bob@example.com", "password": PASSWORD })),
        200,
    )
    .await;
    // After the window the right password works again.
    app.clock.advance(Duration::from_secs(601));
    app.call(Method::POST, "/api/auth/login", None, Some(right), 200)
        .await;
}

#[tokio::test]
async fn login_is_throttled_per_client_address_across_emails() {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 100,
        per_address: 4,
        window: Duration::from_secs(600),
    };
    let app = TestApp::start_with(config).await;
    for n in 0..4 {
        let body = json!({ "email": format!("guess{n}@example.com"), "password": "guess" });
        app.call(Method::POST, "/api/auth/login", None, Some(body), 401)
            .await;
    }
    let (status, _) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "other@example.com", "password": "guess" })),
        )
        .await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn parallel_wrong_logins_never_pass_the_limit_of_failures() {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 3,
        per_address: 1000,
        window: Duration::from_secs(600),
    };
    let app = TestApp::start_with(config).await;
    app.create_user("ann@example.com", "user").await;
    let wrong = json!({ "email": "ann@example.com", "password": "not the password" });
    let guesses = (0..24).map(|_| {
        app.client
            .post(format!("{}/api/auth/login", app.base))
            .json(&wrong)
            .send()
    });
    let statuses = statuses_of(guesses).await;
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((refused, throttled), (3, 21), "{statuses:?}");
}

#[tokio::test]
async fn a_wrong_setup_token_costs_no_hash_and_is_throttled_per_address() {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 1000,
        per_address: 3,
        window: Duration::from_secs(600),
    };
    let app = TestApp::start_with(config).await;
    let hashes = app.state.hasher().computed();
    for n in 0..3 {
        let body = json!({ "setupToken": format!("guess {n}"), "newPassword": "a new password" });
        app.call(
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(body),
            401,
        )
        .await;
    }
    assert_eq!(app.state.hasher().computed(), hashes);
    let body = json!({ "setupToken": "guess 4", "newPassword": "a new password" });
    let body = app
        .call(
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(body),
            429,
        )
        .await;
    assert_error(&body, "too_many_attempts", None);
}

#[tokio::test]
async fn a_right_setup_token_gives_back_its_reservation() {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 1000,
        per_address: 1,
        window: Duration::from_secs(600),
    };
    let app = TestApp::start_with(config).await;
    app.create_user("ann@example.com", "user").await;
    let token = airsync_api::invite_user(app.pool(), "ann@example.com", Duration::from_secs(3600))
        .await
        .unwrap();
    let body = json!({ "setupToken": token, "newPassword": "my first password" });
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(body),
        200,
    )
    .await;
    // The success left the address its one attempt.
    let body = json!({ "setupToken": "a guess", "newPassword": "a new password" });
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(body),
        401,
    )
    .await;
}

/// A wrong login for `email` from the "client" that `X-Forwarded-For`
/// names: its status.
async fn guess_from(app: &TestApp, forwarded_for: &str, email: &str) -> u16 {
    app.client
        .post(format!("{}/api/auth/login", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": email, "password": "guess" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Four wrong logins for different emails from the forwarded "client",
/// then a fifth: its status.
async fn fifth_guess_from(app: &TestApp, forwarded_for: &str) -> u16 {
    let mut last = 0;
    for n in 0..5 {
        last = guess_from(app, forwarded_for, &format!("guess{n}@example.com")).await;
    }
    last
}

/// A throttle of four failures per address.
fn four_per_address() -> airsync_api::ApiConfig {
    let mut config = test_config();
    config.login_throttle = ThrottleLimits {
        per_email: 100,
        per_address: 4,
        window: Duration::from_secs(600),
    };
    config
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let mut config = four_per_address();
    config.trusted_proxies = airsync_api::TrustedProxies::parse("127.0.0.1").unwrap();
    let app = TestApp::start_with(config).await;
    assert_eq!(fifth_guess_from(&app, "203.0.113.1").await, 429);
    // Another client behind the same proxy is not held back by the first.
    assert_eq!(fifth_guess_from(&app, "203.0.113.2").await, 429);
    assert_eq!(
        guess_from(&app, "203.0.113.3", "guess@example.com").await,
        401
    );
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_changes_nothing() {
    let app = TestApp::start_with(four_per_address()).await;
    assert_eq!(fifth_guess_from(&app, "203.0.113.1").await, 429);
    // A guesser that writes another address into the header is still the
    // same peer.
    assert_eq!(
        guess_from(&app, "203.0.113.99", "guess@example.com").await,
        429
    );
}

#[tokio::test]
async fn me_returns_the_signed_in_user() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let me = app.get(&ann, "/api/auth/me", 200).await;
    assert_eq!(me["id"], ann.id.to_string());
    assert_eq!(me["role"], "user");
    assert_eq!(me["timeZone"], "Europe/Amsterdam");
    assert_eq!(me["level"], 1);
}

#[tokio::test]
async fn me_refuses_a_missing_malformed_forged_or_expired_token() {
    let mut config = test_config();
    config.access_token_ttl = Duration::from_secs(900);
    let app = TestApp::start_with(config).await;
    let ann = app.user("ann@example.com").await;
    let body = app.call(Method::GET, "/api/auth/me", None, None, 401).await;
    assert_error(&body, "unauthorized", None);
    app.call(Method::GET, "/api/auth/me", Some("not-a-jwt"), None, 401)
        .await;
    let mut forged = ann.token.clone();
    forged.pop();
    forged.push(if ann.token.ends_with('A') { 'B' } else { 'A' });
    app.call(Method::GET, "/api/auth/me", Some(&forged), None, 401)
        .await;
    app.clock.advance(Duration::from_secs(
        900 + airsync_api::ACCESS_TOKEN_LEEWAY_SECS.unsigned_abs(),
    ));
    app.call(Method::GET, "/api/auth/me", Some(&ann.token), None, 401)
        .await;
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let first = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({ "refreshToken": ann.refresh_token })),
            200,
        )
        .await;
    let next = first["refreshToken"].as_str().unwrap();
    assert_ne!(next, ann.refresh_token);
    app.call(
        Method::GET,
        "/api/auth/me",
        first["accessToken"].as_str(),
        None,
        200,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": next })),
        200,
    )
    .await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let rotated = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({ "refreshToken": ann.refresh_token })),
            200,
        )
        .await;
    let body = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({ "refreshToken": ann.refresh_token })),
            401,
        )
        .await;
    assert_error(&body, "unauthorized", None);
    // The successor was revoked with the family.
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": rotated["refreshToken"] })),
        401,
    )
    .await;
    // Another session (another family) of the same user still works.
    let other = app.sign_in(ann.id, &ann.email).await;
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": other.refresh_token })),
        200,
    )
    .await;
}

#[tokio::test]
async fn refresh_refuses_an_unknown_or_expired_token_and_names_a_missing_field() {
    let mut config = test_config();
    config.refresh_token_ttl = Duration::from_secs(30 * 24 * 3600);
    let app = TestApp::start_with(config).await;
    let ann = app.user("ann@example.com").await;
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": "made-up" })),
        401,
    )
    .await;
    let body = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({})),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("refreshToken"));
    app.clock.advance(Duration::from_secs(31 * 24 * 3600));
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": ann.refresh_token })),
        401,
    )
    .await;
}

#[tokio::test]
async fn rotating_refresh_tokens_keeps_a_sign_in_only_until_its_familys_end() {
    let mut config = test_config();
    config.refresh_token_ttl = Duration::from_secs(30 * 24 * 3600);
    config.refresh_family_ttl = Duration::from_secs(90 * 24 * 3600);
    let app = TestApp::start_with(config).await;
    let ann = app.user("ann@example.com").await;
    // Rotated every 20 days, each token well within its own 30 days.
    let mut token = ann.refresh_token.clone();
    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(20 * 24 * 3600));
        let session = app
            .call(
                Method::POST,
                "/api/auth/refresh",
                None,
                Some(json!({ "refreshToken": token })),
                200,
            )
            .await;
        token = session["refreshToken"].as_str().unwrap().to_owned();
    }
    // Day 80: the newest token lives until day 90, the family's end, not
    // until day 110.
    app.clock.advance(Duration::from_secs(11 * 24 * 3600));
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": token })),
        401,
    )
    .await;
    // A new sign-in starts a new family.
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": "ann@example.com", "password": PASSWORD })),
        200,
    )
    .await;
}

#[tokio::test]
async fn set_password_with_the_current_password_changes_it_and_signs_out_other_sessions() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let body = json!({ "currentPassword": PASSWORD, "newPassword": "a brand new secret" });
    let session = app.post(&ann, "/api/auth/set-password", body, 200).await;
    assert!(session["accessToken"].is_string());
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": ann.refresh_token })),
        401,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/refresh",
        None,
        Some(json!({ "refreshToken": session["refreshToken"] })),
        200,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": ann.email, "password": PASSWORD })),
        401,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": ann.email, "password": "a brand new secret" })),
        200,
    )
    .await;
}

#[tokio::test]
async fn set_password_refuses_a_wrong_current_password_a_weak_new_one_and_a_missing_token() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let body = app
        .post(
            &ann,
            "/api/auth/set-password",
            json!({ "currentPassword": "wrong one!", "newPassword": "a brand new secret" }),
            422,
        )
        .await;
    assert_error(&body, "wrong_password", Some("currentPassword"));
    let body = app
        .post(
            &ann,
            "/api/auth/set-password",
            json!({ "currentPassword": PASSWORD, "newPassword": "short" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("newPassword"));
    let body = app
        .post(
            &ann,
            "/api/auth/set-password",
            json!({ "newPassword": "a brand new secret" }),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("currentPassword"));
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(json!({ "currentPassword": PASSWORD, "newPassword": "a brand new secret" })),
        401,
    )
    .await;
}

#[tokio::test]
async fn an_invited_user_sets_the_first_password_with_a_setup_token_once() {
    let app = TestApp::start().await;
    // Provisioned in Airtable: no password.
    sqlx::query("INSERT INTO users_pg (email, name) VALUES ('new@example.com', 'New')")
        .execute(app.pool())
        .await
        .unwrap();
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": "new@example.com", "password": "anything at all" })),
        401,
    )
    .await;
    let token = airsync_api::invite_user(app.pool(), "NEW@example.com", Duration::from_secs(3600))
        .await
        .unwrap();
    let body = json!({ "setupToken": token, "newPassword": "my first password" });
    let session = app
        .call(
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(body.clone()),
            200,
        )
        .await;
    assert_eq!(session["user"]["email"], "new@example.com");
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(body),
        401,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": "new@example.com", "password": "my first password" })),
        200,
    )
    .await;
}

#[tokio::test]
async fn a_setup_token_stops_working_when_a_new_invitation_is_made_or_it_expires() {
    let app = TestApp::start().await;
    app.create_user("ann@example.com", "user").await;
    let first = airsync_api::invite_user(app.pool(), "ann@example.com", Duration::from_secs(3600))
        .await
        .unwrap();
    let second = airsync_api::invite_user(app.pool(), "ann@example.com", Duration::from_secs(3600))
        .await
        .unwrap();
    let with = |token: &str| json!({ "setupToken": token, "newPassword": "my first password" });
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(with(&first)),
        401,
    )
    .await;
    app.call(
        Method::POST,
        "/api/auth/set-password",
        None,
        Some(with(&second)),
        200,
    )
    .await;
    let unknown =
        airsync_api::invite_user(app.pool(), "nobody@example.com", Duration::from_secs(60)).await;
    assert!(matches!(
        unknown,
        Err(airsync_api::AccountError::UnknownEmail(_))
    ));
    let both =
        json!({ "setupToken": "x", "currentPassword": "y", "newPassword": "my first password" });
    let body = app
        .call(
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(both),
            400,
        )
        .await;
    assert_error(&body, "invalid_field", Some("setupToken"));
}

#[tokio::test]
async fn users_create_makes_a_user_who_can_sign_in_and_refuses_a_taken_email() {
    let app = TestApp::start().await;
    let id = airsync_api::create_user(
        app.pool(),
        "Boss@Example.com",
        "The Boss",
        "a long admin secret",
        true,
    )
    .await
    .unwrap();
    let session = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "boss@example.com", "password": "a long admin secret" })),
            200,
        )
        .await;
    assert_eq!(session["user"]["id"], id.to_string());
    assert_eq!(session["user"]["role"], "admin");
    let again = airsync_api::create_user(
        app.pool(),
        "boss@example.com",
        "Again",
        "a long admin secret",
        false,
    )
    .await;
    assert!(matches!(
        again,
        Err(airsync_api::AccountError::EmailTaken(_))
    ));
    let weak =
        airsync_api::create_user(app.pool(), "weak@example.com", "Weak", "short", false).await;
    assert!(matches!(
        weak,
        Err(airsync_api::AccountError::Invalid {
            field: "password",
            ..
        })
    ));
}

#[tokio::test]
async fn a_user_sets_their_time_zone_and_todays_date_follows_it_after_a_refresh() {
    let app = TestApp::start().await;
    let ann = app.user("ann@example.com").await;
    let me = app.get(&ann, "/api/auth/me", 200).await;
    assert_eq!(me["timeZone"], "Europe/Amsterdam");
    for (body, field) in [
        (json!({ "timeZone": "Mars/Olympus" }), "timeZone"),
        (json!({ "timeZone": "" }), "timeZone"),
        (json!({ "timeZone": 5 }), "timeZone"),
        (json!({ "name": "Ann" }), "name"),
    ] {
        let refused = app.patch(&ann, "/api/auth/me", body, 400).await;
        assert_error(&refused, "invalid_field", Some(field));
    }
    let events = |app: &TestApp| {
        let pool = app.pool().clone();
        async move {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE entity = 'user'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            n
        }
    };
    // As if the worker had sent the user's creation.
    sqlx::query("DELETE FROM sync_outbox")
        .execute(app.pool())
        .await
        .unwrap();
    let before = events(&app).await;
    let changed = app
        .patch(
            &ann,
            "/api/auth/me",
            json!({ "timeZone": "America/New_York" }),
            200,
        )
        .await;
    assert_eq!(changed["timeZone"], "America/New_York");
    assert_eq!(
        app.get(&ann, "/api/auth/me", 200).await["timeZone"],
        "America/New_York"
    );
    assert_eq!(events(&app).await, before + 1, "the base is sent the zone");
    // The same zone again writes nothing.
    app.patch(
        &ann,
        "/api/auth/me",
        json!({ "timeZone": "America/New_York" }),
        200,
    )
    .await;
    assert_eq!(events(&app).await, before + 1);

    // 23:30 UTC: already the 16th in Amsterdam, still the 15th in New York.
    app.set_now(
        chrono::Utc
            .with_ymd_and_hms(2024, 3, 15, 23, 30, 0)
            .unwrap(),
    );
    let session = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(json!({ "refreshToken": ann.refresh_token })),
            200,
        )
        .await;
    assert_eq!(session["user"]["timeZone"], "America/New_York");
    let token = session["accessToken"].as_str().unwrap();
    let posted = app
        .call(
            Method::POST,
            "/api/habit-usage",
            Some(token),
            Some(json!({ "methodId": app.reference.water })),
            201,
        )
        .await;
    assert_eq!(posted["usage"]["usedOn"], "2024-03-15");
}
