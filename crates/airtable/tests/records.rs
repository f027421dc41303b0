//! Records against the emulator with Airtable's real limits: listing,
//! every list option, the POST form, expired offsets, and every write.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use airsync_airtable::{
    formula, Fields, GetOptions, ListOptions, RecordUpdate, SortDirection, UpdateMode, WriteOptions,
};
use chrono::{DateTime, NaiveDate, Utc};
use common::{client, dump, emulator, emulator_with, people_table, seed_people, BASE};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;

fn named(i: usize) -> Fields {
    Fields::new()
        .with("Name", format!("New {i}"))
        .with("pg_id", i.to_string())
}

#[tokio::test]
async fn reading_2500_records_yields_each_once_in_25_pages_without_a_429() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    seed_people(&emulator, &table, 2_500);
    let client = client(&emulator);

    let pages: Vec<_> = client
        .table(&BASE, &table.id)
        .pages(ListOptions::new())
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(pages.len(), 25);
    let ids: HashSet<String> = pages
        .iter()
        .flat_map(|p| p.records.iter().map(|r| r.id.clone()))
        .collect();
    assert_eq!(ids.len(), 2_500);
    let stats = emulator.stats();
    assert_eq!(stats.base(BASE.as_str()).total, 25);
    assert_eq!(stats.rate_limited, 0);
    assert_eq!(client.metrics().rate_limited, 0);
}

