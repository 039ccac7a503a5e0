//! The guard against the real Tessera server over TLS, in each mode.

use std::sync::Arc;
use std::time::Duration;

use tessera_guard::{ClientCredentials, Guard, GuardConfig, GuardError, GuardLayer, Mode, OnStale};
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, TestServer};
use tessera_types::clock::{Clock as _, ManualClock, SystemClock};

use crate::apps::{get_rest, grpc, rest, say_hello};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, UnixTime};

const API: &str = "rs_dataEventRecordsApi";

/// The test kit's server with the clients these tests use, each with secret `{id}_secret`.
struct Authority(TestServer);

impl Authority {
    async fn start() -> Self {
        let s = TestServer::start().await;
        for (name, resource) in [("dataEventRecords", API), ("other", API)] {
            s.add_scope(name, &[resource]).await;
        }
        let client = |id: &str, scope: &str, format: &str| ClientSpec {
            secret: tessera_testkit::secret(&format!("{id}_secret")),
            scopes: vec![tessera_testkit::scope(scope)],
            token_format: Some(format.parse().unwrap()),
            ..tessera_testkit::client(id)
        };
        for c in [
            client("CC", "dataEventRecords", "jwt"),
            client("REF", "dataEventRecords", "reference"),
            client("NOSCOPE", "other", "jwt"),
        ] {
            s.add_client_with(c).await;
        }
        s.add_client(API, "api_secret", &[], &["introspection", "events"]).await;
        Self(s)
    }

    fn guard(&self, mode: Mode) -> Guard {
        self.guard_with(mode, |c| c)
    }

    fn guard_with(&self, mode: Mode, f: impl FnOnce(GuardConfig) -> GuardConfig) -> Guard {
        // The issuer is derived from 127.0.0.1; the authority URL must be the issuer.
        let authority = Issuer::new(self.0.issuer()).unwrap();
        let cfg = GuardConfig::new(authority, Resource::new(API).unwrap(), mode);
        Guard::new(f(cfg.with_http_client(self.0.http.clone()))).unwrap()
    }

    async fn token(&self, id: &str) -> String {
        self.0.token(id, &format!("{id}_secret")).await
    }

    async fn revoke(&self, id: &str, token: &str) {
        let (status, _, body) =
            self.0.post_form("/connect/revoke", id, &format!("{id}_secret"), &format!("token={token}")).await;
        assert_eq!(status, 200, "{body}");
    }
}

fn creds() -> ClientCredentials {
    ClientCredentials::new(ClientId::new(API).unwrap(), ClientSecret::new("api_secret").unwrap())
}

