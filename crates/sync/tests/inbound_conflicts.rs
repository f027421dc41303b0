//! Both sides writing at once: the app through PostgreSQL (and the outbound
//! worker), the team in Airtable's UI (and the webhook path). Each test
//! runs the worker and the payload reader step by step until nothing moves,
//! then checks that both sides agree per the conflict rules of
//! docs/architecture.md ("Conflicts") and that no request keeps going back
//! and forth.

mod support;

use std::time::{Duration, Instant};

use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::inbound::{
    ensure_webhook, poll_once, read_payloads_once, reconcile, InboundContext, ReconcileOptions,
};
use airsync_sync::outbox::FailureDetail;
use airsync_sync::worker::{ReadRecord, RecordWriter, SendError, Worker};
use airsync_sync::{conflicts, dead_letters};
use serde_json::{json, Map, Value};
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
        .base(&BASE)
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

/// Asserts that the program's notes are `notes` on both sides.
async fn assert_notes(h: &Harness, row: Uuid, notes: &str) {
    assert_eq!(program_row(h, row).await.1, notes, "in PostgreSQL");
    assert_eq!(
        h.record_of("Programs", row)["fields"]["Notes"],
        json!(notes),
        "in Airtable"
    );
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

// The causes of lost edits and resurrected rows found when the app and the
// team change the same records at once (docs/sync.md, "The sync model").
// Each test below failed before its fix.

/// A writer that forwards to Airtable, and on request runs an app write
/// while the request is on its way, or loses the answer of a write that
/// Airtable made (as a worker killed between the answer and its commit).
struct Meddling {
    inner: AirtableWriter,
    pool: sqlx::PgPool,
    during_send: std::sync::Mutex<Option<String>>,
    lose_answers: std::sync::atomic::AtomicBool,
}

impl Meddling {
    fn new(h: &Harness, ctx: &InboundContext) -> Meddling {
        Meddling {
            inner: AirtableWriter::new(ctx.client().clone(), BASE),
            pool: h.pool().clone(),
            during_send: std::sync::Mutex::new(None),
            lose_answers: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A worker whose writes all land and whose answers are all lost, as
    /// when a worker is killed mid-request or a request times out.
    fn lossy_worker(
        h: &Harness,
        ctx: &InboundContext,
        settings: airsync_sync::worker::WorkerSettings,
    ) -> Worker<Meddling> {
        let writer = Meddling::new(h, ctx);
        writer
            .lose_answers
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Worker::new(h.pool().clone(), h.mapping.clone(), writer, settings)
    }

    async fn meddle<T>(
        &self,
        sent: impl std::future::Future<Output = Result<T, SendError>>,
    ) -> Result<T, SendError> {
        let statement = self.during_send.lock().expect("lock").take();
        if let Some(statement) = statement {
            sqlx::query(&statement)
                .execute(&self.pool)
                .await
                .expect("app write");
        }
        let answer = sent.await?;
        if self.lose_answers.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SendError {
                rate_limited: false,
                retryable: true,
                access_denied: false,
                detail: FailureDetail {
                    message: "the answer was lost".into(),
                    ..FailureDetail::default()
                },
            });
        }
        Ok(answer)
    }
}

impl RecordWriter for Meddling {
    async fn upsert(
        &self,
        table: &str,
        merge_field: &str,
        records: Vec<Map<String, Value>>,
    ) -> Result<Vec<airsync_sync::worker::Upserted>, SendError> {
        self.meddle(self.inner.upsert(table, merge_field, records))
            .await
    }

    async fn update(
        &self,
        table: &str,
        records: Vec<(String, Map<String, Value>)>,
    ) -> Result<Vec<String>, SendError> {
        self.meddle(self.inner.update(table, records)).await
    }

    async fn delete(&self, table: &str, record_ids: Vec<String>) -> Result<Vec<String>, SendError> {
        self.inner.delete(table, record_ids).await
    }

    async fn read(
        &self,
        table: &str,
        record_ids: Vec<String>,
        fields: Vec<String>,
    ) -> Result<Vec<ReadRecord>, SendError> {
        self.inner.read(table, record_ids, fields).await
    }

    async fn find(
        &self,
        table: &str,
        field: &str,
        values: Vec<String>,
    ) -> Result<Vec<(String, String)>, SendError> {
        self.inner.find(table, field, values).await
    }
}

/// Cause 1: a push of a table the app owns sent every field, writing the
/// row's older values over a team edit the inbound sync had not applied.
#[tokio::test]
async fn a_push_of_an_app_owned_row_leaves_a_team_edit_of_another_field_alone() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    update_program(&h, program.row, "name = 'Spring 2'").await;
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    // The worker pushes before the team's edit is read.
    h.drain(&worker).await;
    let cells = &h.record_of("Programs", program.row)["fields"];
    assert_eq!(cells["Name"], json!("Spring 2"));
    assert_eq!(
        cells["Notes"],
        json!("Team"),
        "the push overwrote the team's notes"
    );
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        program_row(&h, program.row).await,
        ("Spring 2".to_owned(), "Team".to_owned())
    );
}

