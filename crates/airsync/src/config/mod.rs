//! Typed configuration, read once from the environment and validated at
//! start (docs/architecture.md, "Configuration"). Every variable is listed
//! with a comment in `.env.example`.
//!
//! A bad value stops the start with a message that names the variable and
//! says what is wrong; all bad values are reported at once. Variables that
//! only some commands need (the database URL, the Airtable token) are parsed
//! here when set and demanded by the command that needs them
//! ([`Config::require_database_url`] and friends).

mod reader;
mod secret;
mod types;

pub use airsync_api::{DataBackendMode, EndpointGroup};
pub use reader::{ConfigError, ConfigProblem};
pub use secret::{DatabaseUrl, Secret};
pub use types::LogFormat;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use airsync_airtable::BaseId;
use reader::Reader;
use url::Url;

/// The whole configuration of an airsync process.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub airtable: AirtableConfig,
    pub auth: AuthConfig,
    /// The data backend of each endpoint group of the API.
    pub backends: BTreeMap<EndpointGroup, DataBackendMode>,
    pub switches: Switches,
    pub invitations: InvitationConfig,
    pub sync: SyncConfig,
    pub worker: WorkerConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
}

/// `DATABASE_*`: where PostgreSQL is and how many connections to keep.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; required by every command that touches the database.
    pub url: Option<DatabaseUrl>,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub max_connections: u32,
    /// `DATABASE_MIN_CONNECTIONS` (default 0).
    pub min_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS` (default 5).
    pub acquire_timeout: Duration,
}

/// `AIRTABLE_*`: which base to keep in step, and how hard to use it.
#[derive(Debug, Clone)]
pub struct AirtableConfig {
    /// `AIRTABLE_API_URL` (default `https://api.airtable.com`; the emulator's
    /// URL in tests and the demo).
    pub api_url: Url,
    /// `AIRTABLE_TOKEN`: a personal access token.
    pub token: Option<Secret>,
    /// `AIRTABLE_BASE_ID`: the base the sync keeps in step (`app` + 14).
    pub base_id: Option<BaseId>,
    /// `AIRTABLE_WEBHOOK_SECRET`: base64 MAC secret of a webhook created
    /// outside airsync; airsync keeps the secret of webhooks it creates itself.
    pub webhook_secret: Option<Secret>,
    /// `AIRTABLE_WEBHOOK_URL`: the public URL of `POST /api/sync/inbound`
    /// that Airtable pings; without it no webhook is created and the
    /// incremental poll carries the inbound sync.
    pub webhook_url: Option<Url>,
    /// `AIRTABLE_RATE_LIMIT_PER_BASE` requests/s (default 5, Airtable's limit).
    pub rate_limit_per_base: u32,
    /// `AIRTABLE_RATE_LIMIT_PER_TOKEN` requests/s (default 50).
    pub rate_limit_per_token: u32,
    /// `AIRTABLE_RATE_BUDGET_PERCENT`: the share of both limits airsync may
    /// use (default 100), leaving the rest to the team's own scripts; a
    /// share is a whole number of requests in every second.
    pub rate_budget_percent: u32,
    /// `AIRTABLE_RATE_MARGIN_MS` (default 40): added to every second airsync
    /// counts its requests in, for the network's jitter.
    pub rate_margin: Duration,
    /// `AIRTABLE_RATE_RECOVERY_SECS` (default 60): after another client's
    /// requests drew a 429, how long the share waits for each percentage
    /// point it climbs back.
    pub rate_recovery_step: Duration,
    /// `AIRTABLE_REQUEST_TIMEOUT_SECS` (default 30).
    pub request_timeout: Duration,
    /// `AIRTABLE_CONNECT_TIMEOUT_SECS` (default 10).
    pub connect_timeout: Duration,
}

