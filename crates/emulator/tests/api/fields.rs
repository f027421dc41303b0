//! Each field type's validation, typecast, omission and computed rules.

use airsync_emulator::{FieldSpec, TableSpec};
use serde_json::{json, Value};

use crate::support::{emulator, Client, BASE};

fn all_types() -> TableSpec {
    TableSpec::new(
        "Things",
        vec![
            FieldSpec::new("Name", "singleLineText"),
            FieldSpec::new("Long", "multilineText"),
            FieldSpec::new("Email", "email"),
            FieldSpec::new("Site", "url"),
            FieldSpec::new("Phone", "phoneNumber"),
            FieldSpec::new("Count", "number").with_options(json!({"precision": 0})),
            FieldSpec::new("Price", "currency").with_options(json!({"precision": 2, "symbol": "€"})),
            FieldSpec::new("Share", "percent").with_options(json!({"precision": 1})),
            FieldSpec::new("Done", "checkbox"),
            FieldSpec::new("Day", "date").with_options(json!({"dateFormat": {"name": "iso"}})),
            FieldSpec::new("At", "dateTime").with_options(json!({"dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}, "timeZone": "Europe/Paris"})),
            FieldSpec::new("Level", "singleSelect").with_options(json!({"choices": [{"name": "Low"}, {"name": "High"}]})),
            FieldSpec::new("Tags", "multipleSelects").with_options(json!({"choices": [{"name": "a"}, {"name": "b"}]})),
            FieldSpec::new("Files", "multipleAttachments"),
            FieldSpec::new("Created", "createdTime"),
            FieldSpec::new("Modified", "lastModifiedTime"),
            FieldSpec::new("Number", "autoNumber"),
        ],
    )
}

async fn write(client: &Client, fields: Value, typecast: bool) -> crate::support::Answer {
    client
        .post(
            &format!("/v0/{BASE}/Things"),
            json!({"fields": fields, "typecast": typecast}),
        )
        .await
}

#[tokio::test]
async fn empty_values_are_omitted_and_zero_is_kept() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    let r = write(
        &client,
        json!({"Name": "", "Long": "", "Count": 0, "Done": false, "Tags": [], "Files": []}),
        false,
    )
    .await
    .expect(200);
    let fields = r["fields"].as_object().expect("fields");
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert!(keys.contains(&"Count"), "{r}");
    assert_eq!(fields["Count"], json!(0));
    for absent in ["Name", "Long", "Done", "Tags", "Files"] {
        assert!(
            !fields.contains_key(absent),
            "{absent} should be omitted: {r}"
        );
    }
    for computed in ["Created", "Number", "Modified"] {
        assert!(fields.contains_key(computed), "{computed} is computed: {r}");
    }
}

#[tokio::test]
async fn text_fields_take_strings_and_typecast_turns_numbers_into_text() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    write(&client, json!({"Name": 5}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let r = write(&client, json!({"Name": 5, "Long": true}), true)
        .await
        .expect(200);
    assert_eq!(r["fields"]["Name"], json!("5"));
    assert_eq!(r["fields"]["Long"], json!("true"));
    let r = write(
        &client,
        json!({"Site": "not even a url", "Phone": "+33 1 23"}),
        false,
    )
    .await
    .expect(200);
    assert_eq!(r["fields"]["Site"], json!("not even a url"));
}

#[tokio::test]
async fn emails_must_look_like_emails() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    write(&client, json!({"Email": "nope"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    write(&client, json!({"Email": "a b@c.d"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let r = write(&client, json!({"Email": "ada@example.com"}), false)
        .await
        .expect(200);
    assert_eq!(r["fields"]["Email"], json!("ada@example.com"));
}

#[tokio::test]
async fn numbers_refuse_text_unless_typecast() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    write(&client, json!({"Count": "12"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    write(&client, json!({"Price": true}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let r = write(
        &client,
        json!({"Count": "12", "Price": "€1,234.50", "Share": "12.5%"}),
        true,
    )
    .await
    .expect(200);
    assert_eq!(r["fields"]["Count"], json!(12));
    assert_eq!(r["fields"]["Price"], json!(1234.5));
    assert_eq!(r["fields"]["Share"], json!(0.125));
    write(&client, json!({"Count": "twelve"}), true)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
}

#[tokio::test]
async fn checkboxes_take_booleans_and_read_back_only_when_checked() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    write(&client, json!({"Done": "yes"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let r = write(&client, json!({"Done": true}), false)
        .await
        .expect(200);
    assert_eq!(r["fields"]["Done"], json!(true));
    let r = write(&client, json!({"Done": "checked"}), true)
        .await
        .expect(200);
    assert_eq!(r["fields"]["Done"], json!(true));
}

#[tokio::test]
async fn dates_and_date_times_are_normalized_and_zone_less_times_use_the_field_zone() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    let r = write(
        &client,
        json!({"Day": "2024-02-29", "At": "2024-01-15T10:00"}),
        false,
    )
    .await
    .expect(200);
    assert_eq!(r["fields"]["Day"], json!("2024-02-29"));
    assert_eq!(r["fields"]["At"], json!("2024-01-15T09:00:00.000Z"));
    let r = write(&client, json!({"At": 1_640_520_000_000_i64}), false)
        .await
        .expect(200);
    assert_eq!(r["fields"]["At"], json!("2021-12-26T12:00:00.000Z"));
    let r = write(&client, json!({"At": "2024-01-15T10:00:00+02:00"}), false)
        .await
        .expect(200);
    assert_eq!(r["fields"]["At"], json!("2024-01-15T08:00:00.000Z"));
    write(&client, json!({"Day": "29/02/2024"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    write(&client, json!({"At": "soon"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
}

#[tokio::test]
async fn selects_refuse_unknown_choices_unless_typecast_adds_them() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    write(&client, json!({"Level": "Mid"}), false)
        .await
        .expect_error(422, "INVALID_MULTIPLE_CHOICE_OPTIONS");
    write(&client, json!({"Tags": ["a", "z"]}), false)
        .await
        .expect_error(422, "INVALID_MULTIPLE_CHOICE_OPTIONS");
    write(&client, json!({"Tags": "a"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let r = write(&client, json!({"Level": "Mid", "Tags": ["b", "z"]}), true)
        .await
        .expect(200);
    assert_eq!(r["fields"]["Level"], json!("Mid"));
    assert_eq!(r["fields"]["Tags"], json!(["b", "z"]));
    let schema = client
        .get(&format!("/v0/meta/bases/{BASE}/tables"))
        .await
        .expect(200);
    let level = schema["tables"][0]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "Level")
        .expect("Level")
        .clone();
    let names: Vec<&Value> = level["options"]["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, vec![&json!("Low"), &json!("High"), &json!("Mid")]);
    assert!(level["options"]["choices"][2]["id"]
        .as_str()
        .expect("id")
        .starts_with("sel"));
}

#[tokio::test]
async fn computed_fields_cannot_be_written_and_unknown_fields_are_named() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    for computed in ["Created", "Modified", "Number"] {
        let body = write(&client, json!({computed: 1}), false)
            .await
            .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
        assert_eq!(
            body["error"]["message"],
            json!(format!(
                "Field \"{computed}\" cannot accept a value because the field is computed"
            ))
        );
    }
    let body = write(&client, json!({"Nope": 1}), false)
        .await
        .expect_error(422, "UNKNOWN_FIELD_NAME");
    assert_eq!(
        body["error"]["message"],
        json!("Unknown field name: \"Nope\"")
    );
}

#[tokio::test]
async fn auto_numbers_count_up_and_last_modified_time_follows_edits() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    let a = write(&client, json!({"Name": "a"}), false)
        .await
        .expect(200);
    let b = write(&client, json!({"Name": "b"}), false)
        .await
        .expect(200);
    assert_eq!(a["fields"]["Number"], json!(1));
    assert_eq!(b["fields"]["Number"], json!(2));
    emu.advance_clock(std::time::Duration::from_secs(3600));
    let id = a["id"].as_str().expect("id");
    let edited = client
        .patch(
            &format!("/v0/{BASE}/Things/{id}"),
            json!({"fields": {"Name": "a2"}}),
        )
        .await
        .expect(200);
    assert_ne!(edited["fields"]["Modified"], a["fields"]["Modified"]);
    assert_eq!(edited["fields"]["Created"], a["fields"]["Created"]);
}

#[tokio::test]
async fn attachments_are_stored_as_given_with_ids_and_kept_by_id() {
    let emu = emulator().await;
    emu.create_table(BASE, all_types()).expect("table");
    let client = Client::new(&emu);
    let r = write(
        &client,
        json!({"Files": [{"url": "https://example.com/a/photo.jpg"}]}),
        false,
    )
    .await
    .expect(200);
    let file = &r["fields"]["Files"][0];
    assert_eq!(file["filename"], json!("photo.jpg"));
    let att = file["id"].as_str().expect("id").to_owned();
    assert!(att.starts_with("att"));
    let id = r["id"].as_str().expect("id");
    let kept = client
        .patch(&format!("/v0/{BASE}/Things/{id}"), json!({"fields": {"Files": [{"id": att}, {"url": "https://example.com/b.pdf", "filename": "B"}]}}))
        .await
        .expect(200);
    assert_eq!(kept["fields"]["Files"][0]["id"], json!(att));
    assert_eq!(kept["fields"]["Files"][1]["filename"], json!("B"));
    write(&client, json!({"Files": "https://example.com/x"}), false)
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
}

#[tokio::test]
async fn links_need_existing_records_and_keep_the_inverse_field_in_step() {
    let emu = emulator().await;
    let teams = emu
        .create_table(
            BASE,
            TableSpec::new("Teams", vec![FieldSpec::new("Title", "singleLineText")]),
        )
        .expect("teams");
    emu.create_table(
        BASE,
        TableSpec::new(
            "Players",
            vec![
                FieldSpec::new("Name", "singleLineText"),
                FieldSpec::new("Team", "multipleRecordLinks")
                    .with_options(json!({"linkedTableId": teams.id})),
            ],
        ),
    )
    .expect("players");
    let teams = emu.table(BASE, "Teams").expect("teams");
    assert_eq!(
        teams.fields[1].name, "Players",
        "the inverse field is named after the other table"
    );
    let client = Client::new(&emu);
    let team = client
        .create_all("Teams", vec![json!({"Title": "Red"})])
        .await
        .remove(0);
    client
        .post(
            &format!("/v0/{BASE}/Players"),
            json!({"fields": {"Team": ["recAAAAAAAAAAAAAA"]}}),
        )
        .await
        .expect_error(422, "ROW_DOES_NOT_EXIST");
    client
        .post(
            &format!("/v0/{BASE}/Players"),
            json!({"fields": {"Team": "Red"}}),
        )
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    let player = client
        .post(
            &format!("/v0/{BASE}/Players"),
            json!({"fields": {"Name": "Ada", "Team": [team]}}),
        )
        .await
        .expect(200);
    let pid = player["id"].as_str().expect("id").to_owned();
    let red = client
        .get(&format!("/v0/{BASE}/Teams/{team}"))
        .await
        .expect(200);
    assert_eq!(red["fields"]["Players"], json!([pid]));
    // Typecast matches the primary field, or creates the linked record.
    let p2 = client
        .post(
            &format!("/v0/{BASE}/Players"),
            json!({"fields": {"Team": ["Red", "Blue"]}, "typecast": true}),
        )
        .await
        .expect(200);
    assert_eq!(p2["fields"]["Team"][0], json!(team));
    assert_eq!(emu.dump_table(BASE, "Teams").expect("dump").len(), 2);
    // Deleting the player removes it from the team's inverse field.
    client
        .delete(&format!("/v0/{BASE}/Players/{pid}"))
        .await
        .expect(200);
    let red = client
        .get(&format!("/v0/{BASE}/Teams/{team}"))
        .await
        .expect(200);
    assert_eq!(red["fields"]["Players"], json!([p2["id"]]));
}