/// Cause 2: a listing read before a push was applied after it, and its
/// older value won over the app's, as if the team had changed it.
#[tokio::test]
async fn a_listing_read_before_a_push_does_not_undo_it() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let pushed = pushed_program(&h, &ctx, &worker).await;
    // A program the team made: its notes are the team's, a value no push
    // ever carried, so the listing's older value cannot pass for an echo of
    // ours.
    let user = h.record_of("Programs", pushed.row)["fields"]["User"].clone();
    let record = h.create_as_user(
        "Programs",
        json!({"Name": "Summer", "Notes": "Team", "User": user,
               "Start date": "2026-06-01", "End date": "2026-06-28"}),
    );
    settle(&h, &ctx, &worker).await;
    let row = Uuid::parse_str(
        h.records("Programs")
            .iter()
            .find(|r| r["id"] == json!(record))
            .and_then(|r| r["fields"]["pg_id"].as_str())
            .expect("the team's program got its pg_id"),
    )
    .expect("pg_id");
    let program = Program { row, record };
    assert_notes(&h, program.row, "Team").await;
    // The team links goals PostgreSQL does not know yet: applying the
    // program's page first reads each of them, which keeps the page waiting.
    let goals: Vec<String> = (0..8)
        .map(|i| h.create_as_user("Goals", json!({"Name": format!("New goal {i}")})))
        .collect();
    h.update_as_user("Programs", &program.record, json!({"Goals": goals}));
    let skipped_before = ctx.metrics().snapshot().stale_listings_skipped;
    h.emulator.set_latency_ms(Some(300..=300));
    let pages_before = h.emulator.pages_listing(BASE.as_str(), &program.record);
    let reconciling = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let options = ReconcileOptions {
                table: Some("program".into()),
                force: false,
            };
            reconcile(&ctx, &options).await
        })
    };
    // While the reconcile reads the linked goals, the app changes the notes,
    // the worker pushes them and the reader takes the push's echo: nothing
    // later shows the app's value again. The emulator counts the page as it
    // makes it, so the change below comes after the page was read, however
    // slowly the reconcile got there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.emulator.pages_listing(BASE.as_str(), &program.record) == pages_before {
        assert!(
            Instant::now() < deadline,
            "the reconcile never listed the program"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    update_program(&h, program.row, "notes = 'App'").await;
    h.drain(&worker).await;
    read_payloads_once(&ctx).await.expect("read");
    assert!(
        !reconciling.is_finished(),
        "the page was applied before the push"
    );
    reconciling.await.expect("task").expect("reconcile");
    h.emulator.set_latency_ms(None);
    settle(&h, &ctx, &worker).await;
    assert_notes(&h, program.row, "App").await;
    assert!(
        ctx.metrics().snapshot().stale_listings_skipped > skipped_before,
        "the page read before the push was not found stale"
    );
}

