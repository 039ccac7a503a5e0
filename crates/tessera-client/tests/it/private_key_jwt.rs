//! Issue 13: `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2, the RFC 7523bis audience rule).
//! A fake authority verifies every client assertion with tessera-jose against the registered
//! public key, on the same manual clock as the client, and answers `invalid_client` to any
//! it refuses, as the real server does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_client::{AssertionKey, ClientConfig, ClientError, JWT_BEARER_ASSERTION_TYPE, TokenSource};
use tessera_jose::{Expectations, VerifyingKey, verify_access_token};
use tessera_types::clock::{Clock as _, ManualClock};
use tessera_types::{ClientId, ErrorCode, Issuer, Kid, SigningAlg, UnixTime};

const EC_PEM: &str = include_str!("keys/ec-p256.pem");
const RSA_PEM: &str = include_str!("keys/rsa-2048.pem");
/// An Ed25519 private JWK with `"kid": "cc-key-1"`.
const ED_JWK: &str = include_str!("keys/ed25519.jwk.json");

/// What the authority saw in one token request.
#[derive(Debug, Clone)]
struct Seen {
    authorization: bool,
    form: Vec<(String, String)>,
    /// The assertion's header and claims as sent, or why it was refused.
    verdict: Result<(Value, Value), String>,
}

impl Seen {
    fn param(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
    fn claims(&self) -> &Value {
        &self.verdict.as_ref().expect("the assertion verified").1
    }
}

struct Authority {
    url: String,
    /// The issuer identifier as the metadata publishes it.
    issuer: String,
    clock: ManualClock,
    key: VerifyingKey,
    /// Answer 503 to this many token requests first (after recording them).
    failures_left: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    issued: AtomicUsize,
}

impl Authority {
    /// An authority that knows client `CC` by the public half of `registered`, publishing its
    /// issuer with a trailing slash when `slash`.
    async fn start(registered: &AssertionKey, slash: bool) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let a = Arc::new(Self {
            issuer: if slash { format!("{url}/") } else { url.clone() },
            url,
            clock: ManualClock::new(UnixTime(1_700_000_000)),
            key: VerifyingKey::from_jwk(&registered.public_jwk()).unwrap(),
            failures_left: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            issued: AtomicUsize::new(0),
        });
        let (d, t) = (a.clone(), a.clone());
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move {
                    axum::Json(json!({"issuer": d.issuer, "token_endpoint": format!("{}/token", d.url)}))
                }),
            )
            .route("/token", post(move |headers: HeaderMap, body: String| async move { t.token(&headers, &body) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        a
    }

    fn token(&self, headers: &HeaderMap, body: &str) -> Response {
        let form: Vec<(String, String)> =
            reqwest::Url::parse(&format!("http://x/?{body}")).unwrap().query_pairs().into_owned().collect();
        let assertion = form.iter().find(|(k, _)| k == "client_assertion").map(|(_, v)| v.clone());
        let verdict = assertion.ok_or_else(|| "no assertion".to_owned()).and_then(|a| self.verify(&a));
        let seen = Seen { authorization: headers.contains_key("authorization"), form, verdict: verdict.clone() };
        self.seen.lock().unwrap().push(seen);
        if self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        if let Err(why) = verdict {
            let body = json!({"error": "invalid_client", "error_description": why});
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 100}))
            .into_response()
    }

    /// The server's checks: signature under the registered key and its algorithm only,
    /// `kid`, `iss` = `sub` = client_id, `aud` the issuer alone, `exp` ahead and at most
    /// 300 s after `iat`, a `jti`.
    fn verify(&self, assertion: &str) -> Result<(Value, Value), String> {
        let expect = Expectations {
            issuer: "CC",
            audience: Some(&self.issuer),
            typ: Some("JWT"),
            leeway: 0,
            now: self.clock.now().0,
        };
        let v = verify_access_token(assertion, |jws| (jws.kid == self.key.kid).then_some(&self.key), &expect)
            .map_err(|e| e.to_string())?;
        let part = |i: usize| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(assertion.split('.').nth(i).unwrap()).unwrap()).unwrap()
        };
        let (header, claims) = (part(0), part(1));
        // RFC 7523bis: the issuer as a single string, not an array holding it.
        if claims["aud"] != json!(self.issuer) {
            return Err(format!("aud {} is not the issuer alone", claims["aud"]));
        }
        if v.claims.sub.as_deref() != Some("CC") || v.claims.jti.is_none() {
            return Err("sub or jti".into());
        }
        let iat = v.claims.iat.ok_or("no iat")?.0;
        if v.claims.exp.0 - iat > 300 || v.claims.exp.0 <= iat {
            return Err("lifetime".into());
        }
        Ok((header, claims))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A source for client `CC` with `key`, on the authority's clock, without jitter.
    fn source(&self, key: AssertionKey) -> TokenSource {
        let issuer = Issuer::new(&self.url).unwrap();
        let mut cfg = ClientConfig::with_private_key(issuer, ClientId::new("CC").unwrap(), key)
            .allow_http()
            .with_clock(Arc::new(self.clock.clone()));
        cfg.jitter = 0.0;
        cfg.backoff = Duration::from_millis(1);
        TokenSource::new(cfg)
    }
}

