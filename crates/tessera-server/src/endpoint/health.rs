//! `GET /healthz` and `GET /readyz` (issue 16): unauthenticated, answered before the
//! listener's concurrency limit (see `transport::connection`), and cheap.
//!
//! `/healthz` says the process answers. `/readyz` says whether it should get traffic: the
//! store answers a query within [`STORE_TIMEOUT`], every configured signing algorithm has an
//! active key in the registry snapshot, and the snapshot was confirmed by the store within
//! [`REGISTRY_POLLS`] poll intervals. A failing check gives 503 with a body naming it (never
//! the cause, which is logged: the probe is public). The answer is reused for [`REUSE`], and
//! probes arriving together wait for one check, so a flood of probes costs the store at most
//! one query a second.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::metrics::StoreOp;
use crate::state::{AppState, Inner};

/// How long the store may take to answer the readiness query.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one readiness answer is reused.
pub const REUSE: Duration = Duration::from_secs(1);
/// Poll intervals the registry snapshot may go unconfirmed and still count as fresh.
pub const REGISTRY_POLLS: u32 = 5;
/// The floor of that allowance, for very short poll intervals.
const REGISTRY_MIN_ALLOWANCE: Duration = Duration::from_secs(2);

/// The last readiness answer.
#[derive(Default)]
pub(crate) struct Readiness(tokio::sync::Mutex<Option<(Instant, Report)>>);

#[derive(Debug, Clone, Serialize)]
struct Report {
    status: &'static str,
    checks: Checks,
}

#[derive(Debug, Clone, Serialize)]
struct Checks {
    store: &'static str,
    signing_keys: &'static str,
    registry: &'static str,
}

impl Report {
    fn ready(&self) -> bool {
        self.status == "ready"
    }
}

pub(crate) async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"alive"}"#.to_owned())
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let s = &state.0;
    let mut last = s.readiness.0.lock().await;
    let report = match &*last {
        Some((at, report)) if at.elapsed() < REUSE => report.clone(),
        _ => {
            let report = check(s).await;
            *last = Some((Instant::now(), report.clone()));
            report
        }
    };
    drop(last);
    let status = if report.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, serde_json::to_string(&report).expect("report serialises"))
}

async fn check(s: &Inner) -> Report {
    let store = match s.registry.ping(STORE_TIMEOUT).await {
        Ok(()) => "ok",
        Err(cause) => {
            s.metrics.store_error(StoreOp::Readiness);
            tracing::warn!(%cause, "not ready: the store does not answer");
            "unreachable"
        }
    };
    let registry = s.registry.get();
    let signing_keys = if s.signing_algs.iter().all(|alg| registry.signing_key(*alg).is_some()) {
        "ok"
    } else {
        tracing::warn!(algs = ?s.signing_algs, "not ready: a signing algorithm has no active key");
        "missing"
    };
    let allowance =
        s.registry.poll_interval().map_or(Duration::MAX, |poll| (poll * REGISTRY_POLLS).max(REGISTRY_MIN_ALLOWANCE));
    let unconfirmed = s.registry.unconfirmed_for();
    let fresh = if unconfirmed <= allowance {
        "ok"
    } else {
        tracing::warn!(unconfirmed_ms = unconfirmed.as_millis() as u64, "not ready: the registry snapshot is stale");
        "stale"
    };
    let ok = store == "ok" && signing_keys == "ok" && fresh == "ok";
    Report { status: if ok { "ready" } else { "not_ready" }, checks: Checks { store, signing_keys, registry: fresh } }
}

fn json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // A cached "ready" would hide the outage the probe is there to see.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
