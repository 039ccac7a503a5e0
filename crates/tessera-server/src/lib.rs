//! Tessera authorization server: OAuth 2.0 client credentials (RFC 6749 §4.4), JWT access
//! tokens (RFC 9068), discovery (RFC 8414, OIDC Discovery) and JWKS, over HTTPS.
//!
//! [`router`] builds the app as a value (test it as a tower `Service`); [`start`] runs it on a
//! socket with TLS, HTTP/2 and HTTP/1.1.
#![deny(missing_docs)]

pub mod admin;
pub mod admin_api;
pub mod audit;
pub mod certificate;
mod client_auth;
pub mod client_keys;
pub mod clock;
pub mod config;
pub mod declarative;
mod endpoint;
mod error;
pub mod federation;
mod form;
#[cfg(test)]
mod fuzz_tests;
pub mod grant;
pub mod keys;
pub mod limits;
mod lru;
pub mod metrics;
pub mod random;
mod registry;
pub mod rotation;
pub mod secrets;
mod state;
pub mod storage;
mod throttle;
pub mod tls;
pub mod token;
pub mod transport;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
pub use config::{ConfigError, FileConfig, Overrides, Settings, Transport};
pub use error::OAuthError;
pub use registry::{KeyInfo, Registry, RegistryHandle};
pub use state::{AppParts, AppState, Deps};
use tessera_store::Store;
use tessera_types::{ClientId, ClientSecret, Issuer};

use crate::clock::Clock;
use crate::storage::Stores;

/// The application: every endpoint, as a value.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/connect/token", post(endpoint::token::token))
        .route("/connect/introspect", post(endpoint::introspect::introspect))
        .route("/connect/revoke", post(endpoint::revoke::revoke))
        .route("/connect/events", post(endpoint::events::events))
        .route("/.well-known/oauth-authorization-server", get(endpoint::discovery::metadata))
        .route("/.well-known/openid-configuration", get(endpoint::discovery::metadata))
        .route("/.well-known/jwks", get(endpoint::jwks::jwks))
        .route("/healthz", get(endpoint::health::healthz))
        .route("/readyz", get(endpoint::health::readyz))
        // The token endpoint reads its body itself, with its own limit and a 413.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Why the server did not start; each variant names the part that failed.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] tessera_store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Seeding from the config file.
    #[error("seeding the registry: {0}")]
    Seed(#[from] admin::AdminError),
    /// Binding a socket.
    #[error("listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A server [`start`] launched: the address it listens on and the issuer it announces, until
/// [`Running::shutdown`].
pub struct Running {
    #[allow(missing_docs)]
    pub addr: SocketAddr,
    #[allow(missing_docs)]
    pub issuer: Issuer,
    /// The development CA certificate, when the dev certificate is in use.
    pub dev_ca: Option<PathBuf>,
    /// Secrets generated while seeding from the config file, to be shown once.
    pub generated_secrets: Vec<(ClientId, ClientSecret)>,
    /// Where `GET /metrics` is served, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    registry: Arc<RegistryHandle>,
    state: AppState,
    listener: transport::Listener,
    metrics_listener: Option<transport::Listener>,
    poller: tokio::task::JoinHandle<()>,
    pruner: tokio::task::JoinHandle<()>,
    rotator: Arc<rotation::Rotator>,
    rotating: tokio::task::JoinHandle<()>,
    store: Store,
}

impl Running {
    /// Access tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.state.tokens_issued()
    }

    /// Runs a rotation pass now (the server runs one every minute): the steps this instance
    /// performed.
    pub async fn rotate_keys_now(&self) -> Result<Vec<rotation::Step>, keys::KeyError> {
        self.rotator.run().await
    }

    /// Resolves once the security events recorded so far are in the audit table.
    pub async fn flush_audit(&self) {
        self.state.flush_audit().await;
    }

    /// Writes the secrets' last use recorded so far (the pruner does it every interval).
    pub async fn flush_secret_usage(&self) {
        self.state.flush_secret_usage(&self.store).await;
    }

    /// The registry revision the server currently serves.
    pub fn registry_revision(&self) -> i64 {
        self.registry.get().revision
    }

    /// What the listener counted (connections refused, requests shed, ...).
    pub fn transport_counters(&self) -> &Arc<transport::Counters> {
        self.listener.counters()
    }

    /// Tokens issued past the issuance rate limit while it only monitors.
    pub fn rate_limited_monitored(&self) -> u64 {
        self.state.rate_limited_monitored()
    }

    /// Stops accepting, lets requests in flight finish (up to `grace`), closes the store.
    pub async fn shutdown(self, grace: Duration) -> std::io::Result<()> {
        self.listener.shutdown(grace).await;
        if let Some(metrics) = self.metrics_listener {
            metrics.shutdown(Duration::ZERO).await;
        }
        self.poller.abort();
        self.pruner.abort();
        self.rotating.abort();
        self.store.close().await;
        Ok(())
    }
}

