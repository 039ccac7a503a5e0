//! Shared state of the running server, built from named parts ([`AppParts`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tessera_types::{Issuer, SigningAlg, UnixTime};

use crate::certificate::MtlsSettings;
use crate::client_keys::remote::{HttpFetcher, RemoteKeys};
use crate::clock::{Clock, SystemClock};
use crate::limits::{AssertionLimits, Limits};
use crate::random::{Random, SystemRandom};
use crate::registry::RegistryHandle;
use crate::secrets::SecretVerifier;
use crate::storage::Stores;
use crate::throttle::{FailureLimiter, IssuanceLimiter};

/// Time and randomness, injected; [`Deps::system`] for production, a `ManualClock` in tests.
#[derive(Clone)]
#[allow(missing_docs)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
}

impl Deps {
    /// System clock and OS randomness.
    pub fn system() -> Self {
        Self { clock: Arc::new(SystemClock), rng: Arc::new(SystemRandom::default()) }
    }
}

/// What [`AppState::new`] is built from.
#[allow(missing_docs)]
pub struct AppParts {
    /// The issuer identifier; the endpoint URLs derive from it.
    pub issuer: Issuer,
    /// The server's algorithms; the first signs for clients that name none.
    pub signing_algs: Vec<SigningAlg>,
    /// Largest form body read (413 beyond).
    pub max_body_bytes: usize,
    pub limits: Limits,
    /// Client CAs and the forwarded-certificate header (RFC 8705).
    pub mtls: MtlsSettings,
    pub registry: Arc<RegistryHandle>,
    pub stores: Stores,
    pub deps: Deps,
}

/// What every handler reads. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub issuer: Issuer,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub signing_algs: Vec<SigningAlg>,
    pub max_body_bytes: usize,
    pub registry: Arc<RegistryHandle>,
    pub verifier: SecretVerifier,
    pub failures: FailureLimiter,
    /// Security events for the audit trail (issue 16).
    pub audit: Arc<crate::audit::AuditLog>,
    /// Secrets' last use, written in batches by the pruner.
    pub secret_usage: crate::secrets::SecretUsage,
    pub issuance: IssuanceLimiter,
    /// The `private_key_jwt` assertion rules.
    pub assertion: AssertionLimits,
    pub mtls: MtlsSettings,
    /// Keys of the clients registered with a `jwks_uri`, as fetched.
    pub remote_keys: RemoteKeys,
    /// The `jwks_uri` trusted issuers' discovery documents name (issue 15).
    pub discovered: crate::federation::discovery::Discovered,
    /// Tokens issued past the rate limit in monitor mode.
    pub rate_limited_monitored: AtomicU64,
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Random>,
    /// Access tokens issued since start (observability; the client tests count with it).
    pub tokens_issued: AtomicU64,
    /// Woken when this instance records a revocation, so long polls of the feed answer at
    /// once (other instances' events are found by the polls' periodic look).
    pub events: tokio::sync::Notify,
    pub limits_events: crate::limits::EventLimits,
    pub limits_audit: crate::limits::AuditLimits,
    /// The DPoP proof window (RFC 9449 §11.1) and whether nonces are required (§8).
    pub dpop: crate::token::dpop::DpopLimits,
    /// §8 nonces, keyed by a secret derived from the key-encryption key, so every instance
    /// accepts the others' nonces.
    pub dpop_nonces: tessera_jose::dpop::NonceIssuer,
    /// Long polls of the revocation feed waiting now (bounded by `limits.events`).
    pub event_pollers: tokio::sync::Semaphore,
    /// What operators see (issue 16); off unless a metrics listener is configured.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The readiness probe's last answer, reused for a moment.
    pub readiness: crate::endpoint::health::Readiness,
}