/// Found by the history checker (seed 16618692549271281390): a listing's
/// conflict waited for Airtable's change time of the field, half a minute
/// behind a 429 pause, and the answer ("the team changed it after the
/// row's time") was then applied to the value the listing had read, over
/// the app's writes made meanwhile. The answer holds only for the row's
/// time it was asked about and the value Airtable holds with it.
#[tokio::test]
async fn an_app_write_made_while_a_listing_asks_for_airtables_time_is_kept() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;
    // Both sides change the notes, the team last; neither is pushed nor
    // read, so the reconcile's listing finds a conflict that needs
    // Airtable's change time.
    update_program(&h, program.row, "notes = 'App'").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    let skipped_before = ctx.metrics().snapshot().stale_listings_skipped;
    h.emulator.set_latency_ms(Some(800..=800));
    let answered = h.emulator.stats().total;
    let reconciling = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let options = ReconcileOptions {
                table: Some("program".into()),
                force: false,
            };
            reconcile(&ctx, &options).await
        })
    };
    // The schema and the listing's page are answered; the question for
    // Airtable's time is on its way (800 ms): the app writes the notes
    // again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.emulator.stats().total < answered + 2 {
        assert!(Instant::now() < deadline, "the reconcile never listed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    update_program(&h, program.row, "notes = 'App later'").await;
    reconciling.await.expect("task").expect("reconcile");
    h.emulator.set_latency_ms(None);
    assert_eq!(program_row(&h, program.row).await.1, "App later");
    assert_eq!(
        ctx.metrics().snapshot().stale_listings_skipped,
        skipped_before + 1,
        "the listing was overtaken by the app's write"
    );
    settle(&h, &ctx, &worker).await;
    assert_notes(&h, program.row, "App later").await;
}

/// Cause 3: an inbound write moved the row's `updated_at` to the inbound
/// transaction's time, so a later team edit in the same page of payloads
/// lost to an earlier app change.
#[tokio::test]
async fn a_later_team_edit_in_the_same_page_wins_over_an_earlier_app_change() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    update_program(&h, program.row, "notes = 'App'").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.update_as_user("Programs", &program.record, json!({"Name": "Team name"}));
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    // Both payloads in one page, before the worker runs.
    read_payloads_once(&ctx).await.expect("read");
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        program_row(&h, program.row).await,
        ("Team name".to_owned(), "Team".to_owned())
    );
    assert_eq!(
        h.record_of("Programs", program.row)["fields"]["Notes"],
        json!("Team")
    );
}

/// Cause 4: the echo of a push whose answer was lost was judged by its
/// time: it reached Airtable after the app's next change, and won over it.
#[tokio::test]
async fn the_echo_of_a_push_whose_answer_was_lost_is_known_by_its_content() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    let writer = Meddling::new(&h, &ctx);
    // The app changes the notes again while the push of its first change
    // is on its way; the push's answer is lost.
    *writer.during_send.lock().expect("lock") = Some(format!(
        "UPDATE programs_pg SET notes = 'App 2' WHERE id = '{}'",
        program.row
    ));
    writer
        .lose_answers
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let meddling = Worker::new(h.pool().clone(), h.mapping.clone(), writer, h.settings());
    update_program(&h, program.row, "notes = 'App'").await;
    // The record was just pushed: its next push waits for the hold.
    tokio::time::sleep(h.settings().tuning.hold_after_push).await;
    meddling.run_once().await.expect("worker step");
    assert_eq!(
        h.record_of("Programs", program.row)["fields"]["Notes"],
        json!("App"),
        "the push reached Airtable"
    );
    // The echo is read before any worker runs again.
    read_payloads_once(&ctx).await.expect("read");
    settle(&h, &ctx, &worker).await;
    assert_notes(&h, program.row, "App 2").await;
}

/// Cause 5: a create whose answer was lost, put back with no attempt (here
/// by a dead-letter replay), left a record that the next listing turned
/// back into the row the app had deleted.
#[tokio::test]
async fn a_row_the_app_deleted_does_not_come_back_from_an_orphaned_record() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    ensure_webhook(&ctx).await.expect("webhook");
    let mut settings = h.settings();
    settings.tuning.max_attempts = 1;
    let lossy = Meddling::lossy_worker(&h, &ctx, settings);

    let row = h.insert_user("gone@example.com").await;
    lossy.run_once().await.expect("worker step");
    assert_eq!(h.records("Users").len(), 1, "the create reached Airtable");
    assert_eq!(h.dead_letters().await, 1);
    sqlx::query("DELETE FROM users_pg WHERE id = $1")
        .bind(row)
        .execute(h.pool())
        .await
        .expect("delete");
    dead_letters::replay(h.pool(), None).await.expect("replay");
    h.drain(&worker).await;
    let options = ReconcileOptions {
        table: Some("user".into()),
        force: false,
    };
    reconcile(&ctx, &options).await.expect("reconcile");
    settle(&h, &ctx, &worker).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users_pg")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the deleted row came back");
    assert!(
        h.records("Users").is_empty(),
        "the orphaned record was kept"
    );
}