#[tokio::test]
async fn jwt_mode_protects_rest_and_grpc_with_the_real_server() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Jwt);
    let (rest_url, grpc_url) = (rest(GuardLayer::new(g.clone())).await, grpc(GuardLayer::new(g)).await);
    let token = a.token("CC").await;
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 200);
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap(), "Hello GreeterClient (caller CC)");
    assert_eq!(get_rest(&rest_url, "/weatherforecast", None).await.0, 401);
    assert_eq!(say_hello(&grpc_url, None).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let noscope = a.token("NOSCOPE").await;
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&noscope)).await.0, 403);
    assert_eq!(say_hello(&grpc_url, Some(&noscope)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    // A reference token means nothing to a JWT-only guard.
    let reference = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&reference)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn introspection_mode_works_and_a_revoked_token_fails_once_its_cache_entry_expires() {
    let a = Authority::start().await;
    let clock = ManualClock::new(SystemClock.now());
    let g = a.guard_with(Mode::Introspection(creds()), |c| c.with_clock(Arc::new(clock.clone())));
    let (rest_url, grpc_url) = (rest(GuardLayer::new(g.clone())).await, grpc(GuardLayer::new(g)).await);
    let token = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap(), "Hello GreeterClient (caller REF)");
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 200);
    a.revoke("REF", &token).await;
    // Cached as active for at most max_cache_ttl (60 s by default) ...
    assert!(say_hello(&grpc_url, Some(&token)).await.is_ok());
    // ... and rejected once that entry expires.
    clock.advance(61);
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 401);
    // Our JWTs introspect too.
    let jwt = a.token("CC").await;
    assert!(say_hello(&grpc_url, Some(&jwt)).await.is_ok());
    let noscope = a.token("NOSCOPE").await;
    assert_eq!(say_hello(&grpc_url, Some(&noscope)).await.unwrap_err().code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn auto_mode_takes_jwts_locally_and_reference_tokens_by_introspection() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Auto(creds()));
    let grpc_url = grpc(GuardLayer::new(g)).await;
    assert_eq!(say_hello(&grpc_url, Some(&a.token("CC").await)).await.unwrap(), "Hello GreeterClient (caller CC)");
    assert_eq!(say_hello(&grpc_url, Some(&a.token("REF").await)).await.unwrap(), "Hello GreeterClient (caller REF)");
    assert_eq!(say_hello(&grpc_url, Some("not-a-token")).await.unwrap_err().code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn wrong_api_credentials_fail_closed_not_open() {
    let a = Authority::start().await;
    let g = a.guard(Mode::Introspection(ClientCredentials::new(
        ClientId::new(API).unwrap(),
        ClientSecret::new("wrong").unwrap(),
    )));
    let grpc_url = grpc(GuardLayer::new(g)).await;
    let token = a.token("REF").await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unavailable);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Issue 12 end to end: a JWT revoked at `/connect/revoke` is refused by a JWT-mode guard
/// within one long poll of the real server's feed, though its validation is cached; another
/// token of the same client still passes.
#[tokio::test]
async fn issue12_a_jwt_revoked_at_the_server_is_refused_through_the_feed_though_cached() {
    let a = Authority::start().await;
    let g = a.guard_with(Mode::Jwt, |c| {
        c.follow_revocations(creds()).with_staleness(Duration::from_secs(60), OnStale::FailClosed)
    });
    let rest_url = rest(GuardLayer::new(g.clone())).await;
    let (revoked, kept) = (a.token("CC").await, a.token("CC").await);
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&revoked)).await.0, 200);
    assert!(g.authenticate(&kept).await.is_ok());
    let mut feed = g.watch_feed().unwrap();
    // The first poll has answered (nothing to tell yet) before the revocation.
    tokio::time::timeout(Duration::from_secs(15), feed.wait_for(|s| s.last_success.is_some())).await.unwrap().unwrap();
    a.revoke("CC", &revoked).await;
    let s = tokio::time::timeout(Duration::from_secs(15), feed.wait_for(|s| s.revoked_tokens == 1))
        .await
        .expect("the revocation reached the guard within a long poll")
        .unwrap()
        .clone();
    assert!(s.position.is_some() && s.last_error.is_none(), "{s:?}");
    assert!(matches!(g.authenticate(&revoked).await, Err(GuardError::InvalidToken(_))));
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&revoked)).await.0, 401);
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&kept)).await.0, 200);
}

/// Issue 12 end to end, reference tokens: a revoked one leaves the introspection cache as
/// soon as the feed says so (found by its hash), not when the cache entry expires.
#[tokio::test]
async fn issue12_a_reference_token_revoked_at_the_server_is_refused_at_once_though_its_introspection_is_cached() {
    let a = Authority::start().await;
    let clock = ManualClock::new(SystemClock.now());
    let g = a.guard_with(Mode::Introspection(creds()), |c| {
        c.with_clock(Arc::new(clock.clone())).follow_revocations(creds())
    });
    let (token, kept) = (a.token("REF").await, a.token("REF").await);
    assert!(g.authenticate(&token).await.is_ok());
    assert!(g.authenticate(&kept).await.is_ok());
    a.revoke("REF", &token).await;
    let mut feed = g.watch_feed().unwrap();
    tokio::time::timeout(Duration::from_secs(15), feed.wait_for(|s| s.revoked_tokens == 1))
        .await
        .expect("the revocation reached the guard")
        .unwrap();
    // The clock has not moved: the cached "active" would still be served without the feed.
    assert!(matches!(g.authenticate(&token).await, Err(GuardError::InvalidToken(_))));
    assert!(g.authenticate(&kept).await.is_ok());
}

/// Issue 12: an API client without the `ept:events` permission is refused by the feed (RFC
/// 6749 §5.2 `unauthorized_client`), reported in the feed status; with `KeepServing` the API
/// goes on validating tokens.
#[tokio::test]
async fn issue12_a_feed_refused_to_the_api_client_is_reported_and_keep_serving_serves() {
    let a = Authority::start().await;
    a.0.add_client("no_feed", "no_feed_secret", &[], &["introspection"]).await;
    let no_feed =
        ClientCredentials::new(ClientId::new("no_feed").unwrap(), ClientSecret::new("no_feed_secret").unwrap());
    let g = a.guard_with(Mode::Jwt, |c| c.follow_revocations(no_feed));
    assert!(g.authenticate(&a.token("CC").await).await.is_ok());
    let mut feed = g.watch_feed().unwrap();
    let s = tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|s| s.last_error.is_some()))
        .await
        .unwrap()
        .unwrap()
        .clone();
    let why = s.last_error.unwrap();
    assert!(why.contains("unauthorized_client") || why.contains("invalid_client"), "{why}");
    assert_eq!(s.last_success, None);
    assert!(g.authenticate(&a.token("CC").await).await.is_ok(), "KeepServing: tokens still validated");
}

