//! Keys a client publishes at its `jwks_uri` (RFC 7591 §2), fetched for `private_key_jwt`
//! (RFC 7523) and cached per client.
//!
//! As Keycloak (`PublicKeyStorageManager` with `minTimeBetweenRequests`) and node
//! oidc-provider (a client `jwks_uri` refreshed when a `kid` is not found) do it, with every
//! bound written down: the keys are fetched on first use and kept for `jwks_uri_cache_ttl_s`;
//! an assertion whose `kid` matches none of them (the client rotated) triggers one refetch,
//! at most one per client per `jwks_uri_min_refetch_interval_s`, failed fetches included, so
//! a flood of made-up `kid`s costs the client's key server one request per interval.
//! Concurrent requests for one client share one fetch; other clients never wait on it. A
//! fetched set is checked exactly as a registered one ([`super::parse_jwks`]).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tessera_jose::VerifyingKey;
use tessera_types::clock::Clock;
use tessera_types::{ClientId, JwksUri, UnixTime};

use super::{KeyBounds, parse_jwks, verifying_keys};

/// How clients' remote key sets are fetched and kept (`[limits]` `jwks_uri_cache_ttl_s`,
/// `jwks_uri_min_refetch_interval_s`, `jwks_uri_fetch_timeout_ms`; top-level
/// `jwks_uri_ca_file`). The document itself is bounded by [`KeyBounds`].
#[derive(Debug, Clone)]
pub struct RemoteKeyLimits {
    /// How long fetched keys are used before they are fetched again, seconds.
    pub cache_ttl: i64,
    /// Fewest seconds between two fetches for one client, failed ones included.
    pub min_refetch_interval: i64,
    /// Longest a fetch may take, from connecting to the last body byte.
    pub fetch_timeout: Duration,
    /// Trust anchors beside the platform's, for key servers behind a private CA.
    pub extra_roots: Option<TrustRoots>,
}

impl Default for RemoteKeyLimits {
    fn default() -> Self {
        Self { cache_ttl: 300, min_refetch_interval: 30, fetch_timeout: Duration::from_secs(5), extra_roots: None }
    }
}

/// CA certificates from PEM: the server's `jwks_uri_ca_file` (beside the platform's anchors),
/// or a trust's `--ca` (instead of them: issue 15).
#[derive(Clone)]
pub struct TrustRoots {
    /// Where they came from (a file, a trust), for messages.
    origin: String,
    certificates: Vec<reqwest::Certificate>,
    /// SHA-256 of the PEM: equal roots are one HTTP client, whatever snapshot parsed them.
    digest: [u8; 32],
}

impl TrustRoots {
    /// Reads every certificate of the PEM file at `path`; none is an error.
    pub fn read(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_pem(path.display().to_string(), &pem)
    }

    /// Every certificate of `pem`, from `origin`; none is an error.
    pub fn from_pem(origin: String, pem: &[u8]) -> Result<Self, String> {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("{origin}: {}", error_chain(&e)))?;
        if certificates.is_empty() {
            return Err(format!("{origin}: no PEM certificate"));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pem).as_ref().try_into().expect("32 bytes");
        Ok(Self { origin, certificates, digest })
    }
}

impl std::fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustRoots({}, {} certificates)", self.origin, self.certificates.len())
    }
}

fn same_roots(a: Option<&Arc<TrustRoots>>, b: Option<&Arc<TrustRoots>>) -> bool {
    a.map(|r| r.digest) == b.map(|r| r.digest)
}

/// Why a client's keys could not be had. Logged with the URI, never with key material; the
/// client only ever sees `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URI does not parse as a URL with a host.
    #[error("not a usable https URL: {0}")]
    Url(String),
    /// Connecting, TLS or reading failed.
    #[error("transport: {0}")]
    Transport(String),
    /// No complete answer within `jwks_uri_fetch_timeout_ms`.
    #[error("no answer within the fetch timeout")]
    Timeout,
    /// An answer other than 200 (a redirect included: none is followed).
    #[error("HTTP status {0}, not 200")]
    Status(u16),
    /// A body over `max_client_jwks_bytes`, refused before it was read whole.
    #[error("body larger than {0} bytes (limits.max_client_jwks_bytes)")]
    TooLarge(usize),
    /// Not UTF-8 text.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// Not an acceptable JWK Set (not JSON, a private key, too many keys, ...).
    #[error("{0}")]
    Refused(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Setup(String),
    /// The last fetch, less than `jwks_uri_min_refetch_interval_s` ago, failed: not retried
    /// yet.
    #[error("the last fetch failed less than jwks_uri_min_refetch_interval_s ago")]
    RecentlyFailed,
}

