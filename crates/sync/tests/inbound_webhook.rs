//! The webhook path of the inbound sync against a real PostgreSQL and the
//! emulator with Airtable's real limits: the emulator's signed pings reach
//! `receive_notification` through a tiny router of the test, and the test
//! drives the payload reader step by step.

mod support;

use std::time::{Duration, Instant};

use airsync_sync::inbound::{
    ensure_webhook, read_payloads_once, receive_notification, run, InboundContext,
    NotificationOutcome, WebhookAction,
};
use serde_json::json;
use support::{inbound_settings, Harness, Receiver, BASE};
use uuid::Uuid;

/// Reads payloads after each ping until `done` holds.
async fn apply_pings_until<F, Fut>(h: &Harness, ctx: &InboundContext, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = h.inbox_len().await;
        read_payloads_once(ctx).await.expect("read payloads");
        if done().await {
            return;
        }
        assert!(Instant::now() < deadline, "the change never arrived");
        h.wait_for_inbox(seen + 1).await;
    }
}

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(h.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn a_user_a_method_and_a_program_created_changed_and_deleted_in_airtable_reach_postgres_through_pings(
) {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let action = ensure_webhook(&ctx).await.expect("webhook");
    assert!(
        matches!(action, WebhookAction::Created { .. }),
        "{action:?}"
    );

    let goal = h.create_as_user("Goals", json!({"Name": "Calm", "Active": true}));
    let company = h.create_as_user(
        "Companies",
        json!({"Name": "Acme", "Code": "ACME", "Active": true}),
    );
    let method = h.create_as_user(
        "Methods",
        json!({"Name": "Breathing", "Duration (min)": 10, "Is habit": true, "Goals": [goal], "Active": true, "Sort order": 3}),
    );
    let user = h.create_as_user(
        "Users",
        json!({"Email": "tess@example.com", "Name": "Tess", "Company": [company], "Role": "admin", "Badges": ["streak-3"], "Bonus points": 10, "Level": 2}),
    );
    let program = h.create_as_user(
        "Programs",
        json!({"Name": "Spring", "User": [user], "Methods": [method], "Goals": [goal],
               "Start date": "2026-03-02", "End date": "2026-03-29", "Notes": "Go"}),
    );
    apply_pings_until(&h, &ctx, || async {
        h.row_of("program", &program).await.is_some()
    })
    .await;

    let method_row = h.row_of("method", &method).await.expect("method row");
    let (name, duration, habit, sort): (String, Option<i32>, bool, i32) = sqlx::query_as(
        "SELECT name, duration_minutes, is_habit, sort_order FROM reference_methods_pg WHERE id = $1",
    )
    .bind(method_row)
    .fetch_one(h.pool())
    .await
    .expect("method");
    assert_eq!(
        (name.as_str(), duration, habit, sort),
        ("Breathing", Some(10), true, 3)
    );
    let goal_row = h.row_of("goal", &goal).await.expect("goal row");
    let method_goals: Vec<Uuid> =
        sqlx::query_scalar("SELECT goal_id FROM reference_method_goals_pg WHERE method_id = $1")
            .bind(method_row)
            .fetch_all(h.pool())
            .await
            .expect("method goals");
    assert_eq!(method_goals, vec![goal_row]);

    let user_row = h.row_of("user", &user).await.expect("user row");
    let (email, role, badges, company_id, bonus): (String, String, Vec<String>, Option<Uuid>, i32) =
        sqlx::query_as(
            "SELECT email, role, badges, company_id, bonus_points FROM users_pg WHERE id = $1",
        )
        .bind(user_row)
        .fetch_one(h.pool())
        .await
        .expect("user");
    assert_eq!(email, "tess@example.com");
    // The Role the team set is not taken: admin rights live in PostgreSQL
    // alone.
    assert_eq!(role, "user");
    assert_eq!(badges, vec!["streak-3".to_owned()]);
    assert_eq!(company_id, h.row_of("company", &company).await);
    assert_eq!(bonus, 10);

    let program_row = h.row_of("program", &program).await.expect("program row");
    let (user_id, start, notes): (Uuid, chrono::NaiveDate, String) =
        sqlx::query_as("SELECT user_id, start_date, notes FROM programs_pg WHERE id = $1")
            .bind(program_row)
            .fetch_one(h.pool())
            .await
            .expect("program");
    assert_eq!(user_id, user_row);
    assert_eq!(start.to_string(), "2026-03-02");
    assert_eq!(notes, "Go");
    assert_eq!(
        count(&h, &format!("SELECT count(*) FROM program_methods_pg WHERE program_id = '{program_row}' AND method_id = '{method_row}'")).await,
        1
    );

    // Nothing the team made is echoed back, but the user and the program
    // are sent their new pg_id.
    let events: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT entity, row_id FROM sync_outbox ORDER BY entity")
            .fetch_all(h.pool())
            .await
            .expect("outbox");
    assert_eq!(
        events,
        vec![
            ("program".to_owned(), program_row),
            ("user".to_owned(), user_row)
        ]
    );
    assert_eq!(ctx.metrics().snapshot().table_polls, 0, "no poll ran");
    // One user created in Airtable was provisioned; the other records are
    // no users.
    let provisioning = ctx.metrics().user_provisioning();
    assert_eq!(provisioning.count(), 1, "{provisioning:?}");
    assert!(
        (0.0..3600.0).contains(&provisioning.sum_seconds()),
        "{provisioning:?}"
    );

    // A changed field.
    h.update_as_user("Programs", &program, json!({"Notes": "Go slowly"}));
    apply_pings_until(&h, &ctx, || async {
        count(&h, &format!("SELECT count(*) FROM programs_pg WHERE id = '{program_row}' AND notes = 'Go slowly'")).await == 1
    })
    .await;

    // Deleted records: the program's row goes, the method is kept
    // deactivated (its policy).
    h.delete_as_user("Programs", &program);
    h.delete_as_user("Methods", &method);
    apply_pings_until(&h, &ctx, || async {
        count(&h, &format!("SELECT count(*) FROM programs_pg WHERE id = '{program_row}'")).await == 0
            && count(&h, &format!("SELECT count(*) FROM reference_methods_pg WHERE id = '{method_row}' AND NOT active")).await == 1
    })
    .await;
    assert_eq!(h.row_of("program", &program).await, None);
    assert_eq!(
        ctx.metrics().user_provisioning().count(),
        1,
        "changes and deletes are no provisioning"
    );
}

#[tokio::test]
async fn a_forged_or_replayed_notification_changes_nothing() {
    let h = Harness::start().await;
    let ctx = h.inbound(inbound_settings());
    ensure_webhook(&ctx).await.expect("webhook");
    let (webhook, secret): (String, String) = sqlx::query_as(
        "SELECT value->>'webhook_id', value->>'mac_secret_base64' FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
    )
    .fetch_one(h.pool())
    .await
    .expect("checkpoint");
    let body = format!(
        r#"{{"base":{{"id":"{BASE}"}},"webhook":{{"id":"{webhook}"}},"timestamp":"{}"}}"#,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let forged = airsync_airtable::content_mac("c2VjcmV0", body.as_bytes()).expect("mac");
    for mac in [None, Some("hmac-sha256=00"), Some(forged.as_str())] {
        let outcome = receive_notification(&ctx, mac, body.as_bytes())
            .await
            .expect("receive");
        assert_eq!(outcome, NotificationOutcome::Unauthorized);
        assert_eq!(outcome.http_status(), 401);
    }
    assert_eq!(
        h.inbox_len().await,
        0,
        "a refused notification stored something"
    );

    let genuine = airsync_airtable::content_mac(&secret, body.as_bytes()).expect("mac");
    let tampered = body.replace(BASE.as_str(), "appOTHERBASE00001");
    assert_eq!(
        receive_notification(&ctx, Some(&genuine), tampered.as_bytes())
            .await
            .expect("receive"),
        NotificationOutcome::Unauthorized,
        "a MAC is valid for its body only"
    );
    assert_eq!(
        receive_notification(&ctx, Some(&genuine), body.as_bytes())
            .await
            .expect("receive"),
        NotificationOutcome::Accepted
    );
    assert_eq!(
        receive_notification(&ctx, Some(&genuine), body.as_bytes())
            .await
            .expect("receive"),
        NotificationOutcome::Duplicate
    );
    assert_eq!(h.inbox_len().await, 1);
    let metrics = ctx.metrics().snapshot();
    assert_eq!(metrics.notifications_rejected, 4);
    assert_eq!(metrics.notifications_duplicate, 1);
}

#[tokio::test]
async fn a_duplicate_ping_applies_nothing_twice() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    let user = h.create_as_user(
        "Users",
        json!({"Email": "once@example.com", "Name": "Once"}),
    );
    apply_pings_until(&h, &ctx, || async {
        h.row_of("user", &user).await.is_some()
    })
    .await;
    let before = ctx.metrics().snapshot();

    // Airtable redelivers: the same ping, and the same ping with a new time.
    let (body, webhook): (serde_json::Value, String) =
        sqlx::query_as("SELECT body, webhook_id FROM sync_inbox_events ORDER BY id LIMIT 1")
            .fetch_one(h.pool())
            .await
            .expect("first ping");
    let secret: String = sqlx::query_scalar(
        "SELECT value->>'mac_secret_base64' FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
    )
    .fetch_one(h.pool())
    .await
    .expect("secret");
    let again = body.to_string();
    let mac = airsync_airtable::content_mac(&secret, again.as_bytes()).expect("mac");
    assert_eq!(
        receive_notification(&ctx, Some(&mac), again.as_bytes())
            .await
            .expect("receive"),
        NotificationOutcome::Duplicate
    );
    let later = json!({"base": {"id": BASE}, "webhook": {"id": webhook}, "timestamp": "2099-01-01T00:00:00.000Z"})
        .to_string();
    let mac = airsync_airtable::content_mac(&secret, later.as_bytes()).expect("mac");
    assert_eq!(
        receive_notification(&ctx, Some(&mac), later.as_bytes())
            .await
            .expect("receive"),
        NotificationOutcome::Accepted
    );
    let read = read_payloads_once(&ctx).await.expect("read");
    assert_eq!(read.payloads, 0, "{read:?}");
    let after = ctx.metrics().snapshot();
    assert_eq!(after.rows_created, before.rows_created);
    assert_eq!(after.payloads_applied, before.payloads_applied);
    assert_eq!(count(&h, "SELECT count(*) FROM users_pg").await, 1);
}

#[tokio::test]
async fn a_lost_ping_is_caught_up_by_the_timer() {
    let h = Harness::start().await;
    let mut settings = inbound_settings();
    settings.reader_interval = Duration::from_millis(300);
    let (ctx, receiver) = Receiver::start(&h, settings).await;
    ensure_webhook(&ctx).await.expect("webhook");
    receiver.lose_pings(true);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(run(ctx.clone(), shutdown));

    let started = Instant::now();
    let user = h.create_as_user(
        "Users",
        json!({"Email": "lost@example.com", "Name": "Lost"}),
    );
    while h.row_of("user", &user).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the timer never read the change"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.inbox_len().await, 0, "the ping was lost, yet recorded");
    let _ = stop.send(true);
    running.await.expect("join").expect("run");
}

#[tokio::test]
async fn an_expired_webhook_is_recreated_and_the_change_made_meanwhile_arrives() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    let anna = h.create_as_user(
        "Users",
        json!({"Email": "anna@example.com", "Name": "Anna"}),
    );
    apply_pings_until(&h, &ctx, || async {
        h.row_of("user", &anna).await.is_some()
    })
    .await;
    let first: String = sqlx::query_scalar(
        "SELECT value->>'webhook_id' FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
    )
    .fetch_one(h.pool())
    .await
    .expect("webhook id");

    // Eight days pass without a refresh: the webhook expires, and the team
    // goes on editing.
    h.emulator.advance_clock(Duration::from_secs(8 * 24 * 3600));
    h.update_as_user("Users", &anna, json!({"Name": "Anna B."}));
    let bert = h.create_as_user(
        "Users",
        json!({"Email": "bert@example.com", "Name": "Bert"}),
    );
    let read = read_payloads_once(&ctx).await.expect("read");
    assert_eq!(read.payloads, 0, "an expired webhook records nothing");

    let action = ensure_webhook(&ctx).await.expect("recreate");
    assert_eq!(
        action,
        WebhookAction::Created {
            reason: "expired or in error".into()
        }
    );
    let second: String = sqlx::query_scalar(
        "SELECT value->>'webhook_id' FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
    )
    .fetch_one(h.pool())
    .await
    .expect("webhook id");
    assert_ne!(first, second);
    let anna_row = h.row_of("user", &anna).await.expect("anna");
    assert_eq!(
        count(
            &h,
            &format!("SELECT count(*) FROM users_pg WHERE id = '{anna_row}' AND name = 'Anna B.'")
        )
        .await,
        1,
        "the change made while the webhook was expired arrived"
    );
    assert!(h.row_of("user", &bert).await.is_some());

    // And the new webhook carries the next change.
    h.update_as_user("Users", &bert, json!({"Name": "Bert C."}));
    apply_pings_until(&h, &ctx, || async {
        count(&h, "SELECT count(*) FROM users_pg WHERE name = 'Bert C.'").await == 1
    })
    .await;
}

