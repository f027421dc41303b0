//! Fuzzing of the webhook inbound path: notification bodies and MACs
//! (`receive_notification`, what `POST /api/sync/inbound` runs), and
//! payload pages as Airtable's payloads endpoint answers them. Arbitrary
//! bytes and mutated valid JSON never panic; the MAC check rejects anything
//! not signed with the webhook's secret, and stores nothing then.
//!
//! `AIRSYNC_FUZZ_SECS=600 cargo test -p airsync-sync --test fuzz_webhook --
//! --nocapture` runs each property for that long; see docs/fuzzing.md.

use std::sync::{Arc, OnceLock};

use airsync_airtable::{
    content_mac, verify_content_mac, AirtableClient, BaseId, ClientConfig, PayloadPage,
    WebhookPayload,
};
use airsync_sync::inbound::{
    canonical_cell, receive_notification, InboundContext, InboundSettings, NotificationOutcome,
};
use airsync_sync::mapping::{FieldKind, Mapping};
use airsync_testkit::{fuzz, TestDb};
use proptest::prelude::*;
use serde_json::{json, Value};

const BASE: BaseId = BaseId::from_static("appFUZZFUZZFUZZ01");
/// base64 of 32 bytes: the secret pings must be signed with.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
const OTHER_SECRET: &str = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItMTI=";

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        Just(json!("2024-05-01T09:30:00.000Z")),
        Just(json!("recAAAAAAAAAAAAAA")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `right` most of the time, any JSON at all sometimes: valid JSON with
/// one part of the wrong shape.
fn mostly(right: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![9 => right, 1 => any_json()].boxed()
}

fn timestamp() -> BoxedStrategy<Value> {
    mostly(prop_oneof![
        Just(json!("2026-11-28T09:30:00.000Z")),
        (0i64..4_000_000_000_000).prop_map(|ms| {
            json!(chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339())
        }),
        Just(json!("+275760-09-13T00:00:00Z")),
        Just(json!("2026-13-40T99:99:99Z")),
    ])
}

fn cells() -> BoxedStrategy<Value> {
    mostly(
        prop::collection::btree_map(
            prop_oneof!["fld[A-Za-z0-9]{14}", "fld0000000000000[0-9]"],
            any_json(),
            0..4,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect())),
    )
}

fn table_changes() -> BoxedStrategy<Value> {
    mostly(
        (
            prop::collection::btree_map(
                "rec[A-Za-z0-9]{14}",
                (cells(), timestamp())
                    .prop_map(|(c, t)| json!({"createdTime": t, "cellValuesByFieldId": c})),
                0..3,
            ),
            prop::collection::btree_map(
                "rec[A-Za-z0-9]{14}",
                (cells(), cells(), prop::option::of(cells())).prop_map(|(cur, prev, unch)| {
                    json!({
                        "current": {"cellValuesByFieldId": cur},
                        "previous": {"cellValuesByFieldId": prev},
                        "unchanged": unch.map(|u| json!({"cellValuesByFieldId": u})),
                    })
                }),
                0..3,
            ),
            mostly(prop::collection::vec("rec[A-Za-z0-9]{14}", 0..3).prop_map(|v| json!(v))),
        )
            .prop_map(|(created, changed, destroyed)| {
                json!({
                    "createdRecordsById": created,
                    "changedRecordsById": changed,
                    "destroyedRecordIds": destroyed,
                })
            }),
    )
}

fn payload() -> BoxedStrategy<Value> {
    mostly(
        (
            timestamp(),
            mostly(any::<u64>().prop_map(|n| json!(n))),
            mostly(
                prop::sample::select(vec!["client", "publicApi", "automation", "sync", "x"])
                    .prop_map(|s| json!({"source": s, "sourceMetadata": {"user": {"id": "usr1"}}})),
            ),
            prop::collection::btree_map("tbl[A-Za-z0-9]{14}", table_changes(), 0..3),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(t, n, meta, tables, error)| {
                let mut p = json!({
                    "timestamp": t,
                    "baseTransactionNumber": n,
                    "payloadFormat": "v0",
                    "actionMetadata": meta,
                    "changedTablesById": tables,
                });
                if let Some(error) = error {
                    p["error"] = json!(error);
                    p["code"] = json!("INVALID_FILTERS");
                }
                p
            }),
    )
}

fn payload_page() -> impl Strategy<Value = Value> {
    (
        mostly(prop::collection::vec(payload(), 0..4).prop_map(Value::Array)),
        mostly(any::<u64>().prop_map(|n| json!(n))),
        mostly(any::<bool>().prop_map(Value::Bool)),
    )
        .prop_map(|(payloads, cursor, more)| {
            json!({"payloads": payloads, "cursor": cursor, "mightHaveMore": more})
        })
}

