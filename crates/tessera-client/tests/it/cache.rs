//! The token cache: single flight, early refresh inside the window before expiry, retries with
//! exponential backoff, remembered failures, RFC 6749 §5.2 errors, and the forced refresh
//! after an API answers 401 `invalid_token` (RFC 6750 §3.1). Time is a `ManualClock`; the
//! only real waits are the backoff delays, asserted as lower bounds.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tessera_client::{AuthorizedClient, BearerLayer, ClientError, TokenSource};
use tessera_types::clock::ManualClock;
use tessera_types::{ErrorCode, UnixTime};
use tower::{Service, ServiceExt};

use crate::config;

/// A fake authority whose token endpoint answers `tok-1`, `tok-2`, ... and can fail, answer
/// an RFC 6749 error, or hold its answer until released.
struct Authority {
    url: String,
    requests: AtomicUsize,
    issued: AtomicUsize,
    /// Answer 503 to this many token requests first.
    failures_left: AtomicUsize,
    expires_in: AtomicI64,
    /// When set, token requests answer 400 with this body.
    error: Mutex<Option<serde_json::Value>>,
    /// When each token request arrived.
    arrivals: Mutex<Vec<Instant>>,
    /// When set, token requests wait for it before answering.
    hold: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl Authority {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let a = Arc::new(Self {
            url,
            requests: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            failures_left: AtomicUsize::new(0),
            expires_in: AtomicI64::new(100),
            error: Mutex::new(None),
            arrivals: Mutex::new(Vec::new()),
            hold: Mutex::new(None),
        });
        let (d, t) = (a.clone(), a.clone());
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    axum::Json(json!({"issuer": d.url, "token_endpoint": format!("{}/token", d.url)}))
                }),
            )
            .route("/token", post(move || async move { t.token().await }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        a
    }

    async fn token(&self) -> Response {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.arrivals.lock().unwrap().push(Instant::now());
        let hold = self.hold.lock().unwrap().clone();
        if let Some(gate) = hold {
            let _permit = gate.acquire().await.unwrap();
        }
        if self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        if let Some(body) = self.error.lock().unwrap().clone() {
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let expires_in = self.expires_in.load(Ordering::SeqCst);
        axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}))
            .into_response()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Token requests wait until the returned gate gets permits.
    fn hold(&self) -> Arc<tokio::sync::Semaphore> {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *self.hold.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Waits (in real time, briefly) until `n` token requests have arrived.
    async fn until_requests(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while self.requests() < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("token requests arrive");
    }

    /// A source for this authority on `clock`, without jitter so refresh points are exact.
    fn source(&self, clock: &ManualClock) -> TokenSource {
        let mut cfg = config(&self.url).allow_http().with_clock(Arc::new(clock.clone()));
        cfg.jitter = 0.0;
        cfg.backoff = Duration::from_millis(1);
        TokenSource::new(cfg)
    }
}

fn clock() -> ManualClock {
    ManualClock::new(UnixTime(1_700_000_000))
}

async fn value(source: &TokenSource) -> String {
    source.token().await.unwrap().access_token.expose().to_owned()
}

#[tokio::test]
async fn single_flight_many_concurrent_callers_make_one_token_request() {
    let a = Authority::start().await;
    let source = a.source(&clock());
    let gate = a.hold();
    let callers: Vec<_> = (0..32)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { value(&s).await })
        })
        .collect();
    // The first caller's request is at the authority, held; the others queue behind it.
    a.until_requests(1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.add_permits(usize::MAX >> 4);
    for c in callers {
        assert_eq!(c.await.unwrap(), "tok-1");
    }
    assert_eq!(a.requests(), 1);
    assert_eq!(source.requests_sent(), 1);
}

