//! Both sides writing at once: the app through PostgreSQL (and the outbound
//! worker), the team in Airtable's UI (and the webhook path). Each test
//! runs the worker and the payload reader step by step until nothing moves,
//! then checks that both sides agree per DESIGN.md's conflict rules and
//! that no request keeps going back and forth.

mod support;

use std::time::{Duration, Instant};

use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::conflicts;
use airsync_sync::inbound::{ensure_webhook, poll_once, read_payloads_once, InboundContext};
use airsync_sync::worker::Worker;
use serde_json::json;
use support::{inbound_settings, Harness, Receiver, BASE};
use uuid::Uuid;

/// Runs the worker and the reader until the outbox is empty and a read
/// finds no payload.
async fn settle(h: &Harness, ctx: &InboundContext, worker: &Worker<AirtableWriter>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        h.drain(worker).await;
        let read = read_payloads_once(ctx).await.expect("read payloads");
        if read.payloads == 0 && h.outbox_len().await == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the two sides never settled");
    }
}

/// The webhook's next payload number: it stops moving once nobody writes.
async fn payload_cursor(ctx: &InboundContext) -> u64 {
    let hooks = ctx
        .client()
        .base(BASE)
        .list_webhooks()
        .await
        .expect("list webhooks");
    hooks
        .iter()
        .map(|w| w.cursor_for_next_payload)
        .max()
        .unwrap_or(0)
}

/// Asserts that another round of both sides writes nothing anywhere.
async fn assert_settled(h: &Harness, ctx: &InboundContext, worker: &Worker<AirtableWriter>) {
    let cursor = payload_cursor(ctx).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let sent = worker.run_once().await.expect("worker step");
    assert_eq!(sent.sent, 0, "the worker still sends: {sent:?}");
    let read = read_payloads_once(ctx).await.expect("read");
    assert_eq!(read.payloads, 0);
    assert_eq!(h.outbox_len().await, 0);
    assert_eq!(
        payload_cursor(ctx).await,
        cursor,
        "Airtable was written again"
    );
    assert_eq!(h.rate_limited(), 0, "a request was refused with a 429");
}

struct Program {
    row: Uuid,
    record: String,
}

/// A user and a program made in the app and pushed, with the echoes of
/// the pushes read.
async fn pushed_program(
    h: &Harness,
    ctx: &InboundContext,
    worker: &Worker<AirtableWriter>,
) -> Program {
    // Seeded before the webhook exists: the seed's Airtable records and
    // rows do not agree on every cell (e.g. a goal's Active), and reading
    // their payloads would make Airtable's values win.
    let r = h.seed_reference().await;
    ensure_webhook(ctx).await.expect("webhook");
    let user = h.insert_user("anna@example.com").await;
    let row: Uuid = sqlx::query_scalar(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date, notes)
         VALUES ($1, 'Spring', '2026-03-02', '2026-03-29', 'Start') RETURNING id",
    )
    .bind(user)
    .fetch_one(h.pool())
    .await
    .expect("program");
    sqlx::query("INSERT INTO program_methods_pg (program_id, method_id) VALUES ($1, $2)")
        .bind(row)
        .bind(r.method)
        .execute(h.pool())
        .await
        .expect("program method");
    settle(h, ctx, worker).await;
    let record = h.record_id("program", row).await;
    Program { row, record }
}

async fn program_row(h: &Harness, row: Uuid) -> (String, String) {
    sqlx::query_as("SELECT name, notes FROM programs_pg WHERE id = $1")
        .bind(row)
        .fetch_one(h.pool())
        .await
        .expect("program row")
}

async fn update_program(h: &Harness, row: Uuid, set: &str) {
    sqlx::query(&format!("UPDATE programs_pg SET {set} WHERE id = $1"))
        .bind(row)
        .execute(h.pool())
        .await
        .expect("update program");
}

#[tokio::test]
async fn the_echoes_of_our_own_pushes_change_nothing() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;
    let metrics = ctx.metrics().snapshot();
    assert!(
        metrics.payloads_applied > 0,
        "the pushes came back as payloads"
    );
    assert_eq!(metrics.rows_updated, 0);
    assert_eq!(metrics.rows_created, 0);
    assert_eq!(metrics.pushes_enqueued, 0);
    assert_eq!(program_row(&h, program.row).await.1, "Start");
    assert_settled(&h, &ctx, &worker).await;
}

