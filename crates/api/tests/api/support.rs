//! The test harness: an API on a fresh database, a clock the test moves,
//! seeded reference data, users, and a client that asserts statuses.

use std::sync::Arc;

use airsync_airtable::ManualClock;
use airsync_api::{ApiConfig, AppState, HashCost};
use airsync_testkit::TestDb;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "correct horse battery";

/// Reference rows every test can use.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Days of the week by ISO weekday (index 0 = Monday).
    pub days: Vec<Uuid>,
    pub goal_a: Uuid,
    pub goal_b: Uuid,
    /// Methods that are not habits.
    pub breathing: Uuid,
    pub walking: Uuid,
    /// Habits.
    pub water: Uuid,
    pub journal: Uuid,
    /// Overtuigingen: two linked to goal A, one to goal B.
    pub overtuigingen: Vec<Uuid>,
    pub company: Uuid,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub reference: Reference,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// 2024-03-15 (a Friday) at 10:00 UTC, 11:00 in Amsterdam.
pub fn default_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 10, 0, 0).unwrap()
}

pub fn test_config() -> ApiConfig {
    let mut config = ApiConfig::new(SECRET);
    config.password_hash_cost = HashCost::InsecureFastForTests;
    // Tests move the clock by months; tokens must outlive that. The expiry
    // test sets its own lifetime.
    config.access_token_ttl = std::time::Duration::from_secs(400 * 24 * 3600);
    config.refresh_token_ttl = std::time::Duration::from_secs(400 * 24 * 3600);
    config.refresh_family_ttl = std::time::Duration::from_secs(400 * 24 * 3600);
    config
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with(test_config()).await
    }

    pub async fn start_with(config: ApiConfig) -> TestApp {
        let db = TestDb::new().await;
        let clock = Arc::new(ManualClock::at(default_now()));
        let state = AppState::with_clock(db.pool().clone(), config, clock.clone()).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let _ = airsync_api::serve(listener, served, async {
                let _ = stop.await;
            })
            .await;
        });
        let reference = seed_reference(db.pool()).await;
        TestApp {
            db,
            state,
            base,
            client: reqwest::Client::new(),
            clock,
            reference,
            _shutdown: shutdown,
        }
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    /// Another server on the same database and clock, with `config` (e.g.
    /// other data-backend modes); answers its base URL and its state.
    pub async fn another_server(&self, config: ApiConfig) -> (String, AppState) {
        let state =
            AppState::with_clock(self.pool().clone(), config, self.clock.clone()).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let served = state.clone();
        tokio::spawn(async move {
            let _ = airsync_api::serve(listener, served, std::future::pending()).await;
        });
        (base, state)
    }

    /// A request to another server; asserts the status like [`Self::call`].
    pub async fn call_at(
        &self,
        base: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let mut request = self.client.request(method.clone(), format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        crate::contract::check(method.as_str(), path, status, &body);
        assert_eq!(
            status, expected,
            "{method} {base}{path} answered {status}, wanted {expected}; body: {body:#}"
        );
        body
    }

    /// Sets the clock.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.clock.set_wall(now);
    }

    /// Creates a user with [`PASSWORD`] directly in the database.
    pub async fn create_user(&self, email: &str, role: &str) -> Uuid {
        let hash = airsync_api::accounts::hash_password(PASSWORD, HashCost::InsecureFastForTests)
            .await
            .expect("hash");
        sqlx::query_scalar("INSERT INTO users_pg (email, name, role, password_hash) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(email)
            .bind(email.split('@').next().unwrap_or("someone"))
            .bind(role)
            .bind(hash)
            .fetch_one(self.pool())
            .await
            .expect("insert user")
    }

    /// Creates a user and signs them in.
    pub async fn user(&self, email: &str) -> TestUser {
        let id = self.create_user(email, "user").await;
        self.sign_in(id, email).await
    }

    pub async fn admin(&self, email: &str) -> TestUser {
        let id = self.create_user(email, "admin").await;
        self.sign_in(id, email).await
    }

    pub async fn sign_in(&self, id: Uuid, email: &str) -> TestUser {
        let session = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(serde_json::json!({ "email": email, "password": PASSWORD })),
                200,
            )
            .await;
        TestUser {
            id,
            email: email.to_owned(),
            token: session["accessToken"]
                .as_str()
                .expect("access token")
                .to_owned(),
            refresh_token: session["refreshToken"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        }
    }

    /// Sends a request and asserts its status; prints the body when the
    /// status differs. Returns the JSON body (null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, body) = self.send(method.clone(), path, token, body).await;
        assert_eq!(
            status, expected,
            "{method} {path} answered {status}, wanted {expected}; body: {body:#}"
        );
        body
    }

    /// Sends a request; returns the status and the JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        crate::contract::check(method.as_str(), path, status, &body);
        (status, body)
    }

    pub async fn get(&self, user: &TestUser, path: &str, expected: u16) -> Value {
        self.call(Method::GET, path, Some(&user.token), None, expected)
            .await
    }

    pub async fn post(&self, user: &TestUser, path: &str, body: Value, expected: u16) -> Value {
        self.call(Method::POST, path, Some(&user.token), Some(body), expected)
            .await
    }

    pub async fn patch(&self, user: &TestUser, path: &str, body: Value, expected: u16) -> Value {
        self.call(Method::PATCH, path, Some(&user.token), Some(body), expected)
            .await
    }

    pub async fn delete(&self, user: &TestUser, path: &str, expected: u16) -> Value {
        self.call(Method::DELETE, path, Some(&user.token), None, expected)
            .await
    }

    /// Creates a program on Mondays, Wednesdays and Fridays with the two
    /// non-habit methods.
    pub async fn program(&self, user: &TestUser, start: &str, end: &str) -> Value {
        let r = &self.reference;
        self.post(
            user,
            "/api/programs",
            serde_json::json!({
                "name": "Calm start",
                "goalIds": [r.goal_a],
                "methodIds": [r.breathing, r.walking],
                "dayIds": [r.days[0], r.days[2], r.days[4]],
                "startDate": start,
                "endDate": end,
            }),
            201,
        )
        .await
    }
}

