//! List, get, create, update, upsert and delete.

use std::collections::HashSet;
use std::time::Duration;

use airsync_emulator::{ids, EmulatorConfig};
use serde_json::{json, Value};

use crate::support::{emulator, enc, people, start, Client, BASE};

#[tokio::test]
async fn paging_through_1050_records_returns_every_record_once_with_offsets_that_round_trip() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let created = client
        .create_all(
            "People",
            (0..1050)
                .map(|i| json!({"Name": format!("P{i:04}"), "Age": i}))
                .collect(),
        )
        .await;
    assert_eq!(created.len(), 1050);

    let mut seen = Vec::new();
    let mut offset: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v0/{BASE}/People?pageSize=100&sort%5B0%5D%5Bfield%5D=Age");
        if let Some(o) = &offset {
            path.push_str(&format!("&offset={}", enc(o)));
        }
        let page = client.get(&path).await.expect(200);
        pages += 1;
        let records = page["records"].as_array().expect("records");
        assert!(records.len() <= 100);
        seen.extend(
            records
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned()),
        );
        match page.get("offset").and_then(Value::as_str) {
            Some(o) => {
                let (itr, rec) = o.split_once('/').expect("offset is itr…/rec…");
                assert!(ids::is_id(itr, ids::ITERATOR), "{o}");
                assert_eq!(
                    rec,
                    records.last().expect("a full page")["id"]
                        .as_str()
                        .expect("id")
                );
                offset = Some(o.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(seen, created, "sorted by Age, the order is creation order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 1050);
}

#[tokio::test]
async fn unsorted_paging_with_a_formula_and_post_list_records_agree() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            (0..250)
                .map(|i| json!({"Name": format!("P{i}"), "Age": i}))
                .collect(),
        )
        .await;
    let mut via_get = Vec::new();
    let mut offset = String::new();
    loop {
        let path = format!(
            "/v0/{BASE}/People?pageSize=30&filterByFormula={}&offset={}",
            enc("{Age} >= 100"),
            enc(&offset)
        );
        let page = client.get(&path).await.expect(200);
        via_get.extend(
            page["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| r["fields"]["Age"].as_i64().expect("age")),
        );
        match page["offset"].as_str() {
            Some(o) => offset = o.to_owned(),
            None => break,
        }
    }
    assert_eq!(via_get, (100..250).collect::<Vec<i64>>());
    let mut via_post = Vec::new();
    let mut body = json!({"pageSize": 40, "filterByFormula": "{Age} >= 100", "offset": ""});
    loop {
        let page = client
            .post(&format!("/v0/{BASE}/People/listRecords"), body.clone())
            .await
            .expect(200);
        via_post.extend(
            page["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| r["fields"]["Age"].as_i64().expect("age")),
        );
        match page["offset"].as_str() {
            Some(o) => body["offset"] = json!(o),
            None => break,
        }
    }
    assert_eq!(via_post, via_get);
}

#[tokio::test]
async fn max_records_truncates_the_page_that_crosses_it() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all("People", (0..40).map(|i| json!({"Age": i})).collect())
        .await;
    let mut sizes = Vec::new();
    let mut offset = None::<String>;
    loop {
        let mut path = format!("/v0/{BASE}/People?pageSize=10&maxRecords=25");
        if let Some(o) = &offset {
            path += &format!("&offset={}", enc(o));
        }
        let page = client.get(&path).await.expect(200);
        sizes.push(page["records"].as_array().expect("records").len());
        match page["offset"].as_str() {
            Some(o) => offset = Some(o.into()),
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5]);
}

#[tokio::test]
async fn an_expired_offset_answers_list_records_iterator_not_available() {
    let emu = start(
        EmulatorConfig::new()
            .without_limits()
            .with_frozen_clock(1_700_000_000_000)
            .with_offset_ttl(Duration::from_secs(60)),
    )
    .await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all("People", (0..3).map(|i| json!({"Age": i})).collect())
        .await;
    let first = client
        .get(&format!("/v0/{BASE}/People?pageSize=1"))
        .await
        .expect(200);
    let offset = first["offset"].as_str().expect("more pages").to_owned();
    let second = client
        .get(&format!(
            "/v0/{BASE}/People?pageSize=1&offset={}",
            enc(&offset)
        ))
        .await
        .expect(200);
    let offset = second["offset"].as_str().expect("more pages").to_owned();
    emu.advance_clock(Duration::from_secs(61));
    let body = client
        .get(&format!(
            "/v0/{BASE}/People?pageSize=1&offset={}",
            enc(&offset)
        ))
        .await
        .expect(422);
    assert_eq!(
        body,
        json!({"error": {"type": "LIST_RECORDS_ITERATOR_NOT_AVAILABLE"}})
    );
}

#[tokio::test]
async fn a_malformed_or_foreign_offset_is_refused() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all("People", (0..3).map(|i| json!({"Age": i})).collect())
        .await;
    client
        .get(&format!("/v0/{BASE}/People?offset=garbage"))
        .await
        .expect_error(422, "INVALID_OFFSET_VALUE");
    let first = client
        .get(&format!("/v0/{BASE}/People?pageSize=1"))
        .await
        .expect(200);
    let offset = enc(first["offset"].as_str().expect("offset"));
    // The same offset with a different formula belongs to another query.
    client
        .get(&format!(
            "/v0/{BASE}/People?pageSize=1&offset={offset}&filterByFormula={}",
            enc("{Age}>0")
        ))
        .await
        .expect_error(422, "INVALID_OFFSET_VALUE");
    // The listing it belongs to still works.
    client
        .get(&format!("/v0/{BASE}/People?pageSize=1&offset={offset}"))
        .await
        .expect(200);
}

#[tokio::test]
async fn fields_projection_sort_and_field_ids_shape_the_answer() {
    let emu = emulator().await;
    let table = people(&emu);
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            vec![
                json!({"Name": "b", "Age": 2}),
                json!({"Name": "a", "Age": 1}),
                json!({"Name": "c"}),
            ],
        )
        .await;
    let page = client
        .get(&format!("/v0/{BASE}/{}?fields%5B%5D=Name&sort%5B0%5D%5Bfield%5D=Name&sort%5B0%5D%5Bdirection%5D=desc&returnFieldsByFieldId=true", table.id))
        .await
        .expect(200);
    let name_id = table.field_id("Name").expect("Name");
    let names: Vec<&Value> = page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["fields"][name_id])
        .collect();
    assert_eq!(names, vec![&json!("c"), &json!("b"), &json!("a")]);
    assert!(
        page["records"][0]["fields"]
            .as_object()
            .expect("fields")
            .len()
            == 1
    );
    let page = client
        .get(&format!("/v0/{BASE}/People?fields%5B%5D=Nope"))
        .await;
    page.expect_error(422, "UNKNOWN_FIELD_NAME");
    let by_id_0 = client
        .get(&format!(
            "/v0/{BASE}/People?returnFieldsByFieldId=0&pageSize=1"
        ))
        .await
        .expect(200);
    assert!(by_id_0["records"][0]["fields"].get("Name").is_some());
}

