//! The `airsync` binary as a person runs it.

use std::process::{Command, Output};

use airsync_testkit::TestDb;

/// Runs the binary with only the given variables set.
fn airsync(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_airsync"));
    command
        .args(args)
        .env_clear()
        .env("AIRSYNC_LOG_FORMAT", "json");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run airsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn openapi_prints_the_document_the_server_serves_without_any_configuration() {
    let output = airsync(&["openapi"], &[]);
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed, airsync_api::openapi::document());
}

#[tokio::test]
async fn migrate_creates_every_table_and_a_second_run_changes_nothing() {
    let db = TestDb::empty().await;
    let first = airsync(&["migrate"], &[("DATABASE_URL", db.url())]);
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("applied 0001_foundation"),
        "{}",
        text(&first.stdout)
    );

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(db.pool())
    .await
    .expect("list tables");
    for expected in [
        "companies_pg",
        "users_pg",
        "reference_methods_pg",
        "reference_goals_pg",
        "reference_days_pg",
        "reference_overtuigingen_pg",
        "programs_pg",
        "program_schedule_pg",
        "method_usage_pg",
        "habit_usage_pg",
        "personal_goals_pg",
        "personal_goal_usage_pg",
        "overtuiging_usage_pg",
        "airtable_id_map",
        "sync_outbox",
        "sync_dead_letter",
        "sync_checkpoint",
        "sync_inbox_events",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} missing from {tables:?}"
        );
    }

    let second = airsync(&["migrate"], &[("DATABASE_URL", db.url())]);
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    assert!(
        text(&second.stdout).starts_with("database is up to date"),
        "{}",
        text(&second.stdout)
    );
}