/// What a fetch yields: the body of a 200 answer.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<String, FetchError>> + Send>>;

/// Fetches the JWK Set document at a URI. Implemented for closures, so tests pass one.
pub trait JwksFetcher: Send + Sync {
    /// The body at `uri`, over TLS checked against `only` when given (a trust's `--ca`),
    /// otherwise against the platform's anchors and `jwks_uri_ca_file`.
    fn fetch(&self, uri: &JwksUri, only: Option<&TrustRoots>) -> FetchFuture;
}

/// A closure is a fetcher that makes no TLS connection of its own (the tests' fake key
/// servers), so it has no use for roots.
impl<F, Fut> JwksFetcher for F
where
    F: Fn(JwksUri) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, FetchError>> + Send + 'static,
{
    fn fetch(&self, uri: &JwksUri, _only: Option<&TrustRoots>) -> FetchFuture {
        Box::pin(self(uri.clone()))
    }
}

/// The URL to fetch: a `JwksUri` is already https without userinfo or fragment; this also
/// checks what only a URL parser can (the host's syntax).
pub fn url(uri: &JwksUri) -> Result<reqwest::Url, FetchError> {
    let url = reqwest::Url::parse(uri.as_str()).map_err(|e| FetchError::Url(e.to_string()))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(FetchError::Url("an https URL with a host is required".into()));
    }
    Ok(url)
}

/// Fetches over HTTPS: the platform's trust anchors plus `jwks_uri_ca_file`, no redirect
/// followed, `Accept: application/json`, the body read up to `max_bytes` and no further.
pub struct HttpFetcher {
    limits: RemoteKeyLimits,
    max_bytes: usize,
    /// Built on the first fetch: a server whose clients all register their keys (or use
    /// secrets) never loads the platform's trust store for this.
    client: OnceLock<Result<reqwest::Client, String>>,
    /// One client per distinct `--ca` of the trusts, by the PEM's digest.
    pinned: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

/// Most pinned-CA clients kept: one per distinct trust CA; past it (CAs changed many times
/// over a long run), the map starts again.
const MAX_PINNED_CLIENTS: usize = 256;

impl HttpFetcher {
    /// A fetcher within `limits`, reading at most `max_bytes` of a body.
    pub fn new(limits: &RemoteKeyLimits, max_bytes: usize) -> Self {
        Self { limits: limits.clone(), max_bytes, client: OnceLock::new(), pinned: Mutex::default() }
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            // A redirect would send the server to a URL nobody registered.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .connect_timeout(self.limits.fetch_timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
    }

    fn client(&self, only: Option<&TrustRoots>) -> Result<reqwest::Client, String> {
        if let Some(roots) = only {
            let mut pinned = self.pinned.lock().expect("pinned clients lock");
            if let Some(client) = pinned.get(&roots.digest) {
                return Ok(client.clone());
            }
            // The trust's CA alone: a key server of a private cluster is not to be
            // impersonated by any certificate the web PKI would accept.
            let client = self
                .builder()
                .tls_certs_only(roots.certificates.iter().cloned())
                .build()
                .map_err(|e| format!("{}: {}", roots.origin, error_chain(&e)))?;
            if pinned.len() >= MAX_PINNED_CLIENTS {
                pinned.clear();
            }
            pinned.insert(roots.digest, client.clone());
            return Ok(client);
        }
        self.client
            .get_or_init(|| {
                let mut builder = self.builder();
                if let Some(roots) = &self.limits.extra_roots {
                    builder = builder.tls_certs_merge(roots.certificates.iter().cloned());
                }
                let client = builder.build().map_err(|e| error_chain(&e));
                if let Err(e) = &client {
                    // Said once; every jwks_uri client's failure names it too.
                    tracing::error!(error = %e, "the HTTP client for clients' jwks_uri could not be built");
                }
                client
            })
            .clone()
    }
}

impl JwksFetcher for HttpFetcher {
    fn fetch(&self, uri: &JwksUri, only: Option<&TrustRoots>) -> FetchFuture {
        let client = self.client(only);
        let (uri, max_bytes) = (uri.clone(), self.max_bytes);
        Box::pin(async move {
            let client = client.map_err(FetchError::Setup)?;
            let mut r = client
                .get(url(&uri)?)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(transport)?;
            if r.status() != reqwest::StatusCode::OK {
                return Err(FetchError::Status(r.status().as_u16()));
            }
            if r.content_length().is_some_and(|n| n > max_bytes as u64) {
                return Err(FetchError::TooLarge(max_bytes));
            }
            // Read chunk by chunk: without a Content-Length, a body is refused as soon as it
            // passes the bound, not once it has filled memory.
            let mut body = Vec::new();
            while let Some(chunk) = r.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > max_bytes {
                    return Err(FetchError::TooLarge(max_bytes));
                }
                body.extend_from_slice(&chunk);
            }
            String::from_utf8(body).map_err(|_| FetchError::NotUtf8)
        })
    }
}

