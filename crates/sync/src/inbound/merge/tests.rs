use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::{merge_record, LaterAnswer, Push, RowSide, Winner};
use crate::inbound::observe::Observation;
use crate::inbound::schema::ResolvedEntity;
use crate::mapping::Mapping;
use crate::versions::{RowVersions, Sent};

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
        read_at: None,
    }
}

fn listing(cells: Value) -> Observation {
    Observation {
        record_id: "recAAAAAAAAAAAAAA".into(),
        cells: map(cells),
        changed: None,
        at: None,
        created_at: None,
        read_at: Some(at(1000)),
    }
}

fn names(entity: &ResolvedEntity, take: &[usize]) -> Vec<String> {
    take.iter()
        .map(|i| entity.fields[*i].mapping.field.clone())
        .collect()
}

/// Versions of a program row: each column's change time, and what was sent.
fn versions(changed: &[(&str, i64)], sent: &[(&str, Value, i64, i64)]) -> RowVersions {
    let mut out = RowVersions::default();
    for (column, when) in changed {
        out.changed_at.insert((*column).to_owned(), at(*when));
    }
    for (field, value, made, left) in sent {
        out.sent.entry((*field).to_owned()).or_default().push(Sent {
            v: value.clone(),
            at: at(*made),
            sent: at(*left),
            landed: None,
        });
    }
    out
}

fn side<'a>(
    ours: &'a Map<String, Value>,
    base: Option<&'a Map<String, Value>>,
    versions: &'a RowVersions,
) -> RowSide<'a> {
    RowSide {
        ours,
        base,
        versions,
        updated_at: at(0),
    }
}

#[test]
fn a_field_changed_in_airtable_only_takes_airtables_value() {
    let program = entity("program");
    let ours = map(json!({"Name": "Spring", "Notes": "Go"}));
    let base = ours.clone();
    let v = versions(&[("notes", 1)], &[]);
    let out = merge_record(
        &program,
        &payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 10),
        &side(&ours, Some(&base), &v),
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
    let v = versions(&[("notes", 5)], &[]);
    let out = merge_record(
        &program,
        &listing(json!({"Notes": "Go"})),
        &side(&ours, Some(&base), &v),
        None,
    );
    assert!(out.take.is_empty());
    assert_eq!(out.push, Push::IfNoEvent);
}

#[test]
fn a_field_changed_on_both_sides_goes_to_the_later_change_and_a_tie_to_postgres() {
    let program = entity("program");
    let ours = map(json!({"Notes": "App"}));
    let base = map(json!({"Notes": "Go"}));
    let v = versions(&[("notes", 5)], &[]);
    let row = side(&ours, Some(&base), &v);

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
fn each_field_is_judged_by_its_own_change_time_not_the_rows() {
    // The app changed the notes at 3 and the name at 9; the team changed
    // the notes at 6. The row as a whole changed last (9), but its notes
    // are older than the team's.
    let program = entity("program");
    let ours = map(json!({"Name": "Spring 2", "Notes": "App"}));
    let base = map(json!({"Name": "Spring", "Notes": "Go"}));
    let mut v = versions(&[("notes", 3), ("name", 9)], &[]);
    let row = RowSide {
        updated_at: at(9),
        ..side(&ours, Some(&base), &v)
    };
    let out = merge_record(
        &program,
        &payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 6),
        &row,
        None,
    );
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
    assert_eq!(out.conflicts[0].winner, Winner::Airtable);

    // A value the inbound sync took carries Airtable's time (7), not the
    // time of the transaction that wrote it: a later team edit (8) of the
    // same field in the same page wins over it.
    v.changed_at.insert("notes".into(), at(7));
    let ours = map(json!({"Name": "Spring 2", "Notes": "Team"}));
    let base = ours.clone();
    let out = merge_record(
        &program,
        &payload(
            json!({"Name": "Spring", "Notes": "Team again"}),
            &["Notes"],
            8,
        ),
        &side(&ours, Some(&base), &v),
        None,
    );
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
}