impl AppState {
    /// Writes the secrets' last use recorded so far (the pruner does it every interval).
    pub async fn flush_secret_usage(&self, store: &tessera_store::Store) {
        let used = self.0.secret_usage.take(self.0.clock.now());
        if used.is_empty() {
            return;
        }
        // Written to the minute (issue 17): a pass's rows then share one or two times, and
        // the store updates each time's rows in id order, a walk along the index, rather than
        // a random probe per row (measured on 1M secrets: 3.3 against 32.5 us a row).
        let to_minute: Vec<_> =
            used.iter().map(|(id, at)| (id.as_str(), UnixTime(at.0 - at.0.rem_euclid(60)))).collect();
        let started = std::time::Instant::now();
        match store.touch_secrets(&to_minute).await {
            Ok(()) => tracing::debug!(
                secrets = used.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "recorded secrets' last use"
            ),
            Err(e) => {
                tracing::error!(error = %e, secrets = used.len(), "recording secrets' last use failed; kept for the next pass");
                self.0.secret_usage.requeue(used);
            }
        }
    }

    /// Resolves once every security event recorded so far is in the audit table.
    pub async fn flush_audit(&self) {
        self.0.audit.flush().await;
    }

    /// Builds the state from its parts, recording no metrics.
    pub fn new(parts: AppParts) -> Self {
        Self::with_metrics(parts, Arc::new(crate::metrics::Metrics::off()))
    }

    /// Builds the state from its parts, recording into `metrics`.
    pub fn with_metrics(parts: AppParts, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let AppParts { issuer, signing_algs, max_body_bytes, limits, mtls, registry, stores, deps } = parts;
        let fetcher = HttpFetcher::new(&limits.remote_keys, limits.client_keys.max_bytes);
        let nonce_secret = registry.derived_secret(crate::token::dpop::NONCE_LABEL).unwrap_or_else(|| {
            let mut s = [0u8; 32];
            deps.rng.fill(&mut s);
            s
        });
        let dpop_nonces = tessera_jose::dpop::NonceIssuer::new(&nonce_secret, limits.dpop.nonce_rotation_s);
        let audit =
            crate::audit::AuditLog::spawn(stores.audit.clone(), deps.clock.clone(), limits.audit.max_events_per_second);
        let remote_keys =
            RemoteKeys::new(Arc::new(fetcher), deps.clock.clone(), limits.remote_keys.clone(), limits.client_keys);
        Self(Arc::new(Inner {
            token_endpoint: issuer.url("/connect/token"),
            jwks_uri: issuer.url("/.well-known/jwks"),
            introspection_endpoint: issuer.url("/connect/introspect"),
            revocation_endpoint: issuer.url("/connect/revoke"),
            issuer,
            signing_algs,
            max_body_bytes,
            registry,
            verifier: SecretVerifier::new(crate::secrets::CACHE_TTL, limits.auth.clone()),
            failures: FailureLimiter::new(limits.auth.clone(), audit.clone()),
            audit,
            secret_usage: crate::secrets::SecretUsage::new(limits.secret_last_use_resolution_s),
            issuance: IssuanceLimiter::new(limits.issuance),
            assertion: limits.assertion,
            mtls,
            remote_keys,
            discovered: Default::default(),
            rate_limited_monitored: AtomicU64::new(0),
            stores,
            clock: deps.clock,
            rng: deps.rng,
            tokens_issued: AtomicU64::new(0),
            events: tokio::sync::Notify::new(),
            limits_events: limits.events,
            limits_audit: limits.audit,
            dpop: limits.dpop,
            dpop_nonces,
            event_pollers: tokio::sync::Semaphore::new(limits.events.max_long_polls),
            metrics,
            readiness: Default::default(),
        }))
    }

    /// Access tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.0.tokens_issued.load(Ordering::Relaxed)
    }

    /// Tokens issued past the issuance rate limit while it only monitors.
    pub fn rate_limited_monitored(&self) -> u64 {
        self.0.rate_limited_monitored.load(Ordering::Relaxed)
    }

    /// The metrics this state records into.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.0.metrics
    }

    #[allow(missing_docs)]
    pub fn issuer(&self) -> &Issuer {
        &self.0.issuer
    }
}