#[tokio::test]
async fn the_app_renaming_a_program_while_the_team_edits_its_notes_keeps_both_changes_on_both_sides(
) {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    // The worker sends the whole row, old notes included, after the team's
    // edit: the team's notes must survive that.
    update_program(&h, program.row, "name = 'Spring 2'").await;
    h.update_as_user(
        "Programs",
        &program.record,
        json!({"Notes": "From the team"}),
    );
    settle(&h, &ctx, &worker).await;

    assert_eq!(
        program_row(&h, program.row).await,
        ("Spring 2".to_owned(), "From the team".to_owned())
    );
    let record = h.record_of("Programs", program.row);
    assert_eq!(record["fields"]["Name"], json!("Spring 2"));
    assert_eq!(record["fields"]["Notes"], json!("From the team"));
    assert_settled(&h, &ctx, &worker).await;
}

#[tokio::test]
async fn the_later_edit_of_the_same_field_wins_on_both_sides() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    // A full log: 999 recent conflicts and 5 past the age limit.
    sqlx::query(
        "INSERT INTO sync_conflicts (entity, row_id, airtable_id, field, postgres_value, airtable_value, winner, at)
         SELECT 'user', gen_random_uuid(), 'recOLDOLDOLDOLDOLD', 'Name', '\"a\"', '\"b\"', 'airtable',
                now() - CASE WHEN n <= 5 THEN interval '40 days' ELSE interval '1 hour' END
           FROM generate_series(1, 1004) n",
    )
    .execute(h.pool())
    .await
    .expect("planted conflicts");

    // The app first, the team later: the team's notes win.
    update_program(&h, program.row, "notes = 'App'").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    settle(&h, &ctx, &worker).await;
    assert_eq!(program_row(&h, program.row).await.1, "Team");
    assert_eq!(
        h.record_of("Programs", program.row)["fields"]["Notes"],
        json!("Team")
    );
    assert!(ctx.metrics().snapshot().conflicts_airtable_won >= 1);
    assert_settled(&h, &ctx, &worker).await;
    let logged = conflicts::recent(h.pool(), 1).await.expect("conflicts");
    let newest = &logged[0];
    assert_eq!(
        (
            newest.entity.as_str(),
            newest.row_id,
            newest.airtable_id.as_str(),
            newest.field.as_str(),
            newest.winner.as_str()
        ),
        (
            "program",
            program.row,
            program.record.as_str(),
            "Notes",
            "airtable"
        )
    );
    assert_eq!(
        (&newest.postgres_value, &newest.airtable_value),
        (&Some(json!("App")), &Some(json!("Team")))
    );
    let (kept, too_old): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE at < now() - interval '30 days') FROM sync_conflicts",
    )
    .fetch_one(h.pool())
    .await
    .expect("count");
    assert_eq!(
        (kept, too_old),
        (conflicts::KEEP_CONFLICTS, 0),
        "pruned by count and age"
    );

    // The team first, the app later: the app's notes win.
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team again"}));
    tokio::time::sleep(Duration::from_millis(50)).await;
    update_program(&h, program.row, "notes = 'App again'").await;
    settle(&h, &ctx, &worker).await;
    assert_eq!(program_row(&h, program.row).await.1, "App again");
    assert_eq!(
        h.record_of("Programs", program.row)["fields"]["Notes"],
        json!("App again")
    );
    assert!(ctx.metrics().snapshot().conflicts_postgres_won >= 1);
    assert_settled(&h, &ctx, &worker).await;
    let newest = &conflicts::recent(h.pool(), 1).await.expect("conflicts")[0];
    assert_eq!(
        (newest.field.as_str(), newest.winner.as_str()),
        ("Notes", "postgres")
    );
    assert_eq!(newest.postgres_value, Some(json!("App again")));
}

#[tokio::test]
async fn the_later_edit_wins_when_the_reader_runs_before_the_worker() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    update_program(&h, program.row, "notes = 'App'").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    // The team's payload is read while the app's change still waits.
    read_payloads_once(&ctx).await.expect("read");
    assert_eq!(program_row(&h, program.row).await.1, "Team");
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        h.record_of("Programs", program.row)["fields"]["Notes"],
        json!("Team")
    );
    assert_settled(&h, &ctx, &worker).await;
}