#[tokio::test]
async fn a_webhook_deleted_behind_our_back_is_recreated_and_one_near_expiry_refreshed() {
    let h = Harness::start().await;
    let mut settings = inbound_settings();
    // Every check finds the webhook near its expiry.
    settings.refresh_before_expiry = Duration::from_secs(8 * 24 * 3600);
    let (ctx, _receiver) = Receiver::start(&h, settings).await;
    ensure_webhook(&ctx).await.expect("webhook");
    assert_eq!(
        ensure_webhook(&ctx).await.expect("check"),
        WebhookAction::Refreshed
    );
    assert_eq!(ctx.metrics().snapshot().webhooks_refreshed, 1);

    let hooks = ctx
        .client()
        .base(&BASE)
        .list_webhooks()
        .await
        .expect("list");
    ctx.client()
        .base(&BASE)
        .delete_webhook(&hooks[0].id)
        .await
        .expect("delete");
    let user = h.create_as_user("Users", json!({"Email": "gap@example.com"}));
    let read = read_payloads_once(&ctx).await.expect("read");
    assert!(read.webhook_broken, "{read:?}");
    assert_eq!(
        ensure_webhook(&ctx).await.expect("recreate"),
        WebhookAction::Created {
            reason: "gone".into()
        }
    );
    assert!(
        h.row_of("user", &user).await.is_some(),
        "the gap was caught up"
    );
    assert_eq!(
        ctx.client()
            .base(&BASE)
            .list_webhooks()
            .await
            .expect("list")
            .len(),
        1
    );
}