async fn value(source: &TokenSource) -> String {
    source.token().await.unwrap().access_token.expose().to_owned()
}

#[tokio::test]
async fn rfc7523_2_2_a_pem_key_sends_a_fresh_verified_assertion_in_the_body_and_no_secret() {
    let key = AssertionKey::from_pem(EC_PEM).unwrap();
    assert_eq!(key.alg(), SigningAlg::ES256, "P-256 signs ES256");
    let a = Authority::start(&key, false).await;
    let source = a.source(key.clone());
    assert_eq!(value(&source).await, "tok-1");
    let seen = a.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert!(!s.authorization, "no Authorization header");
    assert!(s.param("client_secret").is_empty(), "no client_secret");
    assert_eq!(s.param("client_assertion_type"), [JWT_BEARER_ASSERTION_TYPE]);
    assert_eq!(s.param("client_id"), ["CC"]);
    assert_eq!(s.param("grant_type"), ["client_credentials"]);
    let (header, claims) = s.verdict.clone().unwrap();
    // The default kid is the RFC 7638 thumbprint (computed by Python's cryptography).
    assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "WrI2ikIOjlGChCDqzC3OQSiGLSVD4e0wozIa4eqYZeA"}));
    assert_eq!((&claims["iss"], &claims["sub"]), (&json!("CC"), &json!("CC")));
    assert_eq!(claims["iat"], json!(1_700_000_000), "the injected clock");
    assert_eq!(claims["exp"], json!(1_700_000_060), "60 s by default");
    assert!(claims["jti"].as_str().unwrap().len() >= 22, "128 bits of base64url");
}

#[tokio::test]
async fn a_private_jwk_signs_under_its_own_kid_and_algorithm() {
    let key = AssertionKey::from_jwk(ED_JWK).unwrap();
    assert_eq!((key.alg(), key.kid().as_str()), (SigningAlg::EdDSA, "cc-key-1"));
    let a = Authority::start(&key, false).await;
    assert_eq!(value(&a.source(key)).await, "tok-1");
    let (header, _) = a.seen()[0].verdict.clone().unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": "cc-key-1"}));
}

#[tokio::test]
async fn rfc7523bis_aud_is_the_issuer_exactly_as_published_never_the_token_endpoint() {
    let key = AssertionKey::from_pem_with_alg(RSA_PEM, SigningAlg::PS256).unwrap();
    // Published with a trailing slash: the configured authority has none (Issuer trims it),
    // and the assertion must carry the published string, byte for byte.
    let a = Authority::start(&key, true).await;
    assert_eq!(value(&a.source(key)).await, "tok-1");
    let seen = a.seen();
    let aud = &seen[0].claims()["aud"];
    assert_eq!(aud, &json!(format!("{}/", a.url)));
    assert_ne!(aud, &json!(format!("{}/token", a.url)));
}

