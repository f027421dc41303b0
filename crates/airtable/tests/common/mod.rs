//! Shared set-up of the integration tests: an in-process emulator with
//! Airtable's real limits, a table, and a client pointed at it.

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::Arc;
use std::time::Duration;

use airsync_airtable::{AirtableClient, BaseId, ClientConfig, Clock, ManualClock};
use airsync_emulator::{Emulator, EmulatorConfig, FieldSpec, TableInfo, TableSpec};
use serde_json::{json, Map, Value};

pub const TOKEN: &str = "patTESTTESTTESTTE.0000";
pub const BASE: BaseId = BaseId::from_static("appTESTTESTTEST01");

/// An emulator with Airtable's real limits and one empty base.
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::new()).await
}

/// An emulator built from `config`, with the test token and base added.
pub async fn emulator_with(config: EmulatorConfig) -> Emulator {
    match config
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .start()
        .await
    {
        Ok(emulator) => emulator,
        Err(e) => panic!("the emulator did not start: {e}"),
    }
}

/// A `People` table: Name (text), Email (text), Age (number), Active
/// (checkbox), Joined (date), Seen (dateTime), Tags (multiple selects),
/// Level (single select), pg_id (text).
pub fn people_table(emulator: &Emulator) -> TableInfo {
    let spec = TableSpec::new(
        "People",
        vec![
            FieldSpec::new("Name", "singleLineText"),
            FieldSpec::new("Email", "singleLineText"),
            FieldSpec::new("Notes", "multilineText"),
            FieldSpec::new("Age", "number").with_options(json!({"precision": 0})),
            FieldSpec::new("Active", "checkbox")
                .with_options(json!({"icon": "check", "color": "greenBright"})),
            FieldSpec::new("Joined", "date")
                .with_options(json!({"dateFormat": {"name": "iso", "format": "YYYY-MM-DD"}})),
            FieldSpec::new("Seen", "dateTime").with_options(json!({
                "timeZone": "utc",
                "dateFormat": {"name": "iso", "format": "YYYY-MM-DD"},
                "timeFormat": {"name": "24hour", "format": "HH:mm"}
            })),
            FieldSpec::new("Tags", "multipleSelects")
                .with_options(json!({"choices": [{"name": "vip"}, {"name": "new"}]})),
            FieldSpec::new("Level", "singleSelect")
                .with_options(json!({"choices": [{"name": "junior"}, {"name": "senior"}]})),
            FieldSpec::new("pg_id", "singleLineText"),
        ],
    );
    match emulator.create_table(BASE.as_str(), spec) {
        Ok(table) => table,
        Err(e) => panic!("the table was not created: {e}"),
    }
}

/// Seeds `count` records named `Person {i}` directly (no rate limit).
pub fn seed_people(emulator: &Emulator, table: &TableInfo, count: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let create: Vec<Map<String, Value>> = chunk
            .iter()
            .map(|i| {
                let mut fields = Map::new();
                fields.insert("Name".into(), json!(format!("Person {i}")));
                fields.insert("Age".into(), json!(i % 90));
                fields
            })
            .collect();
        let edit = airsync_emulator::ClientEdit {
            create,
            ..Default::default()
        };
        if let Err(e) = emulator.edit_as_user(BASE.as_str(), &table.id, edit) {
            panic!("seeding failed: {e}");
        }
    }
}

/// The configuration of a client of this emulator.
pub fn config(emulator: &Emulator) -> ClientConfig {
    match ClientConfig::new(TOKEN).with_api_url(&emulator.url()) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

/// A client of this emulator on real time.
pub fn client(emulator: &Emulator) -> AirtableClient {
    match AirtableClient::new(config(emulator)) {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    }
}

/// A client of this emulator on a manual clock.
pub fn client_on(emulator: &Emulator, clock: Arc<ManualClock>) -> AirtableClient {
    client_with(config(emulator), clock)
}

/// A client from `config` on a manual clock.
pub fn client_with(config: ClientConfig, clock: Arc<ManualClock>) -> AirtableClient {
    match AirtableClient::with_clock(config, clock) {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    }
}

/// Every record of a table as the emulator holds it.
pub fn dump(emulator: &Emulator, table: &str) -> Vec<Value> {
    match emulator.dump_table(BASE.as_str(), table) {
        Ok(records) => records,
        Err(e) => panic!("{e}"),
    }
}

/// Moves the client's manual clock and the emulator's frozen clock
/// together, so both sides see the same time.
pub fn advance(clock: &ManualClock, emulator: &Emulator, by: Duration) {
    // The emulator counts whole milliseconds: advance it by the change of
    // the truncated time, so rounding never accumulates into drift.
    let before = clock.now().as_millis();
    let after = (clock.now() + by).as_millis();
    let millis = u64::try_from(after - before).unwrap_or(u64::MAX);
    // The emulator first: a request woken by the client's clock must find
    // the emulator already there.
    emulator.advance_clock(Duration::from_millis(millis));
    clock.advance(by);
}

/// Runs tasks on a manual clock: whenever nothing is on the wire and every
/// unfinished task sleeps until a later time, moves both clocks to the next
/// wake-up. Requests thus reach the emulator at exactly the time the client
/// gave them, on both clocks. A task that holds neither a sleep nor a
/// request is between the two (its slot given, its request being built):
/// time waits for it, however long the machine keeps it from running.
pub async fn drive<T>(
    clock: &ManualClock,
    emulator: &Emulator,
    clients: &[&AirtableClient],
    tasks: &[tokio::task::JoinHandle<T>],
) {
    let mut idle_polls = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let on_the_wire: u64 = clients.iter().map(|c| c.metrics().in_flight).sum();
        // A sleeper whose deadline has passed has been woken but not yet
        // run: it is about to send, so time must not move yet.
        let all_asleep = clock.next_deadline().is_some_and(|next| next > clock.now());
        let running = tasks.iter().filter(|t| !t.is_finished()).count();
        let quiet = on_the_wire == 0 && all_asleep && clock.sleepers() >= running;
        idle_polls = if quiet { idle_polls + 1 } else { 0 };
        // Two quiet polls in a row: no task is between its slot and the wire.
        if idle_polls >= 2 {
            if let Some(next) = clock.next_deadline() {
                let by = next.saturating_sub(clock.now());
                advance(clock, emulator, by);
            }
            idle_polls = 0;
        }
    }
}
