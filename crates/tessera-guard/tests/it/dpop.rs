//! Issue 14: DPoP-bound tokens (RFC 9449 §7) at the guard, over REST and gRPC. A token bound
//! to a key (`cnf.jkt`) passes only with a fresh proof of that key for this very request, and
//! never as a bearer token; a bearer token never passes with the DPoP scheme.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tessera_greet::HelloRequest;
use tessera_guard::{ClientCredentials, DpopNonces, Guard, GuardConfig, GuardLayer, Mode, Policy};
use tessera_jose::SigningKey;
use tessera_jose::dpop::{ProofClaims, sign_proof};
use tessera_types::clock::{Clock as _, ManualClock};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, SigningAlg, UnixTime};
use tonic::Status;

use crate::apps::{grpc, grpc_with, rest};
use crate::fake_issuer::{AUD, FakeIssuer};

/// The REST app's externally visible URL (as behind a proxy): proofs name it, not 127.0.0.1.
const PUBLIC: &str = "https://api.example";
const ALGS: &str = r#"algs="ES256 RS256 PS256 EdDSA""#;

/// The client's DPoP key, a DPoP-bound token for it, and a plain bearer token.
struct Client {
    key: SigningKey,
    bound: String,
    plain: String,
}

fn client(iss: &FakeIssuer) -> Client {
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let mut claims = iss.claims("dataEventRecords");
    claims["cnf"] = json!({ "jkt": tessera_jose::thumbprint(&key.public_jwk()) });
    Client { bound: iss.sign(&claims), plain: iss.sign(&iss.claims("dataEventRecords")), key }
}

fn clock() -> ManualClock {
    ManualClock::new(UnixTime(FakeIssuer::now()))
}

fn config(iss: &FakeIssuer, clock: &ManualClock, mode: Mode) -> GuardConfig {
    GuardConfig::new(Issuer::new(&iss.url).unwrap(), Resource::new(AUD).unwrap(), mode)
        .allow_http()
        .with_clock(Arc::new(clock.clone()))
}

/// A fresh proof (random `jti`) by `key` for `htm htu` at `iat`, bound to `token` if given.
fn proof(key: &SigningKey, htm: &str, htu: &str, iat: i64, token: Option<&str>) -> String {
    nonced(key, htm, htu, iat, token, None)
}

/// As [`proof`], carrying `nonce`.
fn nonced(key: &SigningKey, htm: &str, htu: &str, iat: i64, token: Option<&str>, nonce: Option<&str>) -> String {
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).unwrap();
    let jti = URL_SAFE_NO_PAD.encode(jti);
    sign_proof(key, &ProofClaims { jti: &jti, htm, htu, iat, access_token: token, nonce }).unwrap()
}

/// GET with an Authorization header and any number of DPoP headers: (status, every
/// WWW-Authenticate value, body).
async fn get(url: &str, path: &str, authorization: &str, proofs: &[String]) -> (u16, Vec<String>, String) {
    let mut req = reqwest::Client::new().get(format!("{url}{path}")).header("authorization", authorization);
    for p in proofs {
        req = req.header("dpop", p);
    }
    let r = req.send().await.unwrap();
    let challenges = r.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    (r.status().as_u16(), challenges, r.text().await.unwrap())
}

/// SayHello with an Authorization header and any number of DPoP headers.
async fn hello(url: &str, authorization: &str, proofs: &[String]) -> Result<String, Status> {
    let mut c = tessera_greet::greeter_client::GreeterClient::connect(url.to_string()).await.unwrap();
    let mut req = tonic::Request::new(HelloRequest { name: "GreeterClient".into() });
    req.metadata_mut().insert("authorization", authorization.parse().unwrap());
    for p in proofs {
        req.metadata_mut().append("dpop", p.parse().unwrap());
    }
    c.say_hello(req).await.map(|r| r.into_inner().message)
}

/// What a refusal must say: the challenge's scheme and error code over HTTP.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    DpopProof,
    DpopToken,
    BearerToken,
}

