//! Security pass of the whole HTTP surface of `airsync serve`, against a
//! real PostgreSQL and the emulator: the webhook receiver refuses forged,
//! truncated and altered notifications and stores nothing, acknowledges a
//! replay and applies it once, and answers a wrong content type, an
//! oversized or unreadable body with a clean 4xx; the ops endpoints answer
//! a user's token with 403 and a forged one with 401. (The API's own
//! security tests are in `crates/api/tests/api/security_*.rs`.)

use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig};
use airsync_emulator::{ClientEdit, Emulator, EmulatorConfig};
use airsync_sync::inbound::{read_payloads_once, InboundContext};
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;
use base64::Engine as _;
use serde_json::{json, Value};
use sqlx::PgPool;

const SECRET: &str = "security-test-secret-security-test-secret";
const TOKEN: &str = "patSECURITYTEST00.0123456789";
const BASE: BaseId = BaseId::from_static("appSECURITYTEST01");
const PASSWORD: &str = "correct horse battery staple";

struct Running {
    url: String,
    http: reqwest::Client,
    db: TestDb,
    /// The emulator and the inbound sync, when the test needs the webhook.
    inbound: Option<(Emulator, InboundContext)>,
}

/// The process as `serve` builds it (`airsync::app::App`), with the inbound
/// sync and a webhook on an emulated base whose pings come to this server;
/// or, with `webhook: false`, without Airtable. Its inbound sync reads
/// payloads when pinged, and polls and reconciles only when a test asks.
async fn start(webhook: bool) -> Running {
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut vars: Vec<(&str, String)> = vec![("JWT_SECRET", SECRET.into())];
    let mut emulator = None;
    if webhook {
        let started = EmulatorConfig::new()
            .with_token(TOKEN)
            .with_base(BASE.as_str())
            .without_limits()
            .start()
            .await
            .expect("emulator");
        let mut config = ClientConfig::new(TOKEN)
            .with_api_url(&started.url())
            .expect("url");
        config.rate_limits.per_base = 10_000;
        config.rate_limits.per_token = 10_000;
        airsync_sync::bootstrap::bootstrap(
            &AirtableClient::new(config).expect("client").base(&BASE),
            &Mapping::default_mapping().expect("mapping"),
        )
        .await
        .expect("bootstrap");
        vars.extend([
            ("AIRTABLE_TOKEN", TOKEN.into()),
            ("AIRTABLE_BASE_ID", BASE.to_string()),
            ("AIRTABLE_API_URL", started.url()),
            ("AIRTABLE_RATE_LIMIT_PER_BASE", "1000".into()),
            ("AIRTABLE_WEBHOOK_URL", format!("{url}/api/sync/inbound")),
            ("SYNC_PAYLOAD_READER_INTERVAL_SECS", "3600".into()),
            ("SYNC_WEBHOOK_CHECK_INTERVAL_SECS", "3600".into()),
            ("SYNC_INCREMENTAL_POLL_INTERVAL_SECS", "3600".into()),
            ("FULL_AIRTABLE_POLL_SYNC_ENABLED", "false".into()),
        ]);
        emulator = Some(started);
    }
    let config = airsync::config::Config::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    })
    .expect("config");
    let app = airsync::app::App::build(&config, db.pool().clone(), listener, Default::default())
        .await
        .expect("the process");
    let inbound = emulator.map(|emulator| {
        let ctx = app.services().inbound.clone().expect("the inbound sync");
        (emulator, ctx)
    });
    tokio::spawn(app.run_until(std::future::pending()));
    let running = Running {
        url,
        http: reqwest::Client::new(),
        db,
        inbound,
    };
    if webhook {
        // The process makes its webhook as it starts.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let made: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
            )
            .fetch_one(running.pool())
            .await
            .expect("checkpoint");
            if made == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no webhook was made");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    running
}

impl Running {
    fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    fn ctx(&self) -> &InboundContext {
        &self.inbound.as_ref().expect("inbound").1
    }

    /// The webhook's id and MAC secret, as airsync keeps them.
    async fn webhook(&self) -> (String, String) {
        sqlx::query_as(
            "SELECT value->>'webhook_id', value->>'mac_secret_base64' FROM sync_checkpoint
              WHERE name LIKE 'inbound:webhook:%'",
        )
        .fetch_one(self.pool())
        .await
        .expect("checkpoint")
    }