#[tokio::test]
async fn the_token_is_refreshed_at_80_percent_of_its_lifetime_not_before() {
    let a = Authority::start().await;
    let clock = clock();
    let source = a.source(&clock);
    assert_eq!(value(&source).await, "tok-1");
    clock.advance(79);
    assert_eq!(value(&source).await, "tok-1", "79% of the lifetime: cached");
    assert_eq!(a.requests(), 1);
    clock.advance(1);
    assert_eq!(value(&source).await, "tok-2", "80%: refreshed");
    assert_eq!(a.requests(), 2);
    // The new token's window starts again from its own issue time.
    clock.advance(79);
    assert_eq!(value(&source).await, "tok-2");
    assert_eq!(a.requests(), 2);
}

#[tokio::test]
async fn with_jitter_the_refresh_falls_between_75_and_85_percent() {
    let a = Authority::start().await;
    a.expires_in.store(1000, Ordering::SeqCst);
    let clock = clock();
    let mut cfg = config(&a.url).allow_http().with_clock(Arc::new(clock.clone()));
    cfg.backoff = Duration::from_millis(1);
    assert_eq!((cfg.refresh_at, cfg.jitter), (0.8, 0.05), "the defaults");
    let source = TokenSource::new(cfg);
    assert_eq!(value(&source).await, "tok-1");
    clock.advance(749);
    assert_eq!(value(&source).await, "tok-1", "before 75%: never");
    clock.advance(101);
    assert_eq!(value(&source).await, "tok-2", "at 85%: always");
}

