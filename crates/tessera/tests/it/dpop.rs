//! DPoP-bound tokens at the token endpoint (RFC 9449 §5, issue 14) over real TLS: a token
//! request with a valid proof gets `token_type: DPoP` and `cnf.jkt` = the proof key's
//! thumbprint (in the JWT, and at introspection of a reference token); every faulty proof is
//! `invalid_dpop_proof`, and a proof is accepted once.

use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use tessera_jose::dpop::{ProofClaims, sign_proof};
use tessera_jose::{SigningKey, thumbprint};
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, jwt_payload};
use tessera_types::SigningAlg;

use crate::harness::{FORM, TestServer, split};

const SECRET: &str = "dpop_client_secret_0123456789";

async fn server() -> TestServer {
    let s = TestServer::start().await;
    s.add_scope("api", &["rs_api"]).await;
    s.add_client("dpop-client", SECRET, &["api"], &[]).await;
    let reference = tessera_server::admin::ClientSpec {
        secret: tessera_testkit::secret(SECRET),
        scopes: vec![tessera_testkit::scope("api")],
        token_format: Some("reference".parse().unwrap()),
        ..tessera_testkit::client("dpop-ref")
    };
    s.add_client_with(reference).await;
    s.add_client("rs_api", SECRET, &[], &["ept:introspection"]).await;
    let required = tessera_server::admin::ClientSpec {
        secret: tessera_testkit::secret(SECRET),
        scopes: vec![tessera_testkit::scope("api")],
        require_dpop: true,
        ..tessera_testkit::client("dpop-required")
    };
    s.add_client_with(required).await;
    s
}

/// A proof for the token endpoint, with `change` applied to its claims.
fn proof(key: &SigningKey, s: &TestServer, jti: &str, change: impl for<'a> FnOnce(&mut ProofClaims<'a>)) -> String {
    let url = format!("{}/connect/token", s.issuer());
    let mut c = ProofClaims { jti, htm: "POST", htu: &url, iat: s.now().0, access_token: None, nonce: None };
    change(&mut c);
    sign_proof(key, &c).unwrap()
}

async fn token_request(s: &TestServer, client: &str, proofs: &[&str]) -> Reply {
    let mut r = s
        .http
        .post(s.url("/connect/token"))
        .basic_auth(client, Some(SECRET))
        .header(CONTENT_TYPE, FORM)
        .body("grant_type=client_credentials");
    for p in proofs {
        r = r.header("DPoP", *p);
    }
    split(r.send().await.unwrap()).await
}

#[tokio::test]
async fn rfc9449_5_a_valid_proof_binds_the_token_to_its_key() {
    let s = server().await;
    let key = SigningKey::generate(SigningAlg::ES256).unwrap().0;
    let jkt = thumbprint(&key.public_jwk());
    let (status, _, body) = token_request(&s, "dpop-client", &[&proof(&key, &s, "p1", |_| {})]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(jwt_payload(body["access_token"].as_str().unwrap())["cnf"], json!({ "jkt": jkt }));
    // Without a proof: an ordinary bearer token, unbound.
    let (_, _, body) = token_request(&s, "dpop-client", &[]).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(jwt_payload(body["access_token"].as_str().unwrap()).get("cnf").is_none());
    // Another algorithm, another key, another binding.
    let ed = SigningKey::generate(SigningAlg::EdDSA).unwrap().0;
    let (_, _, body) = token_request(&s, "dpop-client", &[&proof(&ed, &s, "p2", |_| {})]).await;
    assert_eq!(jwt_payload(body["access_token"].as_str().unwrap())["cnf"]["jkt"], thumbprint(&ed.public_jwk()));

    // RFC 9449 §6.2: introspection of a bound reference token says DPoP and its jkt.
    let (status, _, body) = token_request(&s, "dpop-ref", &[&proof(&key, &s, "p3", |_| {})]).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
    let answer = s.introspect_as("rs_api", SECRET, body["access_token"].as_str().unwrap()).await;
    assert_eq!((&answer["active"], &answer["token_type"]), (&json!(true), &json!("DPoP")), "{answer}");
    assert_eq!(answer["cnf"]["jkt"], jkt);
    // Discovery lists the proof algorithms.
    let doc = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["dpop_signing_alg_values_supported"], json!(["ES256", "RS256", "PS256", "EdDSA"]));
}

