//! Issue 10: the token source stays bounded when the authority is slow, down or redirects.
//! Each test names the attack or outage it withstands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tessera_testkit::blackhole;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::json;
use tessera_client::{ClientError, TokenSource};

use crate::config;
use tessera_types::clock::{Clock as _, ManualClock, SystemClock};

/// A fake authority: discovery and a token endpoint, each counted; can be down (503 from both)
/// or have
/// its token endpoint redirect (307, which keeps the method and the body with the secret).
#[derive(Default)]
struct Authority {
    url: String,
    down: AtomicBool,
    redirect: AtomicBool,
    discoveries: AtomicUsize,
    tokens: AtomicUsize,
    elsewhere: AtomicUsize,
}

fn token_response() -> Response {
    axum::Json(json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})).into_response()
}

impl Authority {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let a = Arc::new(Self { url: url.clone(), ..Default::default() });
        let (d, t, e) = (a.clone(), a.clone(), a.clone());
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    if let Some(down) = d.count_call(&d.discoveries) {
                        return down;
                    }
                    axum::Json(json!({"issuer": d.url, "token_endpoint": format!("{}/token", d.url)})).into_response()
                }),
            )
            .route(
                "/token",
                post(move || async move {
                    if let Some(down) = t.count_call(&t.tokens) {
                        return down;
                    }
                    if t.redirect.load(Ordering::SeqCst) {
                        let to = format!("{}/elsewhere", t.url);
                        return (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response();
                    }
                    token_response()
                }),
            )
            .route(
                "/elsewhere",
                any(move || async move {
                    e.elsewhere.fetch_add(1, Ordering::SeqCst);
                    token_response()
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        a
    }

    /// Counts a call on `counter`; while the authority is down, its answer: 503.
    fn count_call(&self, counter: &AtomicUsize) -> Option<Response> {
        counter.fetch_add(1, Ordering::SeqCst);
        self.down.load(Ordering::SeqCst).then(|| StatusCode::SERVICE_UNAVAILABLE.into_response())
    }

    fn count(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
}

/// `source.token()`, but a hang is a test failure rather than a hung test.
async fn token_within(source: &TokenSource, limit: Duration) -> Result<tessera_client::Token, ClientError> {
    tokio::time::timeout(limit, source.token()).await.expect("token() hung")
}

/// `n` callers asking `source` for a token at the same moment, each within 5 s; their answers.
async fn callers_at_once(source: &TokenSource, n: usize) -> Vec<Result<tessera_client::Token, ClientError>> {
    let callers: Vec<_> = (0..n)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { token_within(&s, Duration::from_secs(5)).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for c in callers {
        answers.push(c.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn issue10_a_blackholed_authority_fails_within_the_request_timeout() {
    let short = Duration::from_millis(300);
    // The source's own client, and a client passed in without any timeout: both bounded.
    for http in [None, Some(reqwest::Client::new())] {
        let (hole, accepted) = blackhole().await;
        let mut cfg = config(&hole).allow_http().with_timeouts(short, short);
        cfg.calls.http = http;
        cfg.backoff = Duration::from_millis(1);
        let source = TokenSource::new(cfg);
        let started = Instant::now();
        let first = token_within(&source, Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(matches!(first, Err(ClientError::Unreachable(_))), "{first:?}");
        assert!(took >= short && took < Duration::from_secs(3), "failed after {took:?}");
        // Twenty more callers at once: they get the remembered failure, no new connection.
        for answer in callers_at_once(&source, 20).await {
            assert!(matches!(answer, Err(ClientError::Unreachable(_))));
        }
        assert!(started.elapsed() < Duration::from_secs(3), "the callers waited in turn");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection: a timeout is not retried");
    }
}

#[tokio::test]
async fn issue10_a_down_authority_is_asked_by_one_caller_not_by_every_caller() {
    let a = Authority::start().await;
    a.down.store(true, Ordering::SeqCst);
    let clock = ManualClock::new(SystemClock.now());
    let mut cfg = config(&a.url).allow_http().with_clock(Arc::new(clock.clone()));
    cfg.backoff = Duration::from_millis(1);
    let source = TokenSource::new(cfg);
    for answer in callers_at_once(&source, 20).await {
        assert!(matches!(answer, Err(ClientError::Unreachable(_))));
    }
    // One caller's three attempts (max_attempts), not twenty callers' sixty.
    assert_eq!(Authority::count(&a.discoveries), 3);
    assert!(token_within(&source, Duration::from_secs(5)).await.is_err());
    assert_eq!(Authority::count(&a.discoveries), 3, "asked again within the failure window");
    // After the window, the authority is back and one request serves twenty callers.
    a.down.store(false, Ordering::SeqCst);
    clock.advance(3);
    for answer in callers_at_once(&source, 20).await {
        assert_eq!(answer.unwrap().access_token.expose(), "tok");
    }
    assert_eq!((Authority::count(&a.discoveries), source.requests_sent()), (4, 1));
}

#[tokio::test]
async fn issue10_a_failed_early_refresh_is_not_retried_by_every_call_while_the_token_is_valid() {
    let a = Authority::start().await;
    let clock = ManualClock::new(SystemClock.now());
    let mut cfg = config(&a.url).allow_http().with_clock(Arc::new(clock.clone()));
    cfg.backoff = Duration::from_millis(1);
    let source = TokenSource::new(cfg);
    assert!(token_within(&source, Duration::from_secs(5)).await.is_ok());
    assert_eq!(Authority::count(&a.tokens), 1);
    // Past the refresh point (80% ± 5% of an hour), the authority down: callers keep the
    // valid token, and only the first call tries (three attempts) to refresh it.
    a.down.store(true, Ordering::SeqCst);
    clock.advance(3100);
    for _ in 0..30 {
        assert_eq!(token_within(&source, Duration::from_secs(5)).await.unwrap().access_token.expose(), "tok");
    }
    assert_eq!(Authority::count(&a.tokens), 4, "every call tried to refresh");
    // After the failure window, the next call tries again, and succeeds.
    a.down.store(false, Ordering::SeqCst);
    clock.advance(3);
    assert!(token_within(&source, Duration::from_secs(5)).await.is_ok());
    assert_eq!(Authority::count(&a.tokens), 5);
}

#[tokio::test]
async fn issue10_a_redirecting_token_endpoint_is_refused_and_not_followed() {
    let a = Authority::start().await;
    a.redirect.store(true, Ordering::SeqCst);
    let source = TokenSource::new(config(&a.url).allow_http());
    match token_within(&source, Duration::from_secs(5)).await {
        Err(ClientError::Protocol(why)) => assert!(why.contains("redirect"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(Authority::count(&a.elsewhere), 0, "the secret was sent on to the redirect target");
    assert_eq!(Authority::count(&a.tokens), 1, "a redirect is not retried");
    // A client passed in that follows redirects: the token from elsewhere is refused anyway.
    let source = TokenSource::new(config(&a.url).allow_http().with_http_client(reqwest::Client::new()));
    assert!(matches!(token_within(&source, Duration::from_secs(5)).await, Err(ClientError::Protocol(_))));
}

#[tokio::test]
async fn rfc6749_3_2_an_http_authority_is_refused_unless_allowed() {
    let a = Authority::start().await;
    let source = TokenSource::new(config(&a.url));
    match token_within(&source, Duration::from_secs(5)).await {
        Err(ClientError::Protocol(why)) => assert!(why.contains("https"), "{why}"),
        other => panic!("an http authority was used: {other:?}"),
    }
    assert_eq!(Authority::count(&a.discoveries), 0, "nothing was sent in clear");
    let source = TokenSource::new(config(&a.url).allow_http());
    assert_eq!(token_within(&source, Duration::from_secs(5)).await.unwrap().access_token.expose(), "tok");
}
