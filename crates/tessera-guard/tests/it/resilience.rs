//! Issue 10: the guard stays bounded when the authority is slow, down or redirects, and when
//! callers flood it with garbage. Each test names the attack it stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tessera_testkit::blackhole;

use serde_json::json;
use tessera_guard::{ClientCredentials, Guard, GuardConfig, GuardError, GuardLayer, Mode, OpaqueTokens};
use tessera_types::clock::{Clock as _, ManualClock, SystemClock};

use crate::apps::{get_rest, grpc, rest, say_hello};
use crate::fake_issuer::{AUD, Control, FakeIssuer};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource};

fn creds() -> ClientCredentials {
    ClientCredentials::new(ClientId::new(AUD).unwrap(), ClientSecret::new("api1_secret").unwrap())
}

fn config(iss: &FakeIssuer, mode: Mode) -> GuardConfig {
    GuardConfig::new(Issuer::new(&iss.url).unwrap(), Resource::new(AUD).unwrap(), mode).allow_http()
}

/// `get_rest`, but a hang is a test failure rather than a hung test.
async fn get_within(url: &str, token: &str, limit: Duration) -> (u16, String) {
    let (status, challenge, _) = tokio::time::timeout(limit, get_rest(url, "/weatherforecast", Some(token)))
        .await
        .expect("the guarded request hung");
    (status, challenge)
}

fn is_unavailable(r: &Result<tessera_guard::Principal, GuardError>) -> bool {
    matches!(r, Err(GuardError::Unavailable(_)))
}

#[tokio::test]
async fn issue10_a_blackholed_authority_fails_closed_within_the_request_timeout() {
    let (hole, accepted) = blackhole().await;
    let iss = FakeIssuer::start().await;
    let token = iss.sign(&iss.claims("dataEventRecords"));
    let short = Duration::from_millis(300);
    // The guard's own client, and a client passed in without any timeout: both bounded.
    for http in [None, Some(reqwest::Client::new())] {
        let mut cfg = GuardConfig::new(Issuer::new(&hole).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt)
            .allow_http()
            .with_timeouts(short, short);
        cfg.calls.http = http;
        let g = Guard::new(cfg).unwrap();
        let url = rest(GuardLayer::new(g.clone())).await;
        let started = Instant::now();
        assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 503);
        let took = started.elapsed();
        assert!(took >= short && took < Duration::from_secs(3), "failed closed after {took:?}");
        // gRPC too (the failure is remembered, so this one does not wait again).
        let grpc_url = grpc(GuardLayer::new(g)).await;
        let started = Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), say_hello(&grpc_url, Some(&token))).await.unwrap();
        assert_eq!(e.unwrap_err().code(), tonic::Code::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the authority was really called");
}

#[tokio::test]
async fn issue10_introspection_mode_refuses_a_thousand_garbage_tokens_without_one_introspection() {
    let iss = FakeIssuer::start().await;
    let g = Guard::new(config(&iss, Mode::Introspection(creds()))).unwrap();
    let url = rest(GuardLayer::new(g.clone())).await;
    let garbage = (0..1000).map(|i| match i % 5 {
        0 => format!("garbage-{i}"),
        1 => format!("{i:0>42}"),             // one short of a reference token
        2 => format!("{i:0>44}"),             // one too many
        3 => format!("{}+{i:0>38}", "Ab/c"),  // 43 characters, but not base64url
        _ => format!("eyJ{i}.eyJ{i}.sig{i}"), // JWT-shaped, with a header that is not JSON
    });
    for (i, token) in garbage.enumerate() {
        let r = g.authenticate(&token).await;
        assert!(matches!(r, Err(GuardError::InvalidToken(_))), "{token}: {r:?}");
        if i % 100 == 0 {
            let (status, challenge) = get_within(&url, &token, Duration::from_secs(5)).await;
            assert_eq!(status, 401, "{token}");
            assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
        }
    }
    assert_eq!(iss.introspections(), 0, "garbage reached the authority");
    // A token of the reference shape is introspected: the counter does count.
    let good = iss.reference_token(true);
    assert_eq!(get_within(&url, &good, Duration::from_secs(5)).await.0, 200);
    assert_eq!(iss.introspections(), 1);
}