/// Cause 5, as the team makes it: a person brings back the record of a row
/// the app deleted (a copy kept aside, a restore), pg_id and all. The
/// app's delete wins over it, whether a payload or a listing shows it.
#[tokio::test]
async fn a_record_the_team_brings_back_for_a_row_the_app_deleted_is_deleted_again() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;
    let cells = h.record_of("Programs", program.row)["fields"].clone();
    sqlx::query("DELETE FROM programs_pg WHERE id = $1")
        .bind(program.row)
        .execute(h.pool())
        .await
        .expect("delete");
    settle(&h, &ctx, &worker).await;
    assert!(
        h.records("Programs").is_empty(),
        "the delete reached Airtable"
    );
    let mut copy = cells.clone();
    copy.as_object_mut().expect("cells").retain(|name, _| {
        ["Name", "Notes", "User", "Start date", "End date", "pg_id"].contains(&name.as_str())
    });
    // Seen first in a payload, then in a listing.
    h.create_as_user("Programs", copy.clone());
    settle(&h, &ctx, &worker).await;
    assert!(
        h.records("Programs").is_empty(),
        "the restored record was kept"
    );
    h.create_as_user("Programs", copy);
    let options = ReconcileOptions {
        table: Some("program".into()),
        force: false,
    };
    reconcile(&ctx, &options).await.expect("reconcile");
    settle(&h, &ctx, &worker).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the deleted row came back");
    assert!(
        h.records("Programs").is_empty(),
        "the restored record was kept"
    );
}

/// Counts, in a table of the test's own, the rows inserted into
/// `programs_pg` from now on.
async fn count_program_inserts(h: &Harness) {
    for statement in [
        "CREATE TABLE test_program_inserts (id uuid NOT NULL)",
        "CREATE FUNCTION test_program_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO test_program_inserts VALUES (NEW.id); RETURN NULL; END $$",
        "CREATE TRIGGER test_program_insert AFTER INSERT ON programs_pg
             FOR EACH ROW EXECUTE FUNCTION test_program_insert()",
    ] {
        sqlx::query(statement)
            .execute(h.pool())
            .await
            .expect("watch inserts");
    }
}

/// Reads the webhook's payloads again from the first, as a reader far
/// behind or restarted from an older cursor does.
async fn reread_every_payload(h: &Harness, ctx: &InboundContext) {
    sqlx::query(
        "UPDATE sync_checkpoint SET value = jsonb_set(value, '{cursor}', '1')
          WHERE name LIKE 'inbound:webhook:%'",
    )
    .execute(h.pool())
    .await
    .expect("rewind the cursor");
    read_payloads_once(ctx).await.expect("read");
}

/// A team program (no pg_id in its first payload) brought in and settled.
async fn team_program(
    h: &Harness,
    ctx: &InboundContext,
    worker: &Worker<AirtableWriter>,
) -> Program {
    let pushed = pushed_program(h, ctx, worker).await;
    let user = h.record_of("Programs", pushed.row)["fields"]["User"].clone();
    let record = h.create_as_user(
        "Programs",
        json!({"Name": "Summer", "Notes": "Team", "User": user,
               "Start date": "2026-06-01", "End date": "2026-06-28"}),
    );
    settle(h, ctx, worker).await;
    let row = h
        .records("Programs")
        .iter()
        .find(|r| r["id"] == json!(record))
        .and_then(|r| r["fields"]["pg_id"].as_str())
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("the team's program got its pg_id");
    Program { row, record }
}

