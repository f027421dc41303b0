use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::{merge_record, Push, RowSide, Winner};
use crate::inbound::observe::Observation;
use crate::inbound::schema::ResolvedEntity;
use crate::mapping::Mapping;

fn entity(name: &str) -> ResolvedEntity {
    let mapping = Mapping::default_mapping().expect("mapping");
    ResolvedEntity::for_tests(mapping.entity(name).expect("entity"))
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_800_000_000 + seconds)
}

/// A payload that changed `fields`, with the record's other cells.
fn payload(cells: Value, changed: &[&str], when: i64) -> Observation {
    Observation {
        record_id: "recAAAAAAAAAAAAAA".into(),
        cells: map(cells),
        changed: Some(
            changed
                .iter()
                .map(|f| (*f).to_owned())
                .collect::<HashSet<_>>(),
        ),
        at: Some(at(when)),
        created_at: None,
    }
}

fn listing(cells: Value) -> Observation {
    Observation {
        record_id: "recAAAAAAAAAAAAAA".into(),
        cells: map(cells),
        changed: None,
        at: None,
        created_at: None,
    }
}

fn names(entity: &ResolvedEntity, take: &[usize]) -> Vec<String> {
    take.iter()
        .map(|i| entity.fields[*i].mapping.field.clone())
        .collect()
}

#[test]
fn a_field_changed_in_airtable_only_takes_airtables_value() {
    let program = entity("program");
    let ours = map(json!({"Name": "Spring", "Notes": "Go"}));
    let base = map(json!({"Name": "Spring", "Notes": "Go"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(0),
        last_pushed_at: None,
    };
    let out = merge_record(
        &program,
        &payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 10),
        &row,
        None,
    );
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
    assert_eq!(out.synced.get("Notes"), Some(&json!("Team")));
    assert_eq!(out.push, Push::None);
    assert!(out.conflicts.is_empty());
}

#[test]
fn a_field_changed_in_postgres_only_keeps_postgres_value() {
    let program = entity("program");
    let ours = map(json!({"Notes": "App"}));
    let base = map(json!({"Notes": "Go"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(0),
        last_pushed_at: None,
    };
    let out = merge_record(&program, &listing(json!({"Notes": "Go"})), &row, None);
    assert!(out.take.is_empty());
    assert_eq!(out.push, Push::IfNoEvent);
}

#[test]
fn a_field_changed_on_both_sides_goes_to_the_later_change_and_a_tie_to_postgres() {
    let program = entity("program");
    let ours = map(json!({"Notes": "App"}));
    let base = map(json!({"Notes": "Go"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(5),
        last_pushed_at: None,
    };

    let later = merge_record(
        &program,
        &payload(json!({"Notes": "Team"}), &["Notes"], 6),
        &row,
        None,
    );
    assert_eq!(names(&program, &later.take), vec!["Notes"]);
    assert_eq!(later.conflicts[0].winner, Winner::Airtable);

    for when in [4, 5] {
        let earlier = merge_record(
            &program,
            &payload(json!({"Notes": "Team"}), &["Notes"], when),
            &row,
            None,
        );
        assert!(earlier.take.is_empty());
        assert_eq!(
            earlier.push,
            Push::Always,
            "PostgreSQL's value is pushed again"
        );
        assert_eq!(earlier.conflicts[0].winner, Winner::Postgres);
        // What Airtable holds until the push lands.
        assert_eq!(earlier.synced.get("Notes"), Some(&json!("Team")));
    }
}

#[test]
fn reference_data_takes_airtables_value_even_when_postgres_changed_later() {
    let method = entity("method");
    let ours = map(json!({"Name": "Local"}));
    let base = map(json!({"Name": "Old"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(100),
        last_pushed_at: None,
    };
    let out = merge_record(
        &method,
        &payload(json!({"Name": "Team"}), &["Name"], 1),
        &row,
        None,
    );
    assert_eq!(names(&method, &out.take), vec!["Name"]);
    assert_eq!(out.push, Push::None);
}

/// Every inbound field of `entity`, empty, with `overrides`.
fn full(entity: &ResolvedEntity, overrides: Value) -> Map<String, Value> {
    let mut cells: Map<String, Value> = entity
        .inbound_fields()
        .map(|f| (f.key().to_owned(), f.airtable_value(None)))
        .collect();
    cells.extend(map(overrides));
    cells
}

#[test]
fn a_conflict_seen_in_a_listing_asks_for_airtables_change_time() {
    let program = entity("program");
    let ours = full(&program, json!({"Notes": "App"}));
    let base = full(&program, json!({"Notes": "Go"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(5),
        last_pushed_at: None,
    };
    let observed = listing(json!({"Notes": "Team"}));
    let first = merge_record(&program, &observed, &row, None);
    assert_eq!(first.needs_time, vec![program.fields[7].id.clone()]);
    let answered = merge_record(&program, &observed, &row, Some(true));
    assert_eq!(names(&program, &answered.take), vec!["Notes"]);
    let answered = merge_record(&program, &observed, &row, Some(false));
    assert!(answered.take.is_empty());
}

#[test]
fn an_echo_of_what_postgres_holds_changes_nothing() {
    let program = entity("program");
    let ours = map(
        json!({"Name": "Spring", "Notes": "Go", "pg_id": "00000000-0000-0000-0000-000000000007"}),
    );
    let row = RowSide {
        ours: &ours,
        base: None,
        updated_at: at(5),
        last_pushed_at: Some(at(6)),
    };
    let echo = payload(
        json!({"Name": "Spring", "Notes": "Go", "pg_id": "00000000-0000-0000-0000-000000000007"}),
        &["Name", "Notes", "pg_id"],
        6,
    );
    let out = merge_record(&program, &echo, &row, None);
    assert!(out.take.is_empty());
    assert_eq!(out.push, Push::None);
    assert!(out.conflicts.is_empty());
}

#[test]
fn a_payload_older_than_our_last_push_is_judged_by_time_and_sent_back_when_it_wins() {
    let program = entity("program");
    // The app renamed the program at 5; the team edited the notes at 6; our
    // push at 7 sent the old notes with the new name.
    let ours = map(json!({"Name": "Spring 2", "Notes": "Go"}));
    let base = map(json!({"Name": "Spring 2", "Notes": "Go"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(5),
        last_pushed_at: Some(at(7)),
    };
    let team = payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 6);
    let out = merge_record(&program, &team, &row, None);
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
    assert_eq!(
        out.push,
        Push::Always,
        "Airtable lost the team's notes to our push"
    );
    assert!(
        !out.synced.contains_key("Notes"),
        "Airtable holds the pushed value, not this one"
    );

    // Our own push's echo: the value we sent.
    let echo = payload(
        json!({"Name": "Spring 2", "Notes": "Go"}),
        &["Name", "Notes"],
        7,
    );
    let ours = map(json!({"Name": "Spring 2", "Notes": "Team"}));
    let row = RowSide {
        ours: &ours,
        base: Some(&base),
        updated_at: at(8),
        last_pushed_at: Some(at(7)),
    };
    let out = merge_record(&program, &echo, &row, None);
    assert!(out.take.is_empty());
    assert_eq!(out.push, Push::Always);
}
