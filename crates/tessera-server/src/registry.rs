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
        // Read the revision first: a change committed while loading makes the next poll see
        // a newer revision and load again.
        let revision = store.revision().await?;
        let scopes = store.list_scopes().await?;
        let clients = store.list_clients().await?;
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
        let mut registry = Self::from_records(revision, scopes, clients, keys)?.with_trusts(trusts);
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

    /// A snapshot of these records; `keys` oldest first.
    pub(crate) fn from_records(
        revision: i64,
        scopes: Vec<ScopeRecord>,
        clients: Vec<ClientRecord>,
        keys: Vec<PublishedKey>,
    ) -> Result<Self, KeyError> {
        let scopes = scopes.into_iter().map(|s| (s.name.clone(), s)).collect();
        let client_keys = clients
            .iter()
            .filter_map(|c| {
                Some((c.client_id.clone(), crate::client_keys::verifying_keys(&c.client_id, c.jwks.as_ref()?)))
            })
            .collect();
        let clients = clients.into_iter().map(|c| (c.client_id.clone(), Arc::new(c))).collect();
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
        let next = Registry::load(store, kek).await?;
        *self.confirmed.lock().expect("lock") = std::time::Instant::now();
        tracing::info!(revision = next.revision, "registry reloaded");
        *self.current.write().expect("registry lock") = Arc::new(next);
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