/// The store the settings name: PostgreSQL when `database_url` is set, else the embedded
/// SQLite database in the data directory.
pub async fn open_store(settings: &Settings) -> Result<Store, tessera_store::StoreError> {
    match &settings.database_url {
        Some(url) => Store::connect_postgres(url.expose(), settings.database_pool_size).await,
        None => Store::open_embedded(&settings.data_dir).await,
    }
}

/// Opens the store, seeds it, makes sure signing keys exist, binds and serves.
pub async fn start(settings: Settings, deps: Deps) -> Result<Running, StartError> {
    // One crypto provider for the whole process (rustls would otherwise pick at run time).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Registry changes the server makes itself (signing keys) are recorded as `server`'s,
    // those the seed file makes as `seed`'s.
    let store = open_store(&settings).await?.acting_as("server", deps.clock.clone());
    let seeding = store.acting_as("seed", deps.clock.clone());
    let now = deps.clock.now();
    // Before anything is written: a key-encryption key other than the one sealing the keys
    // is refused, and only a store without keys gets a new one.
    let kek = keys::open_kek(&store, &settings.kek_file, keys::KekUse::Server, &*deps.rng, now).await?;
    let generated_secrets = admin::seed(
        &seeding,
        &settings.seed_scopes,
        &settings.seed_clients,
        settings.access_token_lifetime,
        &settings.limits.client_keys,
        &*deps.rng,
        now,
    )
    .await?;
    crate::federation::trusts::seed(&seeding, &settings.seed_trusts, &settings.limits.client_keys, now).await?;
    keys::ensure_active(&store, &kek, &settings.signing_algs, &*deps.rng, now).await?;
    let rotator = Arc::new(rotation::Rotator {
        store: store.clone(),
        // The same file, checked by open_kek above: one copy seals, the registry's opens.
        kek: keys::Kek::load(&settings.kek_file)?,
        algs: settings.signing_algs.clone(),
        policy: settings.key_rotation,
        default_lifetime: settings.access_token_lifetime,
        clock: deps.clock.clone(),
        rng: deps.rng.clone(),
    });
    let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await?);
    let poller = registry.spawn_poller(settings.registry_poll);
    let registry_for_running = registry.clone();

    let listener = std::net::TcpListener::bind(settings.listen)
        .map_err(|source| StartError::Bind { addr: settings.listen, source })?;
    listener.set_nonblocking(true).map_err(|source| StartError::Bind { addr: settings.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: settings.listen, source })?;
    let issuer = settings.issuer_for(addr);
    registry.set_max_stale(settings.registry_max_stale);
    let clock = deps.clock.clone();
    let metrics =
        Arc::new(if settings.metrics_listen.is_some() { metrics::Metrics::on() } else { metrics::Metrics::off() });
    let state = AppState::with_metrics(
        AppParts {
            issuer: issuer.clone(),
            signing_algs: settings.signing_algs.clone(),
            max_body_bytes: settings.max_body_bytes,
            limits: settings.limits.clone(),
            mtls: settings.mtls.clone(),
            registry,
            stores: Stores::sql_observed(store.clone(), metrics.clone()),
            deps,
        },
        metrics.clone(),
    );
    let pruner =
        spawn_pruner(state.clone(), store.clone(), clock, settings.prune_interval, settings.limits.prune_batch);
    let rotating = spawn_rotator(rotator.clone());
    let mut app = router(state.clone());
    if settings.admin_api {
        let admin = admin_api::AdminSettings {
            default_lifetime: settings.access_token_lifetime,
            key_bounds: settings.limits.client_keys,
            key_rotation: settings.key_rotation,
        };
        if let Some(routes) = admin_api::router(state.clone(), &admin) {
            app = app.merge(routes);
        }
    }
    let mut limits = settings.limits.transport.clone();
    match transport::raise_open_files_limit() {
        Ok((before, after)) => {
            // Leave descriptors for the store, the log and the listener itself.
            let fit = usize::try_from(after.saturating_sub(128)).unwrap_or(usize::MAX).max(1);
            if limits.max_connections > fit {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    fit,
                    "max_connections lowered to fit the open files limit"
                );
                limits.max_connections = fit;
            }
            tracing::info!(
                soft_before = before,
                soft_now = after,
                max_connections = limits.max_connections,
                "open files limit"
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open files limit"),
    }
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| StartError::Bind { addr, source })?;

    let (tls, dev_ca) = match &settings.transport {
        Transport::PlainHttp => (None, None),
        Transport::Tls { cert, key } => (Some(tls::server_config(cert, key)?), None),
        Transport::DevTls => {
            let dev = tls::dev_cert(&settings.data_dir)?;
            (Some(tls::server_config(&dev.cert, &dev.key)?), Some(dev.ca))
        }
    };
    let listener = transport::serve_with(listener, tls, app, limits, metrics)
        .map_err(|source| StartError::Bind { addr, source })?;
    let (metrics_listener, metrics_addr) = match settings.metrics_listen {
        Some(at) => {
            let l =
                metrics::listener::serve(at, state.clone(), registry_for_running.clone(), listener.counters().clone())
                    .map_err(|source| StartError::Bind { addr: at, source })?;
            let bound = l.local_addr();
            tracing::info!(%bound, "metrics served at http://{bound}/metrics");
            (Some(l), Some(bound))
        }
        None => (None, None),
    };
    Ok(Running {
        addr,
        issuer,
        dev_ca,
        generated_secrets,
        metrics_addr,
        registry: registry_for_running,
        state,
        listener,
        metrics_listener,
        poller,
        pruner,
        rotator,
        rotating,
        store,
    })
}