fn transport(e: reqwest::Error) -> FetchError {
    if e.is_timeout() { FetchError::Timeout } else { FetchError::Transport(error_chain(&e)) }
}

/// An error with its causes (reqwest's own message rarely says which TLS check failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client's keys as one fetch brought them.
#[derive(Debug)]
pub struct FetchedKeys {
    /// The keys, parsed.
    pub keys: Vec<VerifyingKey>,
    /// Increases with every successful fetch: a request that verified against an older set
    /// learns that a newer one has arrived.
    pub generation: u64,
    fetched_at: UnixTime,
}

/// When a fetch of a client's keys was last started, locked: held from the decision to fetch
/// until the outcome is stored.
type Attempt = tokio::sync::OwnedMutexGuard<Option<UnixTime>>;

/// One client's cache entry, replaced when its URI changes.
struct Entry {
    uri: JwksUri,
    /// A trust's own CA for `uri`'s TLS.
    roots: Option<Arc<TrustRoots>>,
    /// When a fetch was last started. Held across the fetch: the single flight.
    last_attempt: Arc<tokio::sync::Mutex<Option<UnixTime>>>,
    /// The keys of the last successful fetch, readable while a fetch is in flight.
    current: RwLock<Option<Arc<FetchedKeys>>>,
}

/// The keys of every client registered with a `jwks_uri`, as last fetched.
pub struct RemoteKeys {
    fetcher: Arc<dyn JwksFetcher>,
    clock: Arc<dyn Clock>,
    limits: RemoteKeyLimits,
    bounds: KeyBounds,
    entries: Mutex<HashMap<ClientId, Arc<Entry>>>,
    generations: Arc<AtomicU64>,
}

impl RemoteKeys {
    /// A cache fetching with `fetcher`, on `clock`.
    pub fn new(
        fetcher: Arc<dyn JwksFetcher>,
        clock: Arc<dyn Clock>,
        limits: RemoteKeyLimits,
        bounds: KeyBounds,
    ) -> Self {
        Self { fetcher, clock, limits, bounds, entries: Mutex::default(), generations: Arc::default() }
    }

    fn entry(&self, client_id: &ClientId, uri: &JwksUri, roots: Option<&Arc<TrustRoots>>) -> Arc<Entry> {
        let mut entries = self.entries.lock().expect("remote keys lock");
        match entries.get(client_id) {
            Some(entry) if entry.uri == *uri && same_roots(entry.roots.as_ref(), roots) => entry.clone(),
            // New, or the client's URI (or CA) changed: what was fetched from the old one is
            // not its keys any more.
            _ => {
                let entry = Arc::new(Entry {
                    uri: uri.clone(),
                    roots: roots.cloned(),
                    last_attempt: Arc::new(tokio::sync::Mutex::new(None)),
                    current: RwLock::new(None),
                });
                entries.insert(client_id.clone(), entry.clone());
                entry
            }
        }
    }

    fn fresh(&self, entry: &Entry, now: UnixTime) -> Option<Arc<FetchedKeys>> {
        let current = entry.current.read().expect("remote keys lock").clone();
        current.filter(|k| now.0.saturating_sub(k.fetched_at.0) < self.limits.cache_ttl)
    }

    fn too_soon(&self, last_attempt: Option<UnixTime>, now: UnixTime) -> bool {
        last_attempt.is_some_and(|t| now.0.saturating_sub(t.0) < self.limits.min_refetch_interval)
    }

