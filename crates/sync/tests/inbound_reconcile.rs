//! The listing paths of the inbound sync: the full reconcile (backfill,
//! deletes, the mass-delete guard), the incremental poll, links to records
//! PostgreSQL does not know, records set aside and tried again, and the
//! field-by-field validation.

mod support;

use airsync_airtable::{Fields, WriteOptions};
use airsync_emulator::RateLimits;
use airsync_sync::inbound::{
    ensure_webhook, poll_once, read_payloads_once, reconcile, retry_deferred, validate_backfill,
    ReconcileOptions,
};
use serde_json::{json, Value};
use support::{inbound_settings, Harness, Receiver, BASE};
use uuid::Uuid;

/// Creates records through the API with the limits off (test set-up).
async fn create(h: &Harness, table: &str, records: Vec<Value>) -> Vec<String> {
    h.emulator.set_limits(RateLimits::off());
    let fields: Vec<Fields> = records
        .into_iter()
        .map(|r| match r {
            Value::Object(map) => Fields::from(map),
            _ => Fields::new(),
        })
        .collect();
    let created = h
        .client
        .table(&BASE, table)
        .create(&fields, WriteOptions::default())
        .await
        .expect("create records");
    h.emulator.set_limits(RateLimits::default());
    created.into_iter().map(|r| r.id).collect()
}

async fn delete(h: &Harness, table: &str, ids: &[String]) {
    h.emulator.set_limits(RateLimits::off());
    h.client
        .table(&BASE, table)
        .delete(ids)
        .await
        .expect("delete records");
    h.emulator.set_limits(RateLimits::default());
}

