//! Issue 12: the guard follows the authority's revocation feed (RFC 8936 poll, RFC 8417 SETs).
//! A fake authority on 127.0.0.1 publishes discovery, a JWKS, introspection and
//! `/connect/events`, whose answers each test scripts; the fake records every poll it gets.
//! The guard's clock is a `ManualClock`, so staleness is reached by moving it, not by waiting.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, json};
use tessera_guard::{
    ClientCredentials, FeedStatus, Guard, GuardConfig, GuardError, GuardLayer, Mode, OnStale, Principal,
};
use tessera_jose::SigningKey;
use tessera_types::clock::ManualClock;
use tessera_types::rfc7517::JwkSet;
use tessera_types::rfc8417::{EventSeq, PollRequest, PollResponse, RevocationEvent, SetClaims, TYP};
use tessera_types::{ClientId, ClientSecret, Issuer, Jti, Kid, Resource, SigningAlg, UnixTime};

use crate::apps::{get_rest, grpc, rest, say_hello};
use crate::fake_issuer::{AUD, FakeIssuer, b64};

const SECRET: &str = "api1_feed_secret";

/// What the fake feed answers next, and what it saw.
#[derive(Default)]
struct FeedCtl {
    answers: Mutex<VecDeque<PollResponse>>,
    /// Wakes a held poll when an answer is scripted.
    scripted: tokio::sync::Notify,
    /// `/connect/events` answers 503.
    down: AtomicBool,
    polls: Mutex<Vec<(Option<String>, PollRequest)>>,
    active: Mutex<HashSet<String>>,
    introspections: AtomicUsize,
}

struct FakeFeed {
    url: String,
    /// Published in the JWKS; signs tokens and SETs.
    key: SigningKey,
    /// Published too (RS256), to be removed by a `key_removed` event.
    rsa: SigningKey,
    ctl: Arc<FeedCtl>,
}

impl FakeFeed {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let (rsa, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let jwks = JwkSet { keys: vec![key.public_jwk(), rsa.public_jwk()] };
        let ctl = Arc::new(FeedCtl::default());
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "introspection_endpoint": format!("{url}/introspect"),
            "revocation_events_endpoint": format!("{url}/connect/events"),
        });
        let (c1, c2, issuer) = (ctl.clone(), ctl.clone(), url.clone());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route("/jwks", get(move || async move { axum::Json(jwks) }))
            .route(
                "/connect/events",
                post(move |headers: HeaderMap, body: String| async move { events(&c1, &headers, &body).await }),
            )
            .route(
                "/introspect",
                post(move |body: String| async move {
                    c2.introspections.fetch_add(1, Ordering::SeqCst);
                    let token = form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    if !c2.active.lock().unwrap().contains(&token) {
                        return axum::Json(json!({"active": false}));
                    }
                    axum::Json(json!({"active": true, "iss": issuer, "aud": AUD, "client_id": "REF",
                        "jti": "ref-1", "scope": "dataEventRecords", "exp": FakeIssuer::now() + 3600}))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, key, rsa, ctl }
    }

    /// Queues one answer and wakes the poll the fake holds.
    fn script(&self, sets: &[(i64, String)], more_available: bool) {
        let sets: BTreeMap<String, String> = sets.iter().map(|(seq, s)| (seq.to_string(), s.clone())).collect();
        self.ctl.answers.lock().unwrap().push_back(PollResponse { sets, more_available });
        self.ctl.scripted.notify_one();
    }

    fn polls(&self) -> Vec<(Option<String>, PollRequest)> {
        self.ctl.polls.lock().unwrap().clone()
    }

    fn claims(&self, seq: i64, event: &RevocationEvent) -> SetClaims {
        let mut events = Map::new();
        events.insert(event.event_type().into(), event.payload());
        let now = UnixTime(FakeIssuer::now());
        SetClaims { iss: self.url.clone(), iat: now, jti: seq.to_string(), aud: AUD.into(), toe: now, events }
    }

    /// A good SET: signed by the published key, typed, for us.
    fn set(&self, seq: i64, event: &RevocationEvent) -> String {
        self.key.sign_jwt(&self.key.kid, Some(TYP), &self.claims(seq, event)).unwrap()
    }

    fn token_with(&self, key: &SigningKey, jti: &str, client: &str, iat: i64) -> String {
        let now = FakeIssuer::now();
        key.sign_access_token(&json!({"iss": self.url, "sub": client, "client_id": client, "aud": AUD,
            "scope": "dataEventRecords", "iat": iat, "nbf": now - 10, "exp": now + 3600, "jti": jti}))
            .unwrap()
    }

    fn token(&self, jti: &str) -> String {
        self.token_with(&self.key, jti, "CC", FakeIssuer::now())
    }

    fn guard(&self, clock: &ManualClock, on_stale: OnStale) -> Guard {
        Guard::new(self.config(clock, Mode::Jwt, on_stale)).unwrap()
    }

    fn config(&self, clock: &ManualClock, mode: Mode, on_stale: OnStale) -> GuardConfig {
        let mut cfg = GuardConfig::new(Issuer::new(&self.url).unwrap(), Resource::new(AUD).unwrap(), mode)
            .allow_http()
            .with_clock(Arc::new(clock.clone()))
            .follow_revocations(creds())
            .with_staleness(Duration::from_secs(60), on_stale);
        let feed = cfg.revocations.as_mut().unwrap();
        // Real-time waits of the follower: short, so a retry comes within the test's patience.
        feed.retry_min = Duration::from_millis(20);
        feed.retry_max = Duration::from_millis(100);
        cfg
    }
}