#[tokio::test]
async fn during_an_early_refresh_other_callers_keep_the_valid_token() {
    let a = Authority::start().await;
    let clock = clock();
    let source = a.source(&clock);
    assert_eq!(value(&source).await, "tok-1");
    clock.advance(90);
    let gate = a.hold();
    let refresher = {
        let s = source.clone();
        tokio::spawn(async move { value(&s).await })
    };
    a.until_requests(2).await;
    // The refresh is held at the authority: everyone else gets the still-valid token at once.
    for _ in 0..5 {
        assert_eq!(value(&source).await, "tok-1");
    }
    gate.add_permits(1);
    assert_eq!(refresher.await.unwrap(), "tok-2");
    assert_eq!(value(&source).await, "tok-2");
    assert_eq!(a.requests(), 2);
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_the_token_until_it_expires() {
    let a = Authority::start().await;
    let clock = clock();
    let source = a.source(&clock);
    assert_eq!(value(&source).await, "tok-1");
    a.failures_left.store(usize::MAX, Ordering::SeqCst);
    clock.advance(85);
    assert_eq!(value(&source).await, "tok-1", "the refresh failed; the token is still valid");
    clock.advance(15);
    assert!(matches!(source.token().await, Err(ClientError::Unreachable(_))), "expired, and none to be had");
}

#[tokio::test]
async fn failures_are_retried_with_exponential_backoff() {
    let a = Authority::start().await;
    a.failures_left.store(2, Ordering::SeqCst);
    let mut cfg = config(&a.url).allow_http().with_clock(Arc::new(clock()));
    cfg.backoff = Duration::from_millis(40);
    let source = TokenSource::new(cfg);
    assert_eq!(value(&source).await, "tok-1", "the third attempt succeeds");
    let t = a.arrivals.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    // Lower bounds only: a slow machine may wait longer, never shorter.
    assert!(t[1] - t[0] >= Duration::from_millis(40), "first retry after the backoff");
    assert!(t[2] - t[1] >= Duration::from_millis(80), "second retry after twice the backoff");
}

#[tokio::test]
async fn after_the_last_attempt_the_failure_is_remembered_then_tried_again() {
    let a = Authority::start().await;
    a.failures_left.store(3, Ordering::SeqCst);
    let clock = clock();
    let source = a.source(&clock);
    assert!(matches!(source.token().await, Err(ClientError::Unreachable(_))));
    assert_eq!(a.requests(), 3, "max_attempts");
    // Within the failure memory (2 s), callers get the failure without a new request.
    for _ in 0..10 {
        assert!(matches!(source.token().await, Err(ClientError::Unreachable(_))));
    }
    assert_eq!(a.requests(), 3);
    clock.advance(3);
    assert_eq!(value(&source).await, "tok-1");
    assert_eq!(a.requests(), 4);
}

#[tokio::test]
async fn rfc6749_5_2_errors_are_typed_and_not_retried() {
    let a = Authority::start().await;
    *a.error.lock().unwrap() = Some(json!({"error": "invalid_client", "error_description": "bad secret"}));
    let source = a.source(&clock());
    match source.token().await {
        Err(ClientError::Refused { error: ErrorCode::InvalidClient, description }) => {
            assert_eq!(description.as_deref(), Some("bad secret"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.requests(), 1, "a refusal is final");
    // A code outside RFC 6749 is not something the client can act on.
    *a.error.lock().unwrap() = Some(json!({"error": "made_up"}));
    let source = a.source(&clock());
    assert!(matches!(source.token().await, Err(ClientError::Protocol(_))));
}

/// An API that accepts only `tok-2`, answering others with `challenge`.
async fn api(challenge: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/data", listener.local_addr().unwrap().port());
    let app = Router::new().route(
        "/data",
        get(move |headers: HeaderMap| async move {
            if headers.get("authorization").is_some_and(|v| v == "Bearer tok-2") {
                return StatusCode::OK.into_response();
            }
            (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn rfc6750_3_1_a_401_invalid_token_forces_one_refresh_and_one_retry() {
    let a = Authority::start().await;
    let source = a.source(&clock());
    assert_eq!(value(&source).await, "tok-1");
    let url = api(r#"Bearer realm="api", error="invalid_token", error_description="revoked""#).await;
    let client = AuthorizedClient::new(reqwest::Client::new(), source.clone());
    let r = client.send(client.http().get(&url)).await.unwrap();
    assert_eq!(r.status(), 200, "retried with a fresh token");
    assert_eq!(a.requests(), 2);
    assert_eq!(value(&source).await, "tok-2", "the fresh token is cached");
}

#[tokio::test]
async fn a_401_without_the_invalid_token_code_is_not_retried() {
    let a = Authority::start().await;
    let source = a.source(&clock());
    // The code only mentioned in the description (the old substring match retried this).
    let url = api(r#"Bearer realm="api", error_description="not an invalid_token answer""#).await;
    let client = AuthorizedClient::new(reqwest::Client::new(), source);
    let r = client.send(client.http().get(&url)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(a.requests(), 1);
}

#[tokio::test]
async fn a_burst_of_rejections_of_one_token_causes_one_refresh() {
    let a = Authority::start().await;
    let source = a.source(&clock());
    let first = source.token().await.unwrap().access_token;
    source.invalidate(&first);
    assert_eq!(value(&source).await, "tok-2");
    // Late rejections of the old token leave the new one alone.
    source.invalidate(&first);
    source.invalidate(&first);
    assert_eq!(value(&source).await, "tok-2");
    assert_eq!(a.requests(), 2);
}

#[tokio::test]
async fn the_bearer_layer_drops_a_token_the_service_answered_401() {
    let a = Authority::start().await;
    let source = a.source(&clock());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let inner = tower::service_fn(move |req: http::Request<()>| {
        let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
        log.lock().unwrap().push(auth.clone());
        async move {
            let status = if auth.as_deref() == Some("Bearer tok-2") { 200 } else { 401 };
            Ok::<_, std::convert::Infallible>(http::Response::builder().status(status).body(()).unwrap())
        }
    });
    let mut svc = tower::ServiceBuilder::new().layer(BearerLayer::new(source)).service(inner);
    let first = svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
    assert_eq!(first.status(), 401);
    let second = svc.ready().await.unwrap().call(http::Request::new(())).await.unwrap();
    assert_eq!(second.status(), 200, "the next call carries a fresh token");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some("Bearer tok-1".to_owned()), Some("Bearer tok-2".to_owned())]);
    assert_eq!(a.requests(), 2);
}