/// Cause 5, read late: the payloads of a team record whose row the app
/// deleted since, read again (a reader behind, a replay from an older
/// cursor), made the row anew until the record's delete was read too.
#[tokio::test]
async fn payloads_read_late_about_a_record_whose_row_the_app_deleted_bring_nothing_back() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = team_program(&h, &ctx, &worker).await;
    sqlx::query("DELETE FROM programs_pg WHERE id = $1")
        .bind(program.row)
        .execute(h.pool())
        .await
        .expect("delete");
    settle(&h, &ctx, &worker).await;
    assert!(
        !h.records("Programs")
            .iter()
            .any(|r| r["id"] == json!(program.record)),
        "the delete reached Airtable"
    );
    count_program_inserts(&h).await;
    reread_every_payload(&h, &ctx).await;
    settle(&h, &ctx, &worker).await;
    let inserted: i64 = sqlx::query_scalar("SELECT count(*) FROM test_program_inserts")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(inserted, 0, "a row came back for a while");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg WHERE name = 'Summer'")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

/// The same for a record the team deleted.
#[tokio::test]
async fn payloads_read_late_about_a_record_the_team_deleted_bring_nothing_back() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = team_program(&h, &ctx, &worker).await;
    h.delete_as_user("Programs", &program.record);
    settle(&h, &ctx, &worker).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg WHERE id = $1")
        .bind(program.row)
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the team's delete reached PostgreSQL");
    count_program_inserts(&h).await;
    reread_every_payload(&h, &ctx).await;
    settle(&h, &ctx, &worker).await;
    let inserted: i64 = sqlx::query_scalar("SELECT count(*) FROM test_program_inserts")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(inserted, 0, "a row came back for a while");
}

/// Cause 6: after the team deleted a company (policy `deactivate`), every
/// push of a row linking to it ended in the dead-letter queue.
#[tokio::test]
async fn a_link_to_a_row_whose_record_the_team_deleted_is_left_out_of_pushes() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let mut settings = h.settings();
    settings.tuning.max_attempts = 3;
    let worker = Worker::new(
        h.pool().clone(),
        h.mapping.clone(),
        AirtableWriter::new(ctx.client().clone(), BASE),
        settings,
    );
    let r = h.seed_reference().await;
    ensure_webhook(&ctx).await.expect("webhook");
    let company = h.record_id("company", r.company).await;
    h.delete_as_user("Companies", &company);
    read_payloads_once(&ctx).await.expect("read");
    let active: bool = sqlx::query_scalar("SELECT active FROM companies_pg WHERE id = $1")
        .bind(r.company)
        .fetch_one(h.pool())
        .await
        .expect("company");
    assert!(!active, "the company was deactivated");

    // The app still links the company's row (an account made with its code).
    let user = h.insert_user("linked@example.com").await;
    sqlx::query("UPDATE users_pg SET company_id = $2 WHERE id = $1")
        .bind(user)
        .bind(r.company)
        .execute(h.pool())
        .await
        .expect("link company");
    settle(&h, &ctx, &worker).await;
    assert_eq!(h.dead_letters().await, 0);
    let cells = &h.record_of("Users", user)["fields"];
    assert_eq!(cells["Email"], json!("linked@example.com"));
    assert!(cells.get("Company").is_none(), "{cells}");
}

/// Cause 7: a webhook recreated after it expired was deleted with its
/// unread payloads; the poll over the gap cannot see deletes, so a record
/// the team deleted kept its row.
#[tokio::test]
async fn a_delete_in_the_unread_payloads_of_an_expired_webhook_is_applied() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;

    // Nobody refreshes the webhook; the team deletes the program near the
    // end of its seven days, and it expires before its payloads are read
    // (they stay readable for seven days).
    h.emulator
        .advance_clock(Duration::from_secs(6 * 24 * 3600 + 12 * 3600));
    h.delete_as_user("Programs", &program.record);
    h.emulator.advance_clock(Duration::from_secs(24 * 3600));
    let action = ensure_webhook(&ctx).await.expect("webhook");
    assert!(
        matches!(action, airsync_sync::inbound::WebhookAction::Created { .. }),
        "{action:?}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the team's delete was lost with the old webhook");
}