/// `/connect/events`: records the poll, then answers the next scripted answer; with none,
/// holds the poll (as Tessera long-polls) until one is scripted or 300 ms pass.
async fn events(ctl: &FeedCtl, headers: &HeaderMap, body: &str) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Ok(request) = serde_json::from_str::<PollRequest>(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    ctl.polls.lock().unwrap().push((auth, request));
    if ctl.answers.lock().unwrap().is_empty() {
        let _ = tokio::time::timeout(Duration::from_millis(300), ctl.scripted.notified()).await;
    }
    if ctl.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let answer = ctl.answers.lock().unwrap().pop_front().unwrap_or_default();
    axum::Json(answer).into_response()
}

fn creds() -> ClientCredentials {
    ClientCredentials::new(ClientId::new(AUD).unwrap(), ClientSecret::new(SECRET).unwrap())
}

fn clock() -> ManualClock {
    ManualClock::new(UnixTime(FakeIssuer::now()))
}

/// Waits (up to 5 s of real time) until the follower publishes a status that satisfies
/// `cond`; a follower that never gets there fails the test rather than hanging it.
async fn until(guard: &Guard, cond: impl Fn(&FeedStatus) -> bool) -> FeedStatus {
    let mut rx = guard.watch_feed().expect("the guard follows a feed");
    guard.start_feed();
    // Generous: the follower retries on real time, and a loaded machine (CI, builds) slows it.
    let r = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| cond(s))).await;
    match r {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("the feed never got there; status: {:?}", guard.feed_status()),
    }
}

fn revoked(jti: &str) -> RevocationEvent {
    RevocationEvent::TokenRevoked {
        jti: Jti::new(jti).unwrap(),
        exp: UnixTime(FakeIssuer::now() + 3600),
        client_id: ClientId::new("CC").unwrap(),
        token_hash: None,
    }
}

fn client_event(f: fn(ClientId) -> RevocationEvent, client: &str) -> RevocationEvent {
    f(ClientId::new(client).unwrap())
}

fn refused_as(r: &Result<Principal, GuardError>, why: &str) -> bool {
    matches!(r, Err(GuardError::InvalidToken(w)) if w.contains(why))
}

fn at(seq: i64) -> Option<EventSeq> {
    Some(EventSeq(seq))
}

