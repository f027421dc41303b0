//! `airsync demo`: everything on one machine in one command. A throwaway
//! PostgreSQL (or `DATABASE_URL`), the Airtable emulator at Airtable's real
//! limits and latency, the base bootstrapped and filled with sample
//! reference content, sample users and programs, and the server with the
//! outbound worker; then the URLs, a login and a tour to try. Ctrl-C stops
//! everything.

use std::net::SocketAddr;
use std::time::Duration;

use airsync_airtable::{AirtableClient, BaseId, Fields, WriteOptions};
use airsync_emulator::{Emulator, EmulatorConfig};
use airsync_pgtemp::{Cluster, ClusterOptions};
use clap::Args;
use rand::Rng;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use super::{shutdown_signal, CliError};
use crate::config::Config;

const TOKEN: &str = "patDEMODEMODEMODE.demo";
const BASE: BaseId = BaseId::from_static("appDEMOCOACHBASE1");
const PASSWORD: &str = "demo-password-1";

/// Options of `airsync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the Airtable emulator.
    #[arg(long, default_value = "127.0.0.1:8765")]
    emulator_listen: SocketAddr,
}

fn failed(what: &str) -> impl Fn(String) -> CliError + '_ {
    move |err| CliError::Usage(format!("demo: {what}: {err}"))
}

pub async fn run(config: &Config, args: DemoArgs) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    // The cluster is a child of this thread, which lives as long as the demo.
    let (cluster, database_url) = match &config.database.url {
        Some(url) => (None, url.expose().to_owned()),
        None => {
            println!("starting a throwaway PostgreSQL ...");
            let cluster = Cluster::start(&ClusterOptions::default())
                .map_err(|e| failed("PostgreSQL")(e.to_string()))?;
            let admin = cluster.url("postgres");
            let mut conn = PgConnection::connect(&admin)
                .await
                .map_err(|e| failed("PostgreSQL")(e.to_string()))?;
            conn.execute("CREATE DATABASE airsync_demo")
                .await
                .map_err(|e| failed("PostgreSQL")(e.to_string()))?;
            let _ = conn.close().await;
            let url = cluster.url("airsync_demo");
            (Some(cluster), url)
        }
    };
    let pool = airsync_db::connect(&database_url, &config.pool_settings()).await?;
    airsync_db::migrate(&pool).await?;

    println!("starting the Airtable emulator at Airtable's limits (5 requests/s) and latency (100..300 ms) ...");
    let emulator = EmulatorConfig::new()
        .with_listen(args.emulator_listen)
        .with_token(TOKEN)
        .with_base(BASE.as_str())
        .with_control()
        // Airtable's time: a request counts against the base when it
        // arrives, and most of its round trip is Airtable's work on it.
        .with_answer_latency_ms(100..=300)
        .start()
        .await
        .map_err(|e| failed("the emulator")(e.to_string()))?;

    let jwt: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let metrics_token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let emulator_url = emulator.url();
    let demo_config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        "AIRTABLE_API_URL" => Some(emulator_url.clone()),
        "AIRTABLE_TOKEN" => Some(TOKEN.to_owned()),
        "AIRTABLE_BASE_ID" => Some(BASE.to_string()),
        "JWT_SECRET" => Some(jwt.clone()),
        "METRICS_TOKEN" => Some(metrics_token.clone()),
        "WORKER_POLL_INTERVAL_MS" => Some("250".to_owned()),
        "AIRTABLE_WEBHOOK_URL" => Some(format!("http://{}/api/sync/inbound", args.listen)),
        "SYNC_PAYLOAD_READER_INTERVAL_SECS" => Some("5".to_owned()),
        other => std::env::var(other).ok(),
    })?;

    let client = crate::airtable::shared_client(&demo_config, &pool)?;
    let mapping = demo_config.load_mapping()?;
    println!("creating the base's tables (airsync airtable bootstrap) ...");
    airsync_sync::bootstrap::bootstrap(&client.base(&BASE), &mapping).await?;
    println!("filling Airtable with sample reference content ...");
    let seeded = seed_reference(&client, &pool).await?;
    println!("creating sample users ...");
    airsync_api::create_user(&pool, "anna@example.com", "Anna de Vries", PASSWORD, false)
        .await
        .map_err(|e| failed("users")(e.to_string()))?;
    airsync_api::create_user(&pool, "admin@example.com", "Demo Admin", PASSWORD, true)
        .await
        .map_err(|e| failed("users")(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| failed(&format!("listening on {}", args.listen))(e.to_string()))?;
    let api = format!("http://{}", args.listen);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let serving = {
        let config = demo_config.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            super::serve::serve_on(
                &config,
                pool,
                listener,
                true,
                move |_| {
                    let _ = ready_tx.send(());
                },
                shutdown_signal(),
            )
            .await
        })
    };
    let _ = ready_rx.await;
    seed_program(&api, &seeded).await?;
    print_tour(
        &api,
        &emulator,
        &seeded.walk_record,
        &metrics_token,
        started.elapsed(),
    );

    let result = match serving.await {
        Ok(result) => result,
        Err(err) => Err(CliError::Usage(format!(
            "demo: the server task ended: {err}"
        ))),
    };
    println!("stopping ...");
    pool.close().await;
    let _ = emulator.shutdown().await;
    drop(cluster);
    result
}