#[tokio::test]
async fn a_view_lists_its_records_in_its_order() {
    let emu = emulator().await;
    people(&emu);
    emu.create_view(
        BASE,
        "People",
        "Adults",
        Some("{Age} >= 18"),
        vec![airsync_emulator::SortSpec {
            field: "Age".into(),
            descending: true,
        }],
    )
    .expect("view");
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            vec![json!({"Age": 20}), json!({"Age": 10}), json!({"Age": 30})],
        )
        .await;
    let page = client
        .get(&format!("/v0/{BASE}/People?view=Adults"))
        .await
        .expect(200);
    let ages: Vec<i64> = page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["fields"]["Age"].as_i64().expect("age"))
        .collect();
    assert_eq!(ages, vec![30, 20]);
    client
        .get(&format!("/v0/{BASE}/People?view=Nope"))
        .await
        .expect_error(422, "VIEW_NAME_NOT_FOUND");
}

#[tokio::test]
async fn get_finds_a_record_through_any_table_of_its_base_and_404s_unknown_ids() {
    let emu = emulator().await;
    people(&emu);
    emu.create_table(
        BASE,
        airsync_emulator::TableSpec::new(
            "Other",
            vec![airsync_emulator::FieldSpec::new("Title", "singleLineText")],
        ),
    )
    .expect("table");
    let client = Client::new(&emu);
    let ids = client
        .create_all("People", vec![json!({"Name": "Ada"})])
        .await;
    let record = client
        .get(&format!("/v0/{BASE}/Other/{}", ids[0]))
        .await
        .expect(200);
    assert_eq!(record["fields"]["Name"], json!("Ada"));
    assert!(record["createdTime"].as_str().expect("time").ends_with('Z'));
    let missing = client
        .get(&format!("/v0/{BASE}/People/recAAAAAAAAAAAAAA"))
        .await
        .expect(404);
    assert_eq!(
        missing,
        json!({"error": {"type": "MODEL_ID_NOT_FOUND", "message": "Record not found"}})
    );
    client
        .get(&format!("/v0/{BASE}/Nope/{}", ids[0]))
        .await
        .expect_error(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
    client
        .get("/v0/appNoSuchBase0000/People")
        .await
        .expect_error(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
}

#[tokio::test]
async fn creating_answers_the_same_form_with_airtable_ids_and_a_trailing_slash_is_accepted() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let single = client
        .post(
            &format!("/v0/{BASE}/People/"),
            json!({"fields": {"Name": "One"}, "typecast": false}),
        )
        .await
        .expect(200);
    let id = single["id"].as_str().expect("a bare record");
    assert!(ids::is_id(id, ids::RECORD) && id.len() == 17);
    let batch = client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"records": [{"fields": {"Name": "A"}}, {"fields": {"Name": "B"}}]}),
        )
        .await
        .expect(200);
    let names: Vec<&Value> = batch["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| &r["fields"]["Name"])
        .collect();
    assert_eq!(names, vec![&json!("A"), &json!("B")]);
}

