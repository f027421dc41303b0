//! The data-backend modes against the Airtable emulator: the same data
//! gives the same answers in `postgres_primary`, `airtable_only` and
//! `postgres_shadow_read`; shadow reads count a planted difference; writes
//! made in `airtable_only` follow the same rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use airsync_airtable::{AirtableClient, BaseId, ClientConfig, Fields, WriteOptions};
use airsync_api::{AirtableAccess, DataBackendMode, EndpointGroup};
use airsync_emulator::{Emulator, EmulatorConfig};
use airsync_sync::mapping::Mapping;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{assert_error, test_config, TestApp, TestUser};

const TOKEN: &str = "patMODESTESTTOKEN.0123456789";
pub(crate) const BASE: BaseId = BaseId::from_static("appMODESTESTBASE1");

/// A method row as the query below reads it.
type MethodRow = (
    Uuid,
    String,
    String,
    Option<i32>,
    bool,
    bool,
    i32,
    Vec<Uuid>,
);

pub(crate) struct Modes {
    pub(crate) app: TestApp,
    pub(crate) emulator: Emulator,
    pub(crate) client: AirtableClient,
    pub(crate) mapping: Mapping,
}

fn client_for(emulator: &Emulator) -> AirtableClient {
    let mut config = ClientConfig::new(TOKEN)
        .with_api_url(&emulator.url())
        .expect("emulator URL");
    // The emulator runs without limits here; the tests are about answers.
    config.rate_limits.per_base = 10_000;
    config.rate_limits.per_token = 10_000;
    AirtableClient::new(config).expect("client")
}

impl Modes {
    pub(crate) async fn start() -> Modes {
        let app = TestApp::start().await;
        let emulator = EmulatorConfig::new()
            .with_token(TOKEN)
            .with_base(BASE.as_str())
            .without_limits()
            .start()
            .await
            .expect("emulator");
        let client = client_for(&emulator);
        let mapping = Mapping::default_mapping().expect("mapping");
        airsync_sync::bootstrap::bootstrap(&client.base(&BASE), &mapping)
            .await
            .expect("bootstrap");
        let modes = Modes {
            app,
            emulator,
            client,
            mapping,
        };
        modes.mirror_reference().await;
        modes
    }