/// A webhook that expired recorded nothing more: a delete the team made
/// after it is in no payload, and a poll cannot see deletes. Recreating the
/// webhook makes the full reconcile due at once, which finds it.
#[tokio::test]
async fn a_delete_made_after_the_webhook_expired_is_found_by_the_reconcile_made_due() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("a first reconcile");

    h.emulator.expire_webhooks(BASE.as_str()).expect("expire");
    h.delete_as_user("Programs", &program.record);
    let action = ensure_webhook(&ctx).await.expect("webhook");
    assert!(
        matches!(action, airsync_sync::inbound::WebhookAction::Created { .. }),
        "{action:?}"
    );
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sync_checkpoint WHERE name LIKE 'inbound:reconcile:%'
            AND (value->>'finished_at')::timestamptz > '2000-01-01'",
    )
    .fetch_all(h.pool())
    .await
    .expect("reconcile checkpoints");
    assert!(due.is_empty(), "reconciles not made due: {due:?}");
    reconcile(&ctx, &ReconcileOptions::default())
        .await
        .expect("reconcile");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM programs_pg")
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the team's delete in the gap was never found");
}

/// While no webhook records the base's history (this one was deleted by
/// someone), a push would overwrite a team edit that no payload will ever
/// show. The worker reads the record first and waits for the inbound sync
/// to merge the edit; per field, the later change wins.
#[tokio::test]
async fn a_team_edit_made_while_no_webhook_records_history_is_not_overwritten() {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    let program = pushed_program(&h, &ctx, &worker).await;
    let api = ctx.client().base(&BASE);
    for hook in api.list_webhooks().await.expect("webhooks") {
        api.delete_webhook(&hook.id).await.expect("delete webhook");
    }
    let read = read_payloads_once(&ctx).await.expect("read");
    assert!(read.webhook_broken, "the reader did not see the webhook go");

    let pause = || tokio::time::sleep(Duration::from_millis(20));
    h.update_as_user("Programs", &program.record, json!({"Notes": "Team"}));
    pause().await;
    update_program(&h, program.row, "name = 'App', notes = 'App'").await;
    pause().await;
    h.update_as_user("Programs", &program.record, json!({"Name": "Team"}));
    worker.run_once().await.expect("worker step");
    let cells = &h.record_of("Programs", program.row)["fields"];
    assert_eq!(
        cells["Name"],
        json!("Team"),
        "the push overwrote the team's later name"
    );

    // The new webhook's catch-up poll merges the team's edits.
    ensure_webhook(&ctx).await.expect("webhook");
    settle(&h, &ctx, &worker).await;
    assert_eq!(
        program_row(&h, program.row).await,
        ("Team".to_owned(), "App".to_owned()),
        "in PostgreSQL"
    );
    let cells = &h.record_of("Programs", program.row)["fields"];
    assert_eq!(
        (&cells["Name"], &cells["Notes"]),
        (&json!("Team"), &json!("App"))
    );
    assert_eq!(h.dead_letters().await, 0);
}

/// Cause 8: Airtable refusing the token (401) was taken as a refusal of
/// each record, and moved every event to the dead-letter queue.
#[tokio::test]
async fn a_refused_token_holds_the_events_instead_of_dead_lettering_them() {
    let h = Harness::start().await;
    let config = airsync_airtable::ClientConfig::new("patREVOKEDREVOKED.0123456789")
        .with_api_url(&h.emulator.url())
        .expect("emulator URL");
    let revoked = airsync_airtable::AirtableClient::new(config).expect("client");
    let refused = Worker::new(
        h.pool().clone(),
        h.mapping.clone(),
        AirtableWriter::new(revoked, BASE),
        h.settings(),
    );
    let row = h.insert_user("waiting@example.com").await;
    refused.run_once().await.expect("worker step");
    assert_eq!(
        h.dead_letters().await,
        0,
        "a record was blamed for the token"
    );
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM sync_outbox WHERE row_id = $1")
            .bind(row)
            .fetch_one(h.pool())
            .await
            .expect("the event waits");
    assert_eq!((state.as_str(), attempts), ("pending", 0));

    // Once the token is fixed, the change goes out.
    sqlx::query("UPDATE sync_outbox SET next_attempt_at = now()")
        .execute(h.pool())
        .await
        .expect("due now");
    h.drain(&h.worker()).await;
    assert_eq!(
        h.record_of("Users", row)["fields"]["Email"],
        json!("waiting@example.com")
    );
}

