//! Every log line of one request carries the same request id, in the JSON
//! logs of a running `airsync serve`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airsync_testkit::TestDb;
use serde_json::{json, Value};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_of_one_request_carries_its_request_id() {
    let db = TestDb::new().await;
    airsync_api::create_user(
        db.pool(),
        "ops@example.com",
        "Ops",
        "correct horse battery staple",
        true,
    )
    .await
    .expect("admin");
    let letter: i64 = sqlx::query_scalar(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts, reason,
                                       last_error, first_enqueued_at)
         VALUES (1, 'user', gen_random_uuid(), 'upsert', 'k', 1, 'rejected', 'refused', now()) RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .expect("dead letter");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_airsync"))
            .args([
                "serve",
                "--no-worker",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env_clear()
            .env("DATABASE_URL", db.url())
            .env("JWT_SECRET", "request-log-test-secret-request-log-test")
            .env("AIRSYNC_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{url}/api/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login: Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"email": "ops@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["accessToken"].as_str().expect("token");
    let replayed = http
        .post(format!("{url}/ops/api/dead-letters/{letter}/replay"))
        .bearer_auth(token)
        .header("X-Request-Id", "req-replay-0001")
        .send()
        .await
        .expect("replay");
    assert_eq!(replayed.headers()["x-request-id"], "req-replay-0001");

    // SAFETY: kill with a valid pid and signal.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(server.0.id() as i32, libc::SIGTERM);
    }
    let _ = server.0.wait();
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");

    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{logs}");
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["route"] == json!("/ops/api/dead-letters/{id}/replay"))
        .collect();
    let messages: Vec<&str> = of_request
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"dead letter handled from the ops page"),
        "{messages:?}\n{logs}"
    );
    assert!(messages.contains(&"request finished"), "{messages:?}");
    for line in of_request {
        assert_eq!(
            line["span"]["request_id"],
            json!("req-replay-0001"),
            "{line}"
        );
    }
}
