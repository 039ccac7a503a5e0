//! The authority's metadata (discovery) and signing keys (JWKS), cached. An unknown `kid`
//! triggers a refetch that is single-flight (concurrent requests wait for one fetch) and
//! rate-limited (at most one per `jwks_min_refresh`): a flood of random `kid`s does not become
//! a flood of JWKS requests. A failed discovery or JWKS fetch is remembered for
//! `failure_memory`: meanwhile requests fail closed at once instead of queueing for a fetch of
//! their own.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tessera_http::DiscoveryError;
use tessera_jose::VerifyingKey;
use tessera_types::clock::Clock;
use tessera_types::rfc7517::JwkSet;
use tessera_types::{Issuer, Kid, SigningAlg};

use crate::GuardError;
use crate::http::{AuthorityHttp, FailureMemory, require_https, send_failed, unavailable};

/// What the guard uses of discovery, checked: the issuer is the authority, the endpoints are
/// https.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// As published: the exact `iss` of its tokens (RFC 9068 §4).
    pub issuer: String,
    pub jwks_uri: reqwest::Url,
    pub introspection_endpoint: Option<reqwest::Url>,
    /// Where the revocation feed is polled (RFC 8936), if the authority has one.
    pub revocation_events_endpoint: Option<reqwest::Url>,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<Kid, Arc<VerifyingKey>>,
    anonymous: Vec<Arc<VerifyingKey>>,
    fetched: Option<Stamp>,
}

/// When something happened, on both clocks: the monotonic one (immune to wall-clock jumps)
/// and the injected one (so that a test's manual clock ages the JWKS cache as days of real
/// time would). Time since is the longer of the two: on the system clock they agree.
#[derive(Clone, Copy)]
struct Stamp {
    at: Instant,
    on_clock: tessera_types::UnixTime,
}

impl Stamp {
    fn now(clock: &dyn Clock) -> Self {
        Self { at: Instant::now(), on_clock: clock.now() }
    }

    fn elapsed(&self, clock: &dyn Clock) -> Duration {
        let by_clock = clock.now().0.saturating_sub(self.on_clock.0).max(0) as u64;
        self.at.elapsed().max(Duration::from_secs(by_clock))
    }
}

pub(crate) struct Authority {
    pub(crate) http: AuthorityHttp,
    authority: Issuer,
    metadata: tokio::sync::OnceCell<Endpoints>,
    keys: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<Option<Stamp>>,
    min_refresh: Duration,
    max_age: Duration,
    clock: Arc<dyn Clock>,
    discovery_failure: FailureMemory,
    jwks_failure: FailureMemory,
    /// JWKS fetches tried, and failed (metrics).
    pub(crate) fetches: std::sync::atomic::AtomicU64,
    pub(crate) fetch_failures: std::sync::atomic::AtomicU64,
}