/// Issue 12 end to end over gRPC (the Greeter's guard in auto mode, as in the seed): a
/// JWT revoked at the server, a disabled client, `token revoke --client` and a removed signing key all
/// reach the guard through the real server's feed and are refused, cached or not; tokens
/// untouched by them pass. Then the server stops: with `FailClosed` the guard refuses every
/// token once the feed has not been read for `max_staleness` (the guard's clock).
#[tokio::test]
async fn issue12_client_disable_client_revocation_key_removal_and_a_stopped_server_at_the_greeter() {
    let a = Authority::start().await;
    a.0.add_client_with(ClientSpec {
        secret: tessera_testkit::secret("OTHER_secret"),
        scopes: vec![tessera_testkit::scope("dataEventRecords")],
        ..tessera_testkit::client("OTHER")
    })
    .await;
    let clock = ManualClock::new(SystemClock.now());
    let g = a.guard_with(Mode::Auto(creds()), |mut c| {
        // The SETs after the key rotation come under a kid the guard has not seen: let it
        // refetch the JWKS within the test's time (10 s by default).
        c.jwks_min_refresh = Duration::from_millis(200);
        c.with_clock(Arc::new(clock.clone()))
            .follow_revocations(creds())
            .with_staleness(Duration::from_secs(60), OnStale::FailClosed)
    });
    let greeter = grpc(GuardLayer::new(g.clone())).await;
    let mut feed = g.watch_feed().unwrap_or_else(|| panic!("the feed is followed"));
    g.start_feed();
    let wait = |want: fn(&tessera_guard::FeedStatus) -> bool| {
        let mut feed = feed.clone();
        async move {
            let heard =
                tokio::time::timeout(Duration::from_secs(15), feed.wait_for(want)).await.map(|s| s.unwrap().clone());
            heard.unwrap_or_else(|_| panic!("the guard did not hear: {:?}", *feed.borrow()))
        }
    };
    wait(|s| s.last_success.is_some()).await;
    let hello = |t: String| {
        let greeter = greeter.clone();
        async move { say_hello(&greeter, Some(&t)).await.map_err(|s| s.code()) }
    };

    // A JWT revoked at /connect/revoke, cached by the Greeter's guard before.
    let revoked = a.token("CC").await;
    assert!(hello(revoked.clone()).await.is_ok());
    a.revoke("CC", &revoked).await;
    wait(|s| s.revoked_tokens == 1).await;
    assert_eq!(hello(revoked).await.unwrap_err(), tonic::Code::Unauthenticated);

    // A disabled client: every token it holds, until enabled again.
    let (cc, other) = (a.token("CC").await, a.token("OTHER").await);
    assert!(hello(cc.clone()).await.is_ok() && hello(other.clone()).await.is_ok());
    let id = ClientId::new("CC").unwrap();
    a.0.store().set_client_enabled(&id, false, a.0.now()).await.unwrap();
    wait(|s| s.disabled_clients == 1).await;
    assert_eq!(
        hello(cc.clone()).await.unwrap_err(),
        tonic::Code::Unauthenticated,
        "cached, but its client is disabled"
    );
    assert!(hello(other.clone()).await.is_ok(), "another client's token");
    a.0.store().set_client_enabled(&id, true, a.0.now()).await.unwrap();
    wait(|s| s.disabled_clients == 0).await;
    assert!(hello(cc.clone()).await.is_ok(), "enabled again");

    // `tessera token revoke --client CC`: tokens issued before it are refused, later ones pass
    // (iat has one-second resolution, hence the not-before one second ahead, as the CLI does).
    a.0.store().revoke_client_tokens(&id, UnixTime(a.0.now().0 + 1)).await.unwrap();
    wait(|s| s.revoked_clients == 1).await;
    assert_eq!(hello(cc.clone()).await.unwrap_err(), tonic::Code::Unauthenticated);
    assert!(hello(other.clone()).await.is_ok());

    // A removed signing key: tokens it signed are refused, tokens of the new key pass.
    let old = a.0.store().list_keys().await.unwrap().remove(0).kid;
    let kek = tessera_server::keys::Kek::load(&a.0.data_dir().join("key-encryption.key")).unwrap();
    let rng = tessera_server::random::SystemRandom::default();
    let rotated =
        tessera_server::keys::rotate(a.0.store(), &kek, tessera_types::SigningAlg::ES256, 3600, &rng, a.0.now())
            .await
            .unwrap();
    a.0.sync().await;
    let fresh = a.token("OTHER").await;
    assert!(a.0.store().remove_retired_key(&old, a.0.now()).await.unwrap());
    wait(|s| s.removed_keys == 1).await;
    assert_eq!(hello(other.clone()).await.unwrap_err(), tonic::Code::Unauthenticated, "signed by the removed key");
    assert!(hello(fresh).await.is_ok(), "signed by {rotated}");

    // The server stops: the guard keeps its set while the feed is fresh, then fails closed.
    let late = a.token("OTHER").await;
    drop(a);
    clock.advance(30);
    assert!(hello(late.clone()).await.is_ok(), "30 s without the feed: within max_staleness");
    clock.advance(31);
    assert_eq!(hello(late).await.unwrap_err(), tonic::Code::Unavailable, "61 s: FailClosed");
    assert!(feed.borrow_and_update().last_error.is_some() || g.feed_status().unwrap().stale);
}