/// Runs a rotation pass every minute (the steps are hours and days apart; a minute late is
/// nothing). Time comes from the injected clock; with several instances, each step is done
/// by whichever gets there first.
fn spawn_rotator(rotator: Arc<rotation::Rotator>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = rotator.run().await {
                tracing::error!(error = %e, "signing key rotation failed; retried in a minute");
            }
        }
    })
}

/// Deletes expired reference tokens and revocation entries every `every`, so the store stays
/// bounded under sustained issuance, and recounts each client's live reference tokens for
/// the cap. Time comes from the injected clock.
fn spawn_pruner(
    state: AppState,
    store: Store,
    clock: Arc<dyn Clock>,
    every: Duration,
    batch: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The clients with a live-token cap, as of a registry revision.
        let mut capped: Option<(i64, Option<Vec<tessera_types::ClientId>>)> = None;
        loop {
            tick.tick().await;
            match store.prune(clock.now(), batch).await {
                Ok((0, 0)) => {}
                Ok((tokens, revocations)) => {
                    tracing::info!(tokens, revocations, "pruned expired entries")
                }
                Err(e) => {
                    state.0.metrics.store_error(metrics::StoreOp::Prune);
                    tracing::error!(error = %e, "pruning failed")
                }
            }
            match store.prune_events(clock.now(), batch).await {
                Ok(0) => {}
                Ok(events) => tracing::info!(events, "pruned revocation events past their tokens' expiry"),
                Err(e) => tracing::error!(error = %e, "pruning revocation events failed"),
            }
            match store.prune_assertion_jtis(clock.now(), batch).await {
                Ok(0) => {}
                Ok(assertion_ids) => tracing::info!(assertion_ids, "pruned expired client assertion ids"),
                Err(e) => tracing::error!(error = %e, "pruning client assertion ids failed"),
            }
            state.flush_secret_usage(&store).await;
            state.0.issuance.forget_full(tokio::time::Instant::now());
            let retention = state.0.limits_audit.retention_s;
            match store.prune_audit(clock.now().plus(-retention), batch).await {
                Ok(0) => {}
                Ok(entries) => tracing::info!(entries, "pruned audit entries past audit_retention_days"),
                Err(e) => tracing::error!(error = %e, "pruning the audit trail failed"),
            }
            // Only clients with a cap are counted: with none, the recount costs nothing.
            let registry = state.0.registry.get();
            if capped.as_ref().is_none_or(|(revision, _)| *revision != registry.revision) {
                capped = Some((registry.revision, state.0.issuance.capped(&registry)));
            }
            drop(registry);
            let capped_ids = capped.as_ref().expect("set above").1.as_deref();
            state.0.issuance.begin_recount();
            match store.live_token_counts(clock.now(), capped_ids).await {
                Ok(counts) => state.0.issuance.set_live(counts),
                Err(e) => tracing::error!(error = %e, "counting live reference tokens failed"),
            }
        }
    })
}