#[test]
fn migrate_with_an_unreachable_database_exits_with_one_clear_line() {
    // Port 1 on loopback: nothing listens there.
    let output = airsync(
        &["migrate"],
        &[("DATABASE_URL", "postgres://app:pw@127.0.0.1:1/airsync")],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(
        stderr.starts_with(
            "error: could not connect to the database at postgres://app:***@127.0.0.1:1/airsync"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn migrate_without_a_database_url_says_which_variable_is_missing() {
    let output = airsync(&["migrate"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
}

#[test]
fn a_bad_variable_stops_the_start_and_is_named() {
    let output = airsync(
        &["migrate"],
        &[
            ("DATABASE_URL", "postgres://h/db"),
            ("WORKER_LEASE_SECS", "forever"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("WORKER_LEASE_SECS must be a whole number"),
        "{stderr}"
    );
}

#[test]
fn config_prints_the_configuration_with_secrets_hidden() {
    let output = airsync(
        &["config"],
        &[
            ("DATABASE_URL", "postgres://app:topsecret@db/airsync"),
            ("AIRTABLE_TOKEN", "patVERYSECRET.1"),
        ],
    );
    assert!(output.status.success(), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("postgres://app:***@db/airsync"), "{stdout}");
    assert!(
        !stdout.contains("topsecret") && !stdout.contains("patVERYSECRET"),
        "{stdout}"
    );
}

#[test]
fn every_subcommand_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["migrate", "--help"],
        vec!["config", "--help"],
    ] {
        let output = airsync(&args, &[]);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let stdout = text(&output.stdout);
        assert!(stdout.contains("Usage: airsync"), "{args:?}: {stdout}");
    }
    let top = text(&airsync(&["--help"], &[]).stdout);
    for subcommand in ["migrate", "config", "sync", "dead-letter"] {
        assert!(
            top.contains(subcommand),
            "{subcommand} missing from --help: {top}"
        );
    }
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let output = airsync(&["frobnicate"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

/// Plants a dead letter for a new user, as the worker would.
async fn plant_dead_letter(db: &TestDb) -> (i64, uuid::Uuid) {
    let user: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO users_pg (email) VALUES ('dl@example.com') RETURNING id")
            .fetch_one(db.pool())
            .await
            .expect("user");
    sqlx::query("DELETE FROM sync_outbox")
        .execute(db.pool())
        .await
        .expect("clear");
    let id = sqlx::query_scalar(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, http_status, airtable_error_type, airtable_error_message, first_enqueued_at)
         VALUES (1, 'user', $1, 'upsert', 'k', 1, 'rejected', 'PATCH answered 422', 422,
                 'INVALID_VALUE_FOR_COLUMN', 'Field \"Level\" cannot accept the provided value', now())
         RETURNING id",
    )
    .bind(user)
    .fetch_one(db.pool())
    .await
    .expect("dead letter");
    (id, user)
}

#[tokio::test]
async fn dead_letters_are_listed_shown_replayed_and_purged_from_the_command_line() {
    let db = TestDb::new().await;
    let (id, user) = plant_dead_letter(&db).await;
    let vars = [("DATABASE_URL", db.url())];

    let list = airsync(&["dead-letter", "list"], &vars);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(
        listed.contains(&user.to_string()) && listed.contains("INVALID_VALUE_FOR_COLUMN"),
        "{listed}"
    );

    let show = airsync(&["dead-letter", "show", &id.to_string()], &vars);
    assert!(
        text(&show.stdout).contains("cannot accept the provided value"),
        "{}",
        text(&show.stdout)
    );

    let missing = airsync(&["dead-letter", "show", "999999"], &vars);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no dead letter 999999"),
        "{}",
        text(&missing.stderr)
    );

    let replay = airsync(&["dead-letter", "replay", &id.to_string()], &vars);
    assert!(
        text(&replay.stdout).contains("replayed 1"),
        "{}",
        text(&replay.stdout)
    );
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE row_id = $1")
        .bind(user)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(pending, 1);

    let (second, _) = plant_dead_letter_for_existing(&db, user).await;
    let purge = airsync(&["dead-letter", "purge", "--older-than", "0s"], &vars);
    assert!(
        text(&purge.stdout).contains("purged 1"),
        "{}",
        text(&purge.stdout)
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter WHERE id = $1")
        .bind(second)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(left, 0);
}

async fn plant_dead_letter_for_existing(db: &TestDb, user: uuid::Uuid) -> (i64, uuid::Uuid) {
    let id = sqlx::query_scalar(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, first_enqueued_at, failed_at)
         VALUES (2, 'user', $1, 'upsert', 'k2', 12, 'attempts_exhausted', '503', now(), now() - interval '1 minute')
         RETURNING id",
    )
    .bind(user)
    .fetch_one(db.pool())
    .await
    .expect("dead letter");
    (id, user)
}

#[test]
fn replay_and_purge_need_a_target() {
    for args in [["dead-letter", "replay"], ["dead-letter", "purge"]] {
        let output = airsync(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    let output = airsync(&["dead-letter", "purge", "--older-than", "soon"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("is not an age"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn sync_status_prints_each_entitys_queue_and_dead_letters() {
    let db = TestDb::new().await;
    plant_dead_letter(&db).await;
    sqlx::query("INSERT INTO users_pg (email) VALUES ('waiting@example.com')")
        .execute(db.pool())
        .await
        .expect("user");
    let output = airsync(&["sync", "status"], &[("DATABASE_URL", db.url())]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let user_line = stdout
        .lines()
        .find(|l| l.starts_with("user "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let columns: Vec<&str> = user_line.split_whitespace().collect();
    assert_eq!(&columns[1..3], ["1", "0"], "{user_line}");
    assert_eq!(columns[4], "1", "one dead letter: {user_line}");
    assert!(
        stdout.lines().any(|l| l.starts_with("overtuiging_usage")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_long_error_in_another_script_is_listed_shortened_without_a_panic() {
    let db = TestDb::new().await;
    let error = "Échec: la valeur « ".to_owned() + &"é".repeat(80) + " » est refusée";
    sqlx::query(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, first_enqueued_at)
         VALUES (1, 'user', gen_random_uuid(), 'upsert', 'k', 1, 'rejected', $1, now())",
    )
    .bind(&error)
    .execute(db.pool())
    .await
    .expect("dead letter");
    let list = airsync(&["dead-letter", "list"], &[("DATABASE_URL", db.url())]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let shortened: String = error.chars().take(60).collect();
    assert!(
        text(&list.stdout).contains(&shortened),
        "{}",
        text(&list.stdout)
    );
}
