//! Set-up shared by the sync benchmarks: a throwaway PostgreSQL and an
//! emulator holding a base bootstrapped for the default mapping, at
//! Airtable's real limits.

use std::sync::Arc;

use airsync_airtable::{AirtableClient, ClientConfig};
use airsync_emulator::{Emulator, EmulatorConfig, RateLimits};
use airsync_sync::bootstrap::bootstrap;
use airsync_sync::mapping::Mapping;
use airsync_testkit::TestDb;

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A client of the emulator with `token`; `paced` keeps the client's pacing
/// at Airtable's limits, otherwise it sends as fast as it can.
pub fn client(emulator: &Emulator, token: &str, paced: bool) -> Result<AirtableClient, Failure> {
    let mut config = ClientConfig::new(token).with_api_url(&emulator.url())?;
    if !paced {
        config.rate_limits.per_base = 10_000;
        config.rate_limits.per_token = 10_000;
    }
    Ok(AirtableClient::new(config)?)
}

/// Starts PostgreSQL and the emulator with `base`, bootstraps the base for
/// the default mapping (limits off, so the set-up costs no time), then puts
/// Airtable's real limits on and resets the emulator's counts.
pub async fn start(token: &str, base: &str) -> Result<(TestDb, Emulator, Arc<Mapping>), Failure> {
    let db = TestDb::new().await;
    let emulator = EmulatorConfig::new()
        .with_token(token)
        .with_base(base)
        .start()
        .await?;
    emulator.set_limits(RateLimits::off());
    let mapping = Arc::new(Mapping::default_mapping()?);
    bootstrap(&client(&emulator, token, false)?.base(base), &mapping).await?;
    emulator.set_limits(RateLimits::default());
    emulator.reset_stats();
    Ok((db, emulator, mapping))
}