impl Refusal {
    fn challenge_prefix(self) -> String {
        match self {
            Self::DpopProof => format!(r#"DPoP realm="{AUD}", error="invalid_dpop_proof""#),
            Self::DpopToken => format!(r#"DPoP realm="{AUD}", error="invalid_token""#),
            Self::BearerToken => format!(r#"Bearer realm="{AUD}", error="invalid_token""#),
        }
    }
    /// The gRPC message starts with the same cause.
    fn grpc_prefix(self) -> &'static str {
        match self {
            Self::DpopProof => "invalid DPoP proof",
            Self::DpopToken | Self::BearerToken => "invalid token",
        }
    }
}

struct Case {
    name: &'static str,
    authorization: String,
    proofs: Vec<String>,
    refusal: Refusal,
}

/// Every refused presentation of the issue, for a request `method url`. `used` is a proof
/// that already passed once.
fn refused(iss: &FakeIssuer, c: &Client, method: &str, url: &str, other_url: &str, used: &str, now: i64) -> Vec<Case> {
    let dpop = format!("DPoP {}", c.bound);
    let good = || proof(&c.key, method, url, now, Some(&c.bound));
    let other_method = if method == "GET" { "POST" } else { "GET" };
    let (stranger, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    // Tokens bound to a certificate (none comes with these requests) or by a method the guard
    // does not know: refused, never taken as bearer.
    let bound = |cnf| {
        let mut claims = iss.claims("dataEventRecords");
        claims["cnf"] = cnf;
        iss.sign(&claims)
    };
    let x5t = bound(json!({ "x5t#S256": URL_SAFE_NO_PAD.encode([7u8; 32]) }));
    let unknown = bound(json!({ "kid": "some-key" }));
    let case = |name, authorization: &str, proofs: Vec<String>, refusal| Case {
        name,
        authorization: authorization.to_owned(),
        proofs,
        refusal,
    };
    vec![
        case("replayed proof", &dpop, vec![used.to_owned()], Refusal::DpopProof),
        case(
            "proof for another method",
            &dpop,
            vec![proof(&c.key, other_method, url, now, Some(&c.bound))],
            Refusal::DpopProof,
        ),
        case(
            "proof for another URL",
            &dpop,
            vec![proof(&c.key, method, other_url, now, Some(&c.bound))],
            Refusal::DpopProof,
        ),
        case(
            "proof by another key",
            &dpop,
            vec![proof(&stranger, method, url, now, Some(&c.bound))],
            Refusal::DpopProof,
        ),
        case("proof without ath", &dpop, vec![proof(&c.key, method, url, now, None)], Refusal::DpopProof),
        case(
            "proof with a wrong ath",
            &dpop,
            vec![proof(&c.key, method, url, now, Some(&c.plain))],
            Refusal::DpopProof,
        ),
        case(
            "proof from 61 s ago",
            &dpop,
            vec![proof(&c.key, method, url, now - 61, Some(&c.bound))],
            Refusal::DpopProof,
        ),
        case("two DPoP headers", &dpop, vec![good(), good()], Refusal::DpopProof),
        case("no DPoP header", &dpop, vec![], Refusal::DpopProof),
        case("DPoP-bound token as Bearer", &format!("Bearer {}", c.bound), vec![good()], Refusal::BearerToken),
        case("DPoP-bound token as Bearer without proof", &format!("Bearer {}", c.bound), vec![], Refusal::BearerToken),
        case(
            "bearer token with the DPoP scheme",
            &format!("DPoP {}", c.plain),
            vec![proof(&c.key, method, url, now, Some(&c.plain))],
            Refusal::DpopToken,
        ),
        case("certificate-bound token as Bearer", &format!("Bearer {x5t}"), vec![], Refusal::BearerToken),
        case("token bound by an unknown method as Bearer", &format!("Bearer {unknown}"), vec![], Refusal::BearerToken),
        case(
            "certificate-bound token with the DPoP scheme",
            &format!("DPoP {x5t}"),
            vec![proof(&c.key, method, url, now, Some(&x5t))],
            Refusal::DpopToken,
        ),
    ]
}

#[tokio::test]
async fn rfc9449_7_rest_accepts_a_dpop_bound_token_with_fresh_proofs_and_refuses_every_misuse() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let guard = Guard::new(config(&iss, &clock, Mode::Jwt).with_public_base_url(format!("{PUBLIC}/"))).unwrap();
    let url = rest(GuardLayer::new(guard)).await;
    let c = client(&iss);
    let htu = format!("{PUBLIC}/weatherforecast");
    let now = clock.now().0;
    let dpop = format!("DPoP {}", c.bound);
    // Twice, each with its own proof: the second validation comes from the guard's cache, the
    // proof does not.
    let first = proof(&c.key, "GET", &htu, now, Some(&c.bound));
    assert_eq!(get(&url, "/weatherforecast", &dpop, std::slice::from_ref(&first)).await.0, 200);
    let second = proof(&c.key, "GET", &htu, now, Some(&c.bound));
    let (status, _, body) = get(&url, "/weatherforecast", &dpop, &[second]).await;
    assert_eq!((status, body.as_str()), (200, "sunny for CC"));
    // The plain bearer token still works as one.
    assert_eq!(get(&url, "/weatherforecast", &format!("Bearer {}", c.plain), &[]).await.0, 200);
    // The proof names the public URL; the address the request really reached is another URL.
    let other = format!("{}/weatherforecast", url.replace("http://", "https://"));
    for case in refused(&iss, &c, "GET", &htu, &other, &first, now) {
        let (status, challenges, _) = get(&url, "/weatherforecast", &case.authorization, &case.proofs).await;
        assert_eq!(status, 401, "{} was not refused", case.name);
        assert_eq!(challenges.len(), 1, "{}: {challenges:?}", case.name);
        let challenge = &challenges[0];
        assert!(challenge.starts_with(&case.refusal.challenge_prefix()), "{}: {challenge}", case.name);
        // §7.1: DPoP challenges name the accepted algorithms.
        assert_eq!(challenge.ends_with(ALGS), case.refusal != Refusal::BearerToken, "{}: {challenge}", case.name);
    }
    // A proof made now is stale once the clock is past the window (60 s).
    let stale = proof(&c.key, "GET", &htu, clock.now().0, Some(&c.bound));
    clock.advance(61);
    let (status, challenges, _) = get(&url, "/weatherforecast", &dpop, &[stale]).await;
    assert_eq!(status, 401);
    assert!(challenges[0].starts_with(&Refusal::DpopProof.challenge_prefix()), "{challenges:?}");
    // Without any token, both schemes are offered.
    let r = reqwest::get(format!("{url}/weatherforecast")).await.unwrap();
    let offered: Vec<_> = r.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(offered, [format!(r#"Bearer realm="{AUD}""#), format!(r#"DPoP realm="{AUD}", {ALGS}"#)]);
}

#[tokio::test]
async fn rfc9449_7_grpc_accepts_a_dpop_bound_token_with_fresh_proofs_and_refuses_every_misuse() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let url = grpc(GuardLayer::new(Guard::new(config(&iss, &clock, Mode::Jwt)).unwrap())).await;
    let c = client(&iss);
    // gRPC: POST to https://{authority}/{package.Service}/{Method} (no public_base_url).
    let htu = format!("{}{}", url.replace("http://", "https://"), tessera_greet::SAY_HELLO);
    let now = clock.now().0;
    let dpop = format!("DPoP {}", c.bound);
    let first = proof(&c.key, "POST", &htu, now, Some(&c.bound));
    assert_eq!(hello(&url, &dpop, std::slice::from_ref(&first)).await.unwrap(), "Hello GreeterClient (caller CC)");
    let second = proof(&c.key, "POST", &htu, now, Some(&c.bound));
    assert_eq!(hello(&url, &dpop, &[second]).await.unwrap(), "Hello GreeterClient (caller CC)");
    let other = format!("{}/greet.Greeter/SayGoodbye", url.replace("http://", "https://"));
    for case in refused(&iss, &c, "POST", &htu, &other, &first, now) {
        let e = hello(&url, &case.authorization, &case.proofs).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{}: {e:?}", case.name);
        assert!(e.message().starts_with(case.refusal.grpc_prefix()), "{}: {}", case.name, e.message());
    }
    let stale = proof(&c.key, "POST", &htu, clock.now().0, Some(&c.bound));
    clock.advance(61);
    let e = hello(&url, &dpop, &[stale]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(e.message().starts_with("invalid DPoP proof"), "{}", e.message());
}

#[tokio::test]
async fn rfc9449_6_2_an_introspected_dpop_binding_is_checked_on_the_cached_answer_too() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let creds = ClientCredentials::new(ClientId::new(AUD).unwrap(), ClientSecret::new("api1_secret").unwrap());
    let guard = Guard::new(config(&iss, &clock, Mode::Introspection(creds))).unwrap();
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    *iss.ctl.introspection_cnf.lock().unwrap() = Some(json!({ "jkt": tessera_jose::thumbprint(&key.public_jwk()) }));
    let token = iss.reference_token(true);
    let htu = "https://api.example/weatherforecast";
    let now = clock.now().0;
    for _ in 0..2 {
        let p = proof(&key, "GET", htu, now, Some(&token));
        let principal = guard.authenticate_dpop(&token, &p, "GET", htu).await.unwrap();
        assert_eq!(
            principal.cnf.as_ref().and_then(|c| c.jkt.as_deref()),
            Some(tessera_jose::thumbprint(&key.public_jwk()).as_str())
        );
    }
    assert_eq!(iss.introspections(), 1, "the second request was served from the cache");
    // From the cache still: no proof, a replayed one, or the token as bearer, all refused.
    let p = proof(&key, "GET", htu, now, Some(&token));
    assert!(guard.authenticate_dpop(&token, &p, "GET", htu).await.is_ok());
    let replay = guard.authenticate_dpop(&token, &p, "GET", htu).await;
    assert!(matches!(replay, Err(tessera_guard::GuardError::InvalidDpopProof(_))), "{replay:?}");
    let bearer = guard.authenticate(&token).await;
    assert!(matches!(bearer, Err(tessera_guard::GuardError::InvalidToken(_))), "{bearer:?}");
    assert_eq!(iss.introspections(), 1);
}

/// The layer as a tower service in front of a handler that names the caller: (status,
/// WWW-Authenticate, body).
async fn call(layer: &GuardLayer, req: http::Request<String>) -> (u16, String, String) {
    use tower::{Layer as _, ServiceExt as _};
    let app = tower::service_fn(|req: http::Request<String>| async move {
        let p = req.extensions().get::<tessera_guard::Principal>().cloned().expect("the layer put a principal");
        Ok::<_, std::convert::Infallible>(http::Response::new(format!("hello {}", p.client_id.as_ref().unwrap())))
    });
    let r = layer.layer(app).oneshot(req).await.unwrap();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), challenge, r.into_body())
}

#[tokio::test]
async fn rfc8705_3_a_certificate_bound_token_passes_only_over_its_certificate() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let layer = GuardLayer::new(Guard::new(config(&iss, &clock, Mode::Jwt)).unwrap());
    let cert = tessera_guard::ClientCertificate::from_der(b"the client's DER certificate");
    let mut claims = iss.claims("dataEventRecords");
    claims["cnf"] = json!({ "x5t#S256": cert.thumbprint().as_str() });
    let token = iss.sign(&claims);
    let req = |cert: Option<&tessera_guard::ClientCertificate>| {
        let mut r = http::Request::get("https://api.example/whoami")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        if let Some(c) = cert {
            r.extensions_mut().insert(c.clone());
        }
        r
    };
    assert_eq!(call(&layer, req(Some(&cert))).await, (200, String::new(), "hello CC".into()));
    // §3: another certificate, or none, is 401 invalid_token.
    let other = tessera_guard::ClientCertificate::from_der(b"another certificate");
    for (name, c) in [("another certificate", Some(&other)), ("no certificate", None)] {
        let (status, challenge, _) = call(&layer, req(c)).await;
        assert_eq!(status, 401, "{name}");
        assert!(challenge.starts_with(&Refusal::BearerToken.challenge_prefix()), "{name}: {challenge}");
    }
    // An unbound token still passes as bearer over a connection with a certificate.
    let plain = iss.sign(&iss.claims("dataEventRecords"));
    let mut r = http::Request::get("https://api.example/whoami")
        .header("authorization", format!("Bearer {plain}"))
        .body(String::new())
        .unwrap();
    r.extensions_mut().insert(cert.clone());
    assert_eq!(call(&layer, r).await.0, 200);
}

#[tokio::test]
async fn rfc9449_11_1_a_full_replay_cache_refuses_new_proofs_with_503() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let mut cfg = config(&iss, &clock, Mode::Jwt);
    cfg.dpop_replay_capacity = 2;
    let layer = GuardLayer::new(Guard::new(cfg).unwrap());
    let c = client(&iss);
    let htu = "https://api.example/whoami";
    let req = |proof: String| {
        http::Request::get(htu)
            .header("authorization", format!("DPoP {}", c.bound))
            .header("dpop", proof)
            .body(String::new())
            .unwrap()
    };
    let fresh = |at: i64| proof(&c.key, "GET", htu, at, Some(&c.bound));
    let now = clock.now().0;
    assert_eq!(call(&layer, req(fresh(now))).await.0, 200);
    assert_eq!(call(&layer, req(fresh(now))).await.0, 200);
    // Full of live entries: refused (fail closed), not forgotten.
    assert_eq!(call(&layer, req(fresh(now))).await.0, 503);
    // Once the first proofs are out of the window (60 s), there is room again.
    clock.advance(61);
    assert_eq!(call(&layer, req(fresh(clock.now().0))).await.0, 200);
}

