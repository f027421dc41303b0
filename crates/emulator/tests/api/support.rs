//! Helpers shared by the API tests.

use airsync_emulator::{Emulator, EmulatorConfig, FieldSpec, TableInfo, TableSpec};
use reqwest::Method;
use serde_json::{json, Value};

pub const TOKEN: &str = "patTestToken0001";
pub const BASE: &str = "appTestBase000001";

/// An emulator with one token, one base and limits off.
pub async fn emulator() -> Emulator {
    start(EmulatorConfig::new().without_limits()).await
}

/// Starts an emulator with the test token and base added to `config`.
pub async fn start(config: EmulatorConfig) -> Emulator {
    config
        .with_token(TOKEN)
        .with_base(BASE)
        .start()
        .await
        .expect("the emulator starts")
}

/// A table with one field of most types.
pub fn people(emulator: &Emulator) -> TableInfo {
    emulator
        .create_table(
            BASE,
            TableSpec::new(
                "People",
                vec![
                    FieldSpec::new("Name", "singleLineText"),
                    FieldSpec::new("Age", "number").with_options(json!({"precision": 0})),
                    FieldSpec::new("Done", "checkbox"),
                    FieldSpec::new("Notes", "multilineText"),
                    FieldSpec::new("Level", "singleSelect")
                        .with_options(json!({"choices": [{"name": "Low"}, {"name": "High", "color": "redBright"}]})),
                ],
            ),
        )
        .expect("the table is created")
}

/// A JSON client for one emulator.
pub struct Client {
    pub base_url: String,
    pub http: reqwest::Client,
    pub token: String,
}

/// An answer: status and JSON body (`Null` when not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    /// Asserts a 422 (or other) error of this type.
    #[track_caller]
    pub fn expect_error(self, status: u16, kind: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"]["type"], json!(kind), "body: {body}");
        body
    }
}

impl Client {
    pub fn new(emulator: &Emulator) -> Self {
        Client {
            base_url: emulator.url(),
            http: reqwest::Client::new(),
            token: TOKEN.into(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates records (any count, in batches of 10); answers their ids.
    pub async fn create_all(&self, table: &str, records: Vec<Value>) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in records.chunks(10) {
            let body =
                json!({"records": chunk.iter().map(|f| json!({"fields": f})).collect::<Vec<_>>()});
            let answer = self
                .post(&format!("/v0/{BASE}/{table}"), body)
                .await
                .expect(200);
            for r in answer["records"].as_array().expect("records") {
                ids.push(r["id"].as_str().expect("id").to_owned());
            }
        }
        ids
    }
}

/// Percent-encodes a query value.
pub fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