/// Bytes of `json`, sometimes cut, spliced or with bytes flipped.
fn mutated_bytes(json: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (
        json,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
    )
        .prop_map(|(value, edits)| {
            let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
            for (at, byte, how) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

/// Every cell of a payload read as every kind of field, as the reader
/// does for the fields of the mapping.
fn read_every_cell(payload: &WebhookPayload) {
    for table in payload.changed_tables_by_id.values() {
        let created = table
            .created_records_by_id
            .values()
            .map(|r| &r.cell_values_by_field_id);
        let changed = table.changed_records_by_id.values().flat_map(|r| {
            [Some(&r.current.cell_values_by_field_id)]
                .into_iter()
                .chain([r.unchanged.as_ref().map(|u| &u.cell_values_by_field_id)])
                .flatten()
        });
        for cells in created.chain(changed) {
            for value in cells.values() {
                for kind in FieldKind::ALL {
                    let _ = canonical_cell(kind, Some(value));
                }
            }
        }
    }
}

#[test]
fn any_payload_page_parses_or_is_refused_without_panicking() {
    fuzz::run(
        "webhook payload pages",
        file!(),
        300,
        prop_oneof![
            3 => mutated_bytes(payload_page()),
            1 => any::<Vec<u8>>(),
        ],
        |bytes| {
            if let Ok(page) = serde_json::from_slice::<PayloadPage>(&bytes) {
                for (_number, payload) in page.numbered() {
                    read_every_cell(payload);
                }
            }
            if let Ok(payload) = serde_json::from_slice::<WebhookPayload>(&bytes) {
                read_every_cell(&payload);
            }
            Ok(())
        },
    );
}

fn ping() -> impl Strategy<Value = Value> {
    (
        mostly(prop_oneof![
            Just(json!(BASE)),
            Just(json!("appOTHEROTHEROTH1"))
        ]),
        mostly("ach[A-Za-z0-9]{14}".prop_map(Value::String)),
        prop::option::of(timestamp()),
    )
        .prop_map(|(base, webhook, at)| {
            let mut ping = json!({"base": {"id": base}, "webhook": {"id": webhook}});
            if let Some(at) = at {
                ping["timestamp"] = at;
            }
            ping
        })
}

#[test]
fn the_mac_check_accepts_only_the_body_signed_with_the_secret() {
    fuzz::run(
        "webhook MAC",
        file!(),
        2_000,
        (
            any::<Vec<u8>>(),
            prop_oneof![any::<String>(), Just(SECRET.to_owned())],
            any::<String>(),
            prop::collection::vec(any::<u8>(), 1..4),
        ),
        |(body, secret, header, extra)| {
            // Arbitrary secrets and headers: an answer, not a panic.
            let _ = verify_content_mac(&secret, &body, &header);
            let signed = content_mac(SECRET, &body)
                .map_err(|e| TestCaseError::fail(format!("signing: {e}")))?;
            prop_assert!(verify_content_mac(SECRET, &body, &signed));
            let mut other_body = body.clone();
            other_body.extend(&extra);
            prop_assert!(!verify_content_mac(SECRET, &other_body, &signed));
            let forged = content_mac(OTHER_SECRET, &body)
                .map_err(|e| TestCaseError::fail(format!("signing: {e}")))?;
            prop_assert!(!verify_content_mac(SECRET, &body, &forged));
            prop_assert!(!verify_content_mac(SECRET, &body, &header) || header.trim() == signed);
            Ok(())
        },
    );
}

/// One database and inbound context for every case (each case inserts at
/// most one inbox row).
struct Receiver {
    runtime: tokio::runtime::Runtime,
    ctx: InboundContext,
    _db: TestDb,
}

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let db = runtime.block_on(TestDb::new());
        // Receiving a ping makes no request: the client points nowhere.
        let config = ClientConfig::new("patFUZZFUZZFUZZFU.0123456789")
            .with_api_url("http://127.0.0.1:9/")
            .unwrap_or_else(|e| panic!("{e}"));
        let client = AirtableClient::new(config).unwrap_or_else(|e| panic!("{e}"));
        let mapping = Arc::new(Mapping::default_mapping().unwrap_or_else(|e| panic!("{e}")));
        let settings = InboundSettings {
            webhook_secret: Some(SECRET.to_owned()),
            ..InboundSettings::default()
        };
        let ctx = InboundContext::new(db.pool().clone(), client, BASE, mapping, settings);
        Receiver {
            runtime,
            ctx,
            _db: db,
        }
    })
}

#[test]
fn any_notification_is_answered_and_only_signed_ones_are_stored() {
    fuzz::run(
        "webhook notifications",
        file!(),
        100,
        (
            prop_oneof![
                3 => mutated_bytes(ping()),
                1 => any::<Vec<u8>>(),
            ],
            prop_oneof![
                Just(MacKind::Signed),
                Just(MacKind::Missing),
                Just(MacKind::OtherSecret),
                any::<String>().prop_map(MacKind::Arbitrary),
            ],
        ),
        |(body, mac_kind)| {
            let r = receiver();
            let mac = match &mac_kind {
                MacKind::Signed => Some(content_mac(SECRET, &body).unwrap_or_default()),
                MacKind::Missing => None,
                MacKind::OtherSecret => Some(content_mac(OTHER_SECRET, &body).unwrap_or_default()),
                MacKind::Arbitrary(text) => Some(text.clone()),
            };
            let (before, outcome, after) = r.runtime.block_on(async {
                let before = inbox_len(&r.ctx).await;
                let outcome = receive_notification(&r.ctx, mac.as_deref(), &body).await;
                (before, outcome, inbox_len(&r.ctx).await)
            });
            let outcome = outcome.map_err(|e| TestCaseError::fail(format!("an error: {e}")))?;
            if mac_kind == MacKind::Signed {
                prop_assert_ne!(outcome, NotificationOutcome::Unauthorized);
            } else {
                prop_assert_eq!(outcome, NotificationOutcome::Unauthorized);
            }
            let stored = after - before;
            prop_assert_eq!(stored, i64::from(outcome == NotificationOutcome::Accepted));
            Ok(())
        },
    );
}

#[derive(Debug, Clone, PartialEq)]
enum MacKind {
    Signed,
    Missing,
    OtherSecret,
    Arbitrary(String),
}

async fn inbox_len(ctx: &InboundContext) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sync_inbox_events")
        .fetch_one(ctx.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