    /// The keys at `uri` for `client_id`: the cached ones while fresh, else fetched, once
    /// for all the requests that ask meanwhile. `roots`: a trust's own CA for `uri`.
    pub async fn keys(
        &self,
        client_id: &ClientId,
        uri: &JwksUri,
        roots: Option<&Arc<TrustRoots>>,
    ) -> Result<Arc<FetchedKeys>, FetchError> {
        let entry = self.entry(client_id, uri, roots);
        if let Some(keys) = self.fresh(&entry, self.clock.now()) {
            return Ok(keys);
        }
        let last_attempt = entry.last_attempt.clone().lock_owned().await;
        let now = self.clock.now();
        // Fetched by the request this one waited for.
        if let Some(keys) = self.fresh(&entry, now) {
            return Ok(keys);
        }
        if self.too_soon(*last_attempt, now) {
            return Err(FetchError::RecentlyFailed);
        }
        self.fetch(client_id, entry, last_attempt, now).await
    }

    /// The bounds fetches are made with.
    pub fn limits(&self) -> &RemoteKeyLimits {
        &self.limits
    }

    /// The document at `uri`, fetched now with the same bounds as keys (issue 15: an
    /// issuer's discovery document, which names its `jwks_uri`). Not cached here.
    pub async fn fetch_document(&self, uri: &JwksUri, roots: Option<&TrustRoots>) -> Result<String, FetchError> {
        self.fetcher.fetch(uri, roots).await
    }

    /// Keys newer than generation `seen`, after an assertion named a key that set lacks (the
    /// client may have rotated): those another request fetched meanwhile, or a refetch if
    /// none was started within `min_refetch_interval`. `None`: no newer keys.
    pub async fn refetch(
        &self,
        client_id: &ClientId,
        uri: &JwksUri,
        roots: Option<&Arc<TrustRoots>>,
        seen: u64,
    ) -> Option<Arc<FetchedKeys>> {
        let entry = self.entry(client_id, uri, roots);
        let last_attempt = entry.last_attempt.clone().lock_owned().await;
        let current = entry.current.read().expect("remote keys lock").clone();
        if let Some(newer) = current.filter(|k| k.generation > seen) {
            return Some(newer);
        }
        let now = self.clock.now();
        if self.too_soon(*last_attempt, now) {
            tracing::debug!(%client_id, jwks_uri = %uri, "unknown key, refetch not before the interval has passed");
            return None;
        }
        self.fetch(client_id, entry, last_attempt, now).await.ok()
    }

    /// One fetch, its attempt recorded first so that a failure counts against the interval
    /// too. A failure leaves the cached keys in place (served while still fresh). The fetch
    /// runs as a task of its own, holding the entry's lock: a request given up half-way (its
    /// client went away) does not abandon it, or the client's keys would stay unfetched for
    /// an interval, and anyone may send an assertion in its name and hang up.
    async fn fetch(
        &self,
        client_id: &ClientId,
        entry: Arc<Entry>,
        mut last_attempt: Attempt,
        now: UnixTime,
    ) -> Result<Arc<FetchedKeys>, FetchError> {
        *last_attempt = Some(now);
        let fetching =
            tokio::time::timeout(self.limits.fetch_timeout, self.fetcher.fetch(&entry.uri, entry.roots.as_deref()));
        let (client_id, bounds, generations) = (client_id.clone(), self.bounds, self.generations.clone());
        let task = tokio::spawn(async move {
            let outcome = match fetching.await {
                Err(_) => Err(FetchError::Timeout),
                Ok(body) => body.and_then(|body| {
                    parse_jwks(&client_id, &body, &bounds).map_err(|e| FetchError::Refused(e.to_string()))
                }),
            };
            let stored = match outcome {
                Ok(set) => {
                    let generation = generations.fetch_add(1, Ordering::Relaxed) + 1;
                    let keys =
                        Arc::new(FetchedKeys { keys: verifying_keys(&client_id, &set), generation, fetched_at: now });
                    *entry.current.write().expect("remote keys lock") = Some(keys.clone());
                    tracing::info!(%client_id, jwks_uri = %entry.uri, keys = keys.keys.len(), "fetched client keys");
                    Ok(keys)
                }
                Err(e) => {
                    tracing::warn!(%client_id, jwks_uri = %entry.uri, reason = %e, "fetching client keys failed");
                    Err(e)
                }
            };
            drop(last_attempt);
            stored
        });
        task.await.unwrap_or_else(|e| Err(FetchError::Transport(format!("fetch task: {e}"))))
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
