//! The metrics listener: plain HTTP, `GET /metrics` only, on its own address (`metrics_listen`)
//! so that the public listener never serves what clients call and how often. It runs on the
//! same bounded transport as the public listener, with small limits: a scraper needs one
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::{CONTENT_TYPE, Sources};
use crate::RegistryHandle;
use crate::state::AppState;
use crate::transport::{self, Counters, Listener};

/// Binds `at` and serves the scrape answer there.
pub(crate) fn serve(
    at: SocketAddr,
    state: AppState,
    registry: Arc<RegistryHandle>,
    counters: Arc<Counters>,
) -> std::io::Result<Listener> {
    let listener = std::net::TcpListener::bind(at)?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let scrape = move || {
        let s = &state.0;
        let sources = Sources {
            registry: &registry,
            transport: Some(&counters),
            tokens_issued: state.tokens_issued(),
            now: s.clock.now(),
        };
        let mut response = s.metrics.render(&sources).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    };
    let app = Router::new().route("/metrics", get(move || std::future::ready(scrape())));
    let limits = transport::Limits {
        max_connections: 16,
        max_connections_per_ip: 16,
        max_concurrent_requests: 8,
        request_timeout: Duration::from_secs(10),
        // A scrape is most wanted when the server is overloaded: never shed it for lag.
        max_scheduling_delay: Duration::from_secs(3600),
        ..Default::default()
    };
    transport::serve(listener, None, app, limits)
}
