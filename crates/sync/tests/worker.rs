//! The outbound worker against a real PostgreSQL and the emulator with
//! Airtable's real limits.

mod support;

use std::time::{Duration, Instant};

use airsync_emulator::{FaultBurst, FaultKind};
use serde_json::{json, Value};
use support::{Harness, BASE};
use uuid::Uuid;

#[tokio::test]
async fn plain_sql_writes_of_every_synced_table_reach_airtable_with_fields_and_links() {
    let h = Harness::start().await;
    let r = h.seed_reference().await;
    let user = Uuid::new_v4();
    let program = Uuid::new_v4();
    let day = Uuid::new_v4();
    let goal = Uuid::new_v4();
    sqlx::raw_sql(&format!(
        "INSERT INTO users_pg (id, email, name, company_id, role, bonus_points, badges, level)
              VALUES ('{user}', 'anna@example.com', 'Anna', '{company}', 'admin', 25, '{{streak-3}}', 2);
         INSERT INTO programs_pg (id, user_id, name, start_date, end_date, notes)
              VALUES ('{program}', '{user}', 'Spring', '2026-03-02', '2026-03-29', 'Go');
         INSERT INTO program_goals_pg VALUES ('{program}', '{goal_ref}', 0);
         INSERT INTO program_methods_pg VALUES ('{program}', '{method}', 0);
         INSERT INTO program_days_pg VALUES ('{program}', '{monday}');
         INSERT INTO program_schedule_pg (id, program_id, date) VALUES ('{day}', '{program}', '2026-03-02');
         INSERT INTO program_schedule_methods_pg VALUES ('{day}', '{method}', 0);
         INSERT INTO method_usage_pg (user_id, method_id, program_id, schedule_day_id, used_on, remark)
              VALUES ('{user}', '{method}', '{program}', '{day}', '2026-03-02', 'felt good');
         INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ('{user}', '{habit}', '2026-03-02');
         INSERT INTO personal_goals_pg (id, user_id, name) VALUES ('{goal}', '{user}', 'Sleep early');
         INSERT INTO personal_goal_usage_pg (user_id, personal_goal_id, used_on) VALUES ('{user}', '{goal}', '2026-03-02');
         INSERT INTO overtuiging_usage_pg (user_id, overtuiging_id, program_id, used_on)
              VALUES ('{user}', '{overtuiging}', '{program}', '2026-03-02');",
        company = r.company,
        goal_ref = r.goal,
        method = r.method,
        monday = r.monday,
        habit = r.habit,
        overtuiging = r.overtuiging,
    ))
    .execute(h.pool())
    .await
    .expect("write rows");

    let worker = h.worker();
    h.drain(&worker).await;
    assert_eq!(h.dead_letters().await, 0);

    let user_rec = h.record_id("user", user).await;
    let program_rec = h.record_id("program", program).await;
    let day_rec = h.record_id("program_schedule", day).await;
    let method_rec = h.record_id("method", r.method).await;
    let users = h.record_of("Users", user);
    assert_eq!(users["id"], json!(user_rec));
    assert_eq!(users["fields"]["Email"], json!("anna@example.com"));
    assert_eq!(
        users["fields"]["Company"],
        json!([h.record_id("company", r.company).await])
    );
    assert_eq!(users["fields"]["Role"], json!("admin"));
    assert_eq!(users["fields"]["Badges"], json!(["streak-3"]));
    assert_eq!(users["fields"]["Bonus points"], json!(25));
    let programs = h.record_of("Programs", program);
    assert_eq!(programs["fields"]["User"], json!([user_rec]));
    assert_eq!(
        programs["fields"]["Goals"],
        json!([h.record_id("goal", r.goal).await])
    );
    assert_eq!(programs["fields"]["Methods"], json!([method_rec]));
    assert_eq!(
        programs["fields"]["Days"],
        json!([h.record_id("day", r.monday).await])
    );
    assert_eq!(programs["fields"]["Start date"], json!("2026-03-02"));
    assert_eq!(
        h.record_of("Program schedule", day)["fields"]["Methods"],
        json!([method_rec])
    );
    let usage = &h.records("Method usage")[0]["fields"];
    assert_eq!(usage["Program"], json!([program_rec]));
    assert_eq!(usage["Schedule day"], json!([day_rec]));
    assert_eq!(usage["Remark"], json!("felt good"));
    for table in [
        "Habit usage",
        "Personal goals",
        "Personal goal usage",
        "Overtuiging usage",
    ] {
        assert_eq!(h.records(table).len(), 1, "{table}");
    }

    // Updates and deletes follow.
    sqlx::raw_sql(&format!(
        "UPDATE programs_pg SET name = 'Summer', notes = '' WHERE id = '{program}';
         DELETE FROM habit_usage_pg;"
    ))
    .execute(h.pool())
    .await
    .expect("update and delete");
    h.drain(&worker).await;
    let programs = h.record_of("Programs", program);
    assert_eq!(programs["fields"]["Name"], json!("Summer"));
    assert!(
        programs["fields"].get("Notes").is_none(),
        "a cleared column clears the cell"
    );
    assert!(h.records("Habit usage").is_empty());
    assert_eq!(h.rate_limited(), 0);
}

