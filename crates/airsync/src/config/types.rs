//! Closed sets and identifiers of the configuration.

use url::Url;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line: for production, where logs are collected.
    Json,
    /// Readable lines: for a person at a terminal.
    Pretty,
}

impl LogFormat {
    pub(super) fn parse(raw: &str) -> Result<LogFormat, String> {
        match raw.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            _ => Err(format!("must be json or pretty, got {raw:?}")),
        }
    }
}

/// An http(s) URL.
pub(super) fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|err| format!("is not a valid URL ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("must be an http:// or https:// URL, got {raw:?}"));
    }
    Ok(url)
}

pub(super) fn parse_listen_address(raw: &str) -> Result<std::net::SocketAddr, String> {
    raw.parse()
        .map_err(|_| format!("{raw:?} is no address to listen on (host:port, e.g. 0.0.0.0:9091)"))
}

pub(super) fn default_airtable_url() -> Url {
    // A constant: no input can make this fail.
    Url::parse("https://api.airtable.com").expect("Airtable's URL is a valid URL")
}

/// A `RUST_LOG` filter, checked by the same parser that will use it.
pub(super) fn parse_log_filter(raw: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(raw)
        .map(|_| raw.to_owned())
        .map_err(|err| format!("is not a valid log filter ({err})"))
}
