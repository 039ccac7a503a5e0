//! One connection: TLS handshake under a deadline, then HTTP with a watchdog that closes the
//! connection when it has been idle too long, and a wrapper around every request that sheds
//! load past the concurrency limit and answers 503 past the request timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tessera_types::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::Service as _;
use tracing::Instrument as _;

use super::linger::LingerIo;
use super::{Limits, Shared};
use crate::certificate::ClientCertificate;
use crate::error::OAuthError;
use crate::metrics::Route;

/// The peer's socket address, in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

pub(super) fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses a request head that does not fit its read buffer (431); 8 KiB is its
        // floor.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(64);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_interval)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(64);
    b
}

/// When the connection last finished a request, and how many are in flight.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    last_done_ms: AtomicU64,
}

impl Activity {
    /// When the connection will have been idle too long, if nothing happens before.
    fn idle_deadline(&self, limits: &Limits) -> Instant {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return now + limits.idle_timeout;
        }
        if self.requests.load(Ordering::Acquire) == 0 {
            return self.start + limits.first_request_timeout;
        }
        self.start + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire)) + limits.idle_timeout
    }
}

struct InFlight<'a>(&'a Activity);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let a = self.0;
        a.last_done_ms.store(a.start.elapsed().as_millis() as u64, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) async fn run(
    io: LingerIo,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    match acceptor {
        Some(acceptor) => match tokio::time::timeout(shared.limits.header_read_timeout, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                // Hashed once here, not per request: a kept-alive mTLS client pays nothing more
                // per token than a secret client does.
                let certificate =
                    tls.get_ref().1.peer_certificates().and_then(|chain| {
                        ClientCertificate::new(chain.iter().map(|c| c.clone().into_owned()).collect())
                    });
                serve_http(tls, peer, certificate, shared, shutdown).await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
        None => serve_http(io, peer, None, shared, shutdown).await,
    }
}

async fn serve_http<I>(
    io: I,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        start: Instant::now(),
        in_flight: AtomicUsize::new(0),
        requests: AtomicU64::new(0),
        last_done_ms: AtomicU64::new(0),
    });
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let shared = shared.clone();
            let activity = activity.clone();
            let certificate = certificate.clone();
            async move { Ok::<_, Infallible>(handle(req, peer, certificate, &shared, &activity).await) }
        })
    };
    let conn = shared.builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // The deadlines are watched by a task of their own: polled inside this one, a timer and a
    // shutdown receiver would be polled again on every wake-up of the connection (several per
    // request), which cost a measurable share of the issuance rate.
    let (close, mut closing) = tokio::sync::oneshot::channel::<()>();
    let watchdog = tokio::spawn(watchdog(activity, shared.clone(), shutdown, close));
    tokio::select! {
        biased;
        result = conn.as_mut() => {
            watchdog.abort();
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            return;
        }
        _ = &mut closing => {}
    }
    // Idle too long, or the server is stopping: requests in flight get the request timeout to
    // finish, then the connection is dropped.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(shared.limits.request_timeout, conn.as_mut()).await;
}

/// Sends on `close` once the connection has been idle past its deadline, or the server stops.
async fn watchdog(
    activity: Arc<Activity>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    close: tokio::sync::oneshot::Sender<()>,
) {
    loop {
        let deadline = activity.idle_deadline(&shared.limits);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if Instant::now() >= activity.idle_deadline(&shared.limits) {
                    shared.counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                    let _ = close.send(());
                    return;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    let _ = close.send(());
                    return;
                }
            }
        }
    }
}

/// The id of one request: the caller's `x-request-id` when it is sane, else one made here.
/// It is in the request's extensions, in the tracing span every log line of the request is
/// written in, and echoed in the response's `x-request-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest inbound request id accepted; a longer one is replaced, not truncated (a truncated
/// id would no longer match the caller's logs).
const MAX_REQUEST_ID: usize = 128;

impl RequestId {
    #[allow(missing_docs)]
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    /// The caller's id when it is 1 to 128 visible ASCII characters (no spaces, no control
    /// characters: it goes into log lines as is); `None` otherwise.
    fn inbound(headers: &axum::http::HeaderMap) -> Option<Self> {
        let v = headers.get(REQUEST_ID_HEADER)?;
        let ok = (1..=MAX_REQUEST_ID).contains(&v.len()) && v.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b));
        ok.then(|| Self(v.clone()))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes request ids: 64 random bits per listener, then a counter, so ids are unique across
