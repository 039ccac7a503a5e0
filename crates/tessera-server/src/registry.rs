//! The registry snapshot the endpoints read: clients, scopes and signing keys, loaded from
//! the store and swapped whole when the store's revision changes. The hot path takes a
//! read lock for an `Arc` clone and touches no database.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_store::{ClientRecord, KeyStatus, ScopeRecord, Store};
use tessera_types::rfc7517::{Jwk, JwkSet};
use tessera_types::{ClientId, Kid, ScopeName, SigningAlg};

use tessera_jose::VerifyingKey;

use crate::keys::{Kek, KeyError, SigningKey};

/// A key as a snapshot holds it: published in the JWK Set (active or retired), and able to
/// sign when it is its algorithm's active key.
pub(crate) struct PublishedKey {
    pub kid: Kid,
    pub jwk: Jwk,
    pub signing: Option<(SigningAlg, SigningKey)>,
}

/// A published signing key as the metrics show it (issue 16: key phases and ages).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    #[allow(missing_docs)]
    pub kid: Kid,
    #[allow(missing_docs)]
    pub alg: SigningAlg,
    /// `active` (signs) or `retired` (published so its tokens still verify).
    pub phase: &'static str,
    #[allow(missing_docs)]
    pub created_at: tessera_types::UnixTime,
}

/// Clients by id, with their `private_key_jwt` keys parsed: what a snapshot holds per client.
#[derive(Default)]
struct Clients {
    by_id: HashMap<ClientId, Arc<ClientRecord>>,
    keys: HashMap<ClientId, Vec<VerifyingKey>>,
}

impl Clients {
    fn with_capacity(n: usize) -> Self {
        Self { by_id: HashMap::with_capacity(n), keys: HashMap::new() }
    }

    fn insert(&mut self, client: ClientRecord) {
        if let Some(jwks) = &client.jwks {
            let keys = crate::client_keys::verifying_keys(&client.client_id, jwks);
            self.keys.insert(client.client_id.clone(), keys);
        }
        self.by_id.insert(client.client_id.clone(), Arc::new(client));
    }

    /// Gives back the room made for more clients than came (a shrinking registry).
    fn shrink_to_fit(&mut self) {
        self.by_id.shrink_to_fit();
        self.keys.shrink_to_fit();
    }
}

/// Runs `f` on a blocking thread, off the async workers; its panic is this task's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Drops a replaced snapshot on a blocking thread (freeing a million clients takes a while),
/// then gives the freed memory back to the system: glibc keeps what a load freed (the rows
/// read, the old snapshot) in its heap otherwise. (The `tessera` binary allocates with
/// mimalloc, which returns freed pages by itself; the trim is for hosts that embed the server
/// on glibc's allocator.)
fn dispose(old: Option<Arc<Registry>>) {
    let run = move || {
        drop(old);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: no arguments beyond the padding to keep; safe to call at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(run)),
        Err(_) => run(),
    }
}

/// One consistent view of the registry.
pub struct Registry {
    /// The store revision this was loaded at.
    pub revision: i64,
    clients: HashMap<ClientId, Arc<ClientRecord>>,
    scopes: BTreeMap<ScopeName, ScopeRecord>,
    signing: HashMap<SigningAlg, Arc<SigningKey>>,
    verifying: HashMap<Kid, VerifyingKey>,
    /// Clients' `private_key_jwt` keys, parsed once per snapshot: a request reads no key
    /// from the database and parses none.
    client_keys: HashMap<ClientId, Vec<VerifyingKey>>,
    jwks_json: Arc<str>,
    /// Trusted external issuers of workload identities, by issuer (issue 15).
    trusts: crate::federation::TrustsByIssuer,
    key_info: Vec<KeyInfo>,
}

impl Registry {
    /// Loads everything from the store, opening the active private keys.
    pub async fn load(store: &Store, kek: &Kek) -> Result<Self, KeyError> {
        Self::load_sized(store, kek, 0).await
    }