/// The sample reference content: goals (name, description), days, methods
/// (name, description, minutes, habit, goal, sort order) and overtuigingen
/// (name, level, goal).
const GOALS: [(&str, &str); 3] = [
    ("More calm", "Less stress during the day"),
    ("Better sleep", "Fall asleep easier"),
    ("More energy", "Move more, feel fitter"),
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const METHODS: [(&str, &str, i32, bool, usize, i32); 4] = [
    (
        "Box breathing",
        "Four counts in, hold, out, hold",
        5,
        false,
        0,
        1,
    ),
    ("Evening journal", "Three lines before bed", 10, false, 1, 2),
    ("Morning walk", "Twenty minutes outside", 20, true, 2, 3),
    ("Drink water", "A glass on waking", 1, true, 2, 4),
];
const OVERTUIGINGEN: [(&str, i16, usize); 2] =
    [("I am allowed to rest", 1, 0), ("Small steps count", 2, 2)];

/// What the program of the sample user is made of.
struct Seeded {
    /// Airtable's record of the habit "Morning walk", for the tour.
    walk_record: String,
    methods: Vec<Uuid>,
    days: Vec<Uuid>,
    goals: Vec<Uuid>,
}

async fn create_records(
    client: &AirtableClient,
    table: &str,
    records: Vec<Value>,
) -> Result<Vec<String>, CliError> {
    let fields: Vec<Fields> = records
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(map) => Some(Fields::from(map)),
            _ => None,
        })
        .collect();
    let created = client
        .table(&BASE, table)
        .create(
            &fields,
            WriteOptions {
                typecast: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| failed("seeding Airtable")(e.to_string()))?;
    Ok(created.into_iter().map(|r| r.id).collect())
}

/// Creates the reference records in Airtable and mirrors them into
/// PostgreSQL as the inbound sync would (marked inbound, with their id map).
async fn seed_reference(client: &AirtableClient, pool: &PgPool) -> Result<Seeded, CliError> {
    let goal_records = create_records(
        client,
        "Goals",
        GOALS
            .iter()
            .map(|(n, d)| json!({"Name": n, "Description": d, "Active": true}))
            .collect(),
    )
    .await?;
    let day_records = create_records(
        client,
        "Days",
        DAYS.iter()
            .enumerate()
            .map(|(i, d)| json!({"Name": d, "Weekday": i + 1}))
            .collect(),
    )
    .await?;
    let method_records = create_records(
        client,
        "Methods",
        METHODS
            .iter()
            .map(|(n, d, minutes, habit, goal, order)| {
                json!({"Name": n, "Description": d, "Duration (min)": minutes, "Is habit": habit,
                       "Goals": [goal_records[*goal]], "Active": true, "Sort order": order})
            })
            .collect(),
    )
    .await?;
    let overtuiging_records = create_records(
        client,
        "Overtuigingen",
        OVERTUIGINGEN.iter().map(|(n, level, goal)| json!({"Name": n, "Level": level, "Goals": [goal_records[*goal]], "Active": true})).collect(),
    )
    .await?;
    let company_records = create_records(
        client,
        "Companies",
        vec![json!({"Name": "Acme Coaching", "Code": "ACME", "Active": true})],
    )
    .await?;

    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL airsync.origin = 'inbound'")
        .execute(&mut *tx)
        .await?;
    let mut seeded = Seeded {
        walk_record: method_records.get(2).cloned().unwrap_or_default(),
        methods: Vec::new(),
        days: Vec::new(),
        goals: Vec::new(),
    };
    for ((name, description), record) in GOALS.iter().zip(&goal_records) {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_goals_pg (name, description) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .fetch_one(&mut *tx)
        .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "goal", id, record).await?;
        seeded.goals.push(id);
    }
    for ((weekday, name), record) in (1i16..).zip(DAYS).zip(&day_records) {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_days_pg (name, weekday) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(weekday)
        .fetch_one(&mut *tx)
        .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "day", id, record).await?;
        seeded.days.push(id);
    }
    for ((name, description, minutes, habit, goal, order), record) in
        METHODS.iter().zip(&method_records)
    {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_methods_pg (name, description, duration_minutes, is_habit, sort_order) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name).bind(description).bind(minutes).bind(habit).bind(order).fetch_one(&mut *tx).await?;
        sqlx::query("INSERT INTO reference_method_goals_pg (method_id, goal_id) VALUES ($1, $2)")
            .bind(id)
            .bind(seeded.goals[*goal])
            .execute(&mut *tx)
            .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "method", id, record).await?;
        seeded.methods.push(id);
    }
    for ((name, level, goal), record) in OVERTUIGINGEN.iter().zip(&overtuiging_records) {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO reference_overtuigingen_pg (name, level) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(level)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO reference_overtuiging_goals_pg (overtuiging_id, goal_id) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(seeded.goals[*goal])
        .execute(&mut *tx)
        .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "overtuiging", id, record).await?;
    }
    if let Some(record) = company_records.first() {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO companies_pg (name, code) VALUES ('Acme Coaching', 'ACME') RETURNING id",
        )
        .fetch_one(&mut *tx)
        .await?;
        airsync_sync::id_map::record_mapping(&mut *tx, "company", id, record).await?;
    }
    tx.commit().await?;
    Ok(seeded)
}