/// `JWT_*`: signing of the API's access tokens.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `JWT_SECRET`: at least 32 bytes; required by `serve`.
    pub jwt_secret: Option<Secret>,
    /// `JWT_ACCESS_TTL_SECS` (default 900).
    pub access_token_ttl: Duration,
    /// `JWT_REFRESH_TTL_SECS` (default 30 days).
    pub refresh_token_ttl: Duration,
    /// `JWT_REFRESH_FAMILY_TTL_SECS` (default 90 days): a sign-in's
    /// refresh tokens stop working this long after it, however often they
    /// were rotated.
    pub refresh_family_ttl: Duration,
}

/// `INVITE_*`: how a user without a password gets the link to set one.
#[derive(Debug, Clone)]
pub struct InvitationConfig {
    /// `INVITE_TRANSPORT`: `none` (default: invitations are made on the
    /// ops page or with `airsync users invite`, and handed over by hand),
    /// `log` (development: the link is logged) or `webhook` (a JSON POST
    /// to `INVITE_WEBHOOK_URL`, e.g. the team's mail relay).
    pub transport: InviteTransportKind,
    /// `INVITE_WEBHOOK_URL`: where `webhook` posts; required by it.
    pub webhook_url: Option<Url>,
    /// `INVITE_WEBHOOK_TOKEN`: sent as `Authorization: Bearer` to the
    /// webhook, when set.
    pub webhook_token: Option<Secret>,
    /// `INVITE_SETUP_URL`: the app's page that sets a password, with
    /// `{token}` where the setup token goes; without it an invitation
    /// carries the token alone.
    pub setup_url: Option<String>,
    /// `INVITE_AUTOMATIC` (default true): a user the inbound sync brings in
    /// without a password is invited through the transport by itself
    /// (never with `none`).
    pub automatic: bool,
    /// `INVITE_VALID_DAYS` (default 7): how long an invitation's link works.
    pub valid_for: Duration,
}

impl Default for InvitationConfig {
    /// The values of an empty environment: no transport.
    fn default() -> Self {
        InvitationConfig {
            transport: InviteTransportKind::None,
            webhook_url: None,
            webhook_token: None,
            setup_url: None,
            automatic: true,
            valid_for: Duration::from_secs(7 * 86_400),
        }
    }
}

/// How invitations leave airsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteTransportKind {
    None,
    Log,
    Webhook,
}

impl InviteTransportKind {
    fn parse(raw: &str) -> Result<InviteTransportKind, String> {
        match raw.to_ascii_lowercase().as_str() {
            "none" => Ok(InviteTransportKind::None),
            "log" => Ok(InviteTransportKind::Log),
            "webhook" => Ok(InviteTransportKind::Webhook),
            _ => Err(format!("must be none, log or webhook, got {raw:?}")),
        }
    }
}

/// An http(s) URL template with `{token}` in it.
fn parse_setup_url(raw: &str) -> Result<String, String> {
    if !raw.contains("{token}") {
        return Err("must contain {token}, where the setup token goes".to_owned());
    }
    types::parse_http_url(&raw.replace("{token}", "TOKEN"))?;
    Ok(raw.to_owned())
}

/// Switches that turn one path off alone during an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// `USER_FAST_LANE_ENABLED` (default true): users created in Airtable
    /// arrive through the webhook path within seconds.
    pub user_fast_lane: bool,
    /// `USER_READTHROUGH_FALLBACK_ENABLED` (default true): login looks an
    /// unknown email up in Airtable.
    pub user_readthrough_fallback: bool,
    /// `FULL_AIRTABLE_POLL_SYNC_ENABLED` (default true): the scheduled full
    /// reconcile runs.
    pub full_poll_sync: bool,
}