#[tokio::test]
async fn issue10_auto_mode_validates_jwts_locally_and_refuses_other_garbage_locally() {
    let iss = FakeIssuer::start().await;
    let g = Guard::new(config(&iss, Mode::Auto(creds()))).unwrap();
    assert!(g.authenticate(&iss.sign(&iss.claims("dataEventRecords"))).await.is_ok());
    for token in ["a.b.c", "garbage", "x".repeat(43).as_str(), &"A".repeat(44)] {
        assert!(matches!(g.authenticate(token).await, Err(GuardError::InvalidToken(_))), "{token}");
    }
    assert_eq!(iss.introspections(), 0);
    assert!(g.authenticate(&iss.reference_token(true)).await.is_ok());
    assert_eq!(iss.introspections(), 1);
    // For another authority's reference tokens: any opaque token is introspected.
    let mut cfg = config(&iss, Mode::Auto(creds()));
    cfg.opaque_tokens = OpaqueTokens::Any;
    let any = Guard::new(cfg).unwrap();
    assert!(matches!(any.authenticate("garbage").await, Err(GuardError::InvalidToken(_))));
    assert_eq!(iss.introspections(), 2, "OpaqueTokens::Any asks the authority");
}

#[tokio::test]
async fn issue10_fifty_concurrent_requests_with_one_token_make_one_introspection_call() {
    let iss = FakeIssuer::start().await;
    // Slow answers, so the requests overlap.
    iss.ctl.introspection_delay_ms.store(200, Ordering::SeqCst);
    let g = Guard::new(config(&iss, Mode::Introspection(creds()))).unwrap();
    let url = rest(GuardLayer::new(g.clone())).await;
    for (active, status, calls) in [(true, 200, 1), (false, 401, 2)] {
        let token = iss.reference_token(active);
        let requests: Vec<_> = (0..50)
            .map(|_| {
                let (url, token) = (url.clone(), token.clone());
                tokio::spawn(async move { get_within(&url, &token, Duration::from_secs(10)).await.0 })
            })
            .collect();
        for r in requests {
            assert_eq!(r.await.unwrap(), status);
        }
        assert_eq!(iss.introspections(), calls, "one introspection per token (active: {active})");
    }
}

#[tokio::test]
async fn issue10_a_flood_of_inactive_tokens_does_not_evict_valid_introspection_results() {
    let iss = FakeIssuer::start().await;
    let mut cfg = config(&iss, Mode::Introspection(creds()));
    cfg.cache_capacity = 8;
    cfg.negative_cache_capacity = 8;
    let g = Guard::new(cfg).unwrap();
    let valid: Vec<String> = (0..4).map(|_| iss.reference_token(true)).collect();
    for t in &valid {
        assert!(g.authenticate(t).await.is_ok());
    }
    // 300 well-shaped but unknown tokens: each costs one introspection, each is cached apart.
    for _ in 0..300 {
        assert!(matches!(g.authenticate(&iss.reference_token(false)).await, Err(GuardError::InvalidToken(_))));
    }
    assert_eq!(iss.introspections(), 304);
    for t in &valid {
        assert!(g.authenticate(t).await.is_ok());
    }
    assert_eq!(iss.introspections(), 304, "a valid token was evicted by the flood and introspected again");
}

#[tokio::test]
async fn issue10_a_redirecting_introspection_endpoint_is_refused_and_not_followed() {
    let iss = FakeIssuer::start().await;
    Control::set(&iss.ctl.redirect_introspection, true);
    let token = iss.reference_token(true);
    let url = rest(GuardLayer::new(Guard::new(config(&iss, Mode::Introspection(creds()))).unwrap())).await;
    assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 503);
    assert_eq!(iss.introspections(), 1);
    assert_eq!(Control::count(&iss.ctl.elsewhere), 0, "the guard followed the redirect");
    // A client passed in that follows redirects: the answer from elsewhere is refused anyway.
    let cfg = config(&iss, Mode::Introspection(creds())).with_http_client(reqwest::Client::new());
    let url = rest(GuardLayer::new(Guard::new(cfg).unwrap())).await;
    assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 503);
}

#[tokio::test]
async fn rfc8414_2_an_http_authority_is_refused_unless_allowed() {
    let iss = FakeIssuer::start().await;
    match Guard::new(GuardConfig::new(Issuer::new(&iss.url).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt)) {
        Err(GuardError::Unavailable(why)) => assert!(why.contains("https"), "{why}"),
        other => panic!("an http authority was accepted: {other:?}"),
    }
    let g = Guard::new(
        GuardConfig::new(Issuer::new(&iss.url).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt).allow_http(),
    )
    .unwrap();
    assert!(g.authenticate(&iss.sign(&iss.claims("x"))).await.is_ok());
}