#[test]
fn reference_data_takes_airtables_value_even_when_postgres_changed_later() {
    let method = entity("method");
    let ours = map(json!({"Name": "Local"}));
    let base = map(json!({"Name": "Old"}));
    let v = versions(&[("name", 100)], &[]);
    let out = merge_record(
        &method,
        &payload(json!({"Name": "Team"}), &["Name"], 1),
        &side(&ours, Some(&base), &v),
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
fn a_conflict_seen_in_a_listing_asks_for_airtables_change_time_of_that_field() {
    let program = entity("program");
    let ours = full(&program, json!({"Notes": "App"}));
    let base = full(&program, json!({"Notes": "Go"}));
    let v = versions(&[("notes", 5), ("name", 9)], &[]);
    let row = side(&ours, Some(&base), &v);
    let observed = listing(json!({"Notes": "Team"}));
    let notes = program.fields[7].id.clone();
    let first = merge_record(&program, &observed, &row, None);
    assert_eq!(first.needs_time, vec![(notes.clone(), at(5))]);
    let answers = |since: i64, changed_to: Option<&str>| {
        let answer = LaterAnswer {
            since: at(since),
            changed_to: changed_to.map(|v| json!(v)),
        };
        [(notes.clone(), answer)].into_iter().collect()
    };
    let answered = merge_record(&program, &observed, &row, Some(&answers(5, Some("Team"))));
    assert_eq!(names(&program, &answered.take), vec!["Notes"]);
    let answered = merge_record(&program, &observed, &row, Some(&answers(5, None)));
    assert!(answered.take.is_empty());
    assert!(answered.needs_time.is_empty());
}

#[test]
fn an_answer_about_a_listing_overtaken_by_a_later_change_is_asked_again() {
    // The listing showed the team's "Team"; while Airtable's time was asked
    // (a rate-limit pause can make that half a minute), the team changed
    // the notes again, or the app did. The answer holds for neither: the
    // listing's value is not merged by it, and the field is asked about
    // again.
    let program = entity("program");
    let base = full(&program, json!({"Notes": "Go"}));
    let observed = listing(json!({"Notes": "Team"}));
    let notes = program.fields[7].id.clone();
    let answer = |since: i64, changed_to: &str| -> std::collections::HashMap<String, LaterAnswer> {
        let answer = LaterAnswer {
            since: at(since),
            changed_to: Some(json!(changed_to)),
        };
        [(notes.clone(), answer)].into_iter().collect()
    };
    // The team changed it again after the listing.
    let ours = full(&program, json!({"Notes": "App"}));
    let v = versions(&[("notes", 5)], &[]);
    let row = side(&ours, Some(&base), &v);
    let out = merge_record(&program, &observed, &row, Some(&answer(5, "Team again")));
    assert!(
        out.take.is_empty(),
        "a value Airtable no longer holds is not taken"
    );
    assert_eq!(out.needs_time, vec![(notes.clone(), at(5))]);
    // The app changed it after the question was asked (its time is 9 now).
    let later_app = full(&program, json!({"Notes": "App later"}));
    let v = versions(&[("notes", 9)], &[]);
    let row = side(&later_app, Some(&base), &v);
    let out = merge_record(&program, &observed, &row, Some(&answer(5, "Team")));
    assert!(out.take.is_empty(), "the app's later value stays");
    assert_eq!(out.needs_time, vec![(notes, at(9))]);
}

#[test]
fn an_echo_of_what_postgres_holds_changes_nothing() {
    let program = entity("program");
    let ours = map(
        json!({"Name": "Spring", "Notes": "Go", "pg_id": "00000000-0000-0000-0000-000000000007"}),
    );
    let v = versions(&[("name", 5), ("notes", 5)], &[]);
    let echo = payload(
        json!({"Name": "Spring", "Notes": "Go", "pg_id": "00000000-0000-0000-0000-000000000007"}),
        &["Name", "Notes", "pg_id"],
        6,
    );
    let out = merge_record(&program, &echo, &side(&ours, None, &v), None);
    assert!(out.take.is_empty());
    assert_eq!(out.push, Push::None);
    assert!(out.conflicts.is_empty());
}

#[test]
fn an_echo_is_known_by_its_content_however_late_it_comes() {
    // We pushed "Go" (made at 2, sent at 3); the app changed the notes again
    // at 5. The echo of the first push arrives with a time long after both
    // (a slow request, a payload read late): it is our own value, older than
    // the row's, and changes nothing.
    let program = entity("program");
    let ours = map(json!({"Notes": "App"}));
    let base = map(json!({"Notes": "Go"}));
    let v = versions(&[("notes", 5)], &[("Notes", json!("Go"), 2, 3)]);
    for when in [4, 40, 400] {
        let echo = payload(json!({"Notes": "Go"}), &["Notes"], when);
        let out = merge_record(&program, &echo, &side(&ours, Some(&base), &v), None);
        assert!(out.take.is_empty(), "at {when}");
        assert!(out.conflicts.is_empty(), "at {when}");
        assert_eq!(out.push, Push::Always, "at {when}");
    }
    // The same value in a listing: Airtable holds our older push.
    let (ours_full, base_full) = (
        full(&program, json!({"Notes": "App"})),
        full(&program, json!({"Notes": "Go"})),
    );
    let out = merge_record(
        &program,
        &listing(json!({"Notes": "Go"})),
        &side(&ours_full, Some(&base_full), &v),
        None,
    );
    assert!(out.take.is_empty());
    assert!(out.needs_time.is_empty(), "an echo needs no question");

    // An echo of a value made after the row's (the row took an older team
    // edit meanwhile): our pushed value is the later one and comes back.
    let v = versions(&[("notes", 1)], &[("Notes", json!("Go"), 2, 3)]);
    let out = merge_record(
        &program,
        &payload(json!({"Notes": "Go"}), &["Notes"], 9),
        &side(&ours, Some(&base), &v),
        None,
    );
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
}

#[test]
fn a_team_edit_a_later_push_overwrote_is_judged_by_time_and_sent_back_when_it_wins() {
    let program = entity("program");
    // The app renamed the program at 5; the team edited the notes at 6; our
    // push at 7 sent the app's older notes (made at 4) with the new name.
    let ours = map(json!({"Name": "Spring 2", "Notes": "Go"}));
    let base = map(json!({"Name": "Spring 2", "Notes": "Go"}));
    let v = versions(
        &[("name", 5), ("notes", 4)],
        &[
            ("Name", json!("Spring 2"), 5, 7),
            ("Notes", json!("Go"), 4, 7),
        ],
    );
    let team = payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 6);
    let out = merge_record(&program, &team, &side(&ours, Some(&base), &v), None);
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

    // Had the app changed the notes after the team (at 6.5 < 7), the app's
    // value is the later change and stays.
    let ours = map(json!({"Name": "Spring 2", "Notes": "App"}));
    let base = ours.clone();
    let v = versions(&[("notes", 7)], &[("Notes", json!("App"), 7, 8)]);
    let out = merge_record(&program, &team, &side(&ours, Some(&base), &v), None);
    assert!(out.take.is_empty());
    assert!(out.take.is_empty(), "the app's later value stays");
}

#[test]
fn a_push_whose_answer_came_before_a_team_edit_did_not_overwrite_it() {
    let program = entity("program");
    // Our push of the notes left at 5 and was answered at 6; the team edited
    // the notes at 9: Airtable held our value before the team's edit.
    let ours = map(json!({"Name": "Spring", "Notes": "Go"}));
    let base = ours.clone();
    let mut v = versions(&[("notes", 4)], &[("Notes", json!("Go"), 4, 5)]);
    v.sent.get_mut("Notes").expect("sent")[0].landed = Some(at(6));
    let team = payload(json!({"Name": "Spring", "Notes": "Team"}), &["Notes"], 9);
    let out = merge_record(&program, &team, &side(&ours, Some(&base), &v), None);
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
    assert_eq!(out.push, Push::None, "nothing to send back");
    assert_eq!(out.synced.get("Notes"), Some(&json!("Team")));

    // An answer that came within the clock margin of the team's edit may
    // not have preceded it on Airtable's clock: the value is sent back.
    v.sent.get_mut("Notes").expect("sent")[0].landed = Some(at(9));
    let out = merge_record(&program, &team, &side(&ours, Some(&base), &v), None);
    assert_eq!(names(&program, &out.take), vec!["Notes"]);
    assert_eq!(out.push, Push::Always);
    // No answer: the push may still be on its way.
    v.sent.get_mut("Notes").expect("sent")[0].landed = None;
    let out = merge_record(&program, &team, &side(&ours, Some(&base), &v), None);
    assert_eq!(out.push, Push::Always);
}