#[tokio::test]
async fn a_row_linking_to_a_row_not_yet_in_airtable_arrives_with_its_link() {
    let h = Harness::start().await;
    let user = Uuid::new_v4();
    let program = Uuid::new_v4();
    sqlx::raw_sql(&format!(
        "INSERT INTO programs_pg (id, user_id, name, start_date, end_date)
              VALUES ('{program}', '{user}', 'P', '2026-01-01', '2026-01-31');
         INSERT INTO users_pg (id, email) VALUES ('{user}', 'late@example.com');"
    ))
    .execute(h.pool())
    .await
    .expect_err("the foreign key refuses a program before its user");
    sqlx::raw_sql(&format!(
        "BEGIN;
         INSERT INTO users_pg (id, email) VALUES ('{user}', 'late@example.com');
         INSERT INTO programs_pg (id, user_id, name, start_date, end_date)
              VALUES ('{program}', '{user}', 'P', '2026-01-01', '2026-01-31');
         COMMIT;"
    ))
    .execute(h.pool())
    .await
    .expect("write");
    let worker = h.worker();
    let report = worker.run_once().await.expect("one batch");
    assert_eq!(report.sent, 2, "{report:?}");
    let user_rec = h.record_id("user", user).await;
    assert_eq!(
        h.record_of("Programs", program)["fields"]["User"],
        json!([user_rec])
    );
}