#[tokio::test]
async fn issue10_a_failed_jwks_fetch_is_remembered_not_retried_by_every_request() {
    let iss = FakeIssuer::start().await;
    Control::set(&iss.ctl.jwks_down, true);
    let clock = ManualClock::new(SystemClock.now());
    let g = Guard::new(config(&iss, Mode::Jwt).with_clock(Arc::new(clock.clone()))).unwrap();
    let url = rest(GuardLayer::new(g.clone())).await;
    let token = iss.sign(&iss.claims("dataEventRecords"));
    assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 503);
    assert_eq!(iss.fetches(), 1);
    for i in 0..20 {
        let t = iss.sign(&{
            let mut c = iss.claims("dataEventRecords");
            c["jti"] = i.into();
            c
        });
        assert!(is_unavailable(&g.authenticate(&t).await));
    }
    assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 503);
    assert_eq!(iss.fetches(), 1, "requests during the failure window fetched the JWKS again");
    // Once the window has passed, the next request fetches, and the authority is back.
    Control::set(&iss.ctl.jwks_down, false);
    clock.advance(3);
    assert_eq!(get_within(&url, &token, Duration::from_secs(5)).await.0, 200);
    assert_eq!(iss.fetches(), 2);
}

#[tokio::test]
async fn issue10_a_failed_discovery_is_remembered_not_retried_by_every_request() {
    let iss = FakeIssuer::start().await;
    Control::set(&iss.ctl.down, true);
    let clock = ManualClock::new(SystemClock.now());
    let g = Guard::new(config(&iss, Mode::Auto(creds())).with_clock(Arc::new(clock.clone()))).unwrap();
    let jwt = iss.sign(&iss.claims("dataEventRecords"));
    // Concurrent requests, JWTs and reference tokens alike.
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let (g, t) = (g.clone(), if i % 2 == 0 { jwt.clone() } else { iss.reference_token(true) });
            tokio::spawn(async move { g.authenticate(&t).await })
        })
        .collect();
    for r in requests {
        assert!(is_unavailable(&r.await.unwrap()));
    }
    assert_eq!(Control::count(&iss.ctl.discoveries), 1, "one discovery for twenty requests");
    assert_eq!((iss.fetches(), iss.introspections()), (0, 0));
    Control::set(&iss.ctl.down, false);
    clock.advance(3);
    assert!(g.authenticate(&jwt).await.is_ok());
    assert_eq!(Control::count(&iss.ctl.discoveries), 2);
}

#[tokio::test]
async fn issue10_an_introspection_outage_is_remembered_not_retried_by_every_request() {
    let iss = FakeIssuer::start().await;
    let clock = ManualClock::new(SystemClock.now());
    let g = Guard::new(config(&iss, Mode::Introspection(creds())).with_clock(Arc::new(clock.clone()))).unwrap();
    assert!(g.authenticate(&iss.reference_token(true)).await.is_ok());
    Control::set(&iss.ctl.down, true);
    for _ in 0..20 {
        assert!(is_unavailable(&g.authenticate(&iss.reference_token(true)).await));
    }
    assert_eq!(iss.introspections(), 2, "one failed introspection, then none during the window");
    Control::set(&iss.ctl.down, false);
    clock.advance(3);
    assert!(g.authenticate(&iss.reference_token(true)).await.is_ok());
    assert_eq!(iss.introspections(), 3);
}

#[tokio::test]
async fn issue10_claim_arithmetic_saturates_at_the_end_of_time() {
    let iss = FakeIssuer::start().await;
    // exp + leeway would overflow: a panic in the request task rather than an answer.
    let mut claims = iss.claims("dataEventRecords");
    claims["exp"] = json!(i64::MAX);
    let url = rest(GuardLayer::new(Guard::new(config(&iss, Mode::Jwt)).unwrap())).await;
    assert_eq!(get_within(&url, &iss.sign(&claims), Duration::from_secs(5)).await.0, 200);
    iss.ctl.introspection_exp.store(i64::MAX, Ordering::SeqCst);
    let url = rest(GuardLayer::new(Guard::new(config(&iss, Mode::Introspection(creds()))).unwrap())).await;
    assert_eq!(get_within(&url, &iss.reference_token(true), Duration::from_secs(5)).await.0, 200);
}