/// `SYNC_*`: the inbound schedules and the mapping.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// `SYNC_MAPPING_PATH`; unset means the built-in default mapping (the
    /// repository's `config/mapping.toml`, compiled in).
    pub mapping_path: Option<PathBuf>,
    /// `SYNC_FULL_RECONCILE_INTERVAL_SECS` (default 86400).
    pub full_reconcile_interval: Duration,
    /// `SYNC_INCREMENTAL_POLL_INTERVAL_SECS` (default 60).
    pub incremental_poll_interval: Duration,
    /// `SYNC_PAYLOAD_READER_INTERVAL_SECS` (default 10): the timer that reads
    /// webhook payloads even when a ping was lost.
    pub payload_reader_interval: Duration,
    /// `SYNC_WEBHOOK_CHECK_INTERVAL_SECS` (default 600): how often the
    /// webhook's state is checked, to refresh it before it expires and to
    /// recreate it when it expired, went into error or is gone.
    pub webhook_check_interval: Duration,
}

/// `WORKER_*`: the outbound worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `WORKER_CONCURRENCY` (default 2): batches a worker works on at once,
    /// so the base's lane does not idle while one batch ends.
    pub concurrency: u32,
    /// `WORKER_BATCH_SIZE` (default 100): events claimed at once.
    pub batch_size: u32,
    /// `WORKER_MAX_ATTEMPTS` (default 12): attempts before a dead letter.
    pub max_attempts: u32,
    /// `WORKER_LEASE_SECS` (default 30).
    pub lease: Duration,
    /// `WORKER_RETRY_BASE_MS` (default 500): first back-off.
    pub retry_base: Duration,
    /// `WORKER_RETRY_MAX_SECS` (default 600): longest back-off.
    pub retry_max: Duration,
    /// `WORKER_POLL_INTERVAL_MS` (default 1000): fallback poll when no
    /// notification arrives.
    pub poll_interval: Duration,
    /// `WORKER_METRICS_LISTEN`: where `airsync worker` serves `/metrics` and
    /// `/api/health` (e.g. `0.0.0.0:9091`); unset serves nothing.
    /// `--metrics-listen` overrides it.
    pub metrics_listen: Option<SocketAddr>,
}

/// `API_*`: how much work the HTTP listener of `airsync serve` takes on at
/// once, and how long it waits for clients.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `API_MAX_IN_FLIGHT`: API requests worked on at once (default: four
    /// per core, at most `DATABASE_MAX_CONNECTIONS`).
    pub max_in_flight: u32,
    /// `API_MAX_QUEUED`: API requests that may wait 10 ms for a place
    /// (default: four times `API_MAX_IN_FLIGHT`); more get 503 at once.
    pub max_queued: u32,
    /// `API_REQUEST_TIMEOUT_SECS` (default 30): an API request's deadline,
    /// its body included.
    pub request_timeout: Duration,
    /// `API_MAX_CONNECTIONS` (default 1024): connections open at once.
    pub max_connections: u32,
    /// `API_HEADER_READ_TIMEOUT_SECS` (default 10): how long a client may
    /// take to send a request's headers, and stay idle between requests.
    pub header_read_timeout: Duration,
    /// `METRICS_TOKEN`: the bearer token that opens `/metrics` and
    /// `/api/health/detailed` (of `serve`, where an admin's access token
    /// does too, and of the worker's `--metrics-listen`, which needs it).
    pub metrics_token: Option<Secret>,
    /// `API_TRUSTED_PROXIES`: addresses and CIDR networks of the proxies in
    /// front of `serve`, whose `X-Forwarded-For` names the client (for the
    /// sign-in throttle); empty by default, so the header is ignored.
    pub trusted_proxies: airsync_api::TrustedProxies,
    /// `OPS_CHART_STEP_SECS` (default 10): how often `serve` samples the sync
    /// for the ops page's charts, which keep 360 samples (an hour at 10 s).
    pub ops_chart_step: Duration,
}

/// `AIRSYNC_LOG_FORMAT` and `RUST_LOG`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `AIRSYNC_LOG_FORMAT`: `json` or `pretty`; JSON when unset and standard
    /// error is not a terminal.
    pub format: Option<LogFormat>,
    /// `RUST_LOG`: the filter (default `info`).
    pub filter: String,
}