    /// Copies the reference rows the harness seeded in PostgreSQL into the
    /// base, with their id map, as the inbound sync would have left them.
    async fn mirror_reference(&self) {
        let pool = self.app.pool();
        let mut records: BTreeMap<Uuid, String> = BTreeMap::new();
        let create = |table: &'static str, entity: &'static str, rows: Vec<(Uuid, Value)>| {
            let client = self.client.clone();
            async move {
                let mut made = Vec::new();
                for (id, fields) in rows {
                    let Value::Object(map) = fields else {
                        unreachable!()
                    };
                    let record = client
                        .table(&BASE, table)
                        .create(&[Fields::from(map)], WriteOptions::default())
                        .await
                        .expect("create");
                    airsync_sync::id_map::record_mapping(pool, entity, id, &record[0].id)
                        .await
                        .expect("id map");
                    made.push((id, record[0].id.clone()));
                }
                made
            }
        };
        let days: Vec<(Uuid, String, i16)> =
            sqlx::query_as("SELECT id, name, weekday FROM reference_days_pg")
                .fetch_all(pool)
                .await
                .unwrap();
        for (id, rec) in create(
            "Days",
            "day",
            days.into_iter()
                .map(|(id, name, weekday)| (id, json!({ "Name": name, "Weekday": weekday })))
                .collect(),
        )
        .await
        {
            records.insert(id, rec);
        }
        let goals: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, name FROM reference_goals_pg")
            .fetch_all(pool)
            .await
            .unwrap();
        for (id, rec) in create(
            "Goals",
            "goal",
            goals
                .into_iter()
                .map(|(id, name)| (id, json!({ "Name": name, "Active": true })))
                .collect(),
        )
        .await
        {
            records.insert(id, rec);
        }
        let methods: Vec<MethodRow> = sqlx::query_as(
            "SELECT m.id, m.name, m.description, m.duration_minutes, m.is_habit, m.active, m.sort_order,
                    coalesce(array_agg(g.goal_id ORDER BY g.position) FILTER (WHERE g.goal_id IS NOT NULL), '{}')
               FROM reference_methods_pg m LEFT JOIN reference_method_goals_pg g ON g.method_id = m.id GROUP BY m.id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let rows = methods
            .into_iter()
            .map(|(id, name, description, duration, habit, active, sort, goals)| {
                let goals: Vec<&String> = goals.iter().map(|g| &records[g]).collect();
                (id, json!({ "Name": name, "Description": description, "Duration (min)": duration, "Is habit": habit, "Active": active, "Sort order": sort, "Goals": goals }))
            })
            .collect();
        create("Methods", "method", rows).await;
        let overtuigingen: Vec<(Uuid, String, i16, Vec<Uuid>)> = sqlx::query_as(
            "SELECT o.id, o.name, o.level, coalesce(array_agg(g.goal_id) FILTER (WHERE g.goal_id IS NOT NULL), '{}')
               FROM reference_overtuigingen_pg o LEFT JOIN reference_overtuiging_goals_pg g ON g.overtuiging_id = o.id GROUP BY o.id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let rows = overtuigingen
            .into_iter()
            .map(|(id, name, level, goals)| {
                let goals: Vec<&String> = goals.iter().map(|g| &records[g]).collect();
                (
                    id,
                    json!({ "Name": name, "Level": level, "Active": true, "Goals": goals }),
                )
            })
            .collect();
        create("Overtuigingen", "overtuiging", rows).await;
        let companies: Vec<(Uuid, String, String)> =
            sqlx::query_as("SELECT id, name, code FROM companies_pg")
                .fetch_all(pool)
                .await
                .unwrap();
        create(
            "Companies",
            "company",
            companies
                .into_iter()
                .map(|(id, name, code)| (id, json!({ "Name": name, "Code": code, "Active": true })))
                .collect(),
        )
        .await;
    }

    /// A server with every group in `mode`.
    pub(crate) async fn server(&self, mode: DataBackendMode) -> (String, airsync_api::AppState) {
        self.app.another_server(self.config(mode)).await
    }

    /// The configuration of [`Self::server`], for tests that change more.
    pub(crate) fn config(&self, mode: DataBackendMode) -> airsync_api::ApiConfig {
        let mut config = test_config();
        config.airtable = Some(AirtableAccess {
            client: self.client.clone(),
            base_id: BASE,
            mapping: self.mapping.clone(),
        });
        config.backends = EndpointGroup::ALL
            .into_iter()
            .map(|group| (group, mode))
            .collect();
        config
    }

    /// Pushes every pending change to the base with the outbound worker.
    pub(crate) async fn push(&self) {
        let mut settings = airsync_sync::worker::WorkerSettings::new(BASE);
        settings.tuning.poll_interval = Duration::from_millis(50);
        settings.tuning.link_wait = Duration::from_millis(50);
        settings.tuning.hold_after_push = Duration::ZERO;
        let worker = airsync_sync::worker::Worker::new(
            self.app.pool().clone(),
            std::sync::Arc::new(self.mapping.clone()),
            airsync_sync::airtable_writer::AirtableWriter::new(self.client.clone(), BASE),
            settings,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            worker.run_once().await.expect("worker step");
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
                .fetch_one(self.app.pool())
                .await
                .unwrap();
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the outbox did not drain");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dead_letter")
            .fetch_one(self.app.pool())
            .await
            .unwrap();
        assert_eq!(dead, 0, "the worker gave up on events");
    }

    /// The inbound sync's full reconcile of `tables` (entities), as the
    /// scheduled one (or the webhook path, sooner) brings the base's
    /// changes in.
    pub(crate) async fn bring_in(&self, tables: &[&str]) {
        let inbound = airsync_sync::inbound::InboundContext::new(
            self.app.pool().clone(),
            self.client.clone(),
            BASE,
            std::sync::Arc::new(self.mapping.clone()),
            airsync_sync::inbound::InboundSettings::default(),
        );
        for table in tables {
            airsync_sync::inbound::reconcile(
                &inbound,
                &airsync_sync::inbound::ReconcileOptions {
                    table: Some((*table).to_owned()),
                    force: false,
                },
            )
            .await
            .expect("reconcile");
        }
    }

    /// Ann's data, written through the API in postgres_primary, pushed.
    pub(crate) async fn seed(&self) -> (TestUser, Value) {
        let app = &self.app;
        let r = &app.reference;
        let ann = app.user("ann@example.com").await;
        let program = app.program(&ann, "2024-03-11", "2024-03-24").await;
        for (method, day) in [
            (r.breathing, "2024-03-11"),
            (r.walking, "2024-03-11"),
            (r.walking, "2024-03-13"),
        ] {
            app.post(
                &ann,
                "/api/method-usage",
                json!({ "methodId": method, "programId": program["id"], "usedOn": day }),
                201,
            )
            .await;
        }
        for day in ["2024-03-12", "2024-03-13", "2024-03-14"] {
            app.post(
                &ann,
                "/api/habit-usage",
                json!({ "methodId": r.water, "usedOn": day }),
                201,
            )
            .await;
        }
        let goal = app
            .post(
                &ann,
                "/api/personal-goals",
                json!({ "name": "Run 5k", "description": "by summer" }),
                201,
            )
            .await;
        app.post(
            &ann,
            "/api/personal-goal-usage",
            json!({ "personalGoalId": goal["id"], "usedOn": "2024-03-14" }),
            201,
        )
        .await;
        app.post(
            &ann,
            "/api/overtuiging-usage",
            json!({ "overtuigingId": r.overtuigingen[0], "programId": program["id"] }),
            201,
        )
        .await;
        self.push().await;
        (ann, program)
    }
}

/// An answer without the fields each backend stamps itself.
pub(crate) fn comparable(mut value: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in ["createdAt", "updatedAt", "lastLoginAt"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

#[tokio::test]
async fn every_read_answers_the_same_in_all_three_modes() {
    let modes = Modes::start().await;
    let (ann, program) = modes.seed().await;
    let r = modes.app.reference.clone();
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let (shadow, shadow_state) = modes.server(DataBackendMode::PostgresShadowRead).await;
    let pid = program["id"].as_str().unwrap();
    let day = program["schedule"][0]["id"].as_str().unwrap();
    let goals: Value = modes.app.get(&ann, "/api/personal-goals", 200).await;
    let gid = goals["items"][0]["id"].as_str().unwrap().to_owned();
    // Clients of the legacy backend name a program by its record id.
    let program_record: String = sqlx::query_scalar(
        "SELECT airtable_id FROM airtable_id_map WHERE entity = 'program' AND row_id = $1",
    )
    .bind(Uuid::parse_str(pid).unwrap())
    .fetch_one(modes.app.pool())
    .await
    .unwrap();
    let paths = [
        "/api/auth/me".to_owned(),
        "/api/programs".into(),
        format!("/api/programs/{pid}"),
        format!("/api/method-usage/by-program?programId={pid}"),
        format!("/api/method-usage/by-program?programId={program_record}"),
        "/api/habit-usage?from=2024-03-01&to=2024-03-31".into(),
        "/api/habit-usage?from=2024-03-01&to=2024-03-31&limit=2".into(),
        "/api/personal-goals".into(),
        format!("/api/personal-goals/{gid}"),
        "/api/personal-goal-usage".into(),
        "/api/overtuiging-usage".into(),
        "/api/rewards".into(),
        format!("/api/methods/{}", r.breathing),
        "/api/methods/habits".into(),
        format!(
            "/api/overtuigingen/by-goals?goalIds={},{}",
            r.goal_a, r.goal_b
        ),
        "/api/companies/lookup?code=acme-01".into(),
        format!("/api/programs/{}", Uuid::new_v4()),
    ];
    let _ = day;
    let by_uuid = modes.app.get(&ann, &paths[3], 200).await;
    let by_record = modes.app.get(&ann, &paths[4], 200).await;
    assert_eq!(by_record, by_uuid, "a record id names the same program");
    for path in &paths {
        let expected = if path.contains("/api/programs/") && !path.contains(pid) {
            404
        } else {
            200
        };
        let primary = comparable(
            modes
                .app
                .call(Method::GET, path, Some(&ann.token), None, expected)
                .await,
        );
        if let Some(items) = primary.get("items") {
            assert!(
                !items.as_array().unwrap().is_empty(),
                "nothing to compare on {path}"
            );
        }
        let from_airtable = comparable(
            modes
                .app
                .call_at(
                    &airtable,
                    Method::GET,
                    path,
                    Some(&ann.token),
                    None,
                    expected,
                )
                .await,
        );
        assert_eq!(from_airtable, primary, "airtable_only differs on {path}");
        let shadowed = comparable(
            modes
                .app
                .call_at(&shadow, Method::GET, path, Some(&ann.token), None, expected)
                .await,
        );
        assert_eq!(shadowed, primary, "postgres_shadow_read differs on {path}");
    }
    // The shadow comparisons ran off the request path and found nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let snapshot = loop {
        let snapshot = shadow_state.shadow_differences();
        if snapshot.compared >= paths.len() as u64 - 1 || Instant::now() > deadline {
            break snapshot;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(snapshot.failed, 0);
    assert!(snapshot.compared >= paths.len() as u64 - 1, "{snapshot:?}");
    assert!(
        snapshot.differences.is_empty(),
        "{:?}",
        snapshot.differences
    );
}

#[tokio::test]
async fn a_shadow_read_counts_a_planted_difference_by_endpoint_and_field() {
    let modes = Modes::start().await;
    let (ann, _) = modes.seed().await;
    let (shadow, state) = modes.server(DataBackendMode::PostgresShadowRead).await;
    // The team renames the goal in Airtable; PostgreSQL has not heard yet.
    let goals = modes
        .client
        .table(&BASE, "Personal goals")
        .list_all(Default::default())
        .await
        .unwrap();
    let goal = &goals[0];
    let renamed = Fields::new().with("Name", "Run 10k");
    modes
        .client
        .table(&BASE, "Personal goals")
        .update(
            &[airsync_airtable::RecordUpdate::new(
                goal.id.clone(),
                renamed,
            )],
            Default::default(),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let answer = modes
        .app
        .call_at(
            &shadow,
            Method::GET,
            "/api/personal-goals",
            Some(&ann.token),
            None,
            200,
        )
        .await;
    assert_eq!(
        answer["items"][0]["name"], "Run 10k",
        "Airtable answers in shadow mode"
    );
    let key = (
        "GET /api/personal-goals".to_owned(),
        "items[].name".to_owned(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !state.shadow_differences().differences.contains_key(&key) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot = state.shadow_differences();
    assert_eq!(snapshot.differences.get(&key), Some(&1), "{snapshot:?}");
    assert_eq!(snapshot.differences.len(), 1, "{snapshot:?}");
}

#[tokio::test]
async fn writes_in_airtable_only_follow_the_same_rules() {
    let modes = Modes::start().await;
    let app = &modes.app;
    let r = app.reference.clone();
    let ann = app.user("ann@example.com").await;
    modes.push().await;
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let call = |method: Method, path: &str, body: Option<Value>, status: u16| {
        let (airtable, token, path) = (airtable.clone(), ann.token.clone(), path.to_owned());
        async move {
            app.call_at(&airtable, method, &path, Some(&token), body, status)
                .await
        }
    };
    let program_body = json!({
        "name": "Calm start", "goalIds": [r.goal_a], "methodIds": [r.breathing, r.walking],
        "dayIds": [r.days[0], r.days[2], r.days[4]], "startDate": "2024-03-11", "endDate": "2024-03-24"
    });
    let program = call(
        Method::POST,
        "/api/programs",
        Some(program_body.clone()),
        201,
    )
    .await;
    let dates: Vec<&str> = program["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [
            "2024-03-11",
            "2024-03-13",
            "2024-03-15",
            "2024-03-18",
            "2024-03-20",
            "2024-03-22"
        ]
    );
    let clash = call(Method::POST, "/api/programs", Some(program_body), 409).await;
    assert_eq!(clash["error"]["conflictingId"], program["id"]);
    let pid = program["id"].as_str().unwrap().to_owned();
    // Complete Monday, then see it in the progress.
    for method in [r.breathing, r.walking] {
        call(
            Method::POST,
            "/api/method-usage",
            Some(json!({ "methodId": method, "programId": pid, "usedOn": "2024-03-11" })),
            201,
        )
        .await;
    }
    let detail = call(Method::GET, &format!("/api/programs/{pid}"), None, 200).await;
    assert_eq!(detail["progress"]["completedDays"], 1);
    let changed = call(
        Method::PATCH,
        &format!("/api/programs/{pid}"),
        Some(json!({ "dayIds": [r.days[1], r.days[3]] })),
        200,
    )
    .await;
    let dates: Vec<&str> = changed["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2024-03-11", "2024-03-13", "2024-03-19", "2024-03-21"]
    );
    // Habits: a repeat is the same row; a method that is no habit is refused.
    let first = call(
        Method::POST,
        "/api/habit-usage",
        Some(json!({ "methodId": r.water, "usedOn": "2024-03-13" })),
        201,
    )
    .await;
    let again = call(
        Method::POST,
        "/api/habit-usage",
        Some(json!({ "methodId": r.water, "usedOn": "2024-03-13" })),
        200,
    )
    .await;
    assert_eq!(first["usage"]["id"], again["usage"]["id"]);
    call(
        Method::POST,
        "/api/habit-usage",
        Some(json!({ "methodId": r.walking })),
        422,
    )
    .await;
    // A third consecutive day earns the 3-day bonus once.
    call(
        Method::POST,
        "/api/habit-usage",
        Some(json!({ "methodId": r.water, "usedOn": "2024-03-14" })),
        201,
    )
    .await;
    let posted = call(
        Method::POST,
        "/api/overtuiging-usage",
        Some(json!({ "overtuigingId": r.overtuigingen[0] })),
        201,
    )
    .await;
    assert_eq!(
        posted["streak"], 3,
        "usage on 11, 13, 14 and 15 March: 13 to 15 is the run"
    );
    assert_eq!(posted["bonusPointsAwarded"], 10);
    let repeat = call(
        Method::POST,
        "/api/overtuiging-usage",
        Some(json!({ "overtuigingId": r.overtuigingen[0] })),
        200,
    )
    .await;
    assert_eq!(repeat["usage"]["id"], posted["usage"]["id"]);
    let rewards = call(Method::GET, "/api/rewards", None, 200).await;
    assert_eq!(
        rewards["counts"],
        json!({ "methodUsage": 2, "habitUsage": 2, "personalGoalUsage": 0, "overtuigingUsage": 1 })
    );
    assert_eq!(rewards["bonusPoints"], 10);
    assert_eq!(rewards["badges"], json!(["streak-3"]));
    // A usage linked to a schedule day is on that day's date.
    let wednesday = &changed["schedule"][1];
    assert_eq!(wednesday["date"], "2024-03-13");
    let body = call(
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.walking, "scheduleDayId": wednesday["id"], "usedOn": "2024-03-12" })),
        422,
    )
    .await;
    assert_error(&body, "schedule_day_date_mismatch", Some("usedOn"));
    let on_the_day = call(
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.walking, "scheduleDayId": wednesday["id"], "usedOn": "2024-03-13" })),
        201,
    )
    .await;
    let body = call(
        Method::PATCH,
        &format!(
            "/api/method-usage/{}",
            on_the_day["usage"]["id"].as_str().unwrap()
        ),
        Some(json!({ "usedOn": "2024-03-14" })),
        422,
    )
    .await;
    assert_error(&body, "schedule_day_date_mismatch", Some("usedOn"));
    // Personal goals: at most 10 active.
    for n in 0..10 {
        call(
            Method::POST,
            "/api/personal-goals",
            Some(json!({ "name": format!("Goal {n}") })),
            201,
        )
        .await;
    }
    call(
        Method::POST,
        "/api/personal-goals",
        Some(json!({ "name": "One too many" })),
        422,
    )
    .await;
    // Another user's program is not found.
    let bob = app.user("bob@example.com").await;
    modes.push().await;
    app.call_at(
        &airtable,
        Method::GET,
        &format!("/api/programs/{pid}"),
        Some(&bob.token),
        None,
        404,
    )
    .await;
    call(Method::DELETE, &format!("/api/programs/{pid}"), None, 204).await;
    call(Method::GET, &format!("/api/programs/{pid}"), None, 404).await;
    let left = modes
        .emulator
        .dump_table(BASE.as_str(), "Program schedule")
        .unwrap();
    assert!(left.is_empty(), "the schedule goes with its program");
}

