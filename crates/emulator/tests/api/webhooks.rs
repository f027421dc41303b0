//! The webhooks API: lifecycle, payloads, filters, pings and expiry.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use airsync_emulator::{ClientEdit, EmulatorConfig};
use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine;
use hmac::Mac;
use serde_json::{json, Map, Value};

use crate::support::{emulator, people, start, Client, BASE};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A notification receiver on port 0 that records pings and answers with
/// a settable status.
struct Receiver {
    url: String,
    hits: Arc<parking_lot::Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
}

async fn receiver() -> Receiver {
    let hits: Arc<parking_lot::Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let status = Arc::new(AtomicU16::new(200));
    let (h, s) = (hits.clone(), status.clone());
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (h, s) = (h.clone(), s.clone());
            async move {
                h.lock().push((headers, body));
                axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst))
                    .unwrap_or(axum::http::StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/ping", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, hits, status }
}

impl Receiver {
    /// Waits until at least `n` pings arrived.
    async fn wait_for(&self, n: usize) {
        for _ in 0..100 {
            if self.hits.lock().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} pings, got {}", self.hits.lock().len());
    }
}

/// Polls the webhook list until the first hook satisfies `done`.
async fn first_hook_when(client: &Client, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let list = client
            .get(&format!("/v0/bases/{BASE}/webhooks"))
            .await
            .expect(200);
        let hook = list["webhooks"][0].clone();
        if done(&hook) {
            return hook;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the webhook never reached the expected state");
}

async fn create_hook(client: &Client, spec: Value, url: Option<&str>) -> Value {
    let mut body = json!({"specification": {"options": spec}});
    if let Some(u) = url {
        body["notificationUrl"] = json!(u);
    }
    client
        .post(&format!("/v0/bases/{BASE}/webhooks"), body)
        .await
        .expect(200)
}

async fn payloads(client: &Client, hook: &str, cursor: u64, limit: u64) -> Value {
    client
        .get(&format!(
            "/v0/bases/{BASE}/webhooks/{hook}/payloads?cursor={cursor}&limit={limit}"
        ))
        .await
        .expect(200)
}

fn hook_id(created: &Value) -> String {
    created["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_webhook_is_created_listed_refreshed_switched_and_deleted() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let created = create_hook(
        &client,
        json!({"filters": {"dataTypes": ["tableData"]}}),
        Some("https://example.com/hook"),
    )
    .await;
    let id = hook_id(&created);
    assert!(id.starts_with("ach") && id.len() == 17);
    let secret = base64::engine::general_purpose::STANDARD
        .decode(created["macSecretBase64"].as_str().expect("secret"))
        .expect("base64");
    assert_eq!(secret.len(), 32);
    let expires =
        chrono::DateTime::parse_from_rfc3339(created["expirationTime"].as_str().expect("expiry"))
            .expect("time");
    let in_days = (expires.with_timezone(&chrono::Utc) - emu.now()).num_hours();
    assert!((167..=168).contains(&in_days), "{in_days}");

    let list = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200);
    let hook = &list["webhooks"][0];
    assert_eq!(hook["id"], json!(id));
    assert_eq!(hook["cursorForNextPayload"], json!(1));
    assert_eq!(hook["isHookEnabled"], json!(true));
    assert_eq!(hook["areNotificationsEnabled"], json!(true));
    assert_eq!(hook["lastNotificationResult"], Value::Null);
    assert!(hook.get("macSecretBase64").is_none());
    assert_eq!(
        hook["specification"]["options"]["filters"]["dataTypes"],
        json!(["tableData"])
    );

    emu.advance_clock(DAY);
    let refreshed = client
        .post(
            &format!("/v0/bases/{BASE}/webhooks/{id}/refresh"),
            json!({}),
        )
        .await
        .expect(200);
    assert_ne!(refreshed["expirationTime"], created["expirationTime"]);
    client
        .post(
            &format!("/v0/bases/{BASE}/webhooks/{id}/enableNotifications"),
            json!({"enable": false}),
        )
        .await
        .expect(200);
    let list = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200);
    assert_eq!(list["webhooks"][0]["areNotificationsEnabled"], json!(false));
    client
        .delete(&format!("/v0/bases/{BASE}/webhooks/{id}"))
        .await
        .expect(200);
    assert_eq!(
        client
            .get(&format!("/v0/bases/{BASE}/webhooks"))
            .await
            .expect(200),
        json!({"webhooks": []})
    );
    client
        .get(&format!("/v0/bases/{BASE}/webhooks/{id}/payloads"))
        .await
        .expect(404);
    // A specification must name known data types.
    client
        .post(
            &format!("/v0/bases/{BASE}/webhooks"),
            json!({"specification": {"options": {"filters": {"dataTypes": ["everything"]}}}}),
        )
        .await
        .expect(422);
}