async fn scalar<T>(h: &Harness, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .fetch_one(h.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn a_backfill_into_an_empty_database_creates_new_rows_and_matches_existing_ones() {
    let h = Harness::start().await;
    // The app already knows one user, not yet in Airtable's id map.
    let known = h.insert_user("Known@Example.com").await;
    let old_id = Uuid::new_v4();
    let goals = create(
        &h,
        "Goals",
        vec![
            json!({"Name": "Calm", "Active": true}),
            json!({"Name": "Focus", "Active": true}),
        ],
    )
    .await;
    let methods = create(
        &h,
        "Methods",
        vec![json!({"Name": "Breathing", "Goals": goals.clone(), "Active": true, "Duration (min)": 5})],
    )
    .await;
    let users = create(
        &h,
        "Users",
        vec![
            json!({"Email": "known@example.com", "Name": "Known in Airtable"}),
            json!({"Email": "old@example.com", "Name": "From an older database", "pg_id": old_id.to_string()}),
            json!({"Email": "new@example.com", "Name": "New", "Role": "admin"}),
        ],
    )
    .await;
    let programs = create(
        &h,
        "Programs",
        vec![
            json!({"Name": "Spring", "User": [users[2].clone()], "Methods": methods.clone(),
                    "Start date": "2026-03-02", "End date": "2026-03-29"}),
        ],
    )
    .await;

    let ctx = h.inbound(inbound_settings());
    let report = reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile");
    assert_eq!(report.records(), 7);
    assert!(!report.refused());
    assert_eq!(
        h.row_of("user", &users[0]).await,
        Some(known),
        "matched by email"
    );
    assert_eq!(
        h.row_of("user", &users[1]).await,
        Some(old_id),
        "kept its pg_id"
    );
    let new_user = h.row_of("user", &users[2]).await.expect("new user");
    assert_ne!(new_user, old_id);
    let name: String = scalar(
        &h,
        &format!("SELECT name FROM users_pg WHERE id = '{known}'"),
    )
    .await;
    assert_eq!(name, "Known in Airtable");
    let program = h.row_of("program", &programs[0]).await.expect("program");
    let owner: Uuid = scalar(
        &h,
        &format!("SELECT user_id FROM programs_pg WHERE id = '{program}'"),
    )
    .await;
    assert_eq!(owner, new_user);
    let linked: i64 = scalar(&h, "SELECT count(*) FROM reference_method_goals_pg").await;
    assert_eq!(linked, 2);

    // Running it again changes nothing.
    let again = reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile again");
    assert_eq!(
        again
            .tables
            .iter()
            .map(|t| t.created + t.updated)
            .sum::<u64>(),
        0,
        "{again:?}"
    );

    // The rows made here send their pg_id; then both sides agree.
    let worker = h.worker_sharing(&ctx);
    h.drain(&worker).await;
    let validation = validate_backfill(&ctx, None).await.expect("validate");
    assert!(validation.is_clean(), "{validation}");
    assert_eq!(h.records("Users").len(), 3, "no duplicate user record");
    assert_eq!(h.rate_limited(), 0);
}

#[tokio::test]
async fn a_reconcile_applies_a_delete_and_refuses_a_mass_delete_unless_forced() {
    let h = Harness::start().await;
    let goals = create(
        &h,
        "Goals",
        (0..30)
            .map(|i| json!({"Name": format!("Goal {i}"), "Active": true}))
            .collect(),
    )
    .await;
    let days = create(
        &h,
        "Days",
        vec![
            json!({"Name": "Monday", "Weekday": 1}),
            json!({"Name": "Tuesday", "Weekday": 2}),
        ],
    )
    .await;
    let ctx = h.inbound(inbound_settings());
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("backfill");
    let tuesday = h.row_of("day", &days[1]).await.expect("tuesday");

    // One goal and one day deleted in Airtable: goals are deactivated
    // (their policy), days deleted.
    delete(&h, "Goals", &goals[..1]).await;
    delete(&h, "Days", &days[1..]).await;
    let report = reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile");
    assert_eq!(
        report.tables.iter().map(|t| t.deleted).sum::<u64>(),
        2,
        "{report:?}"
    );
    let inactive: i64 = scalar(
        &h,
        "SELECT count(*) FROM reference_goals_pg WHERE NOT active",
    )
    .await;
    assert_eq!(inactive, 1);
    let days_left: i64 = scalar(
        &h,
        &format!("SELECT count(*) FROM reference_days_pg WHERE id = '{tuesday}'"),
    )
    .await;
    assert_eq!(days_left, 0);

    // Fifteen of the 29 goals gone at once looks like a failed listing.
    delete(&h, "Goals", &goals[1..16]).await;
    let options = ReconcileOptions {
        table: Some("Goals".into()),
        force: false,
    };
    let refused = reconcile(&ctx, &options).await.expect("reconcile");
    assert!(refused.refused(), "{refused:?}");
    assert_eq!(refused.tables[0].refused_deletes, 15);
    let inactive: i64 = scalar(
        &h,
        "SELECT count(*) FROM reference_goals_pg WHERE NOT active",
    )
    .await;
    assert_eq!(inactive, 1, "nothing was deleted");
    assert_eq!(ctx.metrics().snapshot().mass_deletes_refused, 1);

    let forced = reconcile(
        &ctx,
        &ReconcileOptions {
            force: true,
            ..options
        },
    )
    .await
    .expect("forced reconcile");
    assert_eq!(forced.tables[0].deleted, 15);
    let inactive: i64 = scalar(
        &h,
        "SELECT count(*) FROM reference_goals_pg WHERE NOT active",
    )
    .await;
    assert_eq!(inactive, 16);
}

#[tokio::test]
async fn a_link_to_an_unknown_record_is_fetched_and_a_record_that_cannot_apply_waits() {
    let h = Harness::start().await;
    let goals = create(&h, "Goals", vec![json!({"Name": "Calm", "Active": true})]).await;
    create(
        &h,
        "Methods",
        vec![json!({"Name": "Breathing", "Goals": goals.clone(), "Active": true})],
    )
    .await;
    let ctx = h.inbound(inbound_settings());
    // Only the methods: the goal they link is read on the way.
    reconcile(
        &ctx,
        &ReconcileOptions {
            table: Some("method".into()),
            force: false,
        },
    )
    .await
    .expect("reconcile methods");
    assert!(h.row_of("goal", &goals[0]).await.is_some());
    assert_eq!(ctx.metrics().snapshot().links_fetched, 1);
    let linked: i64 = scalar(&h, "SELECT count(*) FROM reference_method_goals_pg").await;
    assert_eq!(linked, 1);

    // A program the team is still typing in: no dates yet. It waits, and
    // arrives once complete.
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    let user = h.create_as_user("Users", json!({"Email": "typing@example.com"}));
    let program = h.create_as_user("Programs", json!({"Name": "Draft", "User": [user]}));
    read_payloads_once(&ctx).await.expect("read");
    assert!(h.row_of("user", &user).await.is_some());
    assert_eq!(h.row_of("program", &program).await, None);
    let reason: String = scalar(&h, "SELECT reason FROM sync_inbound_deferred").await;
    assert!(reason.contains("Start date"), "{reason}");

    // Completed while no ping gets through; the retry reads it afresh.
    h.update_as_user(
        "Programs",
        &program,
        json!({"Start date": "2026-05-04", "End date": "2026-05-31"}),
    );
    sqlx::query("UPDATE sync_inbound_deferred SET next_attempt_at = now()")
        .execute(h.pool())
        .await
        .expect("make due");
    let retried = retry_deferred(&ctx).await.expect("retry");
    assert_eq!(retried.tried, 1);
    assert!(h.row_of("program", &program).await.is_some());
    let waiting: i64 = scalar(&h, "SELECT count(*) FROM sync_inbound_deferred").await;
    assert_eq!(waiting, 0);
}

#[tokio::test]
async fn an_incremental_poll_reads_only_what_changed_since_its_watermark() {
    let h = Harness::start().await;
    let users = create(
        &h,
        "Users",
        (0..20)
            .map(|i| json!({"Email": format!("u{i}@example.com"), "Name": "Before"}))
            .collect(),
    )
    .await;
    // No overlap, so the test can tell the changed record from the others.
    let mut settings = inbound_settings();
    settings.poll_overlap = std::time::Duration::ZERO;
    let ctx = h.inbound(settings);
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("backfill");
    // The backfilled users wait to be sent their pg_id.
    let waiting = h.outbox_len().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    h.update_as_user("Users", &users[3], json!({"Name": "After"}));
    // Nothing else changed: the poll reads the one record (and nothing of
    // the other tables).
    let report = poll_once(&ctx).await.expect("poll");
    assert_eq!(report.records, 1, "{report:?}");
    let row = h.row_of("user", &users[3]).await.expect("row");
    let name: String = scalar(&h, &format!("SELECT name FROM users_pg WHERE id = '{row}'")).await;
    assert_eq!(name, "After");
    assert_eq!(
        h.outbox_len().await,
        waiting,
        "an inbound write is not echoed"
    );
}

/// The table's `inbound:changed:` checkpoint: the row count of the last
/// batch that changed rows, and when.
async fn last_change(h: &Harness, entity: &str) -> Option<(Value, chrono::DateTime<chrono::Utc>)> {
    sqlx::query_as("SELECT value, updated_at FROM sync_checkpoint WHERE name = $1")
        .bind(format!("inbound:changed:{entity}"))
        .fetch_optional(h.pool())
        .await
        .expect("checkpoint")
}

#[tokio::test]
async fn every_batch_that_changes_rows_stamps_when_airtable_last_changed_the_table() {
    let h = Harness::start().await;
    let users = create(
        &h,
        "Users",
        (0..12)
            .map(|i| json!({"Email": format!("c{i}@example.com"), "Name": "Before"}))
            .collect(),
    )
    .await;
    let mut settings = inbound_settings();
    settings.poll_overlap = std::time::Duration::ZERO;
    let ctx = h.inbound(settings);
    assert_eq!(last_change(&h, "user").await, None);
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("backfill");
    let (value, backfilled) = last_change(&h, "user").await.expect("stamped");
    assert_eq!(value, json!({"rows": 12}));
    assert_eq!(last_change(&h, "method").await, None, "no method changed");

    // A poll that finds nothing new leaves the stamp.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    poll_once(&ctx).await.expect("poll");
    assert_eq!(last_change(&h, "user").await, Some((value, backfilled)));

    // A team edit, then a team delete: each stamps anew.
    h.update_as_user("Users", &users[3], json!({"Name": "After"}));
    poll_once(&ctx).await.expect("poll");
    let (value, edited) = last_change(&h, "user").await.expect("stamped");
    assert_eq!(value, json!({"rows": 1}));
    assert!(edited > backfilled);
    delete(&h, "Users", &users[5..6]).await;
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile");
    let (value, deleted) = last_change(&h, "user").await.expect("stamped");
    assert_eq!(value, json!({"rows": 1}));
    assert!(deleted > edited);
}

#[tokio::test]
async fn validation_names_a_record_changed_behind_the_syncs_back() {
    let h = Harness::start().await;
    let goals = create(
        &h,
        "Goals",
        (0..5)
            .map(|i| json!({"Name": format!("Goal {i}"), "Active": true}))
            .collect(),
    )
    .await;
    let ctx = h.inbound(inbound_settings());
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("backfill");
    assert!(validate_backfill(&ctx, None)
        .await
        .expect("validate")
        .is_clean());
    h.update_as_user(
        "Goals",
        &goals[2],
        json!({"Description": "Changed in Airtable"}),
    );
    let report = validate_backfill(&ctx, Some("goal"))
        .await
        .expect("validate");
    assert!(!report.is_clean());
    assert_eq!(report.tables[0].differing, 1);
    let text = report.to_string();
    assert!(
        text.contains(&goals[2]) && text.contains("Description"),
        "{text}"
    );
}

#[tokio::test]
async fn a_field_that_flows_only_to_airtable_is_ignored_inbound() {
    let h = Harness::start().await;
    let ctx = h.inbound(inbound_settings());
    let user = h.insert_user("days@example.com").await;
    let program: Uuid = sqlx::query_scalar(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date) VALUES ($1, 'P', '2026-01-05', '2026-01-11') RETURNING id",
    )
    .bind(user)
    .fetch_one(h.pool())
    .await
    .expect("program");
    let day: Uuid = sqlx::query_scalar(
        "INSERT INTO program_schedule_pg (program_id, date) VALUES ($1, '2026-01-05') RETURNING id",
    )
    .bind(program)
    .fetch_one(h.pool())
    .await
    .expect("schedule day");
    let worker = h.worker_sharing(&ctx);
    h.drain(&worker).await;
    let record = h.record_id("program_schedule", day).await;

    // Completed is derived in PostgreSQL; the team ticking it changes
    // nothing, while their notes arrive.
    h.update_as_user(
        "Program schedule",
        &record,
        json!({"Completed": true, "Notes": "Rest day"}),
    );
    reconcile(
        &ctx,
        &ReconcileOptions {
            table: Some("program_schedule".into()),
            force: false,
        },
    )
    .await
    .expect("reconcile");
    let (completed, notes): (bool, String) =
        sqlx::query_as("SELECT completed, notes FROM program_schedule_pg WHERE id = $1")
            .bind(day)
            .fetch_one(h.pool())
            .await
            .expect("schedule day");
    assert!(!completed);
    assert_eq!(notes, "Rest day");
}

#[tokio::test]
async fn a_user_the_backfill_brings_in_is_no_provisioning_but_one_a_later_reconcile_finds_is() {
    let h = Harness::start().await;
    create(
        &h,
        "Users",
        (0..3)
            .map(|i| json!({"Email": format!("b{i}@example.com")}))
            .collect(),
    )
    .await;
    let ctx = h.inbound(inbound_settings());
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("backfill");
    let metrics = ctx.metrics();
    assert_eq!(metrics.user_provisioning().count(), 0);
    let progress = metrics.reconcile_progress();
    assert_eq!(progress["user"].records_seen, 3);
    assert!(progress.values().all(|p| !p.running), "{progress:?}");

    let late = create(&h, "Users", vec![json!({"Email": "late@example.com"})]).await;
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile");
    assert!(h.row_of("user", &late[0]).await.is_some());
    let provisioning = metrics.user_provisioning();
    assert_eq!(provisioning.count(), 1, "{provisioning:?}");
    assert_eq!(metrics.reconcile_progress()["user"].records_seen, 7);
}

/// Runs the inbound sync as `airsync serve` does until every table was
/// polled once (and, when `reconcile_enabled`, a table was reconciled),
/// then stops it; answers the context.
async fn run_until_polled(
    h: &Harness,
    reconcile_enabled: bool,
) -> airsync_sync::inbound::InboundContext {
    let ctx = h.inbound(airsync_sync::inbound::InboundSettings {
        webhooks_enabled: false,
        reconcile_enabled,
        ..inbound_settings()
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(airsync_sync::inbound::run(ctx.clone(), stopped));
    let tables = h.mapping.entities().len() as i64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let polled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:poll:%'",
        )
        .fetch_one(h.pool())
        .await
        .expect("poll checkpoints");
        let reconciled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:reconcile:%'",
        )
        .fetch_one(h.pool())
        .await
        .expect("reconcile checkpoints");
        if polled == tables && (!reconcile_enabled || reconciled > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never got there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    task.await.expect("join").expect("run");
    ctx
}

#[tokio::test]
async fn the_scheduled_reconcile_runs_only_while_its_switch_is_on() {
    // FULL_AIRTABLE_POLL_SYNC_ENABLED=false: the poll runs, no reconcile
    // starts, though none has ever run (it would be due at once).
    let h = Harness::start().await;
    let ctx = run_until_polled(&h, false).await;
    assert!(
        ctx.metrics().reconcile_progress().is_empty(),
        "{:?}",
        ctx.metrics().reconcile_progress()
    );
    let reconciled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:reconcile:%'",
    )
    .fetch_one(h.pool())
    .await
    .expect("reconcile checkpoints");
    assert_eq!(reconciled, 0);

    // On, the same start reconciles at once.
    let h = Harness::start().await;
    let ctx = run_until_polled(&h, true).await;
    assert!(!ctx.metrics().reconcile_progress().is_empty());
}
