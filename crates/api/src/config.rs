//! The API's configuration, as the binary hands it over.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::admission::AdmissionLimits;
use crate::auth::password::{HashCost, HashingLimits};
use crate::auth::proxies::TrustedProxies;
use crate::auth::throttle::ThrottleLimits;
use crate::backend_mode::{DataBackendMode, EndpointGroup};

/// Shortest accepted `JWT_SECRET`, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Everything the API needs to know besides the database pool.
#[derive(Clone)]
pub struct ApiConfig {
    /// Key that signs access tokens (`JWT_SECRET`), at least 32 bytes.
    pub jwt_secret: Vec<u8>,
    /// Lifetime of an access token (`JWT_ACCESS_TTL_SECS`).
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (`JWT_REFRESH_TTL_SECS`).
    pub refresh_token_ttl: Duration,
    /// Longest life of a refresh token family, from the sign-in, however
    /// often it is rotated (`JWT_REFRESH_FAMILY_TTL_SECS`).
    pub refresh_family_ttl: Duration,
    /// Lifetime of a password setup token from `airsync users invite`.
    pub setup_token_ttl: Duration,
    /// The data backend of each endpoint group; a group left out is
    /// `postgres_primary`.
    pub backends: BTreeMap<EndpointGroup, DataBackendMode>,
    /// `USER_READTHROUGH_FALLBACK_ENABLED`: login looks an email unknown to
    /// PostgreSQL up in Airtable.
    pub user_readthrough_fallback: bool,
    /// The Airtable base, for the airtable modes and the read-through.
    pub airtable: Option<AirtableAccess>,
    /// How many days back a usage may be dated through the API: a week by
    /// default, for the app to catch up on days it was offline. Further back
    /// would let anyone backdate a streak (and its bonuses) in a minute; the
    /// team can still record older usage in Airtable. (The load benchmark
    /// widens it to make a new row with every request.)
    pub usage_max_days_back: i64,
    /// Limits of failed logins.
    pub login_throttle: ThrottleLimits,
    /// Limits of the public company lookup per client address
    /// (`per_address` lookups a `window`; `per_email` is not used).
    pub lookup_throttle: ThrottleLimits,
    /// Cost of password hashing.
    pub password_hash_cost: HashCost,
    /// How many password hashes run and wait at once.
    pub hashing: HashingLimits,
    /// How many requests are worked on and wait at once, and their deadline.
    pub admission: AdmissionLimits,
    /// Proxies whose `X-Forwarded-For` names the client
    /// (`API_TRUSTED_PROXIES`); none by default.
    pub trusted_proxies: TrustedProxies,
}

impl ApiConfig {
    /// A configuration with the defaults of `.env.example`: every group on
    /// PostgreSQL, 15-minute access tokens, 30-day refresh tokens.
    pub fn new(jwt_secret: impl Into<Vec<u8>>) -> ApiConfig {
        ApiConfig {
            jwt_secret: jwt_secret.into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_family_ttl: Duration::from_secs(90 * 24 * 3600),
            setup_token_ttl: Duration::from_secs(7 * 24 * 3600),
            backends: BTreeMap::new(),
            user_readthrough_fallback: true,
            airtable: None,
            usage_max_days_back: 7,
            login_throttle: ThrottleLimits::default(),
            lookup_throttle: ThrottleLimits {
                per_email: u32::MAX,
                per_address: 20,
                window: Duration::from_secs(60),
            },
            password_hash_cost: HashCost::Standard,
            hashing: HashingLimits::default(),
            admission: AdmissionLimits::default(),
            trusted_proxies: TrustedProxies::none(),
        }
    }

    /// The mode of `group`.
    pub fn backend(&self, group: EndpointGroup) -> DataBackendMode {
        self.backends
            .get(&group)
            .copied()
            .unwrap_or(DataBackendMode::PostgresPrimary)
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("jwt_secret", &"***")
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("refresh_family_ttl", &self.refresh_family_ttl)
            .field("setup_token_ttl", &self.setup_token_ttl)
            .field("backends", &self.backends)
            .field("user_readthrough_fallback", &self.user_readthrough_fallback)
            .field("airtable", &self.airtable)
            .field("usage_max_days_back", &self.usage_max_days_back)
            .field("login_throttle", &self.login_throttle)
            .field("lookup_throttle", &self.lookup_throttle)
            .field("password_hash_cost", &self.password_hash_cost)
            .field("hashing", &self.hashing)
            .field("admission", &self.admission)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// How to reach the Airtable base: the process's one client (so every
/// request shares its pacing under Airtable's rate limits), the base, and
/// the mapping of entities to tables and fields.
#[derive(Clone)]
pub struct AirtableAccess {
    /// The client, built by the binary from `AIRTABLE_API_URL`,
    /// `AIRTABLE_TOKEN` and the rate settings.
    pub client: airsync_airtable::AirtableClient,
    /// `AIRTABLE_BASE_ID`.
    pub base_id: airsync_airtable::BaseId,
    /// The mapping (`SYNC_MAPPING_PATH`).
    pub mapping: airsync_sync::mapping::Mapping,
}

impl fmt::Debug for AirtableAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirtableAccess")
            .field("client", &self.client)
            .field("base_id", &self.base_id)
            .finish_non_exhaustive()
    }
}
