//! The metadata API and the webhooks API against the emulator, including a
//! real notification ping whose MAC the client verifies.

mod common;

use std::time::Duration;

use airsync_airtable::{
    verify_content_mac, ChangeSource, FieldChanges, FieldType, Fields, NewField, NewTable,
    WebhookSpecification, WriteOptions,
};
use common::{client, emulator, people_table, BASE};
use futures_util::TryStreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[tokio::test]
async fn the_schema_lists_tables_fields_and_views_and_new_ones_appear_in_it() {
    let emulator = emulator().await;
    let people = people_table(&emulator);
    let client = client(&emulator);
    let base = client.base(&BASE);

    let bases = client.list_bases().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(bases.iter().any(|b| b.id == BASE.as_str()));

    let created = base
        .create_table(&NewTable {
            name: "Sessions".into(),
            description: Some("Coaching sessions".into()),
            fields: vec![
                NewField::new("Title", FieldType::SingleLineText),
                NewField::new("Minutes", FieldType::Number).with_options(json!({"precision": 0})),
            ],
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.fields.len(), 2);
    let field = base
        .create_field(
            &created.id,
            &NewField::new("Done", FieldType::Checkbox)
                .with_options(json!({"icon": "check", "color": "greenBright"})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(field.field_type, FieldType::Checkbox);
    let renamed = base
        .update_field(
            &created.id,
            &field.id,
            &FieldChanges {
                name: Some("Completed".into()),
                description: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(renamed.name, "Completed");

    let schema = base.schema().await.unwrap_or_else(|e| panic!("{e}"));
    let listed = schema
        .table("People")
        .unwrap_or_else(|| panic!("People is missing"));
    assert_eq!(listed.id, people.id);
    assert_eq!(listed.primary_field_id, people.primary_field_id);
    assert_eq!(
        listed.field("Tags").map(|f| f.field_type.clone()),
        Some(FieldType::MultipleSelects)
    );
    assert!(!listed.views.is_empty());
    let sessions = schema
        .table(&created.id)
        .unwrap_or_else(|| panic!("Sessions is missing"));
    assert!(sessions.field("Completed").is_some());
}

/// A one-shot HTTP receiver for a notification ping: answers 204 and hands
/// over the MAC header and the raw body.
async fn ping_receiver() -> (String, oneshot::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/ping",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let (head_len, body_len) = loop {
            let Ok(n) = socket.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            request.extend_from_slice(&buf[..n]);
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (end + 4, length);
            }
        };
        while request.len() < head_len + body_len {
            let Ok(n) = socket.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&request[..head_len]).into_owned();
        let mac = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-airtable-content-mac")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default();
        let _ = socket
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .await;
        let _ = tx.send((mac, request[head_len..].to_vec()));
    });
    (url, rx)
}

#[tokio::test]
async fn a_webhook_reports_changes_through_payloads_and_signs_its_pings() {
    let emulator = emulator().await;
    let people = people_table(&emulator);
    let client = client(&emulator);
    let base = client.base(&BASE);
    let (url, ping) = ping_receiver().await;

    let created = base
        .create_webhook(&WebhookSpecification::table_data(&people.id), Some(&url))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(created.id.starts_with("ach"));
    assert!(created.expiration_time.is_some());

    let written = client
        .table(&BASE, &people.id)
        .create(
            &[Fields::new().with("Name", "Ada")],
            WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The ping carries no data, only a signature over its body.
    let (mac, body) = tokio::time::timeout(Duration::from_secs(5), ping)
        .await
        .unwrap_or_else(|_| panic!("no ping came"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(verify_content_mac(&created.mac_secret_base64, &body, &mac));
    assert!(!verify_content_mac(&created.mac_secret_base64, b"{}", &mac));

    let pages: Vec<_> = base
        .webhook_payloads(&created.id, 1)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let payloads: Vec<_> = pages.iter().flat_map(|p| p.payloads.iter()).collect();
    assert_eq!(payloads.len(), 1);
    let change = &payloads[0].changed_tables_by_id[&people.id];
    assert!(change.created_records_by_id.contains_key(&written[0].id));
    let source = payloads[0]
        .action_metadata
        .as_ref()
        .map(|m| m.source.clone());
    assert_eq!(source, Some(ChangeSource::PublicApi));
    let next_cursor = pages.last().map(|p| p.cursor).unwrap_or_default();
    assert_eq!(next_cursor, 2);

    // Nothing new from the stored cursor on.
    let later: Vec<_> = base
        .webhook_payloads(&created.id, next_cursor)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(later.iter().all(|p| p.payloads.is_empty()));

    let listed = base.list_webhooks().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].cursor_for_next_payload, 2);
    assert!(listed[0].are_notifications_enabled);

    base.set_webhook_notifications(&created.id, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = base.list_webhooks().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!listed[0].are_notifications_enabled);

    emulator.advance_clock(Duration::from_secs(3_600));
    let refreshed = base
        .refresh_webhook(&created.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(refreshed > created.expiration_time);

    base.delete_webhook(&created.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(base.list_webhooks().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn payloads_are_read_page_after_page_while_airtable_says_more() {
    let emulator = emulator().await;
    let people = people_table(&emulator);
    let client = client(&emulator);
    let base = client.base(&BASE);
    let created = base
        .create_webhook(&WebhookSpecification::table_data(&people.id), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 120 transactions made in the UI: three pages of at most 50 payloads.
    for i in 0..120 {
        let mut fields = serde_json::Map::new();
        fields.insert("Name".into(), json!(format!("Person {i}")));
        let edit = airsync_emulator::ClientEdit {
            create: vec![fields],
            ..Default::default()
        };
        emulator
            .edit_as_user(BASE.as_str(), &people.id, edit)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    let pages: Vec<_> = base
        .webhook_payloads(&created.id, 1)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let sizes: Vec<usize> = pages.iter().map(|p| p.payloads.len()).collect();
    assert_eq!(sizes, vec![50, 50, 20]);
    let numbers: Vec<u64> = pages
        .iter()
        .flat_map(|p| p.numbered().map(|(n, _)| n))
        .collect();
    assert_eq!(numbers, (1..=120).collect::<Vec<u64>>());
    assert_eq!(pages.last().map(|p| p.cursor), Some(121));
    let first = pages[0].payloads[0]
        .action_metadata
        .as_ref()
        .map(|m| m.source.clone());
    assert_eq!(first, Some(ChangeSource::Client));
}
