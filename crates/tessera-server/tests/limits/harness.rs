//! The test kit's real server on 127.0.0.1:0 (plain HTTP unless a test needs TLS) set up for
//! the limits, and raw socket helpers for the attacks.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_server::clock::{Clock as _, ManualClock, SystemClock};
use tessera_testkit::{Authority as _, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The test kit's server with a manual clock, the default issuance limit (these tests are
/// about the limits), and scope `api` (audience `api1`) registered.
pub struct Server {
    inner: TestServer,
    pub clock: ManualClock,
}

impl Deref for Server {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.inner
    }
}

impl Server {
    pub async fn start(file: FileConfig) -> Self {
        Self::start_with(file, false).await
    }

    pub async fn start_with(file: FileConfig, tls: bool) -> Self {
        let clock = ManualClock::new(SystemClock.now());
        let mut builder = TestServer::builder().file(file).clock(Arc::new(clock.clone())).issuance_limit();
        if !tls {
            builder = builder.plain_http();
        }
        let inner = builder.start().await;
        inner.add_scope("api", &["api1"]).await;
        Self { inner, clock }
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now().0
    }

    /// Registers a client allowed scope `api`; `secret: None` generates one (returned).
    pub async fn client(&self, id: &str, secret: Option<&str>, format: &str) -> String {
        self.client_with(ClientSpec {
            secret: secret.and_then(tessera_testkit::secret),
            scopes: vec![tessera_testkit::scope("api")],
            token_format: Some(format.parse().unwrap()),
            ..spec(id)
        })
        .await
    }

    pub async fn client_with(&self, new: ClientSpec) -> String {
        let given = new.secret.as_ref().map(|s| s.expose().to_owned());
        let generated = self.inner.add_client_with(new).await;
        given.unwrap_or_else(|| generated.unwrap().expose().to_owned())
    }

    /// Waits until the server serves the store's current registry revision.
    pub async fn sync(&self) {
        self.inner.sync().await
    }

    pub async fn stop(self) {
        self.inner.stop().await;
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
    tessera_testkit::client(id)
}