impl Authority {
    pub(crate) fn new(
        http: AuthorityHttp,
        authority: Issuer,
        min_refresh: Duration,
        max_age: Duration,
        failure_memory: (FailureMemory, FailureMemory),
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            authority,
            metadata: tokio::sync::OnceCell::new(),
            keys: RwLock::new(Arc::default()),
            refresh: tokio::sync::Mutex::new(None),
            min_refresh,
            max_age,
            clock,
            discovery_failure: failure_memory.0,
            jwks_failure: failure_memory.1,
            fetches: Default::default(),
            fetch_failures: Default::default(),
        }
    }

    /// Discovery, fetched once (retried after a failure once `failure_memory` has passed;
    /// requests waiting meanwhile fail at once rather than each fetching in turn). Its `issuer`
    /// must be the configured authority (OIDC Discovery §4.3, RFC 8414 §3.3), and the endpoints
    /// it names must be https (see [`require_https`]).
    pub(crate) async fn metadata(&self) -> Result<&Endpoints, GuardError> {
        self.metadata.get_or_try_init(|| self.discovery_failure.guard(self.discover())).await
    }

    async fn discover(&self) -> Result<Endpoints, GuardError> {
        let allow_http = self.http.allow_http();
        let d = tessera_http::discover(self.http.client(), &self.authority).await.map_err(|e| match e {
            DiscoveryError::Url(e) => unavailable("discovery", e),
            DiscoveryError::Send(e) => send_failed("discovery", e),
            DiscoveryError::Status(status) => unavailable("discovery", status),
            DiscoveryError::Body(e) => unavailable("discovery", e),
            DiscoveryError::Issuer(d) => {
                unavailable("discovery", format!("issuer {} is not the authority {}", d.issuer, self.authority))
            }
        })?;
        let jwks_uri = d.jwks_uri.as_deref().ok_or_else(|| unavailable("discovery", "no jwks_uri"))?;
        Ok(Endpoints {
            jwks_uri: require_https("discovery: jwks_uri", jwks_uri, allow_http)?,
            introspection_endpoint: d
                .introspection_endpoint
                .as_deref()
                .map(|u| require_https("discovery: introspection_endpoint", u, allow_http))
                .transpose()?,
            revocation_events_endpoint: d
                .revocation_events_endpoint
                .as_deref()
                .map(|u| require_https("discovery: revocation_events_endpoint", u, allow_http))
                .transpose()?,
            issuer: d.issuer,
        })
    }

    /// The key for a token's `kid` and `alg`. `Ok(None)`: no such key even after a refetch
    /// (or a refetch was refused by the rate limit). `Err(Unavailable)`: no keys can be had.
    pub(crate) async fn key(
        &self,
        kid: Option<&Kid>,
        alg: SigningAlg,
    ) -> Result<Option<Arc<VerifyingKey>>, GuardError> {
        let current = self.keys.read().expect("keys lock").clone();
        let clock = &*self.clock;
        let stale = current.fetched.is_none_or(|t| t.elapsed(clock) > self.max_age);
        if !stale && let Some(k) = find(&current, kid, alg) {
            return Ok(Some(k));
        }
        // Single flight: one fetch at a time; whoever waited re-checks what it brought.
        let mut last = self.refresh.lock().await;
        let current = self.keys.read().expect("keys lock").clone();
        let fresh = current.fetched.is_some_and(|t| t.elapsed(clock) <= self.max_age);
        if fresh && let Some(k) = find(&current, kid, alg) {
            return Ok(Some(k));
        }
        if fresh && last.is_some_and(|t| t.elapsed(clock) < self.min_refresh) {
            // Rate limit: an unknown kid this soon after a fetch is simply unknown.
            return Ok(None);
        }
        if let Err(e) = self.jwks_failure.check() {
            // The JWKS endpoint failed moments ago: serve what we have, or fail closed now.
            return if current.by_kid.is_empty() && current.anonymous.is_empty() {
                Err(e)
            } else {
                Ok(find(&current, kid, alg))
            };
        }
        *last = Some(Stamp::now(clock));
        match self.jwks_failure.guard(self.fetch()).await {
            Ok(set) => {
                let set = Arc::new(set);
                *self.keys.write().expect("keys lock") = set.clone();
                Ok(find(&set, kid, alg))
            }
            Err(e) if current.fetched.is_some() && !(current.by_kid.is_empty() && current.anonymous.is_empty()) => {
                // Keep serving the keys we have; an unknown kid stays unknown.
                tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                Ok(find(&current, kid, alg))
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets the key `kid` (the revocation feed says it was removed), so tokens signed with
    /// it no longer verify even before the next JWKS fetch.
    pub(crate) fn forget_key(&self, kid: &Kid) {
        let mut keys = self.keys.write().expect("keys lock");
        if keys.by_kid.contains_key(kid) {
            let mut by_kid = keys.by_kid.clone();
            by_kid.remove(kid);
            *keys = Arc::new(KeySet { by_kid, anonymous: keys.anonymous.clone(), fetched: keys.fetched });
        }
    }

    async fn fetch(&self) -> Result<KeySet, GuardError> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.fetch_once().await;
        if result.is_err() {
            self.fetch_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn fetch_once(&self) -> Result<KeySet, GuardError> {
        let meta = self.metadata().await?;
        let r = self.http.send("jwks", &meta.jwks_uri, self.http.get(&meta.jwks_uri)).await?;
        let jwks: JwkSet = r.json().await.map_err(|e| unavailable("jwks", e))?;
        let mut set = KeySet { fetched: Some(Stamp::now(&*self.clock)), ..Default::default() };
        for jwk in &jwks.keys {
            // Keys we cannot use (encryption keys, HMAC, unknown curves) are skipped.
            let Ok(k) = VerifyingKey::from_jwk(jwk) else { continue };
            let k = Arc::new(k);
            match &k.kid {
                Some(kid) => {
                    set.by_kid.insert(kid.clone(), k);
                }
                None => set.anonymous.push(k),
            }
        }
        tracing::debug!(keys = set.by_kid.len() + set.anonymous.len(), "fetched JWKS");
        Ok(set)
    }
}

fn find(set: &KeySet, kid: Option<&Kid>, alg: SigningAlg) -> Option<Arc<VerifyingKey>> {
    match kid {
        Some(kid) => set.by_kid.get(kid).filter(|k| k.alg == alg).cloned(),
        // Without a kid, only an unambiguous key will do.
        None => {
            let mut candidates = set.by_kid.values().chain(set.anonymous.iter()).filter(|k| k.alg == alg);
            match (candidates.next(), candidates.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => None,
            }
        }
    }
}
