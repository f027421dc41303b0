//! `airsync sync full`, `airsync sync incremental` and
//! `airsync validate-backfill` as an operator runs them, against a real
//! PostgreSQL and the emulator.

use std::process::{Command, Output};
use std::sync::Arc;

use airsync_airtable::{AirtableClient, BaseId, ClientConfig};
use airsync_emulator::{ClientEdit, Emulator, EmulatorConfig, RecordPatch};
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;
use serde_json::{json, Map, Value};
use uuid::Uuid;

const TOKEN: &str = "patINBOUNDCLI0000.0123";
const BASE: BaseId = BaseId::from_static("appINBOUNDCLI0001");

/// An emulator with the base bootstrapped. The limits stay off: these tests
/// are about the commands, the benchmark about the pace.
async fn start_emulator() -> Emulator {
    let emulator = EmulatorConfig::new()
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .without_limits()
        .start()
        .await
        .expect("emulator");
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("url");
    config.rate_limits.per_base = 10_000;
    config.rate_limits.per_token = 10_000;
    let client = AirtableClient::new(config).expect("client");
    let mapping = Arc::new(Mapping::default_mapping().expect("mapping"));
    bootstrap(&client.base(&BASE), &mapping)
        .await
        .expect("bootstrap");
    emulator
}

/// Runs the binary on a blocking thread, so that the in-process emulator
/// keeps answering meanwhile.
async fn airsync(args: &[&str], db: &TestDb, emulator: &Emulator) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let vars = vec![
        ("DATABASE_URL".to_owned(), db.url().to_owned()),
        ("AIRTABLE_API_URL".to_owned(), emulator.url()),
        ("AIRTABLE_TOKEN".to_owned(), TOKEN.to_owned()),
        ("AIRTABLE_BASE_ID".to_owned(), BASE.to_string()),
        ("AIRTABLE_RATE_LIMIT_PER_BASE".to_owned(), "1000".to_owned()),
        (
            "AIRTABLE_RATE_LIMIT_PER_TOKEN".to_owned(),
            "1000".to_owned(),
        ),
        ("AIRSYNC_LOG_FORMAT".to_owned(), "json".to_owned()),
        // Warnings, and the progress lines of the long commands.
        (
            "RUST_LOG".to_owned(),
            "warn,airsync::cli::progress=info".to_owned(),
        ),
    ];
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_airsync"))
            .args(&args)
            .env_clear()
            .envs(vars)
            .output()
            .expect("run airsync")
    })
    .await
    .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn create(emulator: &Emulator, table: &str, records: Vec<Value>) -> Vec<String> {
    emulator
        .edit_as_user(
            BASE.as_str(),
            table,
            ClientEdit {
                create: records.into_iter().map(object).collect(),
                ..ClientEdit::default()
            },
        )
        .expect("create records")
        .created
}