/// Another tool's kind of webhook, for hooks made outside airsync.
fn some_specification() -> airsync_airtable::WebhookSpecification {
    airsync_airtable::WebhookSpecification {
        options: airsync_airtable::SpecificationOptions {
            filters: airsync_airtable::WebhookFilters {
                data_types: vec!["tableData".into()],
                ..Default::default()
            },
            includes: None,
        },
    }
}

/// The base's webhooks, listed through `ctx`'s client: a second client
/// would pace itself apart and overflow the base's second.
async fn webhook_ids(ctx: &InboundContext) -> Vec<String> {
    let mut ids: Vec<String> = ctx
        .client()
        .base(&BASE)
        .list_webhooks()
        .await
        .expect("list webhooks")
        .into_iter()
        .map(|hook| hook.id)
        .collect();
    ids.sort();
    ids
}

async fn stored_webhook(h: &Harness) -> String {
    sqlx::query_scalar(
        "SELECT value->>'webhook_id' FROM sync_checkpoint WHERE name = 'inbound:webhook:' || $1",
    )
    .bind(BASE.as_str())
    .fetch_one(h.pool())
    .await
    .expect("the webhook's checkpoint")
}

#[tokio::test]
async fn a_webhook_pinging_this_deployment_that_airsync_does_not_keep_is_removed() {
    let h = Harness::start().await;
    let (ctx, receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    let api = ctx.client().base(&BASE);
    // Left by a create whose answer never came, or by an older set-up.
    let stray = api
        .create_webhook(&some_specification(), Some(&receiver.url))
        .await
        .expect("stray");
    // Another tool's webhook is not airsync's to remove.
    let other = api
        .create_webhook(
            &some_specification(),
            Some("https://tools.example.com/hook"),
        )
        .await
        .expect("other");

    let action = ensure_webhook(&ctx).await.expect("check");

    assert_eq!(action, WebhookAction::Kept);
    let ids = webhook_ids(&ctx).await;
    assert!(!ids.contains(&stray.id), "{ids:?}");
    let mut expected = vec![stored_webhook(&h).await, other.id];
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_webhook_create_whose_answer_was_lost_leaves_no_webhook_behind() {
    let h = Harness::start().await;
    // No notification URL: the hook cannot be known by the URL it pings.
    let mut config = airsync_airtable::ClientConfig::new(support::TOKEN)
        .with_api_url(&h.emulator.url())
        .expect("URL");
    config.request_timeout = Duration::from_millis(4_000);
    let client = airsync_airtable::AirtableClient::new(config).expect("client");
    let ctx = InboundContext::new(
        h.pool().clone(),
        client,
        BASE,
        h.mapping.clone(),
        inbound_settings(),
    );
    // Requests reach the emulator 2 s after they leave, which gives this
    // test 2 s to see the create on its way (however busy the machine) and
    // make its answer take longer than the client waits.
    h.emulator.set_latency_ms(Some(2_000..=2_000));
    let creating = tokio::spawn({
        let ctx = ctx.clone();
        async move { ensure_webhook(&ctx).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &h,
        "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:webhook-retired:%' AND value->'pending_create' <> 'null'::jsonb",
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "the create never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.emulator.set_answer_latency_ms(Some(5_000..=5_000));
    let lost = creating.await.expect("task");
    assert!(lost.is_err(), "{lost:?}");
    h.emulator.set_latency_ms(None);
    h.emulator.set_answer_latency_ms(None);
    assert_eq!(
        webhook_ids(&ctx).await.len(),
        1,
        "the lost create made a webhook"
    );

    let action = ensure_webhook(&ctx).await.expect("second try");

    assert!(
        matches!(action, WebhookAction::Created { .. }),
        "{action:?}"
    );
    assert_eq!(webhook_ids(&ctx).await, vec![stored_webhook(&h).await]);
}

#[tokio::test]
async fn a_webhook_whose_delete_failed_is_deleted_on_the_next_check() {
    let h = Harness::start().await;
    let (ctx, receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    let stray = ctx
        .client()
        .base(&BASE)
        .create_webhook(&some_specification(), Some(&receiver.url))
        .await
        .expect("stray");
    // The check reads the schema and lists the webhooks; then every try of
    // the delete fails.
    h.emulator.set_latency_ms(Some(300..=300));
    h.emulator.reset_stats();
    let checking = tokio::spawn({
        let ctx = ctx.clone();
        async move { ensure_webhook(&ctx).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.emulator.stats().base(BASE.as_str()).total < 2 {
        assert!(
            Instant::now() < deadline,
            "the check never listed the webhooks"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.emulator.inject_faults(airsync_emulator::FaultBurst {
        count: 5,
        kind: airsync_emulator::FaultKind::ServerError,
        base: Some(BASE.to_string()),
    });
    let first = checking.await.expect("task").expect("check");
    assert_eq!(first, WebhookAction::Kept);
    assert!(webhook_ids(&ctx).await.contains(&stray.id));
    h.emulator.set_latency_ms(None);

    ensure_webhook(&ctx).await.expect("next check");

    assert_eq!(webhook_ids(&ctx).await, vec![stored_webhook(&h).await]);
}

#[tokio::test]
async fn with_the_users_fast_lane_off_the_webhook_leaves_users_to_the_poll_and_carries_the_rest() {
    let h = Harness::start().await;
    let off = airsync_sync::inbound::InboundSettings {
        user_fast_lane: false,
        ..inbound_settings()
    };
    let (ctx, _receiver) = Receiver::start(&h, off).await;
    let action = ensure_webhook(&ctx).await.expect("webhook");
    assert!(
        matches!(action, WebhookAction::Created { .. }),
        "the webhook stays for every other table: {action:?}"
    );
    // The poll's watermarks start now.
    airsync_sync::inbound::poll_once(&ctx).await.expect("poll");
    let user = h.create_as_user(
        "Users",
        json!({"Email": "slow@example.com", "Name": "Slow"}),
    );
    let goal = h.create_as_user("Goals", json!({"Name": "Calm", "Active": true}));
    apply_pings_until(&h, &ctx, || async {
        h.row_of("goal", &goal).await.is_some()
    })
    .await;
    read_payloads_once(&ctx).await.expect("read payloads");
    assert_eq!(
        h.row_of("user", &user).await,
        None,
        "no payload carries the user"
    );
    airsync_sync::inbound::poll_once(&ctx).await.expect("poll");
    assert!(
        h.row_of("user", &user).await.is_some(),
        "the poll brings the user in"
    );

    // Switched back on, the webhook is made anew and carries users again.
    let (on, _receiver) =
        Receiver::start_with_client(&h, inbound_settings(), ctx.client().clone()).await;
    match ensure_webhook(&on).await.expect("webhook") {
        WebhookAction::Created { reason } => {
            assert_eq!(reason, "the users' fast lane was switched")
        }
        other => panic!("{other:?}"),
    }
    let polls = on.metrics().snapshot().table_polls;
    let fast = h.create_as_user(
        "Users",
        json!({"Email": "fast@example.com", "Name": "Fast"}),
    );
    apply_pings_until(&h, &on, || async {
        h.row_of("user", &fast).await.is_some()
    })
    .await;
    assert_eq!(
        on.metrics().snapshot().table_polls,
        polls,
        "the user came with a payload"
    );
}
