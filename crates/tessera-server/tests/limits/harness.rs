//! A real server on 127.0.0.1:0 (plain HTTP unless a test needs TLS), its store, and raw
//! socket helpers for the attacks.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tessera_server::admin::{self, ClientSpec, ScopeSpec};
use tessera_server::clock::{Clock as _, ManualClock, SystemRandom};
use tessera_server::{Deps, FileConfig, Overrides, Running, Settings};
use tessera_store::Store;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

pub struct Server {
    pub running: Option<Running>,
    pub _dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub base: String,
    pub store: Store,
    pub clock: ManualClock,
    pub ca: Option<std::path::PathBuf>,
}

impl Server {
    pub async fn start(file: FileConfig) -> Self {
        Self::start_with(file, false).await
    }

    pub async fn start_with(mut file: FileConfig, tls: bool) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        file.registry_poll_ms = Some(20);
        // Debug builds running many tests at once lag; these tests are about other bounds.
        file.limits.max_scheduling_delay_ms.get_or_insert(30_000);
        let settings = Settings::resolve(
            Overrides {
                data_dir: Some(dir.path().to_owned()),
                listen: Some("127.0.0.1:0".into()),
                http: !tls,
                ..Default::default()
            },
            file,
        )
        .unwrap();
        let clock = ManualClock::new(tessera_server::clock::SystemClock.now());
        let deps = Deps { clock: Arc::new(clock.clone()), rng: Arc::new(SystemRandom::default()) };
        let running = tessera_server::start(settings, deps).await.unwrap();
        let addr = running.addr;
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let scope = ScopeSpec {
            resources: vec![tessera_types::Resource::new("api1").unwrap()],
            ..ScopeSpec::new(tessera_types::ScopeName::new("api").unwrap())
        };
        admin::add_scope(&store, scope, clock.now()).await.unwrap();
        let ca = running.dev_ca.clone();
        let scheme = if tls { "https" } else { "http" };
        let s = Self {
            running: Some(running),
            _dir: dir,
            addr,
            base: format!("{scheme}://127.0.0.1:{}", addr.port()),
            store,
            clock,
            ca,
        };
        s.sync().await;
        s
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now().0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Registers a client allowed scope `api`; `secret: None` generates one (returned).
    pub async fn client(&self, id: &str, secret: Option<&str>, format: &str) -> String {
        self.client_with(ClientSpec {
            secret: secret.map(|s| tessera_types::ClientSecret::new(s).unwrap()),
            scopes: vec![tessera_types::ScopeName::new("api").unwrap()],
            token_format: Some(format.parse().unwrap()),
            ..spec(id)
        })
        .await
    }

    pub async fn client_with(&self, new: ClientSpec) -> String {
        let given = new.secret.as_ref().map(|s| s.expose().to_owned());
        let (_, generated) =
            admin::add_client(&self.store, new, 3600, &SystemRandom::default(), self.clock.now()).await.unwrap();
        self.sync().await;
        given.unwrap_or_else(|| generated.unwrap().expose().to_owned())
    }

    /// Waits until the server serves the store's current registry revision.
    pub async fn sync(&self) {
        let want = self.store.revision().await.unwrap();
        for _ in 0..500 {
            if self.running().registry_revision() >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("registry revision {want} never reached the server");
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().shutdown(Duration::from_secs(5)).await.unwrap();
        self.store.close().await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A client whose connections come from `local` (127.0.0.2 stands for another host).
pub fn http_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder().local_address(local).timeout(Duration::from_secs(20)).build().unwrap()
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// POST /connect/token with Basic credentials.
pub async fn token(http: &reqwest::Client, s: &Server, id: &str, secret: &str) -> Answer {
    let r = http
        .post(s.url("/connect/token"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, headers, body }
}

/// A raw TCP connection to the server, from `local` if given.
pub async fn connect(addr: SocketAddr, local: Option<IpAddr>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (or `within` passes): what it sent, and
/// whether it closed in time.
pub async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (got, closed)
}

/// Writes `bytes` one at a time, `every` apart, until the server stops accepting them or
/// `max` passes; returns how long the server put up with it.
pub async fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration, max: Duration) -> Duration {
    let started = tokio::time::Instant::now();
    for b in bytes.iter().cycle() {
        if started.elapsed() > max {
            break;
        }
        if stream.write_all(&[*b]).await.is_err() {
            break;
        }
        // A closed connection shows as EOF on read before a write fails.
        let mut probe = [0u8; 1024];
        if let Ok(Ok(0)) = tokio::time::timeout(every, stream.read(&mut probe)).await {
            break;
        }
    }
    started.elapsed()
}

/// A client spec with this id and nothing else set.
pub fn spec(id: &str) -> ClientSpec {
    ClientSpec::new(tessera_types::ClientId::new(id).unwrap())
}
