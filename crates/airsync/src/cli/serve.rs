//! `airsync serve`: the API and the operations endpoints, with the outbound
//! worker running beside them unless told otherwise.

use std::net::SocketAddr;

use clap::Args;

use super::{connect_patiently, shutdown_signal, CliError};
use crate::app::{App, Parts};
use crate::config::Config;

/// Options of `airsync serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Do not run the outbound worker in this process (run `airsync worker`
    /// separately).
    #[arg(long)]
    no_worker: bool,
}

pub async fn run(config: &Config, args: ServeArgs) -> Result<(), CliError> {
    let pool = connect_patiently(config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|err| CliError::Usage(format!("cannot listen on {}: {err}", args.listen)))?;
    let result = serve_on(
        config,
        pool.clone(),
        listener,
        !args.no_worker,
        |address| {
            println!("airsync is serving on http://{address}");
        },
        shutdown_signal(),
    )
    .await;
    pool.close().await;
    result
}

/// Serves on `listener` until `stop` completes (or SIGTERM/Ctrl-C), with the
/// outbound worker beside the API when `with_worker` and Airtable is
/// configured; `ready` hears the address once requests are accepted.
pub async fn serve_on(
    config: &Config,
    pool: sqlx::PgPool,
    listener: tokio::net::TcpListener,
    with_worker: bool,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), CliError> {
    let app = App::build(
        config,
        pool,
        listener,
        Parts {
            worker: with_worker,
        },
    )
    .await?;
    ready(app.address());
    app.run_until(async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = stop => {}
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::api_config;

    fn config(switches: &[(&str, &str)]) -> Config {
        let mut vars: Vec<(&str, &str)> = vec![
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "AIRTABLE_WEBHOOK_URL",
                "https://sync.example.com/api/sync/inbound",
            ),
        ];
        vars.extend_from_slice(switches);
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
        .expect("valid")
    }

    #[test]
    fn each_incident_switch_turns_off_its_own_path_alone() {
        let on = config(&[]);
        let inbound = crate::airtable::inbound_settings(&on);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.reconcile_enabled);
        assert!(api_config(&on, None).unwrap().user_readthrough_fallback);

        let no_fast_lane = config(&[("USER_FAST_LANE_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_fast_lane);
        assert!(!inbound.user_fast_lane);
        assert!(
            inbound.webhooks_enabled && inbound.reconcile_enabled,
            "the webhook stays for every other table"
        );
        assert!(
            api_config(&no_fast_lane, None)
                .unwrap()
                .user_readthrough_fallback
        );

        let no_read_through = config(&[("USER_READTHROUGH_FALLBACK_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_read_through);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.reconcile_enabled);
        assert!(
            !api_config(&no_read_through, None)
                .unwrap()
                .user_readthrough_fallback
        );

        let no_reconcile = config(&[("FULL_AIRTABLE_POLL_SYNC_ENABLED", "false")]);
        let inbound = crate::airtable::inbound_settings(&no_reconcile);
        assert!(inbound.webhooks_enabled && inbound.user_fast_lane && inbound.poll_enabled);
        assert!(!inbound.reconcile_enabled);
        assert!(
            api_config(&no_reconcile, None)
                .unwrap()
                .user_readthrough_fallback
        );
    }
}
