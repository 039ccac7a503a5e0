//! Hostile tokens, each rejected, over real HTTP and gRPC; and the JWKS refetch rules.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode};
use tessera_jose::SigningKey;
use tessera_types::SigningAlg;

use crate::apps::{get_rest, grpc, rest, say_hello};
use crate::fake_issuer::{AUD, FakeIssuer, b64};
use tessera_types::{Issuer, Resource};

fn guard(issuer: &FakeIssuer) -> Guard {
    Guard::new(GuardConfig::new(Issuer::new(&issuer.url).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt).allow_http())
        .unwrap()
}

/// Every hostile token of the issue, with a name for the failure message.
fn hostile(iss: &FakeIssuer) -> Vec<(&'static str, String)> {
    let good = iss.claims("dataEventRecords");
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": iss.key.kid});
    let signed = iss.sign(&good);
    let parts: Vec<&str> = signed.split('.').collect();
    let now = FakeIssuer::now();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    // HS256 "signed" with the RSA public key as the HMAC secret: the classic key confusion.
    let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": iss.rsa.kid});
    let hs_input = format!("{}.{}", b64(&hs_header), b64(&good));
    let rsa_pub = serde_json::to_vec(&iss.rsa.public_jwk()).unwrap();
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &rsa_pub);
    let hs_sig = URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&hmac_key, hs_input.as_bytes()).as_ref());
    let (foreign, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let mut tampered_claims = good.clone();
    tampered_claims["scope"] = "dataEventRecords admin".into();
    vec![
        ("alg none", FakeIssuer::raw(json!({"alg": "none", "typ": "at+jwt"}), &good, None)),
        ("alg none with a signature", format!("{}.{}.AAAA", b64(&json!({"alg": "none", "typ": "at+jwt"})), b64(&good))),
        ("HS256 with the public key", format!("{hs_input}.{hs_sig}")),
        ("wrong kid", FakeIssuer::raw(json!({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}), &good, Some(&iss.key))),
        (
            "RS256 key under an ES256 kid",
            FakeIssuer::raw(json!({"alg": "RS256", "typ": "at+jwt", "kid": iss.key.kid}), &good, Some(&iss.rsa)),
        ),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2])),
        ("signature stripped", format!("{}.{}.", parts[0], parts[1])),
        ("signature from another payload", format!("{}.{}.{}", parts[0], b64(&with("sub", "x".into())), parts[2])),
        ("expired", FakeIssuer::raw(header.clone(), &with("exp", (now - 120).into()), Some(&iss.key))),
        ("nbf in the future", FakeIssuer::raw(header.clone(), &with("nbf", (now + 600).into()), Some(&iss.key))),
        ("wrong iss", FakeIssuer::raw(header.clone(), &with("iss", "https://evil.example".into()), Some(&iss.key))),
        ("wrong aud", FakeIssuer::raw(header.clone(), &with("aud", "api2".into()), Some(&iss.key))),
        (
            "no exp",
            FakeIssuer::raw(
                header.clone(),
                &{
                    let mut c = good.clone();
                    c.as_object_mut().unwrap().remove("exp");
                    c
                },
                Some(&iss.key),
            ),
        ),
        ("typ JWT", FakeIssuer::raw(json!({"alg": "ES256", "typ": "JWT", "kid": iss.key.kid}), &good, Some(&iss.key))),
        ("no typ", FakeIssuer::raw(json!({"alg": "ES256", "kid": iss.key.kid}), &good, Some(&iss.key))),
        (
            "another issuer's key",
            FakeIssuer::raw(json!({"alg": "ES256", "typ": "at+jwt", "kid": foreign.kid}), &good, Some(&foreign)),
        ),
        ("another key under our kid", FakeIssuer::raw(header.clone(), &good, Some(&foreign))),
        (
            "embedded jwk header",
            FakeIssuer::raw(
                json!({"alg": "ES256", "typ": "at+jwt", "jwk": foreign.public_jwk()}),
                &good,
                Some(&foreign),
            ),
        ),
        (
            "jku header",
            FakeIssuer::raw(
                json!({"alg": "ES256", "typ": "at+jwt", "jku": "http://127.0.0.1:1/jwks", "kid": foreign.kid}),
                &good,
                Some(&foreign),
            ),
        ),
        ("oversized", format!("{}.{}.{}", parts[0], "A".repeat(10_000), parts[2])),
        ("not a JWT", "garbage".into()),
        ("four parts", format!("{signed}.x")),
    ]
}