/// GET returning the `DPoP-Nonce` header too: (status, WWW-Authenticate, DPoP-Nonce).
async fn get_nonce(url: &str, authorization: &str, proof: &str) -> (u16, String, Option<String>) {
    let r = reqwest::Client::new()
        .get(format!("{url}/weatherforecast"))
        .header("authorization", authorization)
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    let header = |name| r.headers().get(name).map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), header("www-authenticate").unwrap_or_default(), header("dpop-nonce"))
}

#[tokio::test]
async fn rfc9449_9_an_api_requiring_nonces_refuses_proofs_without_its_current_one_over_rest_and_grpc() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let nonces = DpopNonces::per_process().with_rotation(std::time::Duration::from_secs(120));
    let cfg = config(&iss, &clock, Mode::Jwt).with_public_base_url(PUBLIC).with_dpop_nonces(nonces);
    let guard = Guard::new(cfg).unwrap();
    let url = rest(GuardLayer::new(guard.clone())).await;
    let c = client(&iss);
    let dpop = format!("DPoP {}", c.bound);
    let htu = format!("{PUBLIC}/weatherforecast");
    let now = || clock.now().0;
    // No nonce: 401 use_dpop_nonce, and the nonce to use.
    let (status, challenge, nonce) = get_nonce(&url, &dpop, &proof(&c.key, "GET", &htu, now(), Some(&c.bound))).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with(&format!(r#"DPoP realm="{AUD}", error="use_dpop_nonce""#)), "{challenge}");
    let nonce = nonce.expect("DPoP-Nonce on the refusal");
    // With it: through, and the answer hands out the nonce again.
    let with = |n: &str| nonced(&c.key, "GET", &htu, now(), Some(&c.bound), Some(n));
    let (status, _, again) = get_nonce(&url, &dpop, &with(&nonce)).await;
    assert_eq!((status, again.as_deref()), (200, Some(nonce.as_str())));
    // A nonce the API never issued.
    let (status, challenge, _) = get_nonce(&url, &dpop, &with("bm90LWEtbm9uY2U")).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(r#"error="use_dpop_nonce""#), "{challenge}");
    // Accepted one period on (a new one handed out), stale after two.
    clock.advance(120);
    let (status, _, next) = get_nonce(&url, &dpop, &with(&nonce)).await;
    assert_eq!(status, 200);
    let next = next.unwrap();
    assert_ne!(next, nonce);
    clock.advance(120);
    let (status, challenge, current) = get_nonce(&url, &dpop, &with(&nonce)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains(r#"error="use_dpop_nonce""#), "{challenge}");
    let current = current.expect("the current nonce on the refusal");
    assert!(current != nonce && current != next, "two periods on, a third nonce");
    assert_eq!(get_nonce(&url, &dpop, &with(&current)).await.0, 200);
    // A bearer token is not asked for a nonce: nonces are DPoP's.
    assert_eq!(get(&url, "/weatherforecast", &format!("Bearer {}", c.plain), &[]).await.0, 200);

    // gRPC: Unauthenticated with the nonce in the `dpop-nonce` header, then through with it.
    // The same guard (so the same public base URL) in front of the Greeter.
    let grpc_url = grpc(GuardLayer::new(guard)).await;
    let htu = format!("{PUBLIC}{}", tessera_greet::SAY_HELLO);
    let e = hello(&grpc_url, &dpop, &[proof(&c.key, "POST", &htu, now(), Some(&c.bound))]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let nonce = e.metadata().get("dpop-nonce").expect("dpop-nonce beside the status").to_str().unwrap().to_owned();
    let p = nonced(&c.key, "POST", &htu, now(), Some(&c.bound), Some(&nonce));
    assert_eq!(hello(&grpc_url, &dpop, &[p]).await.unwrap(), "Hello GreeterClient (caller CC)");
}

#[tokio::test]
async fn rfc9700_2_2_1_a_sender_constrained_policy_refuses_bearer_tokens_over_rest_and_grpc() {
    let iss = FakeIssuer::start().await;
    let clock = clock();
    let guard = Guard::new(config(&iss, &clock, Mode::Jwt).with_public_base_url(PUBLIC)).unwrap();
    let c = client(&iss);
    let dpop = format!("DPoP {}", c.bound);
    // REST: /whoami takes the default policy, here any sender-constrained token.
    let url = rest(GuardLayer::new(guard.clone()).require(Policy::Authenticated.sender_constrained())).await;
    let (status, challenges, _) = get(&url, "/whoami", &format!("Bearer {}", c.plain), &[]).await;
    assert_eq!(status, 401);
    // RFC 9449 §7.1: the challenge names the scheme to use.
    assert!(challenges[0].starts_with(&Refusal::DpopToken.challenge_prefix()), "{challenges:?}");
    assert!(challenges[0].contains("sender-constrained"), "{challenges:?}");
    let p = proof(&c.key, "GET", &format!("{PUBLIC}/whoami"), clock.now().0, Some(&c.bound));
    assert_eq!(get(&url, "/whoami", &dpop, &[p]).await.0, 200);
    // The policy still checks scopes.
    let scoped = Policy::all_of([tessera_types::ScopeName::new("other").unwrap()]).sender_constrained();
    let url = rest(GuardLayer::new(guard.clone()).require(scoped.clone())).await;
    let p = proof(&c.key, "GET", &format!("{PUBLIC}/whoami"), clock.now().0, Some(&c.bound));
    assert_eq!(get(&url, "/whoami", &dpop, &[p]).await.0, 403);

    // gRPC: the method's policy.
    let guard = Guard::new(config(&iss, &clock, Mode::Jwt)).unwrap();
    let policy = Policy::all_of([tessera_types::ScopeName::new("dataEventRecords").unwrap()]).sender_constrained();
    let grpc_url = grpc_with(GuardLayer::new(guard), policy).await;
    let e = hello(&grpc_url, &format!("Bearer {}", c.plain), &[]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(e.message().contains("sender-constrained"), "{}", e.message());
    let htu = format!("{}{}", grpc_url.replace("http://", "https://"), tessera_greet::SAY_HELLO);
    let p = proof(&c.key, "POST", &htu, clock.now().0, Some(&c.bound));
    assert_eq!(hello(&grpc_url, &dpop, &[p]).await.unwrap(), "Hello GreeterClient (caller CC)");
}