#[tokio::test]
async fn writing_95_records_takes_exactly_10_requests_and_keeps_their_order() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let rows: Vec<Fields> = (0..95).map(named).collect();

    let written = client
        .table(&BASE, &table.name)
        .create(&rows, WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(emulator.stats().base(BASE.as_str()).total, 10);
    assert_eq!(emulator.stats().count(BASE.as_str(), 200), 10);
    let names: Vec<_> = written
        .iter()
        .map(|r| {
            r.fields
                .text("Name")
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let expected: Vec<_> = (0..95).map(|i| format!("New {i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(dump(&emulator, &table.id).len(), 95);
}

#[tokio::test]
async fn an_upsert_creates_the_missing_records_and_updates_the_others() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let first: Vec<Fields> = (0..5).map(named).collect();
    people
        .create(&first, WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let rows: Vec<Fields> = (0..12)
        .map(|i| named(i).with("Age", 30 + i as i64))
        .collect();
    let outcome = people
        .upsert(
            &rows,
            &["pg_id"],
            UpdateMode::Merge,
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(outcome.created.len(), 7);
    assert_eq!(outcome.updated.len(), 5);
    assert_eq!(outcome.records.len(), 12);
    let all = people
        .list_all(ListOptions::new())
        .await
        .unwrap_or_default();
    assert_eq!(all.len(), 12);
    let pg_ids: HashSet<_> = all
        .iter()
        .filter_map(|r| r.fields.text("pg_id").ok().flatten().map(str::to_owned))
        .collect();
    assert_eq!(pg_ids.len(), 12);
    assert!(all
        .iter()
        .all(|r| r.fields.number("Age").ok().flatten().is_some()));
}

#[tokio::test]
async fn a_merge_update_keeps_unlisted_fields_and_a_replace_clears_them() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let created = people
        .create(
            &[named(1).with("Age", 40), named(2).with("Age", 50)],
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let merged = people
        .update(
            &[RecordUpdate::new(
                &created[0].id,
                Fields::new().with("Age", 41),
            )],
            UpdateMode::Merge,
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let replaced = people
        .update(
            &[RecordUpdate::new(
                &created[1].id,
                Fields::new().with("Age", 51),
            )],
            UpdateMode::Replace,
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(merged[0].fields.text("Name").ok().flatten(), Some("New 1"));
    assert_eq!(merged[0].fields.number("Age").ok().flatten(), Some(41.0));
    assert_eq!(replaced[0].fields.text("Name").ok().flatten(), None);
    assert_eq!(replaced[0].fields.number("Age").ok().flatten(), Some(51.0));
}

#[tokio::test]
async fn get_reads_one_record_and_an_unknown_id_is_a_permanent_404() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let created = people
        .create(&[named(7)], WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let record = people
        .get(&created[0].id, &GetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.fields.text("Name").ok().flatten(), Some("New 7"));
    let by_id = people
        .get(
            &created[0].id,
            &GetOptions {
                return_fields_by_field_id: true,
                ..GetOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let name_id = table.field_id("Name").unwrap_or_default();
    assert_eq!(by_id.fields.text(name_id).ok().flatten(), Some("New 7"));

    let missing = people
        .get("recAAAAAAAAAAAAAA", &GetOptions::default())
        .await;
    let err = missing
        .err()
        .unwrap_or_else(|| panic!("an unknown id was found"));
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert_eq!(err.method(), Some("GET"));
}

#[tokio::test]
async fn delete_removes_any_number_of_records_ten_to_a_request() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let rows: Vec<Fields> = (0..23).map(named).collect();
    let created = people
        .create(&rows, WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    emulator.reset_stats();

    let ids: Vec<&str> = created.iter().take(21).map(|r| r.id.as_str()).collect();
    let deleted = people.delete(&ids).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(deleted.len(), 21);
    assert_eq!(emulator.stats().base(BASE.as_str()).total, 3);
    assert_eq!(dump(&emulator, &table.id).len(), 2);
}

#[tokio::test]
async fn a_filter_too_long_for_a_url_is_sent_as_post_list_records() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    seed_people(&emulator, &table, 30);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let all = people
        .list_all(ListOptions::new())
        .await
        .unwrap_or_default();
    let wanted: Vec<&str> = all.iter().take(3).map(|r| r.id.as_str()).collect();
    // 600 unknown ids make a formula far over 16,000 characters once
    // encoded; a GET would be refused with a 414.
    let mut ids: Vec<String> = (0..600).map(|i| format!("recZZZZZZZZZZ{i:04}")).collect();
    ids.extend(wanted.iter().map(|s| s.to_string()));
    let filter = formula::record_id_in(&ids);
    assert!(filter.as_str().len() > 16_000);

    let found = people
        .list_all(ListOptions::new().filter(filter))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let found_ids: HashSet<&str> = found.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(found_ids, wanted.into_iter().collect());
    assert_eq!(emulator.stats().count(BASE.as_str(), 414), 0);
}

#[tokio::test]
async fn fields_sort_and_max_records_shape_the_pages() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    seed_people(&emulator, &table, 40);
    let client = client(&emulator);
    let options = ListOptions::new()
        .fields(["Name"])
        .sort("Age", SortDirection::Desc)
        .page_size(10)
        .max_records(25);

    let pages: Vec<_> = client
        .table(&BASE, &table.id)
        .pages(options)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let sizes: Vec<usize> = pages.iter().map(|p| p.records.len()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let first = &pages[0].records[0];
    assert!(first.fields.contains("Name"));
    assert!(!first.fields.contains("Age"));
    // Ages are i % 90 for i < 40, so the oldest is "Person 39".
    assert_eq!(first.fields.text("Name").ok().flatten(), Some("Person 39"));
}

#[tokio::test]
async fn an_expired_offset_is_survived_by_starting_over_without_repeating_records() {
    let emulator = emulator_with(
        airsync_emulator::EmulatorConfig::new().with_offset_ttl(Duration::from_secs(60)),
    )
    .await;
    let table = people_table(&emulator);
    seed_people(&emulator, &table, 250);
    let client = client(&emulator);
    let mut records = client
        .table(&BASE, &table.id)
        .records(ListOptions::new().page_size(100));

    let mut ids = HashSet::new();
    for _ in 0..100 {
        if let Some(Ok(record)) = records.next().await {
            ids.insert(record.id);
        }
    }
    // The consumer dawdles past the offset's lifetime.
    emulator.advance_clock(Duration::from_secs(120));
    while let Some(record) = records.try_next().await.unwrap_or_else(|e| panic!("{e}")) {
        assert!(ids.insert(record.id), "a record came twice");
    }

    assert_eq!(ids.len(), 250);
    assert_eq!(client.metrics().list_restarts, 1);
    assert_eq!(emulator.stats().count(BASE.as_str(), 422), 1);
}

#[tokio::test]
async fn typed_cells_round_trip_through_the_api() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let day = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
    let seen: DateTime<Utc> = "2024-05-01T09:30:00.250Z".parse().unwrap_or_default();
    let row = Fields::new()
        .with("Name", "Ada \"the first\" O'Brien")
        .with("Notes", "line one\nline two")
        .with("Age", 36)
        .with("Active", false)
        .with_date("Joined", day)
        .with_date_time("Seen", seen)
        .with_multiple_selects("Tags", ["vip", "new"])
        .with("Level", "senior");

    let created = client
        .table(&BASE, &table.id)
        .create(&[row], WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let f = &created[0].fields;
    assert_eq!(
        f.text("Name").ok().flatten(),
        Some("Ada \"the first\" O'Brien")
    );
    assert_eq!(f.text("Notes").ok().flatten(), Some("line one\nline two"));
    assert_eq!(f.integer("Age").ok().flatten(), Some(36));
    assert!(!f.contains("Active"), "an unchecked box is omitted");
    assert_eq!(f.checkbox("Active").ok(), Some(false));
    assert_eq!(f.date("Joined").ok().flatten(), Some(day));
    assert_eq!(f.date_time("Seen").ok().flatten(), Some(seen));
    assert_eq!(f.multiple_selects("Tags").ok(), Some(vec!["vip", "new"]));
    assert_eq!(f.single_select("Level").ok().flatten(), Some("senior"));
    assert!(f.number("Name").is_err());
}

#[tokio::test]
async fn typecast_creates_a_missing_select_choice() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let row = [named(1).with("Level", "principal")];

    let refused = people.create(&row, WriteOptions::default()).await;
    let cast = people
        .create(
            &row,
            WriteOptions {
                typecast: true,
                ..WriteOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let err = refused
        .err()
        .unwrap_or_else(|| panic!("an unknown choice was accepted"));
    assert_eq!(err.status(), Some(422));
    assert_eq!(
        cast[0].fields.single_select("Level").ok().flatten(),
        Some("principal")
    );
    let _ = json!(null);
}

#[tokio::test]
async fn the_string_cell_format_works_with_get_and_with_post_list_records() {
    let emulator = emulator().await;
    let table = people_table(&emulator);
    seed_people(&emulator, &table, 3);
    let client = client(&emulator);
    let people = client.table(&BASE, &table.id);
    let as_text = airsync_airtable::CellFormat::String {
        time_zone: "Europe/Paris".into(),
        user_locale: "fr".into(),
    };
    let short = ListOptions {
        cell_format: as_text.clone(),
        ..ListOptions::new()
    };
    // A filter long enough to force the POST form, true for every record.
    let padding: Vec<String> = (0..700).map(|i| format!("recZZZZZZZZZZ{i:04}")).collect();
    let long = ListOptions {
        cell_format: as_text,
        ..ListOptions::new().filter(formula::or([
            formula::record_id_in(&padding),
            formula::boolean(true),
        ]))
    };

    let by_get = people
        .list_all(short)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let by_post = people
        .list_all(long)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(by_get.len(), 3);
    assert_eq!(by_post.len(), 3);
    // Every cell is text, numbers included.
    assert!(by_get.iter().all(|r| r.fields.text("Age").is_ok()));
    assert!(by_post.iter().all(|r| r.fields.text("Age").is_ok()));
    assert_eq!(emulator.stats().count(BASE.as_str(), 200), 2);
}