#[tokio::test]
async fn rest_accepts_a_good_token_and_rejects_every_attack_with_rfc6750_answers() {
    let iss = FakeIssuer::start().await;
    let url = rest(GuardLayer::new(guard(&iss))).await;
    let good = iss.sign(&iss.claims("dataEventRecords"));
    let (status, _, body) = get_rest(&url, "/weatherforecast", Some(&good)).await;
    assert_eq!((status, body.as_str()), (200, "sunny for CC"));
    for (name, token) in hostile(&iss) {
        let (status, challenge, _) = get_rest(&url, "/weatherforecast", Some(&token)).await;
        assert_eq!(status, 401, "{name} was not rejected");
        assert!(
            challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
    }
    // RFC 6750 §3.1: no token, no error code; non-ASCII garbage is invalid_request.
    let (status, challenge, _) = get_rest(&url, "/weatherforecast", None).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "{challenge}");
    let r = reqwest::Client::new()
        .get(format!("{url}/weatherforecast"))
        .header("authorization", reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfegarbage").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_request"));
    // §3.1 insufficient_scope: 403 naming the scope.
    let other = iss.sign(&iss.claims("other"));
    let (status, challenge, _) = get_rest(&url, "/weatherforecast", Some(&other)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="dataEventRecords""#),
        "{challenge}"
    );
    // Routes with their own policy: /whoami needs any valid token; / is public.
    let (status, _, body) = get_rest(&url, "/whoami", Some(&other)).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["scopes"], json!(["other"]));
    assert_eq!(get_rest(&url, "/", None).await.0, 200);
}

#[tokio::test]
async fn grpc_answers_unauthenticated_and_permission_denied_as_grpc_statuses() {
    let iss = FakeIssuer::start().await;
    let url = grpc(GuardLayer::new(guard(&iss))).await;
    let good = iss.sign(&iss.claims("dataEventRecords"));
    assert_eq!(say_hello(&url, Some(&good)).await.unwrap(), "Hello GreeterClient (caller CC)");
    let none = say_hello(&url, None).await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::Unauthenticated);
    let wrong_scope = say_hello(&url, Some(&iss.sign(&iss.claims("other")))).await.unwrap_err();
    assert_eq!(wrong_scope.code(), tonic::Code::PermissionDenied);
    assert!(wrong_scope.message().contains("dataEventRecords"));
    for (name, token) in hostile(&iss) {
        let e = say_hello(&url, Some(&token)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{name}");
    }
}

#[tokio::test]
async fn a_flood_of_unknown_kids_is_not_a_flood_of_jwks_requests() {
    let iss = FakeIssuer::start().await;
    let g = guard(&iss);
    let good = iss.sign(&iss.claims("dataEventRecords"));
    assert!(g.authenticate(&good).await.is_ok());
    assert_eq!(iss.fetches(), 1);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let g = g.clone();
        let claims = iss.claims("dataEventRecords");
        tasks.push(tokio::spawn(async move {
            let t =
                FakeIssuer::raw(json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("random-{i}")}), &claims, None);
            g.authenticate(&format!("{t}AAAA")).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    assert!(iss.fetches() <= 2, "{} JWKS fetches for 300 unknown kids", iss.fetches());
    // The good token still passes, from cache.
    assert!(g.authenticate(&good).await.is_ok());
}

#[tokio::test]
async fn an_unknown_kid_after_the_rate_limit_window_refetches_once() {
    let iss = FakeIssuer::start().await;
    let mut cfg = GuardConfig::new(Issuer::new(&iss.url).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt).allow_http();
    cfg.jwks_min_refresh = Duration::from_millis(200);
    let g = Guard::new(cfg).unwrap();
    assert!(g.authenticate(&iss.sign(&iss.claims("x"))).await.is_ok());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let unknown =
        FakeIssuer::raw(json!({"alg": "ES256", "typ": "at+jwt", "kid": "rotated"}), &iss.claims("x"), Some(&iss.key));
    assert!(g.authenticate(&unknown).await.is_err());
    assert_eq!(iss.fetches(), 2, "one refetch for a kid seen after the window");
}

#[tokio::test]
async fn an_unreachable_authority_fails_closed() {
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let g =
        Guard::new(GuardConfig::new(Issuer::new(&dead).unwrap(), Resource::new(AUD).unwrap(), Mode::Jwt).allow_http())
            .unwrap();
    let iss = FakeIssuer::start().await;
    let token = iss.sign(&iss.claims("dataEventRecords"));
    let rest_url = rest(GuardLayer::new(g.clone())).await;
    assert_eq!(get_rest(&rest_url, "/weatherforecast", Some(&token)).await.0, 503);
    let grpc_url = grpc(GuardLayer::new(g)).await;
    assert_eq!(say_hello(&grpc_url, Some(&token)).await.unwrap_err().code(), tonic::Code::Unavailable);
}