/// Each group's mode: `DATA_BACKEND_<GROUP>`, by default `postgres_primary`;
/// `DATA_BACKEND_OVERTUIGINGEN`, when unset, follows
/// `DATA_BACKEND_REFERENCE`, which held overtuigingen before they had a
/// switch of their own.
fn read_backends(env: &mut Reader<'_>) -> BTreeMap<EndpointGroup, DataBackendMode> {
    let mut backends = BTreeMap::new();
    for group in EndpointGroup::ALL {
        let fallback = match group {
            EndpointGroup::Overtuigingen => backends
                .get(&EndpointGroup::Reference)
                .copied()
                .unwrap_or(DataBackendMode::PostgresPrimary),
            _ => DataBackendMode::PostgresPrimary,
        };
        let mode = env
            .optional(&group.variable(), DataBackendMode::parse)
            .unwrap_or(fallback);
        backends.insert(group, mode);
    }
    backends
}

/// A `DATA_BACKEND_*` variable that names no endpoint group stops the start:
/// a typo, or a group of the legacy backend, would otherwise leave its
/// routes where they were without a word.
fn check_backend_variables(names: &[String], env: &mut Reader<'_>) {
    let known: Vec<String> = EndpointGroup::ALL.iter().map(|g| g.variable()).collect();
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    for name in names {
        if name.starts_with("DATA_BACKEND_") && !known.contains(name) {
            env.problem(
                name,
                format!(
                    "names no endpoint group; the groups are {}",
                    known.join(", ")
                ),
            );
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        Self::from_vars(&names, |name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's
    /// value; the demo passes its own.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Self::from_vars(&[], lookup)
    }

    /// Reads the configuration through `lookup`; `names` are the variables
    /// that are set, checked for names airsync does not know in the
    /// families where a typo would pass silently (`DATA_BACKEND_*`).
    pub fn from_vars(
        names: &[String],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut env = Reader::new(&lookup);
        check_backend_variables(names, &mut env);
        // The worker's defaults are its own, written once.
        let worker = airsync_sync::worker::WorkerTuning::default();
        let database = DatabaseConfig {
            url: env.optional("DATABASE_URL", DatabaseUrl::parse),
            max_connections: env.number("DATABASE_MAX_CONNECTIONS", 10, 1..=1000),
            min_connections: env.number("DATABASE_MIN_CONNECTIONS", 0, 0..=1000),
            acquire_timeout: env.seconds("DATABASE_ACQUIRE_TIMEOUT_SECS", 5, 1..=600),
        };
        let four_per_core = airsync_api::AdmissionLimits::default().in_flight as u32;
        let max_in_flight = env.number(
            "API_MAX_IN_FLIGHT",
            four_per_core.min(database.max_connections),
            1..=10_000,
        );
        let http = HttpConfig {
            max_in_flight,
            max_queued: env.number("API_MAX_QUEUED", 4 * max_in_flight, 0..=100_000),
            request_timeout: env.seconds("API_REQUEST_TIMEOUT_SECS", 30, 1..=600),
            max_connections: env.number("API_MAX_CONNECTIONS", 1024, 1..=1_000_000),
            header_read_timeout: env.seconds("API_HEADER_READ_TIMEOUT_SECS", 10, 1..=600),
            metrics_token: env.optional("METRICS_TOKEN", Secret::parse_bearer_token),
            ops_chart_step: env.seconds("OPS_CHART_STEP_SECS", 10, 1..=60),
            trusted_proxies: env
                .optional("API_TRUSTED_PROXIES", airsync_api::TrustedProxies::parse)
                .unwrap_or_default(),
        };
        let config = Config {
            database,
            http,
            airtable: AirtableConfig {
                api_url: env
                    .optional("AIRTABLE_API_URL", types::parse_http_url)
                    .unwrap_or_else(types::default_airtable_url),
                token: env.optional("AIRTABLE_TOKEN", Secret::parse_token),
                base_id: env.optional("AIRTABLE_BASE_ID", |raw| {
                    BaseId::parse(raw).map_err(|err| err.to_string())
                }),
                webhook_secret: env.optional("AIRTABLE_WEBHOOK_SECRET", Secret::parse_base64),
                webhook_url: env.optional("AIRTABLE_WEBHOOK_URL", types::parse_http_url),
                rate_limit_per_base: env.number("AIRTABLE_RATE_LIMIT_PER_BASE", 5, 1..=1000),
                rate_limit_per_token: env.number("AIRTABLE_RATE_LIMIT_PER_TOKEN", 50, 1..=10000),
                rate_budget_percent: env.number("AIRTABLE_RATE_BUDGET_PERCENT", 100, 1..=100),
                rate_margin: Duration::from_millis(env.number(
                    "AIRTABLE_RATE_MARGIN_MS",
                    40,
                    0..=1_000,
                )),
                rate_recovery_step: env.seconds("AIRTABLE_RATE_RECOVERY_SECS", 60, 1..=86_400),
                request_timeout: env.seconds("AIRTABLE_REQUEST_TIMEOUT_SECS", 30, 1..=600),
                connect_timeout: env.seconds("AIRTABLE_CONNECT_TIMEOUT_SECS", 10, 1..=120),
            },
            auth: AuthConfig {
                jwt_secret: env.optional("JWT_SECRET", Secret::parse_jwt_secret),
                access_token_ttl: env.seconds("JWT_ACCESS_TTL_SECS", 900, 60..=86_400),
                refresh_token_ttl: env.seconds(
                    "JWT_REFRESH_TTL_SECS",
                    30 * 86_400,
                    3_600..=365 * 86_400,
                ),
                refresh_family_ttl: env.seconds(
                    "JWT_REFRESH_FAMILY_TTL_SECS",
                    90 * 86_400,
                    3_600..=3_650 * 86_400,
                ),
            },
            backends: read_backends(&mut env),
            switches: Switches {
                user_fast_lane: env.flag("USER_FAST_LANE_ENABLED", true),
                user_readthrough_fallback: env.flag("USER_READTHROUGH_FALLBACK_ENABLED", true),
                full_poll_sync: env.flag("FULL_AIRTABLE_POLL_SYNC_ENABLED", true),
            },
            invitations: InvitationConfig {
                transport: env
                    .optional("INVITE_TRANSPORT", InviteTransportKind::parse)
                    .unwrap_or(InviteTransportKind::None),
                webhook_url: env.optional("INVITE_WEBHOOK_URL", types::parse_http_url),
                webhook_token: env.optional("INVITE_WEBHOOK_TOKEN", Secret::parse_token),
                setup_url: env.optional("INVITE_SETUP_URL", parse_setup_url),
                automatic: env.flag("INVITE_AUTOMATIC", true),
                valid_for: Duration::from_secs(
                    86_400 * env.number("INVITE_VALID_DAYS", 7u64, 1..=90),
                ),
            },
            sync: SyncConfig {
                mapping_path: env.optional("SYNC_MAPPING_PATH", |v| Ok(PathBuf::from(v))),
                full_reconcile_interval: env.seconds(
                    "SYNC_FULL_RECONCILE_INTERVAL_SECS",
                    86_400,
                    60..=30 * 86_400,
                ),
                incremental_poll_interval: env.seconds(
                    "SYNC_INCREMENTAL_POLL_INTERVAL_SECS",
                    60,
                    1..=86_400,
                ),
                payload_reader_interval: env.seconds(
                    "SYNC_PAYLOAD_READER_INTERVAL_SECS",
                    10,
                    1..=3_600,
                ),
                webhook_check_interval: env.seconds(
                    "SYNC_WEBHOOK_CHECK_INTERVAL_SECS",
                    600,
                    1..=86_400,
                ),
            },
            worker: WorkerConfig {
                concurrency: env.number(
                    "WORKER_CONCURRENCY",
                    u32::try_from(worker.max_batches_in_flight).unwrap_or(2),
                    1..=64,
                ),
                batch_size: env.number("WORKER_BATCH_SIZE", worker.batch_size, 1..=1000),
                max_attempts: env.number("WORKER_MAX_ATTEMPTS", worker.max_attempts, 1..=100),
                lease: env.seconds("WORKER_LEASE_SECS", worker.lease.as_secs(), 5..=3_600),
                retry_base: Duration::from_millis(env.number(
                    "WORKER_RETRY_BASE_MS",
                    millis(worker.retry_base),
                    10..=60_000,
                )),
                retry_max: env.seconds(
                    "WORKER_RETRY_MAX_SECS",
                    worker.retry_max.as_secs(),
                    1..=86_400,
                ),
                poll_interval: Duration::from_millis(env.number(
                    "WORKER_POLL_INTERVAL_MS",
                    millis(worker.poll_interval),
                    10..=60_000,
                )),
                metrics_listen: env.optional("WORKER_METRICS_LISTEN", types::parse_listen_address),
            },
            log: LogConfig {
                format: env.optional("AIRSYNC_LOG_FORMAT", LogFormat::parse),
                filter: env
                    .optional("RUST_LOG", types::parse_log_filter)
                    .unwrap_or_else(|| "info".to_owned()),
            },
        };
        config.check_relations(&mut env);
        env.finish(config)
    }

    /// Rules between variables, checked after each one parsed.
    fn check_relations(&self, env: &mut Reader<'_>) {
        if self.database.min_connections > self.database.max_connections {
            env.problem(
                "DATABASE_MIN_CONNECTIONS",
                format!(
                    "{} is more than DATABASE_MAX_CONNECTIONS ({})",
                    self.database.min_connections, self.database.max_connections
                ),
            );
        }
        if self.invitations.transport == InviteTransportKind::Webhook
            && self.invitations.webhook_url.is_none()
        {
            env.problem(
                "INVITE_WEBHOOK_URL",
                "is not set; INVITE_TRANSPORT=webhook posts invitations to it".to_owned(),
            );
        }
        if self.worker.retry_base > self.worker.retry_max {
            env.problem(
                "WORKER_RETRY_BASE_MS",
                "is longer than WORKER_RETRY_MAX_SECS".to_owned(),
            );
        }
    }

    /// `DATABASE_URL`, or an error that says it is needed.
    pub fn require_database_url(&self) -> Result<&DatabaseUrl, ConfigError> {
        self.database.url.as_ref().ok_or_else(|| {
            ConfigError::missing(
                "DATABASE_URL",
                "a PostgreSQL URL such as postgres://user:password@localhost:5432/airsync",
            )
        })
    }

    /// The pool settings of `DATABASE_*`.
    pub fn pool_settings(&self) -> airsync_db::PoolSettings {
        airsync_db::PoolSettings {
            max_connections: self.database.max_connections,
            min_connections: self.database.min_connections,
            acquire_timeout: self.database.acquire_timeout,
        }
    }

    /// The mapping: `SYNC_MAPPING_PATH`'s file, or the built-in default.
    pub fn load_mapping(
        &self,
    ) -> Result<airsync_sync::mapping::Mapping, airsync_sync::mapping::MappingError> {
        match &self.sync.mapping_path {
            Some(path) => airsync_sync::mapping::Mapping::load(path),
            None => airsync_sync::mapping::Mapping::default_mapping(),
        }
    }

    /// The mode of one endpoint group.
    pub fn backend(&self, group: EndpointGroup) -> DataBackendMode {
        self.backends
            .get(&group)
            .copied()
            .unwrap_or(DataBackendMode::PostgresPrimary)
    }
}

#[cfg(test)]
mod tests;

/// A duration in whole milliseconds, as the `*_MS` variables count.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