    /// [`Registry::load`], with room made for about `clients` clients (the last snapshot's).
    ///
    /// The clients (per client: the registry's bulk) are read and their maps built on a
    /// blocking thread, so the async workers keep serving requests meanwhile (issue 17: at a
    /// million clients a reload on a worker stalled issuance for seconds). On SQLite they are
    /// read on the store's own connection, in one read transaction with the revision.
    async fn load_sized(store: &Store, kek: &Kek, clients: usize) -> Result<Self, KeyError> {
        let reader = store.clone();
        let embedded = blocking(move || {
            let mut built = Clients::with_capacity(clients);
            let Some(revision) = reader.read_clients_blocking(&mut |c| built.insert(c)) else {
                return Ok(None);
            };
            built.shrink_to_fit();
            Ok::<_, KeyError>(Some((revision?, built)))
        })
        .await?;
        let (revision, clients) = match embedded {
            Some(read) => read,
            None => {
                // PostgreSQL. The revision first: a change committed while loading makes the
                // next poll see a newer revision and load again.
                let revision = store.revision().await?;
                let list = store.list_clients().await?;
                let built = blocking(move || {
                    let mut built = Clients::with_capacity(list.len());
                    list.into_iter().for_each(|c| built.insert(c));
                    built
                })
                .await;
                (revision, built)
            }
        };
        // The small tables after the revision, as before: what they hold is at least as new as
        // `revision`, and a change since it makes the next poll load again.
        let scopes = store.list_scopes().await?;
        let mut keys = Vec::new();
        let mut key_info = Vec::new();
        for record in store.list_keys().await? {
            key_info.push(KeyInfo {
                kid: record.kid.clone(),
                alg: record.alg,
                phase: record.status.as_str(),
                created_at: record.created_at,
            });
            let jwk: Jwk = serde_json::from_str(&record.public_jwk)
                .map_err(|e| KeyError::Rejected(format!("stored JWK of {}: {e}", record.kid)))?;
            let signing = if record.status == KeyStatus::Active {
                let pkcs8 = kek.open(&record.kid, &record.sealed_private_key)?;
                let key = SigningKey::from_pkcs8(record.alg, &pkcs8)?;
                if key.kid != record.kid {
                    return Err(KeyError::Rejected(format!("key {} does not match its thumbprint", record.kid)));
                }
                Some((record.alg, key))
            } else {
                None
            };
            keys.push(PublishedKey { kid: record.kid, jwk, signing });
        }
        let mut trusts = Vec::new();
        for t in store.list_trusts().await? {
            let rules = store.list_trust_rules(&t.name).await?;
            trusts.push((t, rules));
        }
        let mut registry = Self::from_parts(revision, scopes, clients, keys)?.with_trusts(trusts);
        registry.key_info = key_info;
        Ok(registry)
    }

    /// The published keys, with their phases and creation times (empty for a registry built
    /// from records in tests).
    pub fn key_info(&self) -> &[KeyInfo] {
        &self.key_info
    }

    /// This snapshot with these trusts and their rules.
    pub(crate) fn with_trusts(
        mut self,
        trusts: Vec<(tessera_store::TrustRecord, Vec<tessera_store::TrustRuleRecord>)>,
    ) -> Self {
        self.trusts = trusts
            .into_iter()
            .filter_map(|(t, rules)| crate::federation::Trusted::new(t, &rules))
            .map(|t| (t.issuer().to_owned(), Arc::new(t)))
            .collect();
        self
    }

    /// The trust of tokens issued by `issuer` (the token's `iss`).
    pub fn trust(&self, issuer: &str) -> Option<&Arc<crate::federation::Trusted>> {
        self.trusts.get(issuer.trim_end_matches('/'))
    }

    /// A snapshot of these records; `keys` oldest first (tests).
    #[cfg(test)]
    pub(crate) fn from_records(
        revision: i64,
        scopes: Vec<ScopeRecord>,
        clients: Vec<ClientRecord>,
        keys: Vec<PublishedKey>,
    ) -> Result<Self, KeyError> {
        let mut built = Clients::with_capacity(clients.len());
        clients.into_iter().for_each(|c| built.insert(c));
        Self::from_parts(revision, scopes, built, keys)
    }

