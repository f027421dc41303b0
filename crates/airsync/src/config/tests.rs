use std::collections::HashMap;

use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let names: Vec<String> = map.keys().cloned().collect();
    Config::from_vars(&names, |name| map.get(name).cloned())
}

fn problem_variables(err: &ConfigError) -> Vec<&str> {
    err.problems.iter().map(|p| p.variable.as_str()).collect()
}

#[test]
fn an_empty_environment_gives_the_documented_defaults() {
    let config = load(&[]).expect("defaults are valid");
    assert!(config.database.url.is_none());
    assert_eq!(config.database.max_connections, 10);
    assert_eq!(
        config.airtable.api_url.as_str(),
        "https://api.airtable.com/"
    );
    assert_eq!(config.airtable.rate_limit_per_base, 5);
    assert_eq!(config.airtable.rate_limit_per_token, 50);
    assert_eq!(
        config.backend(EndpointGroup::Programs),
        DataBackendMode::PostgresPrimary
    );
    assert!(config.switches.user_fast_lane);
    assert_eq!(config.sync.mapping_path, None);
    assert!(config.load_mapping().is_ok(), "the built-in mapping loads");
    assert_eq!(config.worker.max_attempts, 12);
    assert_eq!(config.log.filter, "info");
}

#[test]
fn every_value_is_read_from_its_variable() {
    let config = load(&[
        ("DATABASE_URL", "postgres://app:pw@db:5432/airsync"),
        ("DATABASE_MAX_CONNECTIONS", "20"),
        ("AIRTABLE_API_URL", "http://127.0.0.1:8765"),
        ("AIRTABLE_TOKEN", "patABC.123"),
        ("AIRTABLE_BASE_ID", "appAAAAAAAAAAAAAA"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("DATA_BACKEND_HABIT_USAGE", "airtable_only"),
        ("DATA_BACKEND_PROGRAMS", "POSTGRES_SHADOW_READ"),
        ("USER_FAST_LANE_ENABLED", "false"),
        ("SYNC_INCREMENTAL_POLL_INTERVAL_SECS", "15"),
        ("WORKER_LEASE_SECS", "45"),
        ("AIRSYNC_LOG_FORMAT", "json"),
    ])
    .expect("valid");
    assert_eq!(config.database.max_connections, 20);
    assert_eq!(config.airtable.api_url.as_str(), "http://127.0.0.1:8765/");
    assert_eq!(
        config.airtable.base_id.as_ref().map(|b| b.as_str()),
        Some("appAAAAAAAAAAAAAA")
    );
    assert_eq!(
        config.backend(EndpointGroup::HabitUsage),
        DataBackendMode::AirtableOnly
    );
    assert_eq!(
        config.backend(EndpointGroup::Programs),
        DataBackendMode::PostgresShadowRead
    );
    assert_eq!(
        config.backend(EndpointGroup::Rewards),
        DataBackendMode::PostgresPrimary
    );
    assert!(!config.switches.user_fast_lane);
    assert_eq!(
        config.sync.incremental_poll_interval,
        Duration::from_secs(15)
    );
    assert_eq!(config.worker.lease, Duration::from_secs(45));
    assert_eq!(config.log.format, Some(LogFormat::Json));
}

#[test]
fn the_workers_metrics_address_is_optional_and_checked() {
    assert_eq!(load(&[]).expect("valid").worker.metrics_listen, None);
    let config = load(&[("WORKER_METRICS_LISTEN", "0.0.0.0:9091")]).expect("valid");
    assert_eq!(
        config.worker.metrics_listen,
        Some("0.0.0.0:9091".parse().expect("address"))
    );
    let err = load(&[("WORKER_METRICS_LISTEN", "localhost")]).expect_err("invalid");
    assert_eq!(problem_variables(&err), ["WORKER_METRICS_LISTEN"]);
}

#[test]
fn a_bad_value_is_reported_with_its_variable_name() {
    let err = load(&[("DATABASE_MAX_CONNECTIONS", "lots")]).expect_err("invalid");
    assert_eq!(problem_variables(&err), ["DATABASE_MAX_CONNECTIONS"]);
    let message = err.to_string();
    assert!(message.contains("DATABASE_MAX_CONNECTIONS"), "{message}");
    assert!(message.contains("whole number"), "{message}");
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let err = load(&[
        ("DATABASE_URL", "mysql://db/airsync"),
        ("AIRTABLE_BASE_ID", "tblAAAAAAAAAAAAAA"),
        ("DATA_BACKEND_REWARDS", "postgres"),
        ("JWT_SECRET", "short"),
        ("USER_READTHROUGH_FALLBACK_ENABLED", "maybe"),
        ("WORKER_MAX_ATTEMPTS", "0"),
        ("AIRTABLE_API_URL", "ftp://example.com"),
        ("AIRSYNC_LOG_FORMAT", "xml"),
    ])
    .expect_err("invalid");
    assert_eq!(
        problem_variables(&err),
        [
            "DATABASE_URL",
            "AIRTABLE_API_URL",
            "AIRTABLE_BASE_ID",
            "JWT_SECRET",
            "DATA_BACKEND_REWARDS",
            "USER_READTHROUGH_FALLBACK_ENABLED",
            "WORKER_MAX_ATTEMPTS",
            "AIRSYNC_LOG_FORMAT",
        ]
    );
}

#[test]
fn rules_between_variables_are_checked() {
    let err = load(&[
        ("DATABASE_MIN_CONNECTIONS", "5"),
        ("DATABASE_MAX_CONNECTIONS", "2"),
    ])
    .expect_err("invalid");
    assert_eq!(problem_variables(&err), ["DATABASE_MIN_CONNECTIONS"]);
}

#[test]
fn empty_values_count_as_unset() {
    let config = load(&[("DATABASE_URL", "  "), ("WORKER_CONCURRENCY", "")]).expect("valid");
    assert!(config.database.url.is_none());
    assert_eq!(config.worker.concurrency, 2);
}

#[test]
fn a_missing_database_url_is_named_when_a_command_needs_it() {
    let config = load(&[]).expect("valid");
    let err = config.require_database_url().expect_err("missing");
    assert!(err.to_string().contains("DATABASE_URL is not set"), "{err}");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = load(&[
        ("DATABASE_URL", "postgres://app:hunter2hunter2@db/airsync"),
        ("AIRTABLE_TOKEN", "patSECRETTOKEN.abcdef"),
        ("AIRTABLE_WEBHOOK_SECRET", "c2VjcmV0LW1hYy1rZXk="),
        ("JWT_SECRET", "jwt-secret-jwt-secret-jwt-secret-0000"),
    ])
    .expect("valid");
    let printed = format!("{config:?}");
    for secret in [
        "hunter2hunter2",
        "patSECRETTOKEN",
        "c2VjcmV0LW1hYy1rZXk",
        "jwt-secret-jwt",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked into {printed}");
    }
    assert!(
        printed.contains("postgres://app:***@db/airsync"),
        "{printed}"
    );
    assert_eq!(
        config.airtable.token.as_ref().map(Secret::expose),
        Some("patSECRETTOKEN.abcdef")
    );
}

#[test]
fn the_env_example_lists_every_variable_the_code_reads() {
    let example = include_str!("../../../../.env.example");
    let read = std::cell::RefCell::new(Vec::new());
    let _ = Config::from_lookup(|name| {
        read.borrow_mut().push(name.to_owned());
        None
    });
    for variable in read.borrow().iter() {
        assert!(
            example.lines().any(|line| line
                .trim_start_matches("# ")
                .starts_with(&format!("{variable}="))),
            ".env.example does not list {variable}"
        );
    }
}

#[test]
fn the_http_limits_the_metrics_token_and_the_trusted_proxies_are_read_and_checked() {
    let config = load(&[]).expect("defaults");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    assert_eq!(
        config.http.max_in_flight,
        (4 * cores).min(config.database.max_connections)
    );
    assert_eq!(config.http.max_queued, 4 * config.http.max_in_flight);
    assert!(config.http.metrics_token.is_none());
    assert!(config.http.trusted_proxies.is_empty());
    let config = load(&[
        ("API_MAX_IN_FLIGHT", "20"),
        ("API_MAX_QUEUED", "7"),
        ("METRICS_TOKEN", "a-metrics-token-of-24-bytes"),
        ("API_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
    ])
    .expect("config");
    assert_eq!((config.http.max_in_flight, config.http.max_queued), (20, 7));
    assert!(!config.http.trusted_proxies.is_empty());
    let err = load(&[
        ("METRICS_TOKEN", "short"),
        ("API_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("API_MAX_IN_FLIGHT", "0"),
    ])
    .unwrap_err();
    assert_eq!(
        problem_variables(&err),
        ["API_MAX_IN_FLIGHT", "METRICS_TOKEN", "API_TRUSTED_PROXIES"]
    );
}

#[test]
fn overtuigingen_have_their_own_switch_that_follows_reference_when_unset() {
    let config = load(&[("DATA_BACKEND_REFERENCE", "airtable_only")]).expect("valid");
    assert_eq!(
        config.backend(EndpointGroup::Overtuigingen),
        DataBackendMode::AirtableOnly
    );
    // The legacy backend's end state: overtuigingen alone on Airtable.
    let config = load(&[("DATA_BACKEND_OVERTUIGINGEN", "airtable_only")]).expect("valid");
    assert_eq!(
        config.backend(EndpointGroup::Overtuigingen),
        DataBackendMode::AirtableOnly
    );
    assert_eq!(
        config.backend(EndpointGroup::Reference),
        DataBackendMode::PostgresPrimary
    );
    let config = load(&[
        ("DATA_BACKEND_REFERENCE", "airtable_only"),
        ("DATA_BACKEND_OVERTUIGINGEN", "postgres_primary"),
    ])
    .expect("valid");
    assert_eq!(
        config.backend(EndpointGroup::Overtuigingen),
        DataBackendMode::PostgresPrimary
    );
}

#[test]
fn an_unknown_data_backend_variable_stops_the_start_naming_the_groups() {
    let err = load(&[
        ("DATA_BACKEND_PROGRAM", "airtable_only"),
        ("DATA_BACKEND_HABITS", "postgres_primary"),
        ("DATA_BACKEND_PROGRAMS", "airtable_only"),
    ])
    .expect_err("two unknown variables");
    assert_eq!(
        problem_variables(&err),
        ["DATA_BACKEND_HABITS", "DATA_BACKEND_PROGRAM"]
    );
    let message = err.to_string();
    assert!(
        message.contains("names no endpoint group")
            && message.contains("DATA_BACKEND_OVERTUIGINGEN")
            && message.contains("DATA_BACKEND_PROGRAMS"),
        "{message}"
    );
    // Unrelated variables are none of its business.
    load(&[("DATABACKEND_X", "1"), ("MY_DATA_BACKEND_X", "1")]).expect("valid");
}

#[test]
fn invitations_name_their_transport_and_what_it_needs() {
    let config = load(&[]).expect("valid");
    assert_eq!(config.invitations.transport, InviteTransportKind::None);
    let config = load(&[
        ("INVITE_TRANSPORT", "webhook"),
        ("INVITE_WEBHOOK_URL", "https://relay.example.com/invite"),
        (
            "INVITE_SETUP_URL",
            "https://app.example.com/setup?token={token}",
        ),
        ("INVITE_VALID_DAYS", "3"),
    ])
    .expect("valid");
    assert_eq!(config.invitations.transport, InviteTransportKind::Webhook);
    assert_eq!(
        config.invitations.valid_for,
        Duration::from_secs(3 * 86_400)
    );
    let err = load(&[
        ("INVITE_TRANSPORT", "mail"),
        ("INVITE_SETUP_URL", "https://app.example.com/setup"),
        ("INVITE_VALID_DAYS", "0"),
    ])
    .expect_err("three problems");
    assert_eq!(
        problem_variables(&err),
        ["INVITE_TRANSPORT", "INVITE_SETUP_URL", "INVITE_VALID_DAYS"]
    );
    let err = load(&[("INVITE_TRANSPORT", "webhook")]).expect_err("no URL");
    assert_eq!(problem_variables(&err), ["INVITE_WEBHOOK_URL"]);
}