#[tokio::test]
async fn payload_cursors_page_through_200_changes() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let id = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"]}}),
            None,
        )
        .await,
    );
    for i in 0..200 {
        client
            .post(&format!("/v0/{BASE}/People"), json!({"fields": {"Age": i}}))
            .await
            .expect(200);
    }
    let mut cursor = 1;
    let mut pages = Vec::new();
    let mut transactions = Vec::new();
    loop {
        let page = payloads(&client, &id, cursor, 50).await;
        let items = page["payloads"].as_array().expect("payloads");
        pages.push((items.len(), page["mightHaveMore"].as_bool().expect("flag")));
        transactions.extend(
            items
                .iter()
                .map(|p| p["baseTransactionNumber"].as_u64().expect("number")),
        );
        assert_eq!(page["cursor"].as_u64(), Some(cursor + items.len() as u64));
        cursor = page["cursor"].as_u64().expect("cursor");
        if !page["mightHaveMore"].as_bool().expect("flag") {
            break;
        }
    }
    assert_eq!(pages, vec![(50, true), (50, true), (50, true), (50, false)]);
    assert_eq!(cursor, 201);
    assert!(transactions.windows(2).all(|w| w[0] < w[1]));
    let empty = payloads(&client, &id, 201, 50).await;
    assert_eq!(
        empty,
        json!({"cursor": 201, "mightHaveMore": false, "payloads": []})
    );
    let list = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200);
    assert_eq!(list["webhooks"][0]["cursorForNextPayload"], json!(201));
    // An old cursor reads again from there.
    let again = payloads(&client, &id, 150, 10).await;
    assert_eq!(again["cursor"], json!(160));
    client
        .get(&format!("/v0/bases/{BASE}/webhooks/{id}/payloads?limit=51"))
        .await
        .expect(422);
}