/// Issue 14 end to end: a token the real server bound to a DPoP key (RFC 9449 §5) passes the
/// guard with a fresh proof by that key (§7.1), and is refused as a bearer token and with a
/// proof by another key.
#[tokio::test]
async fn rfc9449_a_token_the_server_bound_to_a_dpop_key_passes_only_with_its_proofs() {
    use tessera_jose::dpop::{ProofClaims, sign_proof};
    let a = Authority::start().await;
    let key = tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap().0;
    let now = || SystemClock.now().0;
    let token_url = format!("{}/connect/token", a.0.issuer());
    let token_proof = sign_proof(
        &key,
        &ProofClaims { jti: "t1", htm: "POST", htu: &token_url, iat: now(), access_token: None, nonce: None },
    )
    .unwrap();
    let r =
        a.0.http
            .post(&token_url)
            .basic_auth("CC", Some("CC_secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("DPoP", token_proof)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let g = a.guard_with(Mode::Jwt, |c| c.with_public_base_url("https://api.example"));
    let rest_url = rest(GuardLayer::new(g)).await;
    let call = |proof_key: &tessera_jose::SigningKey, jti: &str, scheme: &str| {
        let proof = sign_proof(
            proof_key,
            &ProofClaims {
                jti,
                htm: "GET",
                htu: "https://api.example/weatherforecast",
                iat: now(),
                access_token: Some(&token),
                nonce: None,
            },
        )
        .unwrap();
        reqwest::Client::new()
            .get(format!("{rest_url}/weatherforecast"))
            .header("authorization", format!("{scheme} {token}"))
            .header("DPoP", proof)
            .send()
    };
    assert_eq!(call(&key, "r1", "DPoP").await.unwrap().status(), 200);
    assert_eq!(call(&key, "r2", "DPoP").await.unwrap().status(), 200, "a fresh proof per request");
    let stranger = tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap().0;
    assert_eq!(call(&stranger, "r3", "DPoP").await.unwrap().status(), 401, "a proof by another key");
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 401, "a stolen DPoP token as Bearer");
}

#[tokio::test]
async fn issue16_guard_metrics_count_outcomes_cache_hits_fetches_and_feed_lag() {
    let a = Authority::start().await;
    let g = a.guard_with(Mode::Auto(creds()), |c| c.follow_revocations(creds()));
    assert_eq!(g.metrics().accepted, 0);
    let jwt = a.token("CC").await;
    let reference = a.token("REF").await;
    g.authenticate(&jwt).await.unwrap();
    g.authenticate(&jwt).await.unwrap();
    g.authenticate(&reference).await.unwrap();
    g.authenticate(&reference).await.unwrap();
    assert!(matches!(g.authenticate("not-a-token").await, Err(GuardError::InvalidToken(_))));
    // Through the layer: a request without a token.
    let url = rest(GuardLayer::new(g.clone())).await;
    assert_eq!(get_rest(&url, "/weatherforecast", None).await.0, 401);

    let m = g.metrics();
    assert_eq!(m.accepted, 4);
    assert_eq!(m.refused("invalid_token"), 1);
    assert_eq!(m.refused("missing"), 1);
    assert_eq!((m.jwt_verified, m.jwt_cache_hits), (1, 1), "{m:?}");
    assert_eq!((m.introspections, m.introspection_cache_hits), (1, 1), "{m:?}");
    assert_eq!((m.jwks_fetches, m.jwks_fetch_failures), (1, 0));
    // The feed started with the first request; its lag is since its last success.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while g.feed_status().unwrap().last_success.is_none() {
        assert!(std::time::Instant::now() < deadline, "the feed never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = g.metrics();
    assert!(m.feed_lag_seconds.is_some_and(|lag| (0..5).contains(&lag)), "{m:?}");
    assert!(!m.feed_stale);
    let text = m.prometheus();
    assert!(text.contains("tessera_guard_accepted_total 4\n"), "{text}");
    assert!(text.contains("tessera_guard_refused_total{reason=\"invalid_token\"} 1\n"), "{text}");
    assert!(text.contains("# TYPE tessera_guard_feed_lag_seconds gauge\n"), "{text}");
}