#[tokio::test]
async fn writes_made_in_postgres_primary_are_there_after_switching_to_airtable_only() {
    let modes = Modes::start().await;
    let (ann, program) = modes.seed().await;
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let primary = comparable(modes.app.get(&ann, "/api/rewards", 200).await);
    let from_airtable = comparable(
        modes
            .app
            .call_at(
                &airtable,
                Method::GET,
                "/api/rewards",
                Some(&ann.token),
                None,
                200,
            )
            .await,
    );
    assert_eq!(primary, from_airtable);
    // Forward again: a write in postgres_primary after the switch reaches the base too.
    let posted = modes
        .app
        .post(
            &ann,
            "/api/habit-usage",
            json!({ "methodId": modes.app.reference.journal }),
            201,
        )
        .await;
    modes.push().await;
    let listed = modes
        .app
        .call_at(
            &airtable,
            Method::GET,
            "/api/habit-usage?date=2024-03-15",
            Some(&ann.token),
            None,
            200,
        )
        .await;
    assert_eq!(listed["items"][0]["id"], posted["usage"]["id"]);
    let _ = program;
}

#[tokio::test]
async fn login_brings_in_a_user_the_team_created_in_airtable() {
    let modes = Modes::start().await;
    let (server, _) = modes.server(DataBackendMode::PostgresPrimary).await;
    let record = modes
        .client
        .table(&BASE, "Users")
        .create(
            &[Fields::new()
                .with("Email", "New.Person@example.com")
                .with("Name", "New Person")
                .with("Role", "admin")],
            WriteOptions::default(),
        )
        .await
        .unwrap();
    // No password yet: the login is refused, and it answers without
    // waiting for the base (whose answers now take 6 s), so that its time
    // does not tell whether the email exists there. Were it to wait, it
    // would pass the deadline.
    modes.emulator.set_latency_ms(Some(6_000..=6_000));
    let login = modes.app.call_at(
        &server,
        Method::POST,
        "/api/auth/login",
        None,
        Some(json!({ "email": "new.person@example.com", "password": "anything at all" })),
        401,
    );
    tokio::time::timeout(Duration::from_secs(3), login)
        .await
        .expect("the login waited for the base");
    modes.emulator.set_latency_ms(None);
    // The user is brought in after the answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (id, name, role) = loop {
        let row: Option<(Uuid, String, String)> = sqlx::query_as(
            "SELECT id, name, role FROM users_pg WHERE lower(email) = 'new.person@example.com'",
        )
        .fetch_optional(modes.app.pool())
        .await
        .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the user was never brought in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(name, "New Person");
    // The Role set in the base is not taken: admin rights live in
    // PostgreSQL alone.
    assert_eq!(role, "user");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
        .fetch_one(modes.app.pool())
        .await
        .unwrap();
    assert_eq!(events, 0, "an inbound row is not echoed back");
    // The record is given the row's id once the row is in.
    let pg_id = loop {
        let back = modes
            .client
            .table(&BASE, "Users")
            .get(&record[0].id, &Default::default())
            .await
            .unwrap();
        if let Some(pg_id) = back.fields.text("pg_id").unwrap() {
            break pg_id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the record never got its pg_id"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pg_id, id.to_string());
    // With an invitation the user sets a password and signs in.
    let token = airsync_api::invite_user(
        modes.app.pool(),
        "new.person@example.com",
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    modes
        .app
        .call_at(
            &server,
            Method::POST,
            "/api/auth/set-password",
            None,
            Some(json!({ "setupToken": token, "newPassword": "my first password" })),
            200,
        )
        .await;
}

#[tokio::test]
async fn a_write_made_in_airtable_only_is_there_after_switching_to_postgres_primary() {
    let modes = Modes::start().await;
    let (ann, program) = modes.seed().await;
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let posted = modes
        .app
        .call_at(
            &airtable,
            Method::POST,
            "/api/habit-usage",
            Some(&ann.token),
            Some(json!({ "methodId": modes.app.reference.journal })),
            201,
        )
        .await;
    // The write went to the base only; the inbound sync brings it in.
    modes.bring_in(&["habit_usage"]).await;
    let listed = modes
        .app
        .get(&ann, "/api/habit-usage?date=2024-03-15", 200)
        .await;
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| &u["id"])
        .collect();
    assert!(ids.contains(&&posted["usage"]["id"]), "{listed}");
    let _ = program;
}

#[tokio::test]
async fn overtuigingen_alone_on_airtable_only_are_read_from_the_base_once_a_minute() {
    let modes = Modes::start().await;
    let (ann, _) = modes.seed().await;
    let r = modes.app.reference.clone();
    // The legacy backend's end state: everything on PostgreSQL but
    // overtuigingen.
    let mut config = modes.config(DataBackendMode::PostgresPrimary);
    config
        .backends
        .insert(EndpointGroup::Overtuigingen, DataBackendMode::AirtableOnly);
    let (server, _) = modes.app.another_server(config).await;
    let rename = |table: &'static str, entity: &'static str, id: Uuid, name: &'static str| {
        let modes = &modes;
        async move {
            let record: String = sqlx::query_scalar(
                "SELECT airtable_id FROM airtable_id_map WHERE entity = $1 AND row_id = $2",
            )
            .bind(entity)
            .bind(id)
            .fetch_one(modes.app.pool())
            .await
            .unwrap();
            modes
                .client
                .table(&BASE, table)
                .update(
                    &[airsync_airtable::RecordUpdate::new(
                        record,
                        Fields::new().with("Name", name),
                    )],
                    Default::default(),
                    WriteOptions::default(),
                )
                .await
                .unwrap();
        }
    };
    rename(
        "Overtuigingen",
        "overtuiging",
        r.overtuigingen[0],
        "Renamed by the team",
    )
    .await;
    rename("Methods", "method", r.breathing, "Renamed method").await;
    let path = format!(
        "/api/overtuigingen/by-goals?goalIds={},{}",
        r.goal_a, r.goal_b
    );
    let read = |path: String| {
        let (app, server, token) = (&modes.app, server.clone(), ann.token.clone());
        async move {
            app.call_at(&server, Method::GET, &path, Some(&token), None, 200)
                .await
        }
    };
    let names = |answer: &Value| -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = read(path.clone()).await;
    assert!(
        names(&first).contains(&"Renamed by the team".to_owned()),
        "overtuigingen come from the base: {first}"
    );
    let method = read(format!("/api/methods/{}", r.breathing)).await;
    assert_ne!(
        method["name"], "Renamed method",
        "methods stay on PostgreSQL"
    );
    // A second edit within the minute is not seen yet: the list is cached.
    rename(
        "Overtuigingen",
        "overtuiging",
        r.overtuigingen[0],
        "Renamed again",
    )
    .await;
    let second = read(path).await;
    assert_eq!(names(&second), names(&first), "read within the minute");
}

#[tokio::test]
async fn with_the_read_through_off_a_login_does_not_look_the_base_up() {
    let modes = Modes::start().await;
    let mut config = modes.config(DataBackendMode::PostgresPrimary);
    config.user_readthrough_fallback = false;
    let (server, _) = modes.app.another_server(config).await;
    modes
        .client
        .table(&BASE, "Users")
        .create(
            &[Fields::new()
                .with("Email", "team.made@example.com")
                .with("Name", "Team Made")],
            WriteOptions::default(),
        )
        .await
        .unwrap();
    let before = modes.emulator.stats().base(BASE.as_str()).total;
    modes
        .app
        .call_at(
            &server,
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({ "email": "team.made@example.com", "password": "anything at all" })),
            401,
        )
        .await;
    // The lookup would start after the answer; give it the time it takes
    // with the switch on (the test above: well under a second).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        modes.emulator.stats().base(BASE.as_str()).total,
        before,
        "the base was asked"
    );
    let found: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM users_pg WHERE email = 'team.made@example.com'")
            .fetch_optional(modes.app.pool())
            .await
            .unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn a_users_time_zone_set_in_the_app_is_shown_in_the_base() {
    let modes = Modes::start().await;
    let (ann, _) = modes.seed().await;
    let zone_in_base = || {
        let users = modes.emulator.dump_table(BASE.as_str(), "Users").unwrap();
        assert_eq!(users.len(), 1, "{users:?}");
        users[0]["fields"]["Time zone"].clone()
    };
    assert_eq!(zone_in_base(), json!("Europe/Amsterdam"));
    modes
        .app
        .patch(
            &ann,
            "/api/auth/me",
            json!({ "timeZone": "Asia/Tokyo" }),
            200,
        )
        .await;
    modes.push().await;
    assert_eq!(zone_in_base(), json!("Asia/Tokyo"));
    // In airtable_only the profile still reads the zone from PostgreSQL.
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let me = modes
        .app
        .call_at(
            &airtable,
            Method::GET,
            "/api/auth/me",
            Some(&ann.token),
            None,
            200,
        )
        .await;
    assert_eq!(me["timeZone"], "Asia/Tokyo");
}
