//! The app's users: clients that write through the API while everything
//! else fails around them, and the ledger of the writes the API
//! acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Days, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

pub const PASSWORD: &str = "chaos horse battery staple";

/// A personal goal as its last acknowledged write left it.
#[derive(Debug, Clone)]
pub struct Goal {
    pub name: String,
    pub deleted: bool,
    /// A later write's answer was lost: its outcome is unknown, so only the
    /// goal's existence is checked (unless deleted).
    pub uncertain: bool,
}

/// Every write the API acknowledged, and how the others ended.
#[derive(Debug, Default)]
pub struct Ledger {
    pub goals: HashMap<Uuid, Goal>,
    /// Habit usage: true once its delete was acknowledged.
    pub habit_usage: HashMap<Uuid, bool>,
    /// Habit usage whose delete got no answer.
    pub habit_usage_uncertain: HashSet<Uuid>,
    /// Personal goal usage with its goal.
    pub goal_usage: HashMap<Uuid, Uuid>,
    pub programs: HashSet<Uuid>,
    pub acknowledged: u64,
    /// Refused with a 4xx (e.g. a limit of the domain).
    pub refused: u64,
    /// No answer, or a 5xx: the write may or may not have happened.
    pub unanswered: u64,
}

/// What the clients need to know of the reference data.
#[derive(Debug, Clone)]
pub struct Reference {
    pub habits: Vec<Uuid>,
    pub methods: Vec<Uuid>,
    pub days: Vec<Uuid>,
    pub goals: Vec<Uuid>,
}

pub enum Outcome {
    Done(Value),
    /// A 4xx: the write did not happen.
    Refused(StatusCode),
    /// No answer, or a 5xx (which one): it may or may not have happened.
    Unanswered(String),
}

impl Ledger {
    /// Counts a write's outcome.
    fn book(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Done(..) => self.acknowledged += 1,
            Outcome::Refused(_) => self.refused += 1,
            Outcome::Unanswered(_) => self.unanswered += 1,
        }
    }
}

/// A logged-in session of an app user against the API.
pub struct Client {
    http: reqwest::Client,
    api: String,
    email: String,
    token: Option<String>,
}

impl Client {
    pub fn new(api: String, email: String) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http"),
            api,
            email,
            token: None,
        }
    }

    /// Logs in unless a session is open; false when the API did not let
    /// it (it is down, restarting, ...).
    pub async fn ensure_login(&mut self) -> bool {
        if self.token.is_some() {
            return true;
        }
        let answer = self
            .http
            .post(format!("{}/api/auth/login", self.api))
            .json(&json!({"email": self.email, "password": PASSWORD}))
            .send()
            .await;
        let Ok(answer) = answer else { return false };
        if !answer.status().is_success() {
            return false;
        }
        let body: Value = answer.json().await.unwrap_or_default();
        self.token = body["accessToken"].as_str().map(str::to_owned);
        self.token.is_some()
    }

    /// Sends one request (logging in first when needed).
    pub async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Outcome {
        if !self.ensure_login().await {
            return Outcome::Unanswered("no session: login failed".into());
        }
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(self.token.as_deref().unwrap_or_default());
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Err(err) if err.is_timeout() => Outcome::Unanswered("timeout".into()),
            Err(_) => Outcome::Unanswered("connection error".into()),
            Ok(answer) => {
                let status = answer.status();
                if status == StatusCode::UNAUTHORIZED {
                    self.token = None;
                }
                if status.is_success() {
                    Outcome::Done(answer.json().await.unwrap_or_default())
                } else if status.is_client_error() {
                    Outcome::Refused(status)
                } else {
                    Outcome::Unanswered(format!("HTTP {}", status.as_u16()))
                }
            }
        }
    }

    /// Sends one write and books its outcome.
    async fn write(
        &mut self,
        ledger: &Mutex<Ledger>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Outcome {
        let outcome = self.send(method, path, body).await;
        ledger.lock().expect("ledger").book(&outcome);
        outcome
    }
}

