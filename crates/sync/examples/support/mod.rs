//! Set-up shared by the sync benchmarks: a throwaway PostgreSQL and an
//! emulator holding a base bootstrapped for the default mapping, at
//! Airtable's real limits.

use std::sync::Arc;

use airsync_airtable::{AirtableClient, BaseId, ClientConfig};
use airsync_emulator::{Emulator, EmulatorConfig, RateLimits};
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::budget::PgBudgetStore;
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A client of the emulator with `token` that sends as fast as it can,
/// for set-up.
fn unpaced_client(emulator: &Emulator, token: &str) -> Result<AirtableClient, Failure> {
    let mut config = ClientConfig::new(token).with_api_url(&emulator.url())?;
    config.rate_limits.per_base = 10_000;
    config.rate_limits.per_token = 10_000;
    Ok(AirtableClient::new(config)?)
}

/// A client as airsync's processes build theirs: Airtable's limits, at
/// `budget_percent` of them, the budget kept in `db` and shared with every
/// other such client of it.
pub fn deployment_client(
    emulator: &Emulator,
    token: &str,
    db: &TestDb,
    budget_percent: u32,
) -> Result<AirtableClient, Failure> {
    let mut config = ClientConfig::new(token).with_api_url(&emulator.url())?;
    config.rate_limits.budget_share = f64::from(budget_percent) / 100.0;
    config.budget_store = Some(Arc::new(PgBudgetStore::new(db.pool().clone())));
    Ok(AirtableClient::new(config)?)
}

/// Starts PostgreSQL and the emulator with `base`, bootstraps the base for
/// the default mapping (limits off, so the set-up costs no time), then puts
/// Airtable's real limits on and resets the emulator's counts.
pub async fn start(
    token: &str,
    base: &BaseId,
) -> Result<(TestDb, Emulator, Arc<Mapping>), Failure> {
    let db = TestDb::new().await;
    let emulator = EmulatorConfig::new()
        .with_token(token)
        .with_base(base.as_str())
        .start()
        .await?;
    emulator.set_limits(RateLimits::off());
    let mapping = Arc::new(Mapping::default_mapping()?);
    bootstrap(&unpaced_client(&emulator, token)?.base(base), &mapping).await?;
    emulator.set_limits(RateLimits::default());
    emulator.reset_stats();
    Ok((db, emulator, mapping))
}

/// Commits one warm-up change and waits until a running worker has sent
/// it: the worker has then taken the base's lane and paid its one-off
/// pause, which the benchmarks leave out. (The inbound benchmark runs no
/// worker.)
#[allow(dead_code)]
pub async fn warm_up(db: &TestDb) -> Result<(), Failure> {
    sqlx::query("INSERT INTO users_pg (email, name) VALUES ('warm-up@example.com', 'Warm-up')")
        .execute(db.pool())
        .await?;
    let waiting = std::time::Instant::now();
    while outbox_len(db).await? > 0 {
        if waiting.elapsed() > std::time::Duration::from_secs(30) {
            return Err("the warm-up change never left the outbox".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// How many events the outbox holds.
#[allow(dead_code)]
pub async fn outbox_len(db: &TestDb) -> Result<i64, Failure> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
        .fetch_one(db.pool())
        .await?)
}

/// A local port for the webhook's pings, named in `settings`.
#[allow(dead_code)]
pub async fn bind_notifications(
    settings: &mut airsync_sync::inbound::InboundSettings,
) -> Result<tokio::net::TcpListener, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    settings.notification_url = Some(format!(
        "http://{}/api/sync/inbound",
        listener.local_addr()?
    ));
    Ok(listener)
}

/// Answers the webhook's pings on `listener` for `ctx`, as the API crate
/// mounts the route, for the benchmarks that take the webhook path (the
/// others leave it unused).
#[allow(dead_code)]
pub fn serve_notifications(
    listener: tokio::net::TcpListener,
    ctx: &airsync_sync::inbound::InboundContext,
) {
    let app = axum::Router::new()
        .route("/api/sync/inbound", axum::routing::post(inbound_route))
        .with_state(ctx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
}

async fn inbound_route(
    axum::extract::State(ctx): axum::extract::State<airsync_sync::inbound::InboundContext>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let mac = headers
        .get("x-airtable-content-mac")
        .and_then(|v| v.to_str().ok());
    match airsync_sync::inbound::receive_notification(&ctx, mac, &body).await {
        Ok(outcome) => axum::http::StatusCode::from_u16(outcome.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Waits until the inbound runner has made sure of the base's webhook.
#[allow(dead_code)]
pub async fn wait_for_webhook(db: &TestDb) -> Result<(), Failure> {
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
    )
    .fetch_one(db.pool())
    .await?
        == 0
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