/// Signs in as the sample user and creates a program through the API, as the
/// app would (its schedule is generated and synced to Airtable).
async fn seed_program(api: &str, seeded: &Seeded) -> Result<(), CliError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed("HTTP")(e.to_string()))?;
    let login: Value = http
        .post(format!("{api}/api/auth/login"))
        .json(&json!({"email": "anna@example.com", "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| failed("signing in")(e.to_string()))?
        .json()
        .await
        .map_err(|e| failed("signing in")(e.to_string()))?;
    let token = login["accessToken"].as_str().unwrap_or_default().to_owned();
    let today = chrono::Utc::now().date_naive();
    let body = json!({
        "name": "Four calm weeks",
        "startDate": today.to_string(),
        "endDate": (today + chrono::Duration::days(27)).to_string(),
        "methodIds": seeded.methods[..2],
        "dayIds": [seeded.days[0], seeded.days[2], seeded.days[4]],
        "goalIds": [seeded.goals[0]],
        "notes": "Created by the demo",
    });
    let created = http
        .post(format!("{api}/api/programs"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed("creating a program")(e.to_string()))?;
    if !created.status().is_success() {
        let answer = created.text().await.unwrap_or_default();
        return Err(failed("creating a program")(answer));
    }
    Ok(())
}

fn print_tour(
    api: &str,
    emulator: &Emulator,
    walk_record: &str,
    metrics_token: &str,
    took: Duration,
) {
    let at = emulator.url();
    println!(
        r#"
airsync demo is running (ready in {:.0} s). Ctrl-C stops everything.

  API           {api}            (OpenAPI: {api}/api/openapi.json)
  ops page      {api}/ops        sign in as admin@example.com / {PASSWORD}
  health        {api}/api/health/detailed   (with the metrics token below)
  metrics       {api}/metrics               (with the metrics token below)
  metrics token {metrics_token}   (METRICS_TOKEN; an admin's access token works too)
  Airtable      {at}  (emulator; token {TOKEN}, base {BASE})

Sign in as the sample user:
  TOKEN=$(curl -s -X POST {api}/api/auth/login -H 'content-type: application/json' \
    -d '{{"email":"anna@example.com","password":"{PASSWORD}"}}' | grep -o '"accessToken":"[^"]*"' | cut -d'"' -f4)

Write through the API (PostgreSQL), then watch it arrive in Airtable within a second:
  HABIT=$(curl -s {api}/api/methods/habits -H "authorization: Bearer $TOKEN" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
  curl -s -X POST {api}/api/habit-usage -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{{\"methodId\":\"$HABIT\",\"usedOn\":\"$(date +%F)\"}}"
  curl -s '{at}/v0/{BASE}/Habit%20usage' -H 'authorization: Bearer {TOKEN}'

Edit a record in Airtable as the team would (the emulator's UI edit), then
watch the change arrive in PostgreSQL through the webhook within seconds:
  curl -s -X POST '{at}/_emulator/bases/{BASE}/tables/Methods/edit' -H 'content-type: application/json' \
    -d '{{"update":[{{"id":"{walk_record}","fields":{{"Name":"Morning walk in the park"}}}}]}}'
  sleep 2; curl -s {api}/api/methods/habits -H "authorization: Bearer $TOKEN"

Your programs and rewards:
  curl -s {api}/api/programs -H "authorization: Bearer $TOKEN"
  curl -s {api}/api/rewards -H "authorization: Bearer $TOKEN"

See the sync's state:
  curl -s {api}/api/health/detailed -H 'authorization: Bearer {metrics_token}'
"#,
        took.as_secs_f64()
    );
}