#[tokio::test]
async fn rfc9449_4_3_every_faulty_proof_is_invalid_dpop_proof() {
    let s = server().await;
    let key = SigningKey::generate(SigningAlg::ES256).unwrap().0;
    let now = s.now().0;
    let cases: Vec<(&str, String)> = vec![
        ("another method", proof(&key, &s, "a", |c| c.htm = "GET")),
        ("another URL", proof(&key, &s, "b", |c| c.htu = "https://127.0.0.1/connect/introspect")),
        ("another server", proof(&key, &s, "c", |c| c.htu = "https://as.example/connect/token")),
        ("iat too old", proof(&key, &s, "d", |c| c.iat = now - 120)),
        ("iat in the future", proof(&key, &s, "e", |c| c.iat = now + 60)),
        ("not a JWS", "not-a-proof".into()),
        ("a signature by another key", {
            let p = proof(&key, &s, "f", |_| {});
            let forged = proof(&SigningKey::generate(SigningAlg::ES256).unwrap().0, &s, "f", |_| {});
            format!("{}.{}", p.rsplit_once('.').unwrap().0, forged.rsplit_once('.').unwrap().1)
        }),
    ];
    for (what, p) in &cases {
        let reply = token_request(&s, "dpop-client", &[p]).await;
        assert_eq!(reply.0, 400, "{what}: {}", reply.2);
        assert_oauth_error(&reply, 400, "invalid_dpop_proof");
    }
    // Two DPoP headers (§4.3 item 1).
    let (p1, p2) = (proof(&key, &s, "g", |_| {}), proof(&key, &s, "h", |_| {}));
    assert_oauth_error(&token_request(&s, "dpop-client", &[&p1, &p2]).await, 400, "invalid_dpop_proof");
    // Used once (§11.1), kept in the store shared by instances.
    let once = proof(&key, &s, "i", |_| {});
    assert_eq!(token_request(&s, "dpop-client", &[&once]).await.0, 200);
    assert_oauth_error(&token_request(&s, "dpop-client", &[&once]).await, 400, "invalid_dpop_proof");
    // The same jti from another key is another proof.
    let ed = SigningKey::generate(SigningAlg::EdDSA).unwrap().0;
    assert_eq!(token_request(&s, "dpop-client", &[&proof(&ed, &s, "i", |_| {})]).await.0, 200);
    // A client registered with --require-dpop gets no token without a proof.
    assert_oauth_error(&token_request(&s, "dpop-required", &[]).await, 400, "invalid_dpop_proof");
    let (status, _, body) = token_request(&s, "dpop-required", &[&proof(&key, &s, "k", |_| {})]).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
    // Client authentication still comes first: a bad secret is invalid_client, proof or not.
    let r = s
        .http
        .post(s.url("/connect/token"))
        .basic_auth("dpop-client", Some("wrong-secret-0123456789"))
        .header(CONTENT_TYPE, FORM)
        .header("DPoP", proof(&key, &s, "j", |_| {}))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A server requiring nonces (RFC 9449 §8) on a manual clock, with `dpop-client`.
async fn nonce_server(clock: &tessera_types::clock::ManualClock) -> TestServer {
    let mut file = tessera_server::FileConfig::default();
    file.limits.dpop_require_nonce = Some(true);
    file.limits.dpop_nonce_rotation_s = Some(300);
    let s = TestServer::builder().clock(std::sync::Arc::new(clock.clone())).file(file).start().await;
    s.add_scope("api", &["rs_api"]).await;
    s.add_client("dpop-client", SECRET, &["api"], &[]).await;
    s
}

/// A proof for the token endpoint carrying `nonce`.
fn nonced(key: &SigningKey, s: &TestServer, jti: &str, nonce: &str) -> String {
    let url = format!("{}/connect/token", s.issuer());
    sign_proof(
        key,
        &ProofClaims { jti, htm: "POST", htu: &url, iat: s.now().0, access_token: None, nonce: Some(nonce) },
    )
    .unwrap()
}

fn nonce_of(headers: &reqwest::header::HeaderMap) -> String {
    headers.get("dpop-nonce").expect("a DPoP-Nonce header").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn rfc9449_8_a_server_nonce_is_required_handed_out_rotated_and_survives_a_restart() {
    let clock = tessera_types::clock::ManualClock::new(tessera_types::UnixTime(1_800_000_000));
    let s = nonce_server(&clock).await;
    let key = SigningKey::generate(SigningAlg::ES256).unwrap().0;
    // §8.1: a proof without a nonce: 400 use_dpop_nonce, the nonce in DPoP-Nonce; the proof
    // is not spent.
    let no_nonce = proof(&key, &s, "n1", |_| {});
    let (status, headers, body) = token_request(&s, "dpop-client", &[&no_nonce]).await;
    assert_oauth_error(&(status, headers.clone(), body), 400, "use_dpop_nonce");
    let nonce = nonce_of(&headers);
    // With it: the bound token, and the nonce again for the next request (§8.2).
    let (status, headers, body) = token_request(&s, "dpop-client", &[&nonced(&key, &s, "n2", &nonce)]).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
    assert_eq!(nonce_of(&headers), nonce, "the same period, the same nonce");
    // A nonce nobody issued, or another server's, is refused like none.
    for forged in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not-a-nonce"] {
        let (status, headers, body) =
            token_request(&s, "dpop-client", &[&proof(&key, &s, "n3", |c| c.nonce = Some(forged))]).await;
        assert_oauth_error(&(status, headers.clone(), body), 400, "use_dpop_nonce");
        assert_eq!(nonce_of(&headers), nonce);
    }
    // One period on, the nonce is still accepted (the client just got it); a new one is
    // handed out.
    clock.advance(300);
    let (status, headers, body) = token_request(&s, "dpop-client", &[&nonced(&key, &s, "n4", &nonce)]).await;
    assert_eq!(status, 200, "{body}");
    let next = nonce_of(&headers);
    assert_ne!(next, nonce, "rotated");
    // Two periods on, the old one is stale: use_dpop_nonce with the current one.
    clock.advance(300);
    let (status, headers, body) = token_request(&s, "dpop-client", &[&nonced(&key, &s, "n5", &nonce)]).await;
    assert_oauth_error(&(status, headers.clone(), body), 400, "use_dpop_nonce");
    let current = nonce_of(&headers);
    // The nonce secret derives from the key-encryption key: a restarted (or another) instance
    // accepts the nonces this one handed out.
    let dir = s.stop().await;
    let mut file = tessera_server::FileConfig::default();
    file.limits.dpop_require_nonce = Some(true);
    let s = TestServer::builder().dir(dir).clock(std::sync::Arc::new(clock.clone())).file(file).start().await;
    let (status, _, body) = token_request(&s, "dpop-client", &[&nonced(&key, &s, "n6", &current)]).await;
    assert_eq!((status, &body["token_type"]), (200, &json!("DPoP")), "{body}");
}

#[tokio::test]
async fn rfc9449_8_tessera_client_follows_the_nonce_it_is_asked_for() {
    let clock = tessera_types::clock::ManualClock::new(tessera_types::UnixTime(1_800_000_000));
    let s = nonce_server(&clock).await;
    let key = tessera_client::DpopKey::generate().unwrap();
    let cfg = tessera_client::ClientConfig::new(
        tessera_types::Issuer::new(s.issuer()).unwrap(),
        tessera_types::ClientId::new("dpop-client").unwrap(),
        tessera_types::ClientSecret::new(SECRET).unwrap(),
    )
    .with_dpop(key.clone())
    .with_clock(std::sync::Arc::new(clock.clone()))
    .with_http_client(s.http.clone());
    let source = tessera_client::TokenSource::new(cfg);
    // The first request is refused use_dpop_nonce; the client retries at once with the nonce.
    let token = source.token().await.unwrap();
    assert!(token.dpop_bound);
    assert_eq!(source.requests_sent(), 2, "one refusal, one retry");
    assert_eq!(jwt_payload(token.access_token.expose())["cnf"]["jkt"], key.thumbprint());
}
