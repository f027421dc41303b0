//! The metadata API.

use serde_json::{json, Value};

use crate::support::{emulator, Client, BASE};

#[tokio::test]
async fn tables_and_fields_are_created_listed_and_updated_through_the_metadata_api() {
    let emu = emulator().await;
    let client = Client::new(&emu);
    let bases = client.get("/v0/meta/bases").await.expect(200);
    assert_eq!(
        bases["bases"],
        json!([{"id": BASE, "name": BASE, "permissionLevel": "create"}])
    );

    let table = client
        .post(
            &format!("/v0/meta/bases/{BASE}/tables"),
            json!({"name": "Clients", "description": "who pays", "fields": [
                {"name": "Name", "type": "singleLineText"},
                {"name": "Since", "type": "date", "options": {"dateFormat": {"name": "iso"}}},
            ]}),
        )
        .await
        .expect(200);
    let table_id = table["id"].as_str().expect("id").to_owned();
    assert!(table_id.starts_with("tbl") && table_id.len() == 17);
    assert_eq!(table["primaryFieldId"], table["fields"][0]["id"]);
    assert_eq!(
        table["fields"][1]["options"]["dateFormat"],
        json!({"name": "iso", "format": "YYYY-MM-DD"})
    );
    assert_eq!(table["views"][0]["type"], json!("grid"));
    assert!(table["views"][0]["id"]
        .as_str()
        .expect("view")
        .starts_with("viw"));

    let field = client
        .post(&format!("/v0/meta/bases/{BASE}/tables/{table_id}/fields"), json!({"name": "Spend", "type": "currency", "options": {"precision": 2, "symbol": "$"}}))
        .await
        .expect(200);
    let field_id = field["id"].as_str().expect("id").to_owned();
    assert!(field_id.starts_with("fld"));
    let renamed = client
        .patch(
            &format!("/v0/meta/bases/{BASE}/tables/{table_id}/fields/{field_id}"),
            json!({"name": "Total spend", "description": "all time"}),
        )
        .await
        .expect(200);
    assert_eq!(renamed["name"], json!("Total spend"));
    let table = client
        .patch(
            &format!("/v0/meta/bases/{BASE}/tables/{table_id}"),
            json!({"name": "Customers"}),
        )
        .await
        .expect(200);
    assert_eq!(table["name"], json!("Customers"));

    let schema = client
        .get(&format!(
            "/v0/meta/bases/{BASE}/tables?include%5B%5D=visibleFieldIds"
        ))
        .await
        .expect(200);
    let t = &schema["tables"][0];
    assert_eq!(t["name"], json!("Customers"));
    assert_eq!(t["fields"].as_array().expect("fields").len(), 3);
    assert_eq!(
        t["views"][0]["visibleFieldIds"]
            .as_array()
            .expect("visible")
            .len(),
        3
    );
    // Records can be addressed by the new name.
    client
        .post(
            &format!("/v0/{BASE}/Customers"),
            json!({"fields": {"Total spend": 12.5}}),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn invalid_schema_requests_are_refused() {
    let emu = emulator().await;
    let client = Client::new(&emu);
    let path = format!("/v0/meta/bases/{BASE}/tables");
    // A number field needs its precision.
    client
        .post(
            &path,
            json!({"name": "T", "fields": [{"name": "N", "type": "number"}]}),
        )
        .await
        .expect(422);
    client
        .post(
            &path,
            json!({"name": "T", "fields": [{"name": "N", "type": "hologram"}]}),
        )
        .await
        .expect_error(422, "INVALID_FIELD_TYPE");
    client.post(&path, json!({"name": "T", "fields": [{"name": "A", "type": "singleLineText"}, {"name": "a", "type": "singleLineText"}]})).await.expect_error(422, "DUPLICATE_OR_EMPTY_FIELD_NAME");
    client
        .post(
            &path,
            json!({"name": "T", "fields": [{"name": "A", "type": "singleLineText"}]}),
        )
        .await
        .expect(200);
    client
        .post(
            &path,
            json!({"name": "t", "fields": [{"name": "A", "type": "singleLineText"}]}),
        )
        .await
        .expect_error(422, "DUPLICATE_TABLE_NAME");
    client
        .post(
            "/v0/meta/bases/appNoSuchBase0000/tables",
            json!({"name": "X", "fields": [{"name": "A", "type": "singleLineText"}]}),
        )
        .await
        .expect_error(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND");
}

#[tokio::test]
async fn a_base_is_created_with_its_tables() {
    let emu = emulator().await;
    let client = Client::new(&emu);
    let created = client
        .post("/v0/meta/bases", json!({"name": "Coaching", "workspaceId": "wspAAAAAAAAAAAAAA", "tables": [{"name": "Users", "fields": [{"name": "Email", "type": "email"}]}]}))
        .await
        .expect(200);
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("app") && id.len() == 17);
    let bases = client.get("/v0/meta/bases").await.expect(200);
    let names: Vec<&Value> = bases["bases"]
        .as_array()
        .expect("bases")
        .iter()
        .map(|b| &b["name"])
        .collect();
    assert_eq!(names, vec![&json!(BASE), &json!("Coaching")]);
    client
        .post(
            &format!("/v0/{id}/Users"),
            json!({"fields": {"Email": "a@b.co"}}),
        )
        .await
        .expect(200);
}