/// Runs one client until `stop`: a program first, then a random mix of
/// personal goals (create, rename, delete), their usage and habit ticks.
pub async fn run(
    index: usize,
    api: String,
    reference: Reference,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(api, email(index));
    let today = Utc::now().date_naive();
    let mut program: Option<Uuid> = None;
    let mut goals: Vec<Uuid> = Vec::new();
    let mut ticks: Vec<Uuid> = Vec::new();
    let mut step = 0u64;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(40..160))).await;
        if program.is_none() {
            let body = json!({
                "name": format!("Chaos program {index}"),
                "startDate": today.to_string(),
                "endDate": (today + Days::new(20)).to_string(),
                "methodIds": reference.methods[..2],
                "dayIds": reference.days[..3],
                "goalIds": reference.goals[..1],
            });
            match client
                .write(&ledger, Method::POST, "/api/programs", Some(body))
                .await
            {
                Outcome::Done(body) => {
                    let id = uuid_of(&body["id"]).or_else(|| uuid_of(&body["program"]["id"]));
                    let id = id.expect("a created program has an id");
                    ledger.lock().expect("ledger").programs.insert(id);
                    program = Some(id);
                }
                // An earlier create whose answer was lost made it.
                Outcome::Refused(StatusCode::CONFLICT) => program = Some(Uuid::nil()),
                _ => {}
            }
            continue;
        }
        // Within the week a usage may be dated back (a day to spare for time zones).
        let used_on = (today - Days::new(rng.random_range(0..7))).to_string();
        match rng.random_range(0..10) {
            0..=1 if goals.len() < 8 => {
                let name = format!("Goal {index}.{step}");
                let body = json!({"name": name, "description": "Written during chaos"});
                if let Outcome::Done(body) = client
                    .write(&ledger, Method::POST, "/api/personal-goals", Some(body))
                    .await
                {
                    let id = uuid_of(&body["id"]).expect("a created goal has an id");
                    let goal = Goal {
                        name,
                        deleted: false,
                        uncertain: false,
                    };
                    ledger.lock().expect("ledger").goals.insert(id, goal);
                    goals.push(id);
                }
            }
            2..=3 if !goals.is_empty() => {
                let id = goals[rng.random_range(0..goals.len())];
                let name = format!("Goal {index}.{step} (renamed)");
                let body = json!({"name": name});
                let path = format!("/api/personal-goals/{id}");
                let outcome = client
                    .write(&ledger, Method::PATCH, &path, Some(body))
                    .await;
                let mut ledger = ledger.lock().expect("ledger");
                let goal = ledger.goals.get_mut(&id).expect("a goal of the ledger");
                match outcome {
                    Outcome::Done(..) => goal.name = name,
                    Outcome::Unanswered(_) => goal.uncertain = true,
                    Outcome::Refused(_) => {}
                }
            }
            4 if goals.len() > 3 => {
                let id = goals.swap_remove(rng.random_range(0..goals.len()));
                let path = format!("/api/personal-goals/{id}");
                let outcome = client.write(&ledger, Method::DELETE, &path, None).await;
                let mut ledger = ledger.lock().expect("ledger");
                let goal = ledger.goals.get_mut(&id).expect("a goal of the ledger");
                match outcome {
                    Outcome::Done(..) => goal.deleted = true,
                    Outcome::Unanswered(_) => goal.uncertain = true,
                    Outcome::Refused(_) => goals.push(id),
                }
            }
            5..=6 if !goals.is_empty() => {
                let goal = goals[rng.random_range(0..goals.len())];
                let body = json!({"personalGoalId": goal, "usedOn": used_on});
                if let Outcome::Done(body) = client
                    .write(
                        &ledger,
                        Method::POST,
                        "/api/personal-goal-usage",
                        Some(body),
                    )
                    .await
                {
                    let id = uuid_of(&body["usage"]["id"]).expect("usage id");
                    ledger.lock().expect("ledger").goal_usage.insert(id, goal);
                }
            }
            7 if !ticks.is_empty() => {
                let id = ticks.swap_remove(rng.random_range(0..ticks.len()));
                let path = format!("/api/habit-usage/{id}");
                let outcome = client.write(&ledger, Method::DELETE, &path, None).await;
                let mut ledger = ledger.lock().expect("ledger");
                match outcome {
                    Outcome::Done(..) => {
                        ledger.habit_usage.insert(id, true);
                    }
                    Outcome::Unanswered(_) => {
                        ledger.habit_usage_uncertain.insert(id);
                    }
                    Outcome::Refused(_) => {}
                }
            }
            _ => {
                let habit = reference.habits[rng.random_range(0..reference.habits.len())];
                let body = json!({"methodId": habit, "usedOn": used_on});
                if let Outcome::Done(body) = client
                    .write(&ledger, Method::POST, "/api/habit-usage", Some(body))
                    .await
                {
                    let id = uuid_of(&body["usage"]["id"]).expect("usage id");
                    let mut ledger = ledger.lock().expect("ledger");
                    // A tick of the same day again answers the same row,
                    // which is ticked (again) now.
                    ledger.habit_usage.insert(id, false);
                    ledger.habit_usage_uncertain.remove(&id);
                    if !ticks.contains(&id) {
                        ticks.push(id);
                    }
                }
            }
        }
    }
}

pub fn email(index: usize) -> String {
    format!("client{index}@example.com")
}

pub fn uuid_of(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(|s| s.parse().ok())
}