#[tokio::test]
async fn payloads_carry_created_changed_and_destroyed_records_in_v2_cell_format() {
    let emu = emulator().await;
    let table = people(&emu);
    let client = Client::new(&emu);
    let spec = json!({
        "filters": {"dataTypes": ["tableData"]},
        "includes": {"includePreviousCellValues": true, "includeCellValuesInFieldIds": "all"},
    });
    let id = hook_id(&create_hook(&client, spec, None).await);
    let rec = client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "Ada", "Level": "High"}}),
        )
        .await
        .expect(200);
    let rec_id = rec["id"].as_str().expect("id").to_owned();
    client
        .patch(
            &format!("/v0/{BASE}/People/{rec_id}"),
            json!({"fields": {"Name": "Ada L."}}),
        )
        .await
        .expect(200);
    let mut fields = Map::new();
    fields.insert("Age".into(), json!(36));
    emu.edit_as_user(
        BASE,
        "People",
        ClientEdit {
            update: vec![airsync_emulator::RecordPatch {
                id: rec_id.clone(),
                fields,
            }],
            ..ClientEdit::default()
        },
    )
    .expect("edit");
    client
        .delete(&format!("/v0/{BASE}/People/{rec_id}"))
        .await
        .expect(200);

    let page = payloads(&client, &id, 1, 50).await;
    let p = page["payloads"].as_array().expect("payloads");
    assert_eq!(p.len(), 4);
    let (name, level, age) = (
        table.field_id("Name").expect("f"),
        table.field_id("Level").expect("f"),
        table.field_id("Age").expect("f"),
    );
    let t = &table.id;

    assert_eq!(p[0]["payloadFormat"], json!("v0"));
    assert_eq!(p[0]["actionMetadata"]["source"], json!("publicApi"));
    assert!(p[0]["actionMetadata"]["sourceMetadata"]["user"]["id"]
        .as_str()
        .expect("user")
        .starts_with("usr"));
    let created = &p[0]["changedTablesById"][t]["createdRecordsById"][&rec_id];
    assert_eq!(created["cellValuesByFieldId"][name], json!("Ada"));
    let high = &created["cellValuesByFieldId"][level];
    assert_eq!(high["name"], json!("High"));
    assert_eq!(high["color"], json!("redBright"));
    assert!(high["id"].as_str().expect("choice id").starts_with("sel"));

    let changed = &p[1]["changedTablesById"][t]["changedRecordsById"][&rec_id];
    assert_eq!(
        changed["current"]["cellValuesByFieldId"],
        json!({name: "Ada L."})
    );
    assert_eq!(
        changed["previous"]["cellValuesByFieldId"],
        json!({name: "Ada"})
    );
    assert_eq!(
        changed["unchanged"]["cellValuesByFieldId"][level]["name"],
        json!("High")
    );

    assert_eq!(p[2]["actionMetadata"]["source"], json!("client"));
    assert_eq!(
        p[2]["changedTablesById"][t]["changedRecordsById"][&rec_id]["current"]
            ["cellValuesByFieldId"],
        json!({age: 36})
    );
    assert_eq!(
        p[3]["changedTablesById"][t]["destroyedRecordIds"],
        json!([rec_id])
    );
    let numbers: Vec<u64> = p
        .iter()
        .map(|x| x["baseTransactionNumber"].as_u64().expect("n"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn specification_filters_select_what_a_webhook_sees() {
    let emu = emulator().await;
    let table = people(&emu);
    let other = emu
        .create_table(
            BASE,
            airsync_emulator::TableSpec::new(
                "Other",
                vec![airsync_emulator::FieldSpec::new("T", "singleLineText")],
            ),
        )
        .expect("other");
    let client = Client::new(&emu);
    let age = table.field_id("Age").expect("Age");
    let ui_only = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"], "fromSources": ["client"]}}),
            None,
        )
        .await,
    );
    let watch_age = hook_id(&create_hook(&client, json!({"filters": {"dataTypes": ["tableData"], "watchDataInFieldIds": [age], "changeTypes": ["update"]}}), None).await);
    let other_scope = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"], "recordChangeScope": other.id}}),
            None,
        )
        .await,
    );
    let schema = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableFields"]}}),
            None,
        )
        .await,
    );

    let id = client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "a"}}),
        )
        .await
        .expect(200)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    client
        .patch(
            &format!("/v0/{BASE}/People/{id}"),
            json!({"fields": {"Name": "b"}}),
        )
        .await
        .expect(200);
    client
        .patch(
            &format!("/v0/{BASE}/People/{id}"),
            json!({"fields": {"Age": 3}}),
        )
        .await
        .expect(200);
    client
        .post(
            &format!("/v0/meta/bases/{BASE}/tables/{}/fields", table.id),
            json!({"name": "Extra", "type": "singleLineText"}),
        )
        .await
        .expect(200);

    let count = |v: &Value| v["payloads"].as_array().map_or(0, Vec::len);
    assert_eq!(count(&payloads(&client, &ui_only, 1, 50).await), 0);
    let watched = payloads(&client, &watch_age, 1, 50).await;
    assert_eq!(count(&watched), 1, "{watched}");
    assert!(
        watched["payloads"][0]["changedTablesById"][&table.id]["changedRecordsById"][&id]
            ["current"]["cellValuesByFieldId"][age]
            == json!(3)
    );
    assert_eq!(count(&payloads(&client, &other_scope, 1, 50).await), 0);
    let fields = payloads(&client, &schema, 1, 50).await;
    assert_eq!(count(&fields), 1, "{fields}");
    let created = fields["payloads"][0]["changedTablesById"][&table.id]["createdFieldsById"]
        .as_object()
        .expect("created fields")
        .clone();
    assert_eq!(
        created.values().next().expect("one field"),
        &json!({"name": "Extra", "type": "singleLineText"})
    );
}

fn verify(secret_b64: &str, body: &[u8], header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret_b64)
        .expect("base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    header == format!("hmac-sha256={hex}")
}

#[tokio::test]
async fn pings_are_signed_with_the_secret_from_creation_and_fail_verification_with_another() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let rx = receiver().await;
    let created = create_hook(
        &client,
        json!({"filters": {"dataTypes": ["tableData"]}}),
        Some(&rx.url),
    )
    .await;
    let other = create_hook(
        &client,
        json!({"filters": {"dataTypes": ["tableFields"]}}),
        None,
    )
    .await;
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "a"}}),
        )
        .await
        .expect(200);
    rx.wait_for(1).await;
    let (headers, body) = rx.hits.lock()[0].clone();
    let header = headers
        .get("x-airtable-content-mac")
        .expect("signed")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(verify(
        created["macSecretBase64"].as_str().expect("secret"),
        &body,
        &header
    ));
    assert!(!verify(
        other["macSecretBase64"].as_str().expect("secret"),
        &body,
        &header
    ));
    let ping: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(ping["base"], json!({"id": BASE}));
    assert_eq!(ping["webhook"], json!({"id": created["id"]}));
    assert!(ping["timestamp"].as_str().expect("time").ends_with('Z'));
    assert_eq!(
        airsync_emulator::content_mac(created["macSecretBase64"].as_str().expect("s"), &body)
            .as_deref(),
        Some(header.as_str())
    );
    let hook = first_hook_when(&client, |h| !h["lastNotificationResult"].is_null()).await;
    assert_eq!(hook["lastNotificationResult"]["success"], json!(true));
    assert!(hook["lastSuccessfulNotificationTime"].is_string());
}