#[tokio::test]
async fn issue12_a_revoked_jti_is_refused_after_one_poll_cached_or_not_while_other_tokens_pass() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::FailClosed);
    let (cached, fresh, other) = (feed.token("j-cached"), feed.token("j-fresh"), feed.token("j-other"));
    // Validated and cached before the revocation.
    assert!(g.authenticate(&cached).await.is_ok());
    assert!(g.authenticate(&other).await.is_ok());
    until(&g, |s| s.last_success.is_some()).await;
    feed.script(&[(1, feed.set(1, &revoked("j-cached"))), (2, feed.set(2, &revoked("j-fresh")))], false);
    let s = until(&g, |s| s.position == at(2)).await;
    assert_eq!(s.revoked_tokens, 2);
    assert!(refused_as(&g.authenticate(&cached).await, "revoked"), "the cached principal is refused");
    assert!(refused_as(&g.authenticate(&fresh).await, "revoked"), "a revoked token never seen before is refused");
    assert!(g.authenticate(&other).await.is_ok(), "a token not revoked still passes");
    // Through the layer: RFC 6750 §3.1 invalid_token, 401.
    let url = rest(GuardLayer::new(g.clone())).await;
    let (status, challenge, _) = get_rest(&url, "/weatherforecast", Some(&cached)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(get_rest(&url, "/weatherforecast", Some(&other)).await.0, 200);
    // Over gRPC: Unauthenticated.
    let grpc_url = grpc(GuardLayer::new(g.clone())).await;
    assert_eq!(say_hello(&grpc_url, Some(&cached)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert!(say_hello(&grpc_url, Some(&other)).await.is_ok());
}

#[tokio::test]
async fn issue12_polls_ack_the_highest_jti_applied_numerically_and_more_available_polls_again() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::KeepServing);
    // As text, "9" > "10" > "2": the guard must order (and ack) by number.
    feed.script(
        &[(2, feed.set(2, &revoked("a"))), (9, feed.set(9, &revoked("b"))), (10, feed.set(10, &revoked("c")))],
        true,
    );
    feed.script(&[(11, feed.set(11, &revoked("d")))], false);
    until(&g, |s| s.position == at(11)).await;
    until(&g, |_| feed.polls().len() >= 3).await;
    let polls = feed.polls();
    let (auth, first) = &polls[0];
    // RFC 8936 §2.4: a fresh receiver acknowledges nothing, long-polls, bounds the answer.
    assert_eq!(first, &PollRequest { ack: vec![], max_events: Some(500), return_immediately: false });
    // RFC 6749 §2.3.1 client authentication, as for introspection.
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{AUD}:{SECRET}")));
    assert_eq!(auth.as_deref(), Some(basic.as_str()));
    assert_eq!(polls[1].1.ack, vec!["10".to_string()], "moreAvailable: polled again, acking the highest");
    assert_eq!(polls[2].1.ack, vec!["11".to_string()]);
    for jti in ["a", "b", "c", "d"] {
        assert!(refused_as(&g.authenticate(&feed.token(jti)).await, "revoked"), "{jti}");
    }
}

#[tokio::test]
async fn issue12_a_disabled_client_is_refused_until_enabled_and_other_clients_pass() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::FailClosed);
    let now = FakeIssuer::now();
    let (cc, other) = (feed.token_with(&feed.key, "x1", "CC", now), feed.token_with(&feed.key, "x2", "OTHER", now));
    assert!(g.authenticate(&cc).await.is_ok());
    feed.script(&[(1, feed.set(1, &client_event(|c| RevocationEvent::ClientDisabled { client_id: c }, "CC")))], false);
    until(&g, |s| s.position == at(1) && s.disabled_clients == 1).await;
    assert!(refused_as(&g.authenticate(&cc).await, "client disabled"));
    assert!(g.authenticate(&other).await.is_ok());
    feed.script(&[(2, feed.set(2, &client_event(|c| RevocationEvent::ClientEnabled { client_id: c }, "CC")))], false);
    until(&g, |s| s.position == at(2)).await;
    assert!(g.authenticate(&cc).await.is_ok(), "enabled again: its tokens count again");
}

#[tokio::test]
async fn issue12_client_tokens_revoked_refuses_tokens_issued_before_not_before_only() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::FailClosed);
    let now = FakeIssuer::now();
    let old = feed.token_with(&feed.key, "old", "CC", now - 100);
    let new = feed.token_with(&feed.key, "new", "CC", now);
    let others = feed.token_with(&feed.key, "others", "OTHER", now - 100);
    assert!(g.authenticate(&old).await.is_ok());
    let event = RevocationEvent::ClientTokensRevoked {
        client_id: ClientId::new("CC").unwrap(),
        not_before: UnixTime(now - 50),
    };
    feed.script(&[(1, feed.set(1, &event))], false);
    until(&g, |s| s.position == at(1)).await;
    assert!(refused_as(&g.authenticate(&old).await, "issued before"), "iat before not_before, cached");
    assert!(g.authenticate(&new).await.is_ok(), "issued after not_before");
    assert!(g.authenticate(&others).await.is_ok(), "another client's old token");
}