/// instances and restarts without a random draw per request.
pub(super) struct RequestIds {
    /// The prefix in hex and the dash, written once.
    head: [u8; 17],
    next: AtomicU64,
}

impl RequestIds {
    pub(super) fn new() -> Self {
        let mut bytes = [0u8; 8];
        // A predictable prefix only makes ids guessable, which they need not resist.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        let mut head = [b'-'; 17];
        write_hex(u64::from_le_bytes(bytes), &mut head[..16]);
        Self { head, next: AtomicU64::new(0) }
    }

    /// `{prefix:016x}-{n:x}`, without `format!` (~0.6 % of a token request's CPU, issue 17).
    fn make(&self) -> RequestId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let digits = ((u64::BITS - n.leading_zeros()).div_ceil(4)).max(1) as usize;
        let mut text = [0u8; 33];
        text[..17].copy_from_slice(&self.head);
        write_hex(n, &mut text[17..17 + digits]);
        RequestId(HeaderValue::from_bytes(&text[..17 + digits]).expect("hex digits make a header value"))
    }
}

/// The low `out.len()` hex digits of `n`, most significant first.
fn write_hex(mut n: u64, out: &mut [u8]) {
    for d in out.iter_mut().rev() {
        *d = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    shared: &Shared,
    activity: &Activity,
) -> Response {
    let started = std::time::Instant::now();
    let route = Route::of(req.uri().path());
    let id = RequestId::inbound(req.headers()).unwrap_or_else(|| shared.request_ids.make());
    // Every line logged while the request is served carries its id.
    let span = tracing::info_span!("request", request_id = %id);
    let header = id.0.clone();
    let mut response = admit(req, route, id, peer, certificate, shared, activity).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, header);
    shared.metrics.request(route, response.status().as_u16(), started.elapsed());
    if let Some(limit) = response.extensions().get::<crate::metrics::Limited>() {
        shared.metrics.limited(*limit);
    }
    if let Some(op) = response.extensions().get::<crate::metrics::StoreOp>() {
        shared.metrics.store_error(*op);
    }
    response
}

async fn admit(
    mut req: Request<Incoming>,
    route: Route,
    id: RequestId,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    shared: &Shared,
    activity: &Activity,
) -> Response {
    activity.in_flight.fetch_add(1, Ordering::AcqRel);
    activity.requests.fetch_add(1, Ordering::AcqRel);
    let _in_flight = InFlight(activity);

    let limits = &shared.limits;
    // Health probes are answered whatever the load: an orchestrator that saw its probes shed
    // would restart an instance that is merely busy (issue 16).
    let admitted = route == Route::Health
        || (shared.requests_in_flight.fetch_add(1, Ordering::AcqRel) < limits.max_concurrent_requests
            && shared.lag_ms.load(Ordering::Relaxed) <= limits.max_scheduling_delay.as_millis() as u64);
    let _slot = (route != Route::Health).then(|| Slot(&shared.requests_in_flight));
    if !admitted {
        shared.counters.shed.fetch_add(1, Ordering::Relaxed);
        return OAuthError::new(ErrorCode::TemporarilyUnavailable, "the server is at capacity; retry shortly")
            .with_retry_after(1)
            .into_response();
    }
    req.extensions_mut().insert(PeerAddr(peer));
    req.extensions_mut().insert(id);
    if let Some(certificate) = certificate {
        req.extensions_mut().insert(certificate);
    }
    let mut app = shared.app.clone();
    match tokio::time::timeout(limits.request_timeout, app.call(req)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => {
            shared.counters.timed_out.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, "request not completed within request_timeout");
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "the request did not complete in time")
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .with_retry_after(1)
                .into_response()
        }
    }
}

struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 16 hex digits of prefix, a dash, the counter in hex without leading zeros.
    #[test]
    fn request_ids_are_the_prefix_a_dash_and_the_counter_in_hex() {
        let ids = RequestIds::new();
        let prefix = std::str::from_utf8(&ids.head[..16]).unwrap().to_owned();
        assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{prefix}");
        for n in [0u64, 1, 15, 16, 255, 4096, 0xdead_beef, u64::MAX] {
            ids.next.store(n, Ordering::Relaxed);
            assert_eq!(ids.make().as_str(), format!("{prefix}-{n:x}"));
        }
        assert_eq!(ids.next.load(Ordering::Relaxed), 0, "the counter wraps");
    }
}