/// Asserts the error's code and, when given, the field it names.
pub fn assert_error(body: &Value, code: &str, field: Option<&str>) {
    assert_eq!(body["error"]["code"], code, "error body: {body:#}");
    assert!(body["error"]["message"].is_string(), "error body: {body:#}");
    if let Some(field) = field {
        assert_eq!(body["error"]["field"], field, "error body: {body:#}");
    }
}

pub async fn seed_reference(pool: &sqlx::PgPool) -> Reference {
    let names = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let mut days = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_days_pg (name, weekday) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(i as i16 + 1)
        .fetch_one(pool)
        .await
        .expect("day");
        days.push(id);
    }
    let goal = |name: &'static str| async move {
        sqlx::query_scalar::<_, Uuid>(
            "INSERT INTO reference_goals_pg (name) VALUES ($1) RETURNING id",
        )
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("goal")
    };
    let goal_a = goal("Less stress").await;
    let goal_b = goal("Better sleep").await;
    let method = |name: &'static str, habit: bool, sort: i32, active: bool| async move {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_methods_pg (name, description, duration_minutes, is_habit, sort_order, active)
             VALUES ($1, 'described', 10, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(habit)
        .bind(sort)
        .bind(active)
        .fetch_one(pool)
        .await
        .expect("method");
        id
    };
    let breathing = method("Breathing", false, 1, true).await;
    let walking = method("Walking", false, 2, true).await;
    let water = method("Drink water", true, 3, true).await;
    let journal = method("Journal", true, 4, true).await;
    let _retired = method("Retired habit", true, 5, false).await;
    sqlx::query("INSERT INTO reference_method_goals_pg (method_id, goal_id, position) VALUES ($1, $2, 0), ($3, $4, 0)")
        .bind(breathing)
        .bind(goal_a)
        .bind(water)
        .bind(goal_b)
        .execute(pool)
        .await
        .expect("method goals");
    let mut overtuigingen = Vec::new();
    for (name, level, goal) in [
        ("I am enough", 1i16, goal_a),
        ("Rest is allowed", 2, goal_a),
        ("Sleep comes", 1, goal_b),
    ] {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_overtuigingen_pg (name, level) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(level)
        .fetch_one(pool)
        .await
        .expect("overtuiging");
        sqlx::query(
            "INSERT INTO reference_overtuiging_goals_pg (overtuiging_id, goal_id) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(goal)
        .execute(pool)
        .await
        .expect("overtuiging goal");
        overtuigingen.push(id);
    }
    let company: Uuid = sqlx::query_scalar(
        "INSERT INTO companies_pg (name, code) VALUES ('Acme', 'ACME-01') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("company");
    Reference {
        days,
        goal_a,
        goal_b,
        breathing,
        walking,
        water,
        journal,
        overtuigingen,
        company,
    }
}

/// Sends every request at once (each on its own task) and answers their
/// statuses, in order.
pub async fn statuses_of<F>(requests: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        let response = handle.await.expect("task").expect("request");
        statuses.push(response.status().as_u16());
    }
    statuses
}
