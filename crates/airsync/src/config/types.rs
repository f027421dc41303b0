//! Closed sets and identifiers of the configuration.

use std::fmt;

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

/// An Airtable base id: `app` followed by 14 letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AirtableBaseId(String);

impl AirtableBaseId {
    /// Checks the shape of a base id.
    pub fn parse(raw: &str) -> Result<AirtableBaseId, String> {
        let valid = raw.len() == 17
            && raw.starts_with("app")
            && raw[3..].bytes().all(|b| b.is_ascii_alphanumeric());
        if valid {
            Ok(AirtableBaseId(raw.to_owned()))
        } else {
            Err(format!(
                "must be an Airtable base id: \"app\" and 14 letters or digits, got {raw:?}"
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AirtableBaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