    fn from_parts(
        revision: i64,
        scopes: Vec<ScopeRecord>,
        clients: Clients,
        keys: Vec<PublishedKey>,
    ) -> Result<Self, KeyError> {
        let scopes = scopes.into_iter().map(|s| (s.name.clone(), s)).collect();
        let Clients { by_id: clients, keys: client_keys } = clients;
        let mut signing = HashMap::new();
        let mut published = Vec::new();
        let mut verifying = HashMap::new();
        for PublishedKey { kid, jwk, signing: active } in keys {
            if let Some((alg, key)) = active {
                signing.insert(alg, Arc::new(key));
            }
            verifying.insert(kid, VerifyingKey::from_jwk(&jwk)?);
            published.push(jwk);
        }
        // Newest first: clients that try keys in order find the current one at once.
        published.reverse();
        let jwks_json = serde_json::to_string(&JwkSet { keys: published }).expect("jwks serialises").into();
        Ok(Self {
            revision,
            clients,
            scopes,
            signing,
            verifying,
            client_keys,
            jwks_json,
            trusts: Default::default(),
            key_info: Vec::new(),
        })
    }

    /// A client by id.
    pub fn client(&self, client_id: &ClientId) -> Option<&Arc<ClientRecord>> {
        self.clients.get(client_id)
    }

    /// Every client, in no order.
    pub fn clients(&self) -> impl Iterator<Item = &ClientRecord> {
        self.clients.values().map(|c| &**c)
    }

    /// The public keys a client registered for `private_key_jwt` (none when it has none).
    pub fn client_keys(&self, client_id: &ClientId) -> &[VerifyingKey] {
        self.client_keys.get(client_id).map_or(&[], Vec::as_slice)
    }

    /// A scope by name: a built-in admin scope (issue 16), else a registered one. Built-ins
    /// come first so that no registration can change what they grant.
    pub fn scope(&self, name: &ScopeName) -> Option<&ScopeRecord> {
        crate::admin_api::builtin::scope(name).or_else(|| self.scopes.get(name))
    }

    /// Every registered scope, by name (the built-in admin scopes are not advertised).
    pub fn scopes(&self) -> impl Iterator<Item = &ScopeRecord> {
        self.scopes.values()
    }

    /// The active key for `alg`.
    pub fn signing_key(&self, alg: SigningAlg) -> Option<&Arc<SigningKey>> {
        self.signing.get(&alg)
    }

    /// A published key (active or retired) by `kid`, to verify our own tokens.
    pub fn verifying_key(&self, kid: &Kid) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }

    /// The JWK Set document, rendered once per snapshot.
    pub fn jwks_json(&self) -> &Arc<str> {
        &self.jwks_json
    }
}

/// The current snapshot, shared by all requests, with the means to refresh it.
pub struct RegistryHandle {
    current: RwLock<Arc<Registry>>,
    /// Where refreshed snapshots come from; `None` for a fixed registry (endpoint tests).
    source: Option<(Store, Kek)>,
    /// When the store last confirmed the snapshot (a successful revision check).
    confirmed: std::sync::Mutex<std::time::Instant>,
    max_stale: std::sync::Mutex<Duration>,
    /// Refreshes that failed since start (metrics).
    refresh_failures: AtomicU64,
    /// The poller's interval, milliseconds (0 until it starts): readiness allows a few.
    poll_ms: AtomicU64,
}

impl RegistryHandle {
    /// Loads the first snapshot.
    pub async fn new(store: Store, kek: Kek) -> Result<Self, KeyError> {
        let first = Registry::load(&store, &kek).await?;
        dispose(None);
        Ok(Self {
            current: RwLock::new(Arc::new(first)),
            source: Some((store, kek)),
            confirmed: std::sync::Mutex::new(std::time::Instant::now()),
            max_stale: std::sync::Mutex::new(Duration::from_secs(300)),
            refresh_failures: AtomicU64::new(0),
            poll_ms: AtomicU64::new(0),
        })
    }