#[tokio::test]
async fn issue12_key_removed_refuses_the_tokens_it_signed_cached_or_not() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::FailClosed);
    let now = FakeIssuer::now();
    let by_rsa = feed.token_with(&feed.rsa, "r1", "CC", now);
    let by_rsa_later = feed.token_with(&feed.rsa, "r2", "CC", now);
    let by_ec = feed.token("e1");
    assert!(g.authenticate(&by_rsa).await.is_ok());
    feed.script(&[(1, feed.set(1, &RevocationEvent::KeyRemoved { kid: feed.rsa.kid.clone() }))], false);
    until(&g, |s| s.position == at(1) && s.removed_keys == 1).await;
    assert!(refused_as(&g.authenticate(&by_rsa).await, "signing key removed"), "cached");
    let r = g.authenticate(&by_rsa_later).await;
    assert!(matches!(r, Err(GuardError::InvalidToken(_))), "not seen before: {r:?}");
    assert!(g.authenticate(&by_ec).await.is_ok(), "the other key's tokens pass");
}

#[tokio::test]
async fn issue12_a_revoked_reference_token_leaves_the_introspection_cache_without_another_introspection() {
    let feed = FakeFeed::start().await;
    let clock = clock();
    let g = Guard::new(feed.config(&clock, Mode::Introspection(creds()), OnStale::FailClosed)).unwrap();
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    let token = URL_SAFE_NO_PAD.encode(b);
    feed.ctl.active.lock().unwrap().insert(token.clone());
    assert!(g.authenticate(&token).await.is_ok());
    assert!(g.authenticate(&token).await.is_ok());
    assert_eq!(feed.ctl.introspections.load(Ordering::SeqCst), 1, "cached");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let event = RevocationEvent::TokenRevoked {
        // Not the jti the introspection answer names: the hash alone must find it.
        jti: Jti::new("some-other-jti").unwrap(),
        exp: UnixTime(FakeIssuer::now() + 3600),
        client_id: ClientId::new("REF").unwrap(),
        token_hash: Some(URL_SAFE_NO_PAD.encode(digest.as_ref())),
    };
    feed.script(&[(1, feed.set(1, &event))], false);
    until(&g, |s| s.position == at(1)).await;
    assert!(matches!(g.authenticate(&token).await, Err(GuardError::InvalidToken(_))));
    assert_eq!(feed.ctl.introspections.load(Ordering::SeqCst), 1, "refused without asking the authority again");
}

/// One hostile or broken SET between two good ones.
async fn bad_set_is_not_applied(name: &str, bad: impl FnOnce(&FakeFeed) -> String) {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::KeepServing);
    let sets = [(1, feed.set(1, &revoked("good"))), (2, bad(&feed)), (3, feed.set(3, &revoked("after")))];
    feed.script(&sets, false);
    let s = until(&g, |s| s.last_error.is_some()).await;
    assert_eq!(s.position, at(1), "{name}: the good SET before it was applied, the bad one not");
    assert!(s.last_error.as_deref().unwrap().contains("SET 2"), "{name}: {:?}", s.last_error);
    assert!(refused_as(&g.authenticate(&feed.token("good")).await, "revoked"), "{name}");
    assert!(g.authenticate(&feed.token("bad")).await.is_ok(), "{name}: the bad SET's revocation was not applied");
    // Nor anything after it: events apply in feed order, without gaps.
    assert!(g.authenticate(&feed.token("after")).await.is_ok(), "{name}: applied past the bad SET");
    // Retried, not skipped: the next poll still acknowledges 1, so the server resends 2.
    until(&g, |_| feed.polls().len() >= 2).await;
    assert_eq!(feed.polls()[1].1.ack, vec!["1".to_string()], "{name}");
    assert_eq!(g.feed_status().unwrap().position, at(1), "{name}");
}