#[tokio::test]
async fn a_hundred_updates_to_one_row_within_a_second_cost_at_most_two_requests() {
    let h = Harness::start().await;
    let user = h.insert_user("burst@example.com").await;
    h.drain(&h.worker()).await;
    let before = h.requests();
    // The burst's worker holds a pushed row for ten seconds: the burst stays
    // within one hold however slowly a busy machine runs the hundred updates.
    let mut settings = h.settings();
    settings.tuning.hold_after_push = Duration::from_secs(10);
    let worker = h.worker_with(settings);

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { worker.run(shutdown, Duration::from_secs(5)).await });
    for i in 0..100 {
        sqlx::query("UPDATE users_pg SET name = $1 WHERE id = $2")
            .bind(format!("Name {i}"))
            .bind(user)
            .execute(h.pool())
            .await
            .expect("update");
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while h.record_of("Users", user)["fields"]["Name"] != json!("Name 99") {
        assert!(Instant::now() < deadline, "the last name never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    running.await.expect("join").expect("worker");
    let requests = h.requests() - before;
    assert!(requests <= 2, "100 updates cost {requests} requests");
}

#[tokio::test]
async fn a_503_burst_delays_but_loses_nothing() {
    let h = Harness::start().await;
    for i in 0..25 {
        h.insert_user(&format!("u{i}@example.com")).await;
    }
    h.emulator.inject_faults(FaultBurst {
        count: 8,
        kind: FaultKind::Unavailable,
        base: Some(BASE.to_string()),
    });
    let worker = h.worker();
    h.drain(&worker).await;
    assert_eq!(h.records("Users").len(), 25);
    assert_eq!(h.dead_letters().await, 0);
    assert!(
        h.emulator.stats().count(BASE.as_str(), 503) >= 1,
        "the burst was not hit"
    );
}

#[tokio::test]
async fn a_422_on_one_record_dead_letters_only_that_record_and_it_replays_once_fixed() {
    let h = Harness::start().await;
    let r = h.seed_reference().await;
    let user = h.insert_user("anna@example.com").await;
    // A habit whose Airtable record the team deleted: links to it are refused.
    let gone = Uuid::new_v4();
    sqlx::raw_sql(&format!(
        "SET airsync.origin = 'inbound';
         INSERT INTO reference_methods_pg (id, name, is_habit) VALUES ('{gone}', 'Gone', true);
         INSERT INTO airtable_id_map (entity, row_id, airtable_id) VALUES ('method', '{gone}', 'recDELETEDRECORD1');
         RESET airsync.origin;"
    ))
    .execute(h.pool())
    .await
    .expect("stale method");
    for day in 1..=9 {
        sqlx::query(
            "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, $3::date)",
        )
        .bind(user)
        .bind(r.habit)
        .bind(format!("2026-01-{day:02}"))
        .execute(h.pool())
        .await
        .expect("usage");
    }
    let bad: Uuid = sqlx::query_scalar(
        "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, '2026-01-10') RETURNING id",
    )
    .bind(user)
    .bind(gone)
    .fetch_one(h.pool())
    .await
    .expect("bad usage");

    let worker = h.worker();
    h.drain(&worker).await;
    assert_eq!(h.records("Habit usage").len(), 9);
    let letters = airsync_sync::dead_letters::list(h.pool(), None, 10)
        .await
        .expect("list");
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0].row_id, bad);
    assert_eq!(letters[0].http_status, Some(422));
    assert!(letters[0].airtable_error_type.is_some());

    // The cause is fixed (the method is mapped to a live record): replay.
    let live = h.record_id("method", r.habit).await;
    sqlx::query("UPDATE airtable_id_map SET airtable_id = $1 WHERE row_id = $2")
        .bind(&live)
        .bind(gone)
        .execute(h.pool())
        .await
        .ok();
    sqlx::query("DELETE FROM airtable_id_map WHERE row_id = $1")
        .bind(gone)
        .execute(h.pool())
        .await
        .expect("fix");
    sqlx::query("UPDATE habit_usage_pg SET method_id = $1 WHERE id = $2")
        .bind(r.habit)
        .bind(bad)
        .execute(h.pool())
        .await
        .expect("fix row");
    airsync_sync::dead_letters::replay(h.pool(), Some(letters[0].id))
        .await
        .expect("replay");
    h.drain(&worker).await;
    assert_eq!(h.records("Habit usage").len(), 10);
    assert_eq!(h.dead_letters().await, 0);
}

#[tokio::test]
async fn three_workers_on_one_base_send_every_event_once_without_a_429() {
    let h = Harness::start().await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for _ in 0..3 {
        let worker = h.worker();
        let shutdown = shutdown.clone();
        running.push(tokio::spawn(async move {
            worker.run(shutdown, Duration::from_secs(5)).await
        }));
    }
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(h.insert_user(&format!("w{i}@example.com")).await);
    }
    for (i, user) in users.iter().enumerate().take(20) {
        sqlx::query("INSERT INTO personal_goals_pg (user_id, name) VALUES ($1, $2)")
            .bind(user)
            .bind(format!("Goal {i}"))
            .execute(h.pool())
            .await
            .expect("goal");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.outbox_len().await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    for handle in running {
        handle.await.expect("join").expect("worker");
    }
    assert_eq!(h.records("Users").len(), 40);
    assert_eq!(h.records("Personal goals").len(), 20);
    assert_eq!(h.rate_limited(), 0);
    assert_eq!(h.dead_letters().await, 0);
}

/// Writes through to Airtable, then never returns: a worker that dies after
/// Airtable answered and before it could commit.
struct DiesAfterWriting {
    inner: airsync_sync::airtable_writer::AirtableWriter,
    written: std::sync::Arc<tokio::sync::Notify>,
}