/// A base of 5,000 records as a team keeps it: goals, methods and
/// overtuigingen linking them, and users that came from an earlier
/// database (with their pg_id).
fn fill_base(emulator: &Emulator) -> Vec<String> {
    let goals = create(
        emulator,
        "Goals",
        (0..2000)
            .map(|i| json!({"Name": format!("Goal {i}"), "Description": "A goal", "Active": true}))
            .collect(),
    );
    let methods = create(
        emulator,
        "Methods",
        (0..2000)
            .map(|i| json!({"Name": format!("Method {i}"), "Duration (min)": i % 60, "Is habit": i % 3 == 0,
                           "Goals": [goals[i % goals.len()]], "Active": true, "Sort order": i}))
            .collect(),
    );
    create(
        emulator,
        "Overtuigingen",
        (0..900)
            .map(|i| {
                json!({"Name": format!("Belief {i}"), "Goals": [goals[(i * 7) % goals.len()]],
                           "Level": 1 + i % 3, "Active": true})
            })
            .collect(),
    );
    create(
        emulator,
        "Users",
        (0..100)
            .map(|i| json!({"Email": format!("user{i}@example.com"), "Name": format!("User {i}"),
                           "Role": "user", "Bonus points": i, "Level": 1, "pg_id": Uuid::new_v4().to_string()}))
            .collect(),
    );
    methods
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_backfill_of_5000_records_validate_backfill_passes_until_a_field_changes_behind_its_back(
) {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let methods = fill_base(&emulator);

    let full = airsync(&["sync", "full"], &db, &emulator).await;
    assert!(full.status.success(), "{}", text(&full.stderr));
    let summary = text(&full.stdout);
    assert!(
        summary.contains("method") && summary.contains("2000"),
        "{summary}"
    );
    // Standard error is no terminal here: the progress comes as log lines,
    // one as each table is done.
    let done = |output: &std::process::Output, table: &str| -> Option<u64> {
        text(&output.stderr).lines().find_map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).ok()?;
            (line["message"] == "done" && line["part"] == table)
                .then(|| line["done"].as_u64())
                .flatten()
        })
    };
    assert_eq!(done(&full, "Methods"), Some(2000), "{}", text(&full.stderr));
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM reference_goals_pg) + (SELECT count(*) FROM reference_methods_pg)
              + (SELECT count(*) FROM reference_overtuigingen_pg) + (SELECT count(*) FROM users_pg)",
    )
    .fetch_one(db.pool())
    .await
    .expect("count rows");
    assert_eq!(rows, 5000);

    let valid = airsync(&["validate-backfill"], &db, &emulator).await;
    assert!(
        valid.status.success(),
        "{}\n{}",
        text(&valid.stdout),
        text(&valid.stderr)
    );
    assert!(text(&valid.stdout).contains("agree"));

    // Someone changes a method in Airtable while nothing syncs.
    let changed = &methods[1234];
    emulator
        .edit_as_user(
            BASE.as_str(),
            "Methods",
            ClientEdit {
                update: vec![RecordPatch {
                    id: changed.clone(),
                    fields: object(json!({"Description": "Edited behind the sync's back"})),
                }],
                ..ClientEdit::default()
            },
        )
        .expect("edit");
    let invalid = airsync(&["validate-backfill"], &db, &emulator).await;
    assert_eq!(invalid.status.code(), Some(1), "{}", text(&invalid.stdout));
    let report = text(&invalid.stdout);
    assert!(report.contains(changed.as_str()), "{report}");
    assert!(report.contains("Description"), "{report}");

    // An incremental poll brings the change in; both sides agree again.
    let poll = airsync(&["sync", "incremental"], &db, &emulator).await;
    assert!(poll.status.success(), "{}", text(&poll.stderr));
    let valid = airsync(&["validate-backfill", "--table", "method"], &db, &emulator).await;
    assert!(valid.status.success(), "{}", text(&valid.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_full_refuses_a_mass_delete_until_forced() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let goals = create(
        &emulator,
        "Goals",
        (0..40)
            .map(|i| json!({"Name": format!("Goal {i}"), "Active": true}))
            .collect(),
    );
    let first = airsync(&["sync", "full", "--table", "Goals"], &db, &emulator).await;
    assert!(first.status.success(), "{}", text(&first.stderr));

    emulator
        .edit_as_user(
            BASE.as_str(),
            "Goals",
            ClientEdit {
                delete: goals[..30].to_vec(),
                ..ClientEdit::default()
            },
        )
        .expect("delete");
    let refused = airsync(&["sync", "full", "--table", "Goals"], &db, &emulator).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("--force"),
        "{}",
        text(&refused.stderr)
    );
    assert!(
        text(&refused.stdout).contains("refused 30"),
        "{}",
        text(&refused.stdout)
    );
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM reference_goals_pg WHERE active")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(active, 40);

    let forced = airsync(
        &["sync", "full", "--table", "Goals", "--force"],
        &db,
        &emulator,
    )
    .await;
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM reference_goals_pg WHERE active")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(active, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_table_is_named_in_the_error() {
    let db = TestDb::new().await;
    let emulator = start_emulator().await;
    let output = airsync(&["sync", "full", "--table", "Nope"], &db, &emulator).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("Nope"),
        "{}",
        text(&output.stderr)
    );
}