#[tokio::test]
async fn rfc8417_a_set_that_fails_verification_is_not_applied_and_the_position_does_not_advance() {
    let bad_claims = |f: &FakeFeed, edit: fn(&mut SetClaims)| {
        let mut c = f.claims(2, &revoked("bad"));
        edit(&mut c);
        f.key.sign_jwt(&f.key.kid, Some(TYP), &c).unwrap()
    };
    bad_set_is_not_applied("wrong aud", |f| bad_claims(f, |c| c.aud = "another-api".into())).await;
    bad_set_is_not_applied("another issuer", |f| bad_claims(f, |c| c.iss = "https://evil.example".into())).await;
    bad_set_is_not_applied("jti differs from its key", |f| bad_claims(f, |c| c.jti = "3".into())).await;
    bad_set_is_not_applied("no event", |f| bad_claims(f, |c| c.events = Map::new())).await;
    bad_set_is_not_applied("typ at+jwt", |f| {
        f.key.sign_jwt(&f.key.kid, Some("at+jwt"), &f.claims(2, &revoked("bad"))).unwrap()
    })
    .await;
    bad_set_is_not_applied("no typ", |f| f.key.sign_jwt(&f.key.kid, None, &f.claims(2, &revoked("bad"))).unwrap())
        .await;
    bad_set_is_not_applied("signed by an unpublished key under a published kid", |f| {
        let (stranger, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        stranger.sign_jwt(&f.key.kid, Some(TYP), &f.claims(2, &revoked("bad"))).unwrap()
    })
    .await;
    bad_set_is_not_applied("unknown kid", |f| {
        let (stranger, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        stranger.sign_jwt(&Kid::new("nobody").unwrap(), Some(TYP), &f.claims(2, &revoked("bad"))).unwrap()
    })
    .await;
    bad_set_is_not_applied("alg none", |f| {
        FakeIssuer::raw(
            json!({"alg": "none", "typ": TYP}),
            &serde_json::to_value(f.claims(2, &revoked("bad"))).unwrap(),
            None,
        ) + "x"
    })
    .await;
    bad_set_is_not_applied("HS256", |f| {
        let c = serde_json::to_value(f.claims(2, &revoked("bad"))).unwrap();
        format!("{}.{}.c2lnbmF0dXJl", b64(&json!({"alg": "HS256", "typ": TYP, "kid": f.key.kid})), b64(&c))
    })
    .await;
}

/// A feed whose first poll succeeded and which then goes down: moving the clock past
/// `max_staleness` makes it stale.
async fn stale_guard(on_stale: OnStale) -> (FakeFeed, ManualClock, Guard, String) {
    let feed = FakeFeed::start().await;
    let clock = clock();
    let g = feed.guard(&clock, on_stale);
    let token = feed.token("t");
    assert!(g.authenticate(&token).await.is_ok());
    until(&g, |s| s.last_success.is_some()).await;
    feed.ctl.down.store(true, Ordering::SeqCst);
    until(&g, |s| s.last_error.is_some()).await;
    (feed, clock, g, token)
}

#[tokio::test]
async fn issue12_fail_closed_refuses_every_token_once_the_feed_is_stale_and_serves_again_when_it_recovers() {
    let (feed, clock, g, token) = stale_guard(OnStale::FailClosed).await;
    clock.advance(60);
    assert!(g.authenticate(&token).await.is_ok(), "60 s is not more than max_staleness");
    assert!(!g.feed_status().unwrap().stale);
    clock.advance(1);
    assert!(matches!(g.authenticate(&token).await, Err(GuardError::Unavailable(_))), "stale: fail closed");
    assert!(g.feed_status().unwrap().stale);
    let url = rest(GuardLayer::new(g.clone())).await;
    assert_eq!(get_rest(&url, "/weatherforecast", Some(&token)).await.0, 503);
    let grpc_url = grpc(GuardLayer::new(g.clone())).await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unavailable);
    feed.ctl.down.store(false, Ordering::SeqCst);
    until(&g, |s| s.last_error.is_none() && !s.stale).await;
    assert!(g.authenticate(&token).await.is_ok(), "current again");
}

#[tokio::test]
async fn issue12_keep_serving_validates_tokens_while_the_feed_is_stale_and_says_so() {
    let (_feed, clock, g, token) = stale_guard(OnStale::KeepServing).await;
    clock.advance(61);
    assert!(g.authenticate(&token).await.is_ok());
    let s = g.feed_status().unwrap();
    assert!(s.stale && s.last_error.is_some(), "{s:?}");
}

#[tokio::test]
async fn issue12_before_its_first_successful_poll_the_feed_is_stale_max_staleness_after_start() {
    let feed = FakeFeed::start().await;
    feed.ctl.down.store(true, Ordering::SeqCst);
    let clock = clock();
    let g = feed.guard(&clock, OnStale::FailClosed);
    let token = feed.token("t");
    assert!(g.authenticate(&token).await.is_ok(), "just started");
    until(&g, |s| s.last_error.is_some()).await;
    clock.advance(61);
    assert!(matches!(g.authenticate(&token).await, Err(GuardError::Unavailable(_))));
    assert_eq!(g.feed_status().unwrap().last_success, None);
}

#[tokio::test]
async fn issue12_the_follower_stops_when_the_last_guard_clone_is_dropped() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::KeepServing);
    let layer = GuardLayer::new(g.clone());
    until(&g, |s| s.last_success.is_some()).await;
    let mut rx = g.watch_feed().unwrap();
    drop(g);
    // A clone is still alive: the follower goes on (another successful poll is published).
    rx.mark_unchanged();
    let r = tokio::time::timeout(Duration::from_secs(5), rx.changed()).await;
    assert!(matches!(r, Ok(Ok(()))), "the follower stopped while a clone was alive");
    drop(layer);
    // The status channel's sender belongs to the follower task: it closes when the task ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), async { while rx.changed().await.is_ok() {} }).await;
    assert!(ended.is_ok(), "the follower outlived the guard");
}