#[tokio::test]
async fn every_request_has_a_new_jti_retries_and_refreshes_included() {
    let key = AssertionKey::from_pem(EC_PEM).unwrap();
    let a = Authority::start(&key, false).await;
    a.failures_left.store(1, Ordering::SeqCst);
    let source = a.source(key);
    assert_eq!(value(&source).await, "tok-1", "a 503, then a retry");
    a.clock.advance(80);
    assert_eq!(value(&source).await, "tok-2", "early refresh at 80%");
    let token = source.token().await.unwrap().access_token;
    source.invalidate(&token);
    assert_eq!(value(&source).await, "tok-3", "forced refresh");
    let seen = a.seen();
    assert_eq!(seen.len(), 4);
    let jtis: std::collections::BTreeSet<_> =
        seen.iter().map(|s| s.claims()["jti"].as_str().unwrap().to_owned()).collect();
    assert_eq!(jtis.len(), 4, "no jti twice: {jtis:?}");
    let iats: Vec<_> = seen.iter().map(|s| s.claims()["iat"].as_i64().unwrap()).collect();
    assert_eq!(iats, [1_700_000_000, 1_700_000_000, 1_700_000_080, 1_700_000_080]);
}

#[tokio::test]
async fn rfc6749_5_2_a_key_the_authority_does_not_know_is_invalid_client() {
    let registered = AssertionKey::from_pem(EC_PEM).unwrap();
    let a = Authority::start(&registered, false).await;
    // Another P-256 key claiming the registered kid: the signature cannot verify.
    let (other, _) = tessera_jose::SigningKey::generate(SigningAlg::ES256).unwrap();
    let impostor = AssertionKey::from_signing_key(other).with_kid(registered.kid().clone());
    match a.source(impostor).token().await {
        Err(ClientError::Refused { error: ErrorCode::InvalidClient, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(a.seen().len(), 1, "a refusal is not retried");
    assert_eq!(a.seen()[0].verdict.as_ref().unwrap_err(), "signature does not verify");
    // Under a kid the authority has never seen.
    let unknown = registered.with_kid(Kid::new("not-registered").unwrap());
    assert!(matches!(
        a.source(unknown).token().await,
        Err(ClientError::Refused { error: ErrorCode::InvalidClient, .. })
    ));
}

#[tokio::test]
async fn the_assertion_lifetime_is_configurable_up_to_300_seconds() {
    let key = AssertionKey::from_pem(EC_PEM).unwrap();
    assert!(key.clone().with_lifetime(Duration::from_secs(301)).is_err());
    assert!(key.clone().with_lifetime(Duration::from_millis(500)).is_err());
    let a = Authority::start(&key, false).await;
    let source = a.source(key.with_lifetime(Duration::from_secs(300)).unwrap());
    assert_eq!(value(&source).await, "tok-1");
    let claims = a.seen()[0].claims().clone();
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
}

#[test]
fn debug_never_prints_the_private_key() {
    let jwk: Value = serde_json::from_str(ED_JWK).unwrap();
    let d = jwk["d"].as_str().unwrap();
    let key = AssertionKey::from_jwk(ED_JWK).unwrap();
    let cfg = ClientConfig::with_private_key(Issuer::new("https://as").unwrap(), ClientId::new("CC").unwrap(), key);
    let printed = format!("{cfg:?}");
    assert!(printed.contains("cc-key-1"), "{printed}");
    assert!(!printed.contains(d), "{printed}");
    let pem = AssertionKey::from_pem(EC_PEM).unwrap();
    let body_line = EC_PEM.lines().nth(1).unwrap();
    assert!(!format!("{pem:?}").contains(body_line));
    // The public JWK to register carries no private member.
    let public = serde_json::to_value(cfg_key_jwk(&cfg)).unwrap();
    assert!(public.get("d").is_none(), "{public}");
    assert_eq!(public["kid"], "cc-key-1");
}

fn cfg_key_jwk(cfg: &ClientConfig) -> tessera_types::rfc7517::Jwk {
    match &cfg.credentials {
        tessera_client::ClientCredentials::PrivateKey(k) => k.public_jwk(),
        other => panic!("a key was configured, not {other:?}"),
    }
}