#[tokio::test]
async fn a_batch_of_eleven_or_with_one_bad_record_is_refused_whole() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let eleven: Vec<Value> = (0..11).map(|i| json!({"fields": {"Age": i}})).collect();
    let body = client
        .post(&format!("/v0/{BASE}/People"), json!({"records": eleven}))
        .await
        .expect_error(422, "INVALID_RECORDS");
    assert_eq!(
        body["error"]["message"],
        json!("A maximum of 10 records can be created per request but you have provided 11.")
    );
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"records": [{"fields": {"Age": 1}}, {"fields": {"Age": "x"}}]}),
        )
        .await
        .expect_error(422, "INVALID_VALUE_FOR_COLUMN");
    assert!(emu.dump_table(BASE, "People").expect("dump").is_empty());
}

#[tokio::test]
async fn patch_merges_and_put_clears_every_field_it_does_not_name() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let id = client
        .create_all(
            "People",
            vec![json!({"Name": "Ada", "Age": 36, "Notes": "n"})],
        )
        .await
        .remove(0);
    let patched = client
        .patch(
            &format!("/v0/{BASE}/People/{id}"),
            json!({"fields": {"Age": 37}}),
        )
        .await
        .expect(200);
    assert_eq!(
        patched["fields"],
        json!({"Name": "Ada", "Age": 37, "Notes": "n"})
    );
    let put = client
        .put(
            &format!("/v0/{BASE}/People"),
            json!({"records": [{"id": id, "fields": {"Age": 2}}]}),
        )
        .await
        .expect(200);
    assert_eq!(put["records"][0]["fields"], json!({"Age": 2}));
    let nulls = client
        .patch(
            &format!("/v0/{BASE}/People"),
            json!({"records": [{"id": id, "fields": {"Age": null}}]}),
        )
        .await
        .expect(200);
    assert_eq!(nulls["records"][0]["fields"], json!({}));
    client
        .patch(
            &format!("/v0/{BASE}/People"),
            json!({"records": [{"id": "recAAAAAAAAAAAAAA", "fields": {}}]}),
        )
        .await
        .expect_error(422, "ROW_DOES_NOT_EXIST");
    client
        .patch(
            &format!("/v0/{BASE}/People/recAAAAAAAAAAAAAA"),
            json!({"fields": {}}),
        )
        .await
        .expect_error(404, "MODEL_ID_NOT_FOUND");
}

