//! The listener: accepts TCP connections, terminates TLS and serves HTTP/1.1 and HTTP/2 with
//! the bounds a server on the internet needs. Nothing here trusts the peer to finish what it
//! starts: the TLS handshake, the request head, the body and the pause between requests each
//! have a deadline, connections are capped globally and per source address, and requests
//! past the concurrency limit are shed at once (503) instead of queueing.
//!
//! axum-server was dropped for this: it turns hyper's header-read timeout off and has no
//! connection cap, idle timeout or per-address limit.

mod connection;
mod linger;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use connection::{PeerAddr, RequestId};

/// Connection and request bounds. [`Limits::default`] is what `tessera serve` uses; every
/// field is configurable under `[limits]` in the config file (see the README).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections, all peers together; past it new connections are closed at once.
    pub max_connections: usize,
    /// Open connections from one address (an IPv6 /64 counts as one address).
    pub max_connections_per_ip: usize,
    /// TLS handshake and each HTTP/1 request head must complete within this.
    pub header_read_timeout: Duration,
    /// A new connection must send its first request within this.
    pub first_request_timeout: Duration,
    /// A connection with no request in flight is closed after this (HTTP/1.1 keep-alive and
    /// HTTP/2 alike).
    pub idle_timeout: Duration,
    /// A request (body included) must be answered within this, else 503.
    pub request_timeout: Duration,
    /// Requests in flight, all connections together; past it 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// How late the runtime may run its work before new requests are shed with 503: a
    /// CPU-bound handler finishes in one poll, so under overload the queue is not in flight
    /// but waiting to be polled, and only this lag shows it.
    pub max_scheduling_delay: Duration,
    /// HTTP/1 read buffer (which bounds the request head) and HTTP/2 header list size.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 PING interval; a peer that does not answer within the same time is dropped.
    pub h2_keep_alive_interval: Duration,
    /// After a close, how long unread request bytes are drained so the peer still reads our
    /// answer (a 413 sent before the body was read) instead of a connection reset.
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_ip: 512,
            header_read_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
            max_concurrent_requests: 256,
            max_scheduling_delay: Duration::from_millis(250),
            max_header_bytes: 16 * 1024,
            h2_max_concurrent_streams: 128,
            h2_keep_alive_interval: Duration::from_secs(15),
            linger: Duration::from_secs(2),
        }
    }
}

/// What the listener counted since start (tests and logs read it).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connections closed at once because a connection limit was reached.
    pub refused: AtomicU64,
    /// Requests answered 503 by the concurrency limit.
    pub shed: AtomicU64,
    /// Requests answered 503 by the request timeout.
    pub timed_out: AtomicU64,
    /// Connections closed for being idle.
    pub idle_closed: AtomicU64,
}

pub(crate) struct Shared {
    limits: Limits,
    /// The runtime's current scheduling delay, milliseconds (see [`Limits::max_scheduling_delay`]).
    lag_ms: Arc<AtomicU64>,
    app: Router,
    requests_in_flight: AtomicUsize,
    counters: Arc<Counters>,
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Generated request ids: a random prefix per listener and a counter.
    request_ids: connection::RequestIds,
}

/// A running listener.
pub struct Listener {
    addr: SocketAddr,
    connections: Arc<Semaphore>,
    max_connections: usize,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl Listener {
    #[allow(missing_docs)]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What was counted since start.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Stops accepting, asks every connection to finish its requests in flight and close, and
    /// waits for that up to `grace`; connections still open then are dropped.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        let all = self.max_connections as u32;
        let _ = tokio::time::timeout(grace, self.connections.acquire_many(all)).await;
    }
}

/// Serves `app` on `listener`, over TLS when `tls` is given (ALPN picks h2 or http/1.1),
/// else plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge).
pub fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
) -> std::io::Result<Listener> {
    serve_with(listener, tls, app, limits, Arc::new(crate::metrics::Metrics::off()))
}

/// [`serve`], recording each request's latency and status class in `metrics`.
pub fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    metrics: Arc<crate::metrics::Metrics>,
) -> std::io::Result<Listener> {
    let addr = listener.local_addr()?;
    let max_connections = limits.max_connections.max(1);
    let connections = Arc::new(Semaphore::new(max_connections));
    let counters = Arc::new(Counters::default());
    let lag_ms = Arc::new(AtomicU64::new(0));
    let lag_probe = tokio::spawn(probe_lag(lag_ms.clone()));
    let shared = Arc::new(Shared {
        lag_ms,
        builder: connection::builder(&limits),
        limits,
        app,
        requests_in_flight: AtomicUsize::new(0),
        counters: counters.clone(),
        metrics,
        request_ids: connection::RequestIds::new(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let accept = tokio::spawn(accept_loop(listener, acceptor, shared, connections.clone(), shutdown_rx));
    let task = tokio::spawn(async move {
        let _ = accept.await;
        lag_probe.abort();
    });
    Ok(Listener { addr, connections, max_connections, shutdown, task, counters })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let per_ip = Arc::new(PerIp::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or a connection reset before
                    // accept: back off briefly rather than spin on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "connection refused: max_connections reached");
            drop(stream);
            continue;
        };
        let Some(slot) = per_ip.clone().enter(peer.ip(), shared.limits.max_connections_per_ip) else {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "connection refused: max_connections_per_ip reached");
            drop(stream);
            continue;
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let io = linger::LingerIo::new(stream, shared.limits.linger, Box::new((permit, slot)));
        tokio::spawn(connection::run(io, peer, acceptor.clone(), shared.clone(), shutdown.clone()));
    }
}

/// Measures how late a 10 ms sleep wakes up: the time work waits for the runtime.
async fn probe_lag(lag_ms: Arc<AtomicU64>) {
    const TICK: Duration = Duration::from_millis(10);
    loop {
        let started = tokio::time::Instant::now();
        tokio::time::sleep(TICK).await;
        let late = started.elapsed().saturating_sub(TICK);
        lag_ms.store(late.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Open connections per source address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; uncounted on drop.
struct IpSlot {
    map: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn enter(self: Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let ip = bucket(ip);
        let mut map = self.0.lock().expect("per-ip lock");
        let n = map.entry(ip).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        drop(map);
        Some(IpSlot { map: self, ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.map.0.lock().expect("per-ip lock");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// One IPv6 host usually owns a whole /64: count it as one address.
pub(crate) fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Raises the soft limit on open files to the hard limit (many distributions start services
/// at 1,024, which a few hundred idle connections exhaust). Returns (soft before, soft after).
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur as u64;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, lim.rlim_cur as u64))
}