#[tokio::test]
async fn rfc8417_2_2_an_event_type_the_guard_does_not_know_is_ignored_and_the_position_moves_on() {
    let feed = FakeFeed::start().await;
    let g = feed.guard(&clock(), OnStale::FailClosed);
    let mut unknown = feed.claims(1, &revoked("x"));
    unknown.events = Map::from_iter([("urn:example:secevent:other".to_string(), json!({"jti": "x"}))]);
    let unknown = feed.key.sign_jwt(&feed.key.kid, Some(TYP), &unknown).unwrap();
    feed.script(&[(1, unknown), (2, feed.set(2, &revoked("y")))], false);
    let s = until(&g, |s| s.position == at(2)).await;
    assert_eq!((s.revoked_tokens, s.last_error), (1, None));
    assert!(g.authenticate(&feed.token("x")).await.is_ok(), "nothing was read into the unknown event");
    assert!(refused_as(&g.authenticate(&feed.token("y")).await, "revoked"));
}

#[tokio::test]
async fn issue12_a_full_revocation_set_forgets_the_soonest_expiry_and_counts_as_stale_until_it_expires() {
    let feed = FakeFeed::start().await;
    let clock = clock();
    let mut cfg = feed.config(&clock, Mode::Jwt, OnStale::FailClosed);
    cfg.revocations.as_mut().unwrap().capacity = 2;
    let g = Guard::new(cfg).unwrap();
    let now = FakeIssuer::now();
    let revoked_until = |jti: &str, exp: i64| RevocationEvent::TokenRevoked {
        jti: Jti::new(jti).unwrap(),
        exp: UnixTime(exp),
        client_id: ClientId::new("CC").unwrap(),
        token_hash: None,
    };
    let sets = [
        (1, feed.set(1, &revoked_until("soon", now + 100))),
        (2, feed.set(2, &revoked_until("later", now + 3600))),
        (3, feed.set(3, &revoked_until("latest", now + 3600))),
    ];
    feed.script(&sets, false);
    let s = until(&g, |s| s.position == at(3)).await;
    assert_eq!(s.revoked_tokens, 2, "bounded");
    // "soon" (exp + 30 s leeway) was forgotten: the guard cannot tell whether a token is
    // revoked until then, and says so by failing closed.
    assert_eq!(s.incomplete_until, Some(UnixTime(now + 130)));
    assert!(s.stale);
    assert!(matches!(g.authenticate(&feed.token("other")).await, Err(GuardError::Unavailable(_))));
    clock.advance(131);
    // Past it, and the feed still current (a poll since), everything is in order again.
    until(&g, |s| s.last_success.is_some_and(|t| t.0 >= now + 131) && !s.stale).await;
    assert!(g.authenticate(&feed.token("other")).await.is_ok());
    assert!(refused_as(&g.authenticate(&feed.token("latest")).await, "revoked"));
}
