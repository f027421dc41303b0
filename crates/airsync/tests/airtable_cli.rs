//! `airsync airtable bootstrap` and `airsync airtable emulator` as a person
//! runs them.

use airsync_airtable::BaseId;
use std::process::{Command, Output};

use airsync_emulator::{EmulatorConfig, RateLimits};

const TOKEN: &str = "patBOOTSTRAPCLI00.0123";
const BASE: BaseId = BaseId::from_static("appBOOTSTRAPCLI01");

fn airsync(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_airsync"));
    command
        .args(args)
        .env_clear()
        .env("AIRSYNC_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run airsync")
}

/// Runs the binary on a blocking thread, so the in-process emulator keeps
/// answering meanwhile.
async fn airsync_off_thread(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        airsync(&args, &vars)
    })
    .await
    .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_creates_every_table_once_and_a_second_run_changes_nothing() {
    let emulator = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .start()
        .await
        .expect("emulator");
    // Creating 13 tables and their links takes some 60 schema requests; the
    // client paces them at Airtable's 5/s, which the test need not wait for.
    emulator.set_limits(RateLimits::off());
    let url = emulator.url();
    let base = BASE.to_string();
    let vars = [
        ("AIRTABLE_API_URL", url.as_str()),
        ("AIRTABLE_TOKEN", TOKEN),
        ("AIRTABLE_BASE_ID", base.as_str()),
        ("AIRTABLE_RATE_LIMIT_PER_BASE", "1000"),
        ("AIRTABLE_RATE_LIMIT_PER_TOKEN", "1000"),
    ];
    let first = airsync_off_thread(&["airtable", "bootstrap"], &vars).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains("created table \"Users\"") && stdout.contains("created 13 tables"),
        "{stdout}"
    );
    assert_eq!(
        emulator
            .table(BASE.as_str(), "Program schedule")
            .expect("table")
            .fields[0]
            .name,
        "pg_id"
    );

    let second = airsync_off_thread(&["airtable", "bootstrap"], &vars).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("already has every table and field"),
        "{}",
        text(&second.stdout)
    );
}

#[test]
fn bootstrap_without_a_token_names_the_missing_variable() {
    let output = airsync(
        &["airtable", "bootstrap"],
        &[("AIRTABLE_BASE_ID", BASE.as_str())],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("AIRTABLE_TOKEN is not set"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_airtable_commands_explain_themselves() {
    for args in [
        vec!["airtable", "--help"],
        vec!["airtable", "bootstrap", "--help"],
        vec!["airtable", "emulator", "--help"],
        vec!["worker", "--help"],
    ] {
        let output = airsync(&args, &[]);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("Usage: airsync"), "{args:?}");
    }
    let emulator = text(&airsync(&["airtable", "emulator", "--help"], &[]).stdout);
    for option in [
        "--listen",
        "--token",
        "--base",
        "--data-dir",
        "--rate-limit-per-base",
        "--latency-ms",
        "--fault-rate",
        "--control",
    ] {
        assert!(emulator.contains(option), "{option} missing: {emulator}");
    }
}

#[test]
fn the_emulator_refuses_a_bad_option_value_with_a_usage_error() {
    let output = airsync(&["airtable", "emulator", "--latency-ms", "fast"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}
