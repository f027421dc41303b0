//! The state every handler shares.

use std::sync::Arc;

use airsync_airtable::{Clock, SystemClock};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::admission::Admission;
use crate::auth::jwt::TokenSigner;
use crate::auth::password::PasswordHasher;
use crate::auth::throttle::LoginThrottle;
use crate::backends::ReadThroughGate;
use crate::config::{ApiConfig, MIN_JWT_SECRET_BYTES};
use crate::error::Result;
use crate::setup::SetupError;
use crate::store::airtable::AirtableStore;
use crate::store::shadow::{ShadowMetrics, ShadowSnapshot};
use crate::store::Stores;

/// Shared by every request: the pool, the stores of each endpoint group,
/// the token signer, the throttle and the clock.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: ApiConfig,
    stores: Stores,
    signer: TokenSigner,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    lookup_throttle: LoginThrottle,
    read_through_gate: ReadThroughGate,
    admission: Arc<Admission>,
    clock: Arc<dyn Clock>,
    airtable: Option<AirtableStore>,
    shadow: Arc<ShadowMetrics>,
}

impl AppState {
    /// The state for `config`, on the system clock.
    pub fn new(pool: PgPool, config: ApiConfig) -> Result<AppState, SetupError> {
        AppState::with_clock(pool, config, Arc::new(SystemClock::new()))
    }

    /// The state on a given clock (tests move it to check streaks and expiry).
    pub fn with_clock(
        pool: PgPool,
        config: ApiConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, SetupError> {
        if config.jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(SetupError::JwtSecretTooShort(config.jwt_secret.len()));
        }
        let airtable = crate::backends::airtable_store(&pool, &config)?;
        let shadow = Arc::new(ShadowMetrics::default());
        let stores = crate::backends::stores_for(&pool, &config, airtable.as_ref(), &shadow)?;
        let hasher = PasswordHasher::new(config.password_hash_cost, config.hashing)
            .map_err(|err| SetupError::Hashing(err.to_string()))?;
        Ok(AppState {
            inner: Arc::new(Inner {
                signer: TokenSigner::new(&config.jwt_secret).map_err(SetupError::Signing)?,
                throttle: LoginThrottle::new(config.login_throttle),
                lookup_throttle: LoginThrottle::new(config.lookup_throttle),
                read_through_gate: ReadThroughGate::default(),
                admission: Arc::new(Admission::new(config.admission)),
                stores,
                hasher,
                pool,
                config,
                clock,
                airtable,
                shadow,
            }),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    pub fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    /// Admits login read-through lookups.
    pub(crate) fn read_through_gate(&self) -> &ReadThroughGate {
        &self.inner.read_through_gate
    }

    /// Whether a login read-through lookup is running now (they run after
    /// the login answered; tests wait for them).
    pub fn read_through_running(&self) -> bool {
        self.inner.read_through_gate.running()
    }

    /// Counts public company lookups per client address.
    pub fn lookup_throttle(&self) -> &LoginThrottle {
        &self.inner.lookup_throttle
    }

    /// The admission control of the API's requests.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    /// The Airtable store, when a base is configured (login read-through).
    pub(crate) fn airtable(&self) -> Option<&AirtableStore> {
        self.inner.airtable.as_ref()
    }

    /// Shadow-read comparisons so far: how many, and the differences by
    /// endpoint and field.
    pub fn shadow_differences(&self) -> ShadowSnapshot {
        self.inner.shadow.snapshot()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.wall()
    }
}
