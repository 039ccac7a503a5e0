//! The server's router driven as a tower service: no socket, no TLS, no poller. State is built
//! here, in one place, from the same settings `serve` resolves; registry changes are loaded by
//! calling the registry's refresh directly.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::Value;
use tessera_server::clock::{Clock as _, ManualClock, SystemClock, SystemRandom};
use tessera_server::keys::{self, KekUse};
use tessera_server::storage::Stores;
use tessera_server::{AppParts, AppState, Deps, FileConfig, Overrides, RegistryHandle, Settings};
use tessera_store::Store;
use tessera_types::UnixTime;
use tower::ServiceExt as _;

use crate::authority::Authority;
use crate::http::{FORM, Reply, body_json};

/// The issuer the router-driven server announces (no socket, so none is derived from one).
pub const ISSUER: &str = "https://tessera.test";

/// The application with its state, a store in a temporary directory and a manual clock.
pub struct TestApp {
    /// The application, cloned for each request.
    pub router: axum::Router,
    pub state: AppState,
    /// The registry the state reads; [`Authority::sync`] refreshes it.
    pub registry: Arc<RegistryHandle>,
    /// The store (the same handle the state uses).
    pub store: Store,
    /// The server's clock: it starts at the current time (an independent JWT library checks
    /// `exp` against the real one) and moves only when a test advances it.
    pub clock: ManualClock,
    /// The resolved settings the state was built from.
    pub settings: Settings,
    dir: tempfile::TempDir,
}

impl TestApp {
    /// ES256 and the default configuration.
    pub async fn start() -> Self {
        Self::with(&["ES256"], FileConfig::default(), ManualClock::new(SystemClock.now())).await
    }

    /// With these signing algorithms.
    pub async fn with_algs(algs: &[&str]) -> Self {
        Self::with(algs, FileConfig::default(), ManualClock::new(SystemClock.now())).await
    }

    /// With a clock starting at `at`.
    pub async fn at(at: UnixTime) -> Self {
        Self::with(&["ES256"], FileConfig::default(), ManualClock::new(at)).await
    }

    /// Resolves settings as `serve` does, opens the store, makes the signing keys and builds
    /// the state. The one place tests construct an [`AppState`].
    pub async fn with(algs: &[&str], mut file: FileConfig, clock: ManualClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Most tests issue tokens in bursts; a test of the limit sets its own.
        file.limits.issuance_rate_per_second.get_or_insert(0.0);
        let overrides = Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("127.0.0.1:0".into()),
            issuer: Some(ISSUER.into()),
            signing_algs: algs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let settings = Settings::resolve(overrides, file).unwrap();
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let rng = Arc::new(SystemRandom::default());
        let now = clock.now();
        let kek = keys::open_kek(&store, &settings.kek_file, KekUse::Server, &*rng, now).await.unwrap();
        keys::ensure_active(&store, &kek, &settings.signing_algs, &*rng, now).await.unwrap();
        let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await.unwrap());
        let state = AppState::new(AppParts {
            issuer: settings.issuer_for(settings.listen),
            signing_algs: settings.signing_algs.clone(),
            max_body_bytes: settings.max_body_bytes,
            limits: settings.limits.clone(),
            mtls: settings.mtls.clone(),
            registry: registry.clone(),
            stores: Stores::sql(store.clone()),
            deps: Deps { clock: Arc::new(clock.clone()), rng },
        });
        let router = tessera_server::router(state.clone());
        Self { router, state, registry, store, clock, settings, dir }
    }

    /// The data directory (the key-encryption key file is in it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// A request builder for `method` on `path`.
    pub fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder().method(method).uri(format!("{}{path}", self.issuer()))
    }

    /// A POST to `path` with the form media type and no credentials.
    pub fn post(&self, path: &str) -> axum::http::request::Builder {
        self.request(Method::POST, path).header(header::CONTENT_TYPE, FORM)
    }

    /// Runs one request through the router.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, headers, body_json(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// `Basic base64(id:secret)`, as reqwest's `basic_auth` sends it (no form-urlencoding: the
/// tests that need §2.3.1's encoding build the header themselves).
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

impl Authority for TestApp {
    fn store(&self) -> &Store {
        &self.store
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    fn issuer(&self) -> &str {
        self.state.issuer().as_str()
    }

    /// Loads the store's current revision into the registry, as the poller would.
    async fn sync(&self) {
        self.registry.refresh().await.unwrap();
    }

    async fn post_form(&self, path: &str, id: &str, secret: &str, body: &str) -> Reply {
        let req = self.post(path).header(header::AUTHORIZATION, basic(id, secret)).body(Body::from(body.to_string()));
        self.send(req.unwrap()).await
    }

    async fn get_json(&self, path: &str) -> Value {
        let (status, _, body) = self.send(self.request(Method::GET, path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, 200, "{path}");
        body
    }
}