/// A create whose answer was lost (here the writer loses it; in life a
/// worker killed, a timeout) is tried again. The team deleted the first
/// try's record in between: the retry's upsert on pg_id found nothing and
/// made a second record, the first one's delete named a record the id map
/// never held, and the team's delete was lost. `read_before_retry` reads
/// the base's history before the retry, so that the first record's creation
/// and delete are read while the row has no record.
async fn first_try_deleted_by_the_team(read_before_retry: bool) {
    let h = Harness::start().await;
    let (ctx, _receiver) = Receiver::start(&h, inbound_settings()).await;
    let worker = h.worker_sharing(&ctx);
    ensure_webhook(&ctx).await.expect("webhook");
    let lossy = Meddling::lossy_worker(&h, &ctx, h.settings());

    let row = h.insert_user("retried@example.com").await;
    lossy.run_once().await.expect("worker step");
    let first = h.records("Users");
    assert_eq!(first.len(), 1, "the first try reached Airtable");
    let first = first[0]["id"].as_str().expect("record id").to_owned();
    h.delete_as_user("Users", &first);
    if read_before_retry {
        read_payloads_once(&ctx).await.expect("read");
    }
    // The event waits for its retry time; the worker that tries it again
    // gets its answer.
    sqlx::query("UPDATE sync_outbox SET next_attempt_at = now()")
        .execute(h.pool())
        .await
        .expect("retry now");
    settle(&h, &ctx, &worker).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users_pg WHERE id = $1")
        .bind(row)
        .fetch_one(h.pool())
        .await
        .expect("count");
    assert_eq!(rows, 0, "the team's delete was lost");
    assert!(
        h.records("Users").is_empty(),
        "the retry's record was kept: {:#?}",
        h.records("Users")
    );
    assert_eq!(h.dead_letters().await, 0);
}

#[tokio::test]
async fn the_team_deleting_the_first_try_of_a_create_tried_again_deletes_the_row() {
    first_try_deleted_by_the_team(false).await;
}

#[tokio::test]
async fn the_team_deleting_the_first_try_of_a_create_read_before_the_retry_deletes_the_row() {
    first_try_deleted_by_the_team(true).await;
}

#[tokio::test]
async fn with_the_users_fast_lane_off_a_team_edit_of_a_user_is_not_overwritten() {
    let h = Harness::start().await;
    let off = airsync_sync::inbound::InboundSettings {
        user_fast_lane: false,
        ..inbound_settings()
    };
    let (ctx, _receiver) = Receiver::start(&h, off).await;
    // No hold after a push: the update goes at the next step.
    let mut settings = h.settings();
    settings.tuning.hold_after_push = Duration::ZERO;
    let worker = Worker::new(
        h.pool().clone(),
        h.mapping.clone(),
        AirtableWriter::new(ctx.client().clone(), BASE),
        settings,
    );
    ensure_webhook(&ctx).await.expect("webhook");
    poll_once(&ctx).await.expect("poll");
    let user = h.insert_user("anna@example.com").await;
    settle(&h, &ctx, &worker).await;
    let record = h.record_id("user", user).await;

    // The app renames the user, then the team does, later: the payload of
    // the team's edit is left to the poll, so no payload will merge it.
    sqlx::query("UPDATE users_pg SET name = 'App' WHERE id = $1")
        .bind(user)
        .execute(h.pool())
        .await
        .expect("update user");
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.update_as_user("Users", &record, json!({"Name": "Team"}));
    let step = worker.run_once().await.expect("worker step");
    assert_eq!(
        step.sent, 0,
        "the update waits for the team's edit: {step:?}"
    );
    assert_eq!(h.outbox_len().await, 1);
    assert_eq!(
        h.record_of("Users", user)["fields"]["Name"],
        json!("Team"),
        "the push overwrote the team's later name"
    );

    // The poll merges the team's edit; then both sides agree.
    poll_once(&ctx).await.expect("poll");
    settle(&h, &ctx, &worker).await;
    let name: String = sqlx::query_scalar("SELECT name FROM users_pg WHERE id = $1")
        .bind(user)
        .fetch_one(h.pool())
        .await
        .expect("user");
    assert_eq!(name, "Team");
    assert_eq!(h.record_of("Users", user)["fields"]["Name"], json!("Team"));
    assert_eq!(h.dead_letters().await, 0);
}