#[tokio::test]
async fn failed_pings_are_retried_with_back_off_then_notifications_switch_off() {
    let emu = start(
        EmulatorConfig::new()
            .without_limits()
            .with_webhook_retries(Duration::from_secs(10), 2),
    )
    .await;
    people(&emu);
    let client = Client::new(&emu);
    let rx = receiver().await;
    rx.status.store(503, Ordering::SeqCst);
    let id = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"]}}),
            Some(&rx.url),
        )
        .await,
    );
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "a"}}),
        )
        .await
        .expect(200);
    rx.wait_for(1).await;
    let hook = first_hook_when(&client, |h| !h["lastNotificationResult"].is_null()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits.lock().len(), 1, "no retry before the back-off");
    let result = &hook["lastNotificationResult"];
    assert_eq!(result["success"], json!(false));
    assert_eq!(result["willBeRetried"], json!(true));
    assert_eq!(
        result["error"]["message"],
        json!("The HTTP request returned a 503 status code instead of 200 or 204")
    );
    emu.advance_clock(Duration::from_secs(10));
    rx.wait_for(2).await;
    // The second failure must be recorded before time moves on again.
    first_hook_when(&client, |h| {
        h["lastNotificationResult"]["retryNumber"] == json!(1)
    })
    .await;
    emu.advance_clock(Duration::from_secs(20));
    rx.wait_for(3).await;
    let hook = first_hook_when(&client, |h| h["areNotificationsEnabled"] == json!(false)).await;
    assert_eq!(hook["areNotificationsEnabled"], json!(false));
    assert_eq!(
        hook["lastNotificationResult"]["willBeRetried"],
        json!(false)
    );
    // Payloads keep accumulating and can still be read.
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "b"}}),
        )
        .await
        .expect(200);
    emu.advance_clock(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits.lock().len(), 3);
    assert_eq!(
        payloads(&client, &id, 1, 50).await["payloads"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn webhooks_expire_after_seven_days_and_reading_payloads_extends_them() {
    let emu = emulator().await;
    people(&emu);
    let client = Client::new(&emu);
    let id = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"]}}),
            None,
        )
        .await,
    );
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "a"}}),
        )
        .await
        .expect(200);
    emu.advance_clock(6 * DAY);
    // Reading payloads pushes the expiry to now + 7 days.
    assert_eq!(
        payloads(&client, &id, 1, 50).await["payloads"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    emu.advance_clock(2 * DAY);
    // The payload is 8 days old: gone. The cursor numbering goes on.
    let page = payloads(&client, &id, 1, 50).await;
    assert_eq!(page["payloads"], json!([]));
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "b"}}),
        )
        .await
        .expect(200);
    let page = payloads(&client, &id, 2, 50).await;
    assert_eq!(page["cursor"], json!(3));
    emu.advance_clock(7 * DAY + Duration::from_secs(1));
    let hook = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200)["webhooks"][0]
        .clone();
    assert_eq!(hook["isHookEnabled"], json!(false));
    client
        .post(
            &format!("/v0/{BASE}/People"),
            json!({"fields": {"Name": "c"}}),
        )
        .await
        .expect(200);
    assert_eq!(
        payloads(&client, &id, 3, 50).await["payloads"],
        json!([]),
        "an expired webhook records nothing"
    );
    client
        .post(
            &format!("/v0/bases/{BASE}/webhooks/{id}/refresh"),
            json!({}),
        )
        .await
        .expect(422);
    emu.advance_clock(7 * DAY);
    client
        .get(&format!("/v0/bases/{BASE}/webhooks/{id}/payloads"))
        .await
        .expect(404);
}

#[tokio::test]
async fn deleting_a_watched_field_puts_the_webhook_in_the_error_state() {
    let emu = emulator().await;
    let table = people(&emu);
    let client = Client::new(&emu);
    let age = table.field_id("Age").expect("Age").to_owned();
    let id = hook_id(
        &create_hook(
            &client,
            json!({"filters": {"dataTypes": ["tableData"], "watchDataInFieldIds": [age]}}),
            None,
        )
        .await,
    );
    emu.delete_field(BASE, "People", &age).expect("deleted");
    let page = payloads(&client, &id, 1, 50).await;
    assert_eq!(page["payloads"][0]["error"], json!(true));
    assert_eq!(page["payloads"][0]["code"], json!("INVALID_FILTERS"));
    let hook = client
        .get(&format!("/v0/bases/{BASE}/webhooks"))
        .await
        .expect(200)["webhooks"][0]
        .clone();
    assert_eq!(hook["isHookEnabled"], json!(false));
}
