//! A real server on 127.0.0.1:0: TLS with the development certificate (or plain HTTP), a
//! client trusting its CA, and a second handle on its store for seeding. For what needs
//! sockets: TLS/ALPN, connection limits, guards and clients over the network, restarts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tessera_server::clock::Clock;
use tessera_server::{Deps, FileConfig, Overrides, Running, Settings};
use tessera_store::Store;
use tessera_types::UnixTime;

use crate::authority::Authority;
use crate::http::{Reply, client_for, post_basic, split};

/// A running server and what tests need to talk to it.
pub struct TestServer {
    /// `None` once stopped.
    pub running: Option<Running>,
    /// The data directory (kept alive as long as the server).
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    /// `https://localhost:PORT`, or `http://127.0.0.1:PORT` without TLS.
    pub base: String,
    /// A client trusting the development CA (plain without TLS).
    pub http: reqwest::Client,
    /// A second handle on the store, as the CLI would open it.
    pub store: Store,
    /// The development CA certificate, with TLS.
    pub ca: Option<PathBuf>,
    clock: Arc<dyn Clock>,
}

/// How to start a [`TestServer`]; [`TestServer::builder`].
pub struct ServerBuilder {
    algs: Vec<String>,
    file: FileConfig,
    tls: bool,
    deps: Deps,
    dir: Option<tempfile::TempDir>,
    lift_issuance_limit: bool,
}

impl ServerBuilder {
    /// Signing algorithms (ES256 alone by default).
    pub fn algs(mut self, algs: &[&str]) -> Self {
        self.algs = algs.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The configuration file's contents.
    pub fn file(mut self, file: FileConfig) -> Self {
        self.file = file;
        self
    }

    /// Plain HTTP instead of TLS with the development certificate.
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// The server's clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.deps.clock = clock;
        self
    }

    /// Reuses a data directory (a restart).
    pub fn dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Keeps the default issuance rate limit (for the tests of that limit); otherwise it is
    /// lifted unless the file sets one, since most tests issue tokens in bursts.
    pub fn issuance_limit(mut self) -> Self {
        self.lift_issuance_limit = false;
        self
    }

    /// Binds, serves, and opens a second handle on the store.
    pub async fn start(self) -> TestServer {
        let dir = match self.dir {
            Some(dir) => dir,
            None => tempfile::tempdir().unwrap(),
        };
        let mut file = self.file;
        // Changes made through the store reach the server quickly; `sync` waits for them.
        file.registry_poll_ms.get_or_insert(20);
        if self.lift_issuance_limit {
            file.limits.issuance_rate_per_second.get_or_insert(0.0);
        }
        // Debug builds running many tests at once lag; shedding on lag is not what they test.
        file.limits.max_scheduling_delay_ms.get_or_insert(30_000);
        let overrides = Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("127.0.0.1:0".into()),
            http: !self.tls,
            signing_algs: self.algs,
            ..Default::default()
        };
        let settings = Settings::resolve(overrides, file).unwrap();
        // The store the settings name (PostgreSQL when the file sets `database_url`).
        let store = tessera_server::open_store(&settings).await.unwrap();
        let clock = self.deps.clock.clone();
        let running = tessera_server::start(settings, self.deps).await.unwrap();
        let addr = running.addr;
        let ca = running.dev_ca.clone();
        let (base, http) = match &ca {
            Some(ca) => (format!("https://localhost:{}", addr.port()), client_for(ca)),
            None => (
                format!("http://127.0.0.1:{}", addr.port()),
                reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
            ),
        };
        TestServer { running: Some(running), dir, addr, base, http, store, ca, clock }
    }
}

impl TestServer {
    /// TLS, ES256, the system clock, a fresh data directory.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            algs: vec!["ES256".into()],
            file: FileConfig::default(),
            tls: true,
            deps: Deps::system(),
            dir: None,
            lift_issuance_limit: true,
        }
    }

    /// With the defaults of [`TestServer::builder`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// With these signing algorithms and configuration file.
    pub async fn start_with(algs: &[&str], file: FileConfig) -> Self {
        Self::builder().algs(algs).file(file).start().await
    }

    /// On an existing data directory (a restart).
    pub async fn start_in(dir: tempfile::TempDir, algs: &[&str], file: FileConfig) -> Self {
        Self::builder().dir(dir).algs(algs).file(file).start().await
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// The development CA certificate (panics without TLS).
    pub fn ca(&self) -> &Path {
        self.ca.as_deref().unwrap()
    }

    /// POSTs a raw request and takes the response apart.
    pub async fn token_raw(&self, req: reqwest::RequestBuilder) -> Reply {
        split(req.send().await.unwrap()).await
    }

    /// Stops the server (letting requests finish) and hands back the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().shutdown(Duration::from_secs(5)).await.unwrap();
        self.store.close().await;
        self.dir
    }
}

impl Authority for TestServer {
    fn store(&self) -> &Store {
        &self.store
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    fn issuer(&self) -> &str {
        self.running().issuer.as_str()
    }

    /// Waits for the server's registry poller: the server runs on its own, so a change made
    /// through the store shows only once the poller has loaded it.
    async fn sync(&self) {
        let want = self.store.revision().await.unwrap();
        for _ in 0..500 {
            if self.running().registry_revision() >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not load registry revision {want}");
    }

    async fn post_form(&self, path: &str, id: &str, secret: &str, body: &str) -> Reply {
        post_basic(&self.http, &self.url(path), id, secret, body).await
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }
}
