//! The client's configuration: where Airtable is, the token, the pace, the
//! timeouts and the retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::pacing::{BudgetStore, RateLimits};

/// Airtable's own API address.
pub const DEFAULT_API_URL: &str = "https://api.airtable.com";

/// A personal access token or OAuth token. Its `Debug` output is redacted
/// so that it never reaches a log line through a configuration dump.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }

    /// The token itself, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl From<String> for ApiToken {
    fn from(token: String) -> Self {
        ApiToken(token)
    }
}

impl From<&str> for ApiToken {
    fn from(token: &str) -> Self {
        ApiToken(token.to_owned())
    }
}

/// When and how often a failed request is tried again.
///
/// Back-off is exponential with full jitter: before attempt `n + 1` the
/// client waits a random time in `[0, min(max_delay, base_delay * 2^n)]`,
/// and at least the `Retry-After` a 503 asked for. A 429 is not counted in
/// `max_attempts`: it already costs the base a full pause, and counting it
/// would turn a short burst of 429s into a failure; it has its own cap,
/// `max_rate_limited_retries`, so that a misconfigured budget still ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all for failures other than 429 (1 = never retry).
    pub max_attempts: u32,
    /// The first back-off's upper bound.
    pub base_delay: Duration,
    /// No back-off is longer than this.
    pub max_delay: Duration,
    /// 429 answers tolerated for one request before giving up.
    pub max_rate_limited_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_rate_limited_retries: 8,
        }
    }
}

/// Everything an [`AirtableClient`](crate::AirtableClient) is built from.
///
/// ```
/// use std::time::Duration;
/// use airsync_airtable::ClientConfig;
///
/// let mut config = ClientConfig::new("patXXXXXXXXXXXXXX.secret");
/// config.rate_limits.budget_share = 0.8;
/// config.request_timeout = Duration::from_secs(60);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Where the API is: Airtable's own address, or an emulator's.
    pub api_url: Url,
    /// The token sent as `Authorization: Bearer`.
    pub token: ApiToken,
    /// The pace.
    pub rate_limits: RateLimits,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on a whole request, from sending to the end of the answer.
    pub request_timeout: Duration,
    /// How many times one listing may start over after its offset expired.
    pub max_list_restarts: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Where the deployment's processes share each base's budget; `None`
    /// paces this process alone (see [`BudgetStore`]).
    pub budget_store: Option<Arc<dyn BudgetStore>>,
}

impl ClientConfig {
    /// A configuration for Airtable's own API with the default limits.
    pub fn new(token: impl Into<ApiToken>) -> Self {
        ClientConfig {
            api_url: default_api_url(),
            token: token.into(),
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_list_restarts: 3,
            user_agent: concat!("airsync/", env!("CARGO_PKG_VERSION")).to_owned(),
            budget_store: None,
        }
    }

    /// Points the client at another API address (an emulator in tests).
    pub fn with_api_url(mut self, api_url: &str) -> Result<Self> {
        self.api_url = Url::parse(api_url)
            .map_err(|e| Error::Config(format!("API URL {api_url:?} is not a URL: {e}")))?;
        Ok(self)
    }

    /// Checks that the configuration can work.
    pub(crate) fn validate(&self) -> Result<()> {
        let limits = &self.rate_limits;
        if !(limits.budget_share > 0.0 && limits.budget_share <= 1.0) {
            return Err(Error::Config(format!(
                "budget_share must be in (0, 1], not {}",
                limits.budget_share
            )));
        }
        if limits.recovery_step.is_zero() {
            return Err(Error::Config("recovery_step must be positive".into()));
        }
        if limits.per_base == 0 || limits.per_token == 0 || limits.window.is_zero() {
            return Err(Error::Config(
                "rate limits and their window must be positive".into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::Config("max_attempts must be at least 1".into()));
        }
        if self.api_url.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "API URL {} cannot hold a path",
                self.api_url
            )));
        }
        if !matches!(self.api_url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "API URL {} is not http(s)",
                self.api_url
            )));
        }
        Ok(())
    }
}

fn default_api_url() -> Url {
    // A constant: no input can make this fail, and the test below parses it.
    #[allow(clippy::expect_used)]
    Url::parse(DEFAULT_API_URL).expect("DEFAULT_API_URL is a valid URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let config = ClientConfig::new("patABC.supersecret");
        let debug = format!("{config:?}");
        assert!(!debug.contains("supersecret"));
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn a_budget_share_outside_zero_to_one_is_refused() {
        let mut config = ClientConfig::new("pat");
        config.rate_limits.budget_share = 1.5;
        assert!(config.validate().is_err());
        config.rate_limits.budget_share = 0.8;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_default_api_url_is_airtables() {
        assert_eq!(
            ClientConfig::new("pat").api_url.as_str(),
            "https://api.airtable.com/"
        );
    }
}