#[tokio::test]
async fn reference_data_takes_airtables_value_whatever_postgres_holds() {
    let h = Harness::start().await;
    let r = h.seed_reference().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    ensure_webhook(&ctx).await.expect("webhook");
    // Someone edits the reference row in PostgreSQL directly.
    sqlx::query("UPDATE reference_methods_pg SET name = 'Edited in psql' WHERE id = $1")
        .bind(r.method)
        .execute(h.pool())
        .await
        .expect("local edit");
    let record = h.record_id("method", r.method).await;
    h.update_as_user("Methods", &record, json!({"Name": "Deep breathing"}));
    read_payloads_once(&ctx).await.expect("read");
    let name: String = sqlx::query_scalar("SELECT name FROM reference_methods_pg WHERE id = $1")
        .bind(r.method)
        .fetch_one(h.pool())
        .await
        .expect("method");
    assert_eq!(name, "Deep breathing");
    assert_eq!(h.outbox_len().await, 0, "reference data is never pushed");
}

#[tokio::test]
async fn a_delete_wins_over_an_edit_on_either_side() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    // The app deletes the program while the team edits it.
    sqlx::query("DELETE FROM programs_pg WHERE id = $1")
        .bind(program.row)
        .execute(h.pool())
        .await
        .expect("delete");
    h.update_as_user("Programs", &program.record, json!({"Notes": "Too late"}));
    read_payloads_once(&ctx).await.expect("read");
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM programs_pg")
            .fetch_one(h.pool())
            .await
            .expect("count"),
        0
    );
    assert!(h.records("Programs").is_empty(), "the record was kept");

    // The team deletes a program the app is changing.
    let user: Uuid = sqlx::query_scalar("SELECT id FROM users_pg")
        .fetch_one(h.pool())
        .await
        .expect("user");
    let row: Uuid = sqlx::query_scalar(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date) VALUES ($1, 'Autumn', '2026-09-01', '2026-09-30') RETURNING id",
    )
    .bind(user)
    .fetch_one(h.pool())
    .await
    .expect("program");
    settle(&h, &ctx, &worker).await;
    let record = h.record_id("program", row).await;
    update_program(&h, row, "notes = 'Changed in the app'").await;
    h.delete_as_user("Programs", &record);
    read_payloads_once(&ctx).await.expect("read");
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM programs_pg")
            .fetch_one(h.pool())
            .await
            .expect("count"),
        0
    );
    assert!(h.records("Programs").is_empty());
    assert_eq!(h.dead_letters().await, 0);
}

/// Without a webhook (expired, or in a gap) only the incremental poll sees
/// the team's edits, and it sees a record as it is now: a push that sent
/// the row's older name back would lose the team's rename for good.
#[tokio::test]
async fn a_rename_by_the_team_before_the_pg_id_goes_back_is_not_overwritten() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    // The first poll only sets each table's watermark.
    poll_once(&ctx).await.expect("poll");
    // The team adds a user; the poll brings it in and queues its pg_id for
    // Airtable.
    let record = h.create_as_user("Users", json!({"Email": "new@example.com", "Name": "New"}));
    poll_once(&ctx).await.expect("poll");
    let row = h.row_of("user", &record).await.expect("the user arrived");
    assert_eq!(h.outbox_len().await, 1, "the pg_id waits to be sent");
    // Before the worker sends it, the team renames the user.
    h.update_as_user("Users", &record, json!({"Name": "New Name"}));
    h.drain(&worker).await;
    poll_once(&ctx).await.expect("poll");
    h.drain(&worker).await;

    let cells = &h.record_of("Users", row)["fields"];
    assert_eq!(
        cells["Name"],
        json!("New Name"),
        "the team's rename was overwritten"
    );
    assert_eq!(cells["pg_id"], json!(row.to_string()));
    let name: String = sqlx::query_scalar("SELECT name FROM users_pg WHERE id = $1")
        .bind(row)
        .fetch_one(h.pool())
        .await
        .expect("row");
    assert_eq!(name, "New Name");
}