impl airsync_sync::worker::RecordWriter for DiesAfterWriting {
    async fn upsert(
        &self,
        table: &str,
        merge_field: &str,
        records: Vec<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Vec<airsync_sync::worker::Upserted>, airsync_sync::worker::SendError> {
        let _ = self.inner.upsert(table, merge_field, records).await;
        self.written.notify_one();
        std::future::pending().await
    }

    async fn update(
        &self,
        table: &str,
        records: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    ) -> Result<Vec<String>, airsync_sync::worker::SendError> {
        let _ = self.inner.update(table, records).await;
        self.written.notify_one();
        std::future::pending().await
    }

    async fn delete(
        &self,
        table: &str,
        ids: Vec<String>,
    ) -> Result<Vec<String>, airsync_sync::worker::SendError> {
        let _ = self.inner.delete(table, ids).await;
        self.written.notify_one();
        std::future::pending().await
    }

    async fn read(
        &self,
        table: &str,
        record_ids: Vec<String>,
        fields: Vec<String>,
    ) -> Result<Vec<airsync_sync::worker::ReadRecord>, airsync_sync::worker::SendError> {
        self.inner.read(table, record_ids, fields).await
    }

    async fn find(
        &self,
        table: &str,
        field: &str,
        values: Vec<String>,
    ) -> Result<Vec<(String, String)>, airsync_sync::worker::SendError> {
        self.inner.find(table, field, values).await
    }
}

/// A worker that created `user`'s record and died before its commit.
async fn create_and_die(h: &Harness, user: uuid::Uuid) {
    let written = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut settings = h.settings();
    settings.tuning.lease = Duration::from_secs(1);
    let doomed = airsync_sync::worker::Worker::new(
        h.pool().clone(),
        h.mapping.clone(),
        DiesAfterWriting {
            inner: airsync_sync::airtable_writer::AirtableWriter::new(
                support::client_for(&h.emulator),
                BASE,
            ),
            written: written.clone(),
        },
        settings,
    );
    let step = tokio::spawn(async move { doomed.run_once().await });
    written.notified().await;
    step.abort();
    assert_eq!(h.records("Users").len(), 1, "Airtable has the record");
    assert!(
        airsync_sync::id_map::airtable_ids(h.pool(), "user", &[user])
            .await
            .expect("id map")
            .is_empty()
    );
}

#[tokio::test]
async fn a_worker_that_dies_between_airtables_answer_and_its_commit_leaves_no_duplicate_and_loses_nothing(
) {
    let h = Harness::start().await;
    let user = h.insert_user("crash@example.com").await;
    create_and_die(&h, user).await;

    // The row changes while the dead worker's lease runs out.
    sqlx::query("UPDATE users_pg SET name = 'After the crash' WHERE id = $1")
        .bind(user)
        .execute(h.pool())
        .await
        .expect("update");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let survivor = h.worker();
    h.drain(&survivor).await;
    let records = h.records("Users");
    assert_eq!(records.len(), 1, "a duplicate was created: {records:#?}");
    assert_eq!(records[0]["fields"]["Name"], json!("After the crash"));
    assert_eq!(
        h.record_id("user", user).await,
        records[0]["id"].as_str().unwrap_or_default()
    );
    assert_eq!(h.dead_letters().await, 0);
}

#[tokio::test]
async fn a_lane_check_that_fails_for_a_while_is_tried_again_and_the_worker_goes_on() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    let h = Harness::start().await;
    let mut settings = h.settings();
    settings.tuning.lane_takeover_pause = Duration::from_millis(50);
    let checks = Arc::new(AtomicU32::new(0));
    let counted = checks.clone();
    // Airtable answers 502 to the first two checks, as during an outage.
    let check: airsync_sync::worker::LaneCheck = Box::new(move || {
        let attempt = counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if attempt < 2 {
                return Err(airsync_sync::Error::Airtable(
                    airsync_airtable::Error::Api {
                        method: "GET".into(),
                        path: "/v0/meta/bases/app/tables".into(),
                        status: 502,
                        error_type: None,
                        message: None,
                        retry_after: None,
                    },
                ));
            }
            Ok(())
        })
    });
    let worker = h.worker_with(settings).with_lane_check(check);
    let user = h.insert_user("outage@example.com").await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { worker.run(shutdown, Duration::from_secs(5)).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent = |h: &Harness| {
        h.records("Users")
            .iter()
            .any(|r| r["fields"]["pg_id"] == json!(user.to_string()))
    };
    while !sent(&h) {
        assert!(
            Instant::now() < deadline,
            "the worker gave up after a failed check"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    running.await.expect("join").expect("worker");
    assert_eq!(checks.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_lane_check_that_finds_the_base_unfit_stops_the_worker() {
    let h = Harness::start().await;
    let check: airsync_sync::worker::LaneCheck =
        Box::new(|| Box::pin(async { Err(airsync_sync::Error::NotFound("table Users".into())) }));
    let worker = h.worker().with_lane_check(check);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        worker.run(shutdown, Duration::from_secs(5)),
    )
    .await
    .expect("the worker stops by itself");
    assert!(result.is_err());
}

#[tokio::test]
async fn a_row_deleted_while_its_create_is_in_flight_loses_its_record_too() {
    let h = Harness::start().await;
    let slow = h.worker();
    let other = h.worker();
    let user = h.insert_user("fleeting@example.com").await;
    h.emulator.set_latency_ms(Some(1_500..=1_500));
    let sending = tokio::spawn(async move { slow.run_once().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // While the create is on its way, its lease runs out (a stalled worker)
    // and the app deletes the row.
    sqlx::raw_sql(&format!(
        "UPDATE sync_outbox SET lease_expires_at = now() - interval '1 second';
         DELETE FROM users_pg WHERE id = '{user}';"
    ))
    .execute(h.pool())
    .await
    .expect("expire and delete");
    h.emulator.set_latency_ms(None);
    // Another worker takes both events over: the row is gone and no record
    // is known yet, so there is nothing to delete.
    other.run_once().await.expect("the other worker");
    // The create lands.
    sending.await.expect("join").expect("the slow worker");
    h.drain(&other).await;
    let left: Vec<Value> = h
        .records("Users")
        .into_iter()
        .filter(|r| r["fields"]["pg_id"] == json!(user.to_string()))
        .collect();
    assert!(left.is_empty(), "the deleted row's record stayed: {left:?}");
}

#[tokio::test]
async fn a_row_deleted_after_its_worker_died_between_airtables_answer_and_its_commit_loses_its_record(
) {
    let h = Harness::start().await;
    let user = h.insert_user("gone@example.com").await;
    create_and_die(&h, user).await;
    let keep = h.insert_user("kept@example.com").await;

    // The row is deleted while the dead worker's lease runs out: no record id
    // is known, yet Airtable has the record.
    sqlx::query("DELETE FROM users_pg WHERE id = $1")
        .bind(user)
        .execute(h.pool())
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let survivor = h.worker();
    h.drain(&survivor).await;
    let records = h.records("Users");
    assert_eq!(
        records.len(),
        1,
        "the deleted row's record stayed: {records:#?}"
    );
    assert_eq!(records[0]["fields"]["pg_id"], json!(keep.to_string()));
    assert_eq!(h.dead_letters().await, 0);
}

/// A worker waiting for the base's lane while the database is out of reach
/// (a restart) keeps waiting: it does not end the process.
#[tokio::test]
async fn a_worker_waits_out_a_database_it_cannot_reach() {
    let h = Harness::start().await;
    let unreachable = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://airsync@127.0.0.1:1/airsync")
        .expect("a lazy pool");
    let worker = airsync_sync::worker::Worker::new(
        unreachable,
        h.mapping.clone(),
        airsync_sync::airtable_writer::AirtableWriter::new(support::client_for(&h.emulator), BASE),
        h.settings(),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(async move { worker.run(shutdown, Duration::from_secs(1)).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !run.is_finished(),
        "the worker ended: {:?}",
        run.await.expect("join")
    );
    stop.send(true).expect("stop");
    // Its shutdown cannot hand anything back to an unreachable database;
    // it ends all the same.
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the worker stops when asked")
        .expect("join")
        .ok();
}

#[tokio::test]
async fn a_push_answered_records_when_its_answer_came_beside_what_it_sent() {
    let h = Harness::start().await;
    let user = h.insert_user("landed@example.com").await;
    let worker = h.worker();
    worker.run_once().await.expect("the create");
    sqlx::query("UPDATE users_pg SET name = 'Landed' WHERE id = $1")
        .bind(user)
        .execute(h.pool())
        .await
        .expect("update");
    worker.run_once().await.expect("the update");
    let sent: Value = sqlx::query_scalar(
        "SELECT sent FROM sync_row_version WHERE entity = 'user' AND row_id = $1",
    )
    .bind(user)
    .fetch_one(h.pool())
    .await
    .expect("sent values");
    let entries: Vec<&Value> = sent
        .as_object()
        .expect("by field")
        .values()
        .flat_map(|list| list.as_array().expect("a list"))
        .collect();
    assert!(entries.len() >= 2, "the create's and the update's: {sent}");
    let time = |entry: &Value, key: &str| {
        serde_json::from_value::<chrono::DateTime<chrono::Utc>>(entry[key].clone())
            .unwrap_or_else(|_| panic!("{key} of {entry}"))
    };
    for entry in entries {
        assert!(
            time(entry, "landed") >= time(entry, "sent"),
            "answered after it left: {entry}"
        );
    }
}
