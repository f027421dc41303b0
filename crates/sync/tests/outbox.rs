//! Capture triggers and the outbox queue, against a real PostgreSQL.

use std::time::Duration;

use airsync_sync::dead_letters::{self, Purge};
use airsync_sync::id_map;
use airsync_sync::outbox::{self, DeadLetterReason, FailureDetail, Operation, Requeue};
use airsync_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

async fn pending(pool: &PgPool) -> Vec<(String, Uuid, String)> {
    sqlx::query_as(
        "SELECT entity, row_id, operation FROM sync_outbox WHERE state = 'pending' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .expect("read outbox")
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.expect(sql);
}

async fn insert_user(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO users_pg (email, name) VALUES ($1, 'U') RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("insert user")
}

async fn clear_outbox(pool: &PgPool) {
    exec(pool, "DELETE FROM sync_outbox").await;
}

/// Inserts one row in every table that syncs outbound, as psql would.
async fn fill_every_synced_table(pool: &PgPool) {
    exec(
        pool,
        "INSERT INTO reference_methods_pg (id, name, is_habit) VALUES ('00000000-0000-0000-0000-00000000000a', 'Walk', true);
         INSERT INTO reference_overtuigingen_pg (id, name) VALUES ('00000000-0000-0000-0000-00000000000b', 'I can');
         INSERT INTO reference_goals_pg (id, name) VALUES ('00000000-0000-0000-0000-00000000000c', 'Calm');
         INSERT INTO reference_days_pg (id, name, weekday) VALUES ('00000000-0000-0000-0000-00000000000d', 'Monday', 1);
         INSERT INTO users_pg (id, email) VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.com');
         INSERT INTO programs_pg (id, user_id, name, start_date, end_date)
              VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001', 'P', '2026-01-01', '2026-01-31');
         INSERT INTO program_goals_pg VALUES ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000000c', 0);
         INSERT INTO program_schedule_pg (id, program_id, date)
              VALUES ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000002', '2026-01-05');
         INSERT INTO method_usage_pg (id, user_id, method_id, used_on)
              VALUES ('00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', '2026-01-05');
         INSERT INTO habit_usage_pg (id, user_id, method_id, used_on)
              VALUES ('00000000-0000-0000-0000-000000000005', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', '2026-01-05');
         INSERT INTO personal_goals_pg (id, user_id, name)
              VALUES ('00000000-0000-0000-0000-000000000006', '00000000-0000-0000-0000-000000000001', 'Sleep');
         INSERT INTO personal_goal_usage_pg (id, user_id, personal_goal_id, used_on)
              VALUES ('00000000-0000-0000-0000-000000000007', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000006', '2026-01-05');
         INSERT INTO overtuiging_usage_pg (id, user_id, overtuiging_id, used_on)
              VALUES ('00000000-0000-0000-0000-000000000008', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000b', '2026-01-05');",
    )
    .await;
}

#[tokio::test]
async fn a_plain_sql_insert_in_every_synced_table_enqueues_its_entity() {
    let db = TestDb::new().await;
    fill_every_synced_table(db.pool()).await;
    let entities: Vec<String> = pending(db.pool())
        .await
        .into_iter()
        .map(|(e, _, _)| e)
        .collect();
    assert_eq!(
        entities,
        [
            "user",
            "program",
            "program_schedule",
            "method_usage",
            "habit_usage",
            "personal_goal",
            "personal_goal_usage",
            "overtuiging_usage"
        ],
        "reference tables are owned by Airtable and must not enqueue"
    );
}

#[tokio::test]
async fn updates_and_deletes_enqueue_and_merge_into_the_pending_event() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    for name in ["B", "C", "D"] {
        sqlx::query("UPDATE users_pg SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(user)
            .execute(db.pool())
            .await
            .expect("update");
    }
    assert_eq!(
        pending(db.pool()).await,
        [("user".to_owned(), user, "upsert".to_owned())]
    );

    exec(
        db.pool(),
        &format!("DELETE FROM users_pg WHERE id = '{user}'"),
    )
    .await;
    assert_eq!(
        pending(db.pool()).await,
        [("user".to_owned(), user, "delete".to_owned())]
    );
}

#[tokio::test]
async fn changes_to_unsynced_columns_and_no_op_updates_enqueue_nothing() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    clear_outbox(db.pool()).await;
    exec(
        db.pool(),
        &format!(
            "UPDATE users_pg SET password_hash = 'x', last_login_at = now() WHERE id = '{user}';
             UPDATE users_pg SET name = name WHERE id = '{user}';"
        ),
    )
    .await;
    assert!(pending(db.pool()).await.is_empty());
}

#[tokio::test]
async fn writes_marked_as_inbound_are_not_echoed_back() {
    let db = TestDb::new().await;
    let mut tx = db.pool().begin().await.expect("begin");
    sqlx::query("SET LOCAL airsync.origin = 'inbound'")
        .execute(&mut *tx)
        .await
        .expect("mark");
    sqlx::query("INSERT INTO users_pg (email) VALUES ('team@example.com')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    assert!(pending(db.pool()).await.is_empty());

    // The mark ends with its transaction.
    insert_user(db.pool(), "app@example.com").await;
    assert_eq!(pending(db.pool()).await.len(), 1);
}

#[tokio::test]
async fn a_changed_link_enqueues_the_row_that_holds_the_link_field() {
    let db = TestDb::new().await;
    fill_every_synced_table(db.pool()).await;
    clear_outbox(db.pool()).await;
    exec(
        db.pool(),
        "DELETE FROM program_goals_pg;
         INSERT INTO program_schedule_methods_pg VALUES ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-00000000000a', 0);",
    )
    .await;
    let found: Vec<(String, String)> = pending(db.pool())
        .await
        .into_iter()
        .map(|(e, id, _)| (e, id.to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "program".to_owned(),
                "00000000-0000-0000-0000-000000000002".to_owned()
            ),
            (
                "program_schedule".to_owned(),
                "00000000-0000-0000-0000-000000000003".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn concurrent_claims_take_disjoint_events() {
    let db = TestDb::new().await;
    for i in 0..40 {
        insert_user(db.pool(), &format!("u{i}@example.com")).await;
    }
    let (a, b) = tokio::join!(
        outbox::claim_batch(db.pool(), "worker-a", 25, LEASE),
        outbox::claim_batch(db.pool(), "worker-b", 25, LEASE)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    assert_eq!(a.len() + b.len(), 40);
    for event in &a {
        assert!(
            b.iter().all(|other| other.id != event.id),
            "event {} claimed twice",
            event.id
        );
    }
}

#[tokio::test]
async fn a_record_in_flight_is_not_claimed_again_until_it_is_done() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    let first = outbox::claim_batch(db.pool(), "worker-a", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    exec(
        db.pool(),
        &format!("UPDATE users_pg SET name = 'Z' WHERE id = '{user}'"),
    )
    .await;

    let second = outbox::claim_batch(db.pool(), "worker-b", 10, LEASE)
        .await
        .expect("claim");
    assert!(
        second.is_empty(),
        "a second send of the record would race the first"
    );

    let mut tx = db.pool().begin().await.expect("begin");
    let done = outbox::complete(&mut tx, "worker-a", &[first[0].id])
        .await
        .expect("complete");
    tx.commit().await.expect("commit");
    assert_eq!(done, [first[0].id]);
    let third = outbox::claim_batch(db.pool(), "worker-b", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].row_id, user);
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_complete_retry_or_dead_letter() {
    let db = TestDb::new().await;
    insert_user(db.pool(), "a@example.com").await;
    let claimed = outbox::claim_batch(db.pool(), "slow-worker", 10, Duration::from_millis(10))
        .await
        .expect("claim");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        outbox::rescue_expired_leases(db.pool())
            .await
            .expect("rescue"),
        1
    );
    let retaken = outbox::claim_batch(db.pool(), "new-worker", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_eq!(
        retaken[0].attempts, 1,
        "an expired lease counts as an attempt"
    );
    let id = claimed[0].id;

    let mut tx = db.pool().begin().await.expect("begin");
    assert!(outbox::complete(&mut tx, "slow-worker", &[id])
        .await
        .expect("complete")
        .is_empty());
    tx.commit().await.expect("commit");
    let retry = Requeue {
        count_attempt: true,
        delay: Duration::ZERO,
        error: Some("x".into()),
    };
    assert!(!outbox::requeue(db.pool(), "slow-worker", id, &retry)
        .await
        .expect("requeue"));
    let dead = outbox::dead_letter(
        db.pool(),
        "slow-worker",
        id,
        DeadLetterReason::Rejected,
        &FailureDetail::default(),
    )
    .await
    .expect("dead letter");
    assert_eq!(dead, None);
    assert!(outbox::renew_leases(db.pool(), "slow-worker", &[id], LEASE)
        .await
        .expect("renew")
        .is_empty());

    assert_eq!(
        outbox::renew_leases(db.pool(), "new-worker", &[id], LEASE)
            .await
            .expect("renew"),
        [id]
    );
    let mut tx = db.pool().begin().await.expect("begin");
    assert_eq!(
        outbox::complete(&mut tx, "new-worker", &[id])
            .await
            .expect("complete"),
        [id]
    );
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_retry_merges_into_a_newer_pending_event_of_the_record() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    let claimed = outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim");
    exec(
        db.pool(),
        &format!("UPDATE users_pg SET name = 'Z' WHERE id = '{user}'"),
    )
    .await;

    let retry = Requeue {
        count_attempt: true,
        delay: Duration::from_secs(60),
        error: Some("503".into()),
    };
    assert!(outbox::requeue(db.pool(), "w", claimed[0].id, &retry)
        .await
        .expect("requeue"));
    let rows: Vec<(i32, bool, Option<String>)> = sqlx::query_as(
        "SELECT attempts, next_attempt_at > now() + interval '50 seconds', last_error FROM sync_outbox",
    )
    .fetch_all(db.pool())
    .await
    .expect("read");
    assert_eq!(rows, [(1, true, Some("503".to_owned()))]);
}

#[tokio::test]
async fn a_dead_letter_keeps_airtables_error_and_replays_into_the_outbox() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    let claimed = outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim");
    let detail = FailureDetail {
        message: "422 INVALID_VALUE_FOR_COLUMN".into(),
        http_status: Some(422),
        airtable_error_type: Some("INVALID_VALUE_FOR_COLUMN".into()),
        airtable_error_message: Some("Field \"Level\" cannot accept the provided value".into()),
    };
    let dead = outbox::dead_letter(
        db.pool(),
        "w",
        claimed[0].id,
        DeadLetterReason::Rejected,
        &detail,
    )
    .await
    .expect("dead letter")
    .expect("held the lease");
    assert!(pending(db.pool()).await.is_empty());

    let letter = dead_letters::get(db.pool(), dead)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (
            letter.entity.as_str(),
            letter.row_id,
            letter.reason.as_str()
        ),
        ("user", user, "rejected")
    );
    assert_eq!(letter.http_status, Some(422));
    assert_eq!(
        letter.airtable_error_type.as_deref(),
        Some("INVALID_VALUE_FOR_COLUMN")
    );
    assert_eq!(
        dead_letters::list(db.pool(), Some("user"), 10)
            .await
            .expect("list")
            .len(),
        1
    );

    assert_eq!(
        dead_letters::replay(db.pool(), Some(dead))
            .await
            .expect("replay"),
        1
    );
    assert_eq!(
        pending(db.pool()).await,
        [("user".to_owned(), user, "upsert".to_owned())]
    );
    assert!(dead_letters::get(db.pool(), dead)
        .await
        .expect("get")
        .is_none());
}

#[tokio::test]
async fn dead_letters_can_be_purged_one_or_by_age() {
    let db = TestDb::new().await;
    for i in 0..3 {
        insert_user(db.pool(), &format!("u{i}@example.com")).await;
    }
    let claimed = outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim");
    let mut ids = Vec::new();
    for event in &claimed {
        let id = outbox::dead_letter(
            db.pool(),
            "w",
            event.id,
            DeadLetterReason::AttemptsExhausted,
            &FailureDetail::default(),
        )
        .await
        .expect("dead letter")
        .expect("held");
        ids.push(id);
    }
    assert_eq!(
        dead_letters::purge(db.pool(), Purge::One(ids[0]))
            .await
            .expect("purge"),
        1
    );
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        dead_letters::purge(db.pool(), Purge::FailedBefore(later))
            .await
            .expect("purge"),
        2
    );
}

#[tokio::test]
async fn a_record_pushed_moments_ago_waits_for_its_hold_before_the_next_push() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    clear_outbox(db.pool()).await;
    let mut conn = db.pool().acquire().await.expect("connection");
    id_map::record_push(
        &mut conn,
        "user",
        user,
        "recAAAAAAAAAAAAAA",
        None,
        Duration::from_secs(60),
    )
    .await
    .expect("record push");
    drop(conn);
    exec(
        db.pool(),
        &format!("UPDATE users_pg SET name = 'Z' WHERE id = '{user}'"),
    )
    .await;
    assert_eq!(pending(db.pool()).await.len(), 1);
    assert!(outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim")
        .is_empty());
}

#[tokio::test]
async fn release_hands_events_back_without_counting_an_attempt() {
    let db = TestDb::new().await;
    insert_user(db.pool(), "a@example.com").await;
    outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(
        outbox::release_all(db.pool(), "w").await.expect("release"),
        1
    );
    let again = outbox::claim_batch(db.pool(), "w2", 10, LEASE)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0);
    assert_eq!(again[0].operation, Operation::Upsert);
}

#[tokio::test]
async fn a_change_captured_during_a_push_waits_for_the_hold_too() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@example.com").await;
    let claimed = outbox::claim_batch(db.pool(), "w", 10, LEASE)
        .await
        .expect("claim");
    exec(
        db.pool(),
        &format!("UPDATE users_pg SET name = 'During' WHERE id = '{user}'"),
    )
    .await;
    let mut tx = db.pool().begin().await.expect("begin");
    id_map::record_push(
        &mut tx,
        "user",
        user,
        "recAAAAAAAAAAAAAA",
        None,
        Duration::from_secs(60),
    )
    .await
    .expect("record push");
    outbox::complete(&mut tx, "w", &[claimed[0].id])
        .await
        .expect("complete");
    tx.commit().await.expect("commit");
    assert_eq!(pending(db.pool()).await.len(), 1);
    assert!(
        outbox::claim_batch(db.pool(), "w", 10, LEASE)
            .await
            .expect("claim")
            .is_empty(),
        "the change made during the push must wait for the hold"
    );
}