    /// A secret derived from the key-encryption key for `label` ([`Kek::derive`]): shared by
    /// every instance. `None` for a fixed registry.
    pub(crate) fn derived_secret(&self, label: &[u8]) -> Option<[u8; 32]> {
        self.source.as_ref().map(|(_, kek)| kek.derive(label))
    }

    /// The store and key-encryption key snapshots come from; `None` for a fixed registry.
    pub(crate) fn source(&self) -> Option<&(Store, Kek)> {
        self.source.as_ref()
    }

    /// A handle serving `registry`, never refreshed.
    #[cfg(test)]
    pub(crate) fn fixed(registry: Registry) -> Self {
        Self {
            current: RwLock::new(Arc::new(registry)),
            source: None,
            confirmed: std::sync::Mutex::new(std::time::Instant::now()),
            max_stale: std::sync::Mutex::new(Duration::from_secs(300)),
            refresh_failures: AtomicU64::new(0),
            poll_ms: AtomicU64::new(0),
        }
    }

    /// Serves `registry` from now on, as a refresh would (tests change clients this way).
    #[cfg(test)]
    pub(crate) fn replace(&self, registry: Registry) {
        *self.current.write().expect("registry lock") = Arc::new(registry);
    }

    /// The snapshot handlers read; the poller swaps it whole, so a request sees one version.
    pub fn get(&self) -> Arc<Registry> {
        self.current.read().expect("registry lock").clone()
    }

    /// How long the snapshot may go unconfirmed before [`RegistryHandle::fresh`] says no.
    pub fn set_max_stale(&self, max: Duration) {
        *self.max_stale.lock().expect("lock") = max;
    }

    /// The snapshot, if the store confirmed it recently enough: while the database blips,
    /// known clients keep getting JWTs for up to `registry_max_stale`; past that the
    /// token endpoint answers 503 rather than act on a registry that may have changed.
    pub fn fresh(&self) -> Option<Arc<Registry>> {
        let max = *self.max_stale.lock().expect("lock");
        (self.confirmed.lock().expect("lock").elapsed() <= max).then(|| self.get())
    }

    /// How long since the store last confirmed the snapshot.
    pub fn unconfirmed_for(&self) -> Duration {
        self.confirmed.lock().expect("lock").elapsed()
    }

    /// Refreshes that failed since start.
    pub fn refresh_failures(&self) -> u64 {
        self.refresh_failures.load(Ordering::Relaxed)
    }

    /// The poller's interval, once it runs.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self.poll_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Whether the store answers a cheap query (its revision) within `timeout`; `Ok` for a
    /// fixed registry, which has no store.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let Some((store, _)) = &self.source else { return Ok(()) };
        match tokio::time::timeout(timeout, store.revision()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }

    /// Reloads if the store's revision moved; `true` when it did.
    pub async fn refresh(&self) -> Result<bool, KeyError> {
        let Some((store, kek)) = &self.source else { return Ok(false) };
        let revision = store.revision().await?;
        if revision == self.get().revision {
            *self.confirmed.lock().expect("lock") = std::time::Instant::now();
            return Ok(false);
        }
        // The current snapshot keeps serving until the next one is complete.
        let next = Registry::load_sized(store, kek, self.get().clients.len()).await?;
        *self.confirmed.lock().expect("lock") = std::time::Instant::now();
        tracing::info!(revision = next.revision, clients = next.clients.len(), "registry reloaded");
        let old = std::mem::replace(&mut *self.current.write().expect("registry lock"), Arc::new(next));
        dispose(Some(old));
        Ok(true)
    }

    /// Polls for changes every `every`, for as long as the handle lives.
    pub fn spawn_poller(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        self.poll_ms.store(every.as_millis().max(1) as u64, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(handle) = weak.upgrade() else { return };
                if let Err(e) = handle.refresh().await {
                    handle.refresh_failures.fetch_add(1, Ordering::Relaxed);
                    // Keep serving the last good snapshot; say why it could not be refreshed.
                    tracing::error!(error = %e, "registry refresh failed");
                }
            }
        })
    }
}
