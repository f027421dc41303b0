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
    for subcommand in ["migrate", "config"] {
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