#[tokio::test]
async fn upsert_creates_and_updates_in_one_call() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let existing = client
        .create_all("People", vec![json!({"Name": "Twin Peaks", "Age": 1})])
        .await
        .remove(0);
    let answer = client
        .patch(
            &format!("/v0/{BASE}/People"),
            json!({
                "performUpsert": {"fieldsToMergeOn": ["Name"]},
                "records": [{"fields": {"Name": "Twin Peaks", "Done": true}}, {"fields": {"Name": "New Park", "Done": true}}],
            }),
        )
        .await
        .expect(200);
    assert_eq!(answer["updatedRecords"], json!([existing]));
    let created = answer["createdRecords"].as_array().expect("created");
    assert_eq!(created.len(), 1);
    assert_eq!(answer["records"][0]["id"], json!(existing));
    assert_eq!(
        answer["records"][0]["fields"],
        json!({"Name": "Twin Peaks", "Age": 1, "Done": true})
    );
    assert_eq!(answer["records"][1]["id"], created[0]);
    // PUT upsert clears unlisted fields of the matched record.
    let answer = client
        .put(&format!("/v0/{BASE}/People"), json!({"performUpsert": {"fieldsToMergeOn": ["Name"]}, "records": [{"fields": {"Name": "Twin Peaks"}}]}))
        .await
        .expect(200);
    assert_eq!(
        answer["records"][0]["fields"],
        json!({"Name": "Twin Peaks"})
    );
    // A checkbox cannot be merged on.
    client
        .patch(&format!("/v0/{BASE}/People"), json!({"performUpsert": {"fieldsToMergeOn": ["Done"]}, "records": [{"fields": {"Done": true}}]}))
        .await
        .expect_error(422, "INVALID_REQUEST_UNKNOWN");
}

#[tokio::test]
async fn upsert_with_several_matches_fails_and_changes_nothing() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            vec![json!({"Name": "Dup"}), json!({"Name": "Dup"})],
        )
        .await;
    client
        .patch(&format!("/v0/{BASE}/People"), json!({"performUpsert": {"fieldsToMergeOn": ["Name"]}, "records": [{"fields": {"Name": "Solo"}}, {"fields": {"Name": "Dup", "Age": 3}}]}))
        .await
        .expect(422);
    assert_eq!(emu.dump_table(BASE, "People").expect("dump").len(), 2);
}

#[tokio::test]
async fn delete_by_records_removes_them_and_unknown_ids_refuse_the_batch() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let ids = client
        .create_all("People", (0..3).map(|i| json!({"Age": i})).collect())
        .await;
    let answer = client
        .delete(&format!(
            "/v0/{BASE}/People?records%5B%5D={}&records%5B%5D={}",
            ids[0], ids[1]
        ))
        .await
        .expect(200);
    assert_eq!(
        answer,
        json!({"records": [{"id": ids[0], "deleted": true}, {"id": ids[1], "deleted": true}]})
    );
    client
        .delete(&format!(
            "/v0/{BASE}/People?records[]={}&records[]=recAAAAAAAAAAAAAA",
            ids[2]
        ))
        .await
        .expect(404);
    let single = client
        .delete(&format!("/v0/{BASE}/People/{}", ids[2]))
        .await
        .expect(200);
    assert_eq!(single, json!({"id": ids[2], "deleted": true}));
    assert!(emu.dump_table(BASE, "People").expect("dump").is_empty());
}

#[tokio::test]
async fn string_cell_format_needs_a_time_zone_and_a_locale() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .create_all(
            "People",
            vec![json!({"Name": "Ada", "Age": 36, "Done": true})],
        )
        .await;
    client
        .get(&format!("/v0/{BASE}/People?cellFormat=string"))
        .await
        .expect_error(422, "INVALID_REQUEST_UNKNOWN");
    let page = client
        .get(&format!(
            "/v0/{BASE}/People?cellFormat=string&timeZone=Europe%2FParis&userLocale=en"
        ))
        .await
        .expect(200);
    assert_eq!(
        page["records"][0]["fields"],
        json!({"Name": "Ada", "Age": "36", "Done": "checked"})
    );
}

#[tokio::test]
async fn unknown_query_parameters_and_bodies_that_are_not_json_are_refused() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    client
        .get(&format!("/v0/{BASE}/People?bogus=1"))
        .await
        .expect_error(422, "INVALID_REQUEST_UNKNOWN");
    let resp = client
        .http
        .post(format!("{}/v0/{BASE}/People", client.base_url))
        .bearer_auth(&client.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 400);
    client.get("/v0/nothing/here/at/all").await.expect(404);
}
