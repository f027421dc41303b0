//! `airsync airtable emulator`: the emulator's command line.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::EmulatorConfig;
use crate::limits::RateLimits;

pub use crate::error::Error;

/// Options of `airsync airtable emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: SocketAddr,
    /// Accepted bearer token (repeatable); other tokens get 401. Without
    /// any, every non-empty token is accepted.
    #[arg(long = "token", value_name = "TOKEN")]
    pub tokens: Vec<String>,
    /// Base to create, empty, at start (repeatable), e.g. appXXXXXXXXXXXXXX.
    #[arg(long = "base", value_name = "ID", value_parser = parse_base_id)]
    pub bases: Vec<String>,
    /// Directory where state survives restarts; in memory without it.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Requests per second per base before 429 (0 = no limit).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rate_limit_per_base: u32,
    /// Requests per second per token before 429 (0 = no limit).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub rate_limit_per_token: u32,
    /// Seconds a base (or token) keeps answering 429 after exceeding its
    /// rate.
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub penalty_secs: u64,
    /// Added latency per request before it is counted and handled, drawn
    /// from MIN..MAX milliseconds: the network's delay on the way in.
    #[arg(long, value_name = "MIN..MAX", value_parser = parse_latency)]
    pub latency_ms: Option<RangeInclusive<u64>>,
    /// Added latency per request after it is handled, before its answer
    /// leaves, drawn from MIN..MAX milliseconds: Airtable's own time
    /// (roughly 100..500), which comes after a request is counted.
    #[arg(long, value_name = "MIN..MAX", value_parser = parse_latency)]
    pub answer_latency_ms: Option<RangeInclusive<u64>>,
    /// Probability (0 to 1) that a request fails with 500, 502, 503 or a
    /// dropped connection.
    #[arg(long, default_value_t = 0.0, value_name = "P", value_parser = parse_fault_rate)]
    pub fault_rate: f64,
    /// Serve the control endpoints under /_emulator/ (tests only).
    #[arg(long)]
    pub control: bool,
    /// Seconds a list offset stays usable after the page that issued it.
    #[arg(long, default_value_t = 60, value_name = "S")]
    pub offset_ttl_secs: u64,
}

fn parse_base_id(text: &str) -> Result<String, String> {
    if crate::ids::is_id(text, crate::ids::BASE) {
        Ok(text.to_owned())
    } else {
        Err("a base id is \"app\" followed by 14 letters or digits".into())
    }
}

fn parse_latency(text: &str) -> Result<RangeInclusive<u64>, String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| "expected MIN..MAX in milliseconds, e.g. 100..500".to_owned())?;
    let min: u64 = min
        .trim()
        .parse()
        .map_err(|_| format!("{min:?} is not a number of milliseconds"))?;
    let max: u64 = max
        .trim()
        .parse()
        .map_err(|_| format!("{max:?} is not a number of milliseconds"))?;
    if min > max {
        return Err(format!("MIN ({min}) is above MAX ({max})"));
    }
    Ok(min..=max)
}

fn parse_fault_rate(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err("the fault rate is a probability between 0 and 1".into())
    }
}

impl EmulatorArgs {
    /// The configuration these options describe.
    pub fn config(&self) -> EmulatorConfig {
        EmulatorConfig {
            listen: self.listen,
            tokens: self.tokens.clone(),
            bases: self.bases.clone(),
            data_dir: self.data_dir.clone(),
            limits: RateLimits {
                per_base: self.rate_limit_per_base,
                per_token: self.rate_limit_per_token,
                penalty_secs: self.penalty_secs,
            },
            latency_ms: self.latency_ms.clone(),
            answer_latency_ms: self.answer_latency_ms.clone(),
            fault_rate: self.fault_rate,
            control: self.control,
            offset_ttl: Duration::from_secs(self.offset_ttl_secs),
            ..EmulatorConfig::default()
        }
    }
}

/// Runs the emulator until Ctrl-C or SIGTERM.
pub async fn run(args: EmulatorArgs) -> Result<(), Error> {
    if args.tokens.is_empty() {
        tracing::warn!("no --token given: every bearer token is accepted");
    }
    let emulator = args.config().start().await?;
    println!("Airtable emulator listening on {}", emulator.url());
    wait_for_signal().await;
    tracing::info!("stopping the emulator");
    emulator.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn defaults_are_airtables_limits_on_port_8765() {
        let cli = Cli::try_parse_from(["emulator"]).expect("defaults parse");
        assert_eq!(cli.args.listen.port(), 8765);
        assert_eq!(cli.args.rate_limit_per_base, 5);
        assert_eq!(cli.args.rate_limit_per_token, 50);
        assert_eq!(cli.args.penalty_secs, 30);
        assert!(!cli.args.control);
    }

    #[test]
    fn repeated_options_and_ranges_parse() {
        let cli = Cli::try_parse_from([
            "emulator",
            "--token",
            "a",
            "--token",
            "b",
            "--base",
            "appAAAAAAAAAAAAAA",
            "--latency-ms",
            "100..500",
            "--answer-latency-ms",
            "100..300",
            "--fault-rate",
            "0.1",
            "--control",
        ])
        .expect("parses");
        assert_eq!(cli.args.tokens, vec!["a", "b"]);
        assert_eq!(cli.args.latency_ms, Some(100..=500));
        assert_eq!(cli.args.answer_latency_ms, Some(100..=300));
        assert_eq!(cli.args.config().answer_latency_ms, Some(100..=300));
        assert!(cli.args.control);
    }

    #[test]
    fn bad_values_are_clap_errors_not_panics() {
        for bad in [
            vec!["emulator", "--latency-ms", "500..100"],
            vec!["emulator", "--answer-latency-ms", "slow"],
            vec!["emulator", "--latency-ms", "fast"],
            vec!["emulator", "--fault-rate", "2"],
            vec!["emulator", "--base", "nope"],
            vec!["emulator", "--listen", "localhost"],
            vec!["emulator", "--rate-limit-per-base", "-1"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }
}