    /// A ping as Airtable sends it, at `at`.
    async fn ping_body(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        let (webhook, _) = self.webhook().await;
        format!(
            r#"{{"base":{{"id":"{BASE}"}},"webhook":{{"id":"{webhook}"}},"timestamp":"{}"}}"#,
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }

    /// The MAC Airtable would send for `body`.
    async fn mac(&self, body: &[u8]) -> String {
        let (_, secret) = self.webhook().await;
        airsync_airtable::content_mac(&secret, body).expect("mac")
    }

    /// Posts to the webhook receiver; answers the status.
    async fn notify(&self, body: Vec<u8>, mac: Option<&str>, content_type: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(format!("{}/api/sync/inbound", self.url))
            .body(body);
        if let Some(mac) = mac {
            request = request.header("X-Airtable-Content-MAC", mac);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        request.send().await.expect("request").status().as_u16()
    }

    async fn inbox_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sync_inbox_events")
            .fetch_one(self.pool())
            .await
            .expect("inbox")
    }

    async fn assert_still_answering(&self) {
        let status = self
            .http
            .get(format!("{}/api/health", self.url))
            .send()
            .await
            .expect("health")
            .status();
        assert_eq!(status, 200);
    }

    async fn sign_in(&self, email: &str, admin: bool) -> String {
        airsync_api::create_user(self.pool(), email, "Someone", PASSWORD, admin)
            .await
            .expect("user");
        let answer: Value = self
            .http
            .post(format!("{}/api/auth/login", self.url))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        answer["accessToken"].as_str().expect("token").to_owned()
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn forged_truncated_and_altered_notifications_get_401_and_store_nothing() {
    let running = start(true).await;
    let body = running.ping_body(chrono::Utc::now()).await;
    let genuine = running.mac(body.as_bytes()).await;
    let hex = genuine
        .strip_prefix("hmac-sha256=")
        .expect("prefix")
        .to_owned();
    let other_secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let forged = airsync_airtable::content_mac(&other_secret, body.as_bytes()).expect("mac");
    let macs: Vec<(&str, Option<String>)> = vec![
        ("no MAC", None),
        ("an empty MAC", Some(String::new())),
        ("garbage", Some("garbage".into())),
        ("the prefix alone", Some("hmac-sha256=".into())),
        ("not hex", Some("hmac-sha256=zzzz".into())),
        ("zeros", Some(format!("hmac-sha256={}", "0".repeat(64)))),
        ("another secret's", Some(forged)),
        (
            "truncated by one byte",
            Some(format!("hmac-sha256={}", &hex[..hex.len() - 2])),
        ),
        (
            "truncated to half",
            Some(format!("hmac-sha256={}", &hex[..32])),
        ),
        ("one byte added", Some(format!("{genuine}00"))),
        ("without its prefix", Some(hex.clone())),
        (
            "another algorithm's prefix",
            Some(format!("hmac-sha1={hex}")),
        ),
        ("the prefix twice", Some(format!("hmac-sha256={genuine}"))),
    ];
    for (what, mac) in &macs {
        let status = running
            .notify(body.clone().into_bytes(), mac.as_deref(), JSON)
            .await;
        assert_eq!(status, 401, "{what}");
    }
    // The genuine MAC on a body changed after signing.
    let altered = [
        body.replace(BASE.as_str(), "appOTHERBASE00001"),
        body.replacen("\"timestamp\":\"", "\"timestamp\":\"1", 1),
        format!("{body} "),
        format!(" {body}"),
        body[..body.len() - 1].to_owned(),
        body.to_uppercase(),
    ];
    for changed in altered {
        let status = running
            .notify(changed.clone().into_bytes(), Some(&genuine), JSON)
            .await;
        assert_eq!(status, 401, "altered body {changed}");
    }
    assert_eq!(
        running.inbox_len().await,
        0,
        "a refused notification stored something"
    );
    assert_eq!(
        running.ctx().metrics().snapshot().notifications_rejected,
        (macs.len() + 6) as u64
    );
    // Control: the genuine MAC on the genuine body.
    assert_eq!(
        running
            .notify(body.into_bytes(), Some(&genuine), JSON)
            .await,
        200
    );
    assert_eq!(running.inbox_len().await, 1);
}

#[tokio::test]
async fn a_replayed_notification_is_acknowledged_stored_once_and_applied_once() {
    let running = start(true).await;
    let (emulator, ctx) = running.inbound.as_ref().expect("inbound");
    // A person adds a user in Airtable: the emulator pings this server.
    let Value::Object(fields) = json!({ "Email": "once@example.com", "Name": "Once" }) else {
        unreachable!()
    };
    emulator
        .edit_as_user(
            BASE.as_str(),
            "Users",
            ClientEdit {
                create: vec![fields],
                ..Default::default()
            },
        )
        .expect("edit");
    let users = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM users_pg WHERE email = 'once@example.com'",
        )
        .fetch_one(running.pool())
        .await
        .expect("users")
    };
    // The ping wakes the process's reader, which applies the payload.
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.inbox_len().await < 1
        || users().await < 1
        || ctx.metrics().snapshot().rows_created < 1
    {
        assert!(Instant::now() < deadline, "the ping was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    read_payloads_once(ctx).await.expect("read");
    assert_eq!(users().await, 1);
    let applied = ctx.metrics().snapshot();
    assert_eq!(applied.rows_created, 1);

    // The same ping replayed, byte for byte as received, several times.
    let stored: Value = sqlx::query_scalar("SELECT body FROM sync_inbox_events LIMIT 1")
        .fetch_one(running.pool())
        .await
        .expect("ping");
    let replay = stored.to_string();
    let mac = running.mac(replay.as_bytes()).await;
    for _ in 0..3 {
        assert_eq!(
            running
                .notify(replay.clone().into_bytes(), Some(&mac), JSON)
                .await,
            200
        );
    }
    assert_eq!(running.inbox_len().await, 1, "a replay was stored");
    assert_eq!(ctx.metrics().snapshot().notifications_duplicate, 3);
    read_payloads_once(ctx).await.expect("read");
    let after = ctx.metrics().snapshot();
    assert_eq!(after.rows_created, applied.rows_created);
    assert_eq!(after.rows_updated, applied.rows_updated);
    assert_eq!(users().await, 1);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox WHERE entity = 'user'")
        .fetch_one(running.pool())
        .await
        .expect("outbox");
    assert!(outbox <= 1, "the replay enqueued pushes: {outbox}");
    // A ping older than the payloads' retention is dropped, not stored.
    let old = running
        .ping_body(chrono::Utc::now() - chrono::Duration::days(8))
        .await;
    let old_mac = running.mac(old.as_bytes()).await;
    assert_eq!(
        running.notify(old.into_bytes(), Some(&old_mac), JSON).await,
        200
    );
    assert_eq!(running.inbox_len().await, 1);
}

#[tokio::test]
async fn a_wrong_content_type_an_oversized_or_unreadable_notification_gets_a_clean_4xx() {
    let running = start(true).await;
    let body = running.ping_body(chrono::Utc::now()).await;
    let mac = running.mac(body.as_bytes()).await;
    // Signed correctly, but not sent as JSON.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let status = running
            .notify(body.clone().into_bytes(), Some(&mac), content_type)
            .await;
        assert_eq!(status, 415, "content type {content_type:?}");
    }
    // JSON with parameters is JSON.
    let status = running
        .notify(
            body.clone().into_bytes(),
            Some(&mac),
            Some("Application/JSON; charset=utf-8"),
        )
        .await;
    assert_eq!(status, 200);
    let stored = running.inbox_len().await;
    assert_eq!(stored, 1);

    // Over the receiver's limit (a ping is a few hundred bytes), signed or
    // not: 413 before anything is read.
    let padded = format!(
        r#"{{"pad":"{}","base":{{"id":"{BASE}"}},"webhook":{{"id":"x"}}}}"#,
        "p".repeat(20 * 1024)
    );
    let padded_mac = running.mac(padded.as_bytes()).await;
    assert_eq!(
        running
            .notify(padded.clone().into_bytes(), Some(&padded_mac), JSON)
            .await,
        413
    );
    assert_eq!(running.notify(padded.into_bytes(), None, JSON).await, 413);
    let deep = vec![b'['; 100_000];
    assert_eq!(
        running.notify(deep, Some("hmac-sha256=00"), JSON).await,
        413
    );

    // Unreadable bodies: refused unsigned; signed (only the secret's holder
    // can), acknowledged so that nobody retries, and nothing stored.
    let nested = "[".repeat(10_000);
    let unreadable: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        nested.clone().into_bytes(),
        vec![0xff, 0xfe, 0x00],
        b"{}".to_vec(),
        br#"{"base":{"id":1},"webhook":null}"#.to_vec(),
        Vec::new(),
    ];
    for raw in &unreadable {
        assert_eq!(
            running
                .notify(raw.clone(), Some("hmac-sha256=00"), JSON)
                .await,
            401
        );
        let signed = running.mac(raw).await;
        assert_eq!(running.notify(raw.clone(), Some(&signed), JSON).await, 200);
    }
    assert_eq!(
        running.inbox_len().await,
        stored,
        "an unreadable body was stored"
    );
    running.assert_still_answering().await;
}

#[tokio::test]
async fn without_an_inbound_sync_the_receiver_answers_404() {
    let running = start(false).await;
    let status = running
        .notify(b"{}".to_vec(), Some("hmac-sha256=00"), JSON)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_ops_endpoints_answer_a_user_token_with_403_and_a_forged_or_hostile_one_with_401() {
    let running = start(false).await;
    let user = running.sign_in("user@example.com", false).await;
    let admin = running.sign_in("admin@example.com", true).await;
    let letter: i64 = sqlx::query_scalar(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, first_enqueued_at)
         VALUES (1, 'user', gen_random_uuid(), 'upsert', 'k', 1, 'rejected', 'refused', now())
         RETURNING id",
    )
    .fetch_one(running.pool())
    .await
    .expect("dead letter");
    let routes = [
        (reqwest::Method::GET, "/ops/api/state".to_owned()),
        (
            reqwest::Method::POST,
            format!("/ops/api/dead-letters/{letter}/replay"),
        ),
        (
            reqwest::Method::POST,
            format!("/ops/api/dead-letters/{letter}/purge"),
        ),
        (
            reqwest::Method::POST,
            format!("/ops/api/users/{}/invite", uuid::Uuid::new_v4()),
        ),
    ];
    for (method, path) in &routes {
        let (status, body) = running.call(method.clone(), path, Some(&user)).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
    }
    // The user's token with the role switched to admin, signature kept.
    let mut parts: Vec<String> = user.split('.').map(str::to_owned).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(&parts[1]).expect("base64")).expect("claims");
    claims["role"] = json!("admin");
    parts[1] = engine.encode(claims.to_string());
    let forged = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    for token in [forged.as_str(), unsigned.as_str(), "garbage", ""] {
        for (method, path) in &routes {
            let (status, body) = running.call(method.clone(), path, Some(token)).await;
            assert_eq!(status, 401, "{method} {path} with {token:.30}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        }
    }
    // Hostile dead-letter ids, as an admin: a clean 4xx, nothing touched.
    for id in [
        "'; DROP TABLE sync_dead_letter; --",
        "1 OR 1=1",
        "%00",
        "-1",
        "99999999999999999999",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        for action in ["replay", "purge"] {
            let path = format!("/ops/api/dead-letters/{encoded}/{action}");
            let (status, body) = running
                .call(reqwest::Method::POST, &path, Some(&admin))
                .await;
            assert!((400..500).contains(&status), "{path}: {status} {body}");
        }
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter")
        .fetch_one(running.pool())
        .await
        .expect("dead letters");
    assert_eq!(left, 1);
    let (status, _) = running
        .call(reqwest::Method::GET, "/ops/api/state", Some(&admin))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn oversized_and_deeply_nested_api_bodies_through_the_whole_server_get_a_clean_4xx() {
    let running = start(false).await;
    let user = running.sign_in("user@example.com", false).await;
    for body in [
        json!({ "name": "n".repeat(100 * 1024) })
            .to_string()
            .into_bytes(),
        vec![b'['; 100_000],
        vec![b'['; 10_000],
    ] {
        let response = running
            .http
            .post(format!("{}/api/personal-goals", running.url))
            .bearer_auth(&user)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("json");
        assert!((400..500).contains(&status), "{status} {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
        running.assert_still_answering().await;
    }
}
