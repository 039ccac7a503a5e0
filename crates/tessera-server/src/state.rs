//! Shared state of the running server.

use std::sync::Arc;

use tessera_store::{Store, TokenWriter};
use tessera_types::SigningAlg;

use crate::clock::Clock;
use crate::limits::Limits;
use crate::random::Random;
use crate::registry::RegistryHandle;
use crate::secrets::SecretVerifier;
use crate::throttle::{FailureLimiter, IssuanceLimiter};

/// What every handler reads. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub signing_algs: Vec<SigningAlg>,
    pub max_body_bytes: usize,
    pub registry: Arc<RegistryHandle>,
    pub verifier: SecretVerifier,
    pub failures: FailureLimiter,
    pub issuance: IssuanceLimiter,
    /// Tokens issued past the rate limit in monitor mode.
    pub rate_limited_monitored: std::sync::atomic::AtomicU64,
    pub store: Store,
    pub token_writer: TokenWriter,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    /// Access tokens issued since start (observability; the client tests count with it).
    pub tokens_issued: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Builds the state. `issuer` has no trailing slash. Starts the reference token writer,
    /// so call it inside a Tokio runtime.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: String,
        store: Store,
        signing_algs: Vec<SigningAlg>,
        max_body_bytes: usize,
        limits: &Limits,
        registry: Arc<RegistryHandle>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        Self(Arc::new(Inner {
            token_endpoint: format!("{issuer}/connect/token"),
            jwks_uri: format!("{issuer}/.well-known/jwks"),
            introspection_endpoint: format!("{issuer}/connect/introspect"),
            revocation_endpoint: format!("{issuer}/connect/revoke"),
            issuer,
            signing_algs,
            max_body_bytes,
            registry,
            verifier: SecretVerifier::new(crate::secrets::CACHE_TTL, limits.auth.clone()),
            failures: FailureLimiter::new(limits.auth.clone()),
            issuance: IssuanceLimiter::new(limits.issuance.clone()),
            rate_limited_monitored: std::sync::atomic::AtomicU64::new(0),
            token_writer: TokenWriter::spawn(store.clone()),
            store,
            clock,
            rng,
            tokens_issued: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Access tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.0.tokens_issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tokens issued past the issuance rate limit while it only monitors.
    pub fn rate_limited_monitored(&self) -> u64 {
        self.0.rate_limited_monitored.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }
}
