//! RFC 8693 token exchange over real TLS (issue 15): a client with `gt:token-exchange` trades
//! a subject token for a narrower one of the same subject, acting for it; never wider, never
//! longer-lived, never from a revoked, foreign or sender-constrained token.

use serde_json::json;
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, jwt_payload};
use tessera_types::rfc8693::{ACCESS_TOKEN, GRANT_TYPE, JWT};

use crate::harness::{FORM, TestServer, split};

const SECRET: &str = "exchange_secret_0123456789";

async fn server() -> TestServer {
    let mut file = tessera_server::FileConfig::default();
    file.limits.failed_auth_free_attempts = Some(10_000);
    let s = TestServer::start_with(&["ES256"], file).await;
    s.add_scope("orders", &["orders-api"]).await;
    s.add_scope("payments", &["payments-api"]).await;
    s.add_scope("admin", &["admin-api"]).await;
    // The caller whose token is exchanged: orders and payments.
    s.add_client("frontend", SECRET, &["orders", "payments"], &[]).await;
    // The API that exchanges it to call downstream; may itself reach orders and payments.
    let exchanger = |id: &str, perms: Vec<&str>, scopes: &[&str]| ClientSpec {
        secret: tessera_testkit::secret(SECRET),
        scopes: scopes.iter().map(|s| tessera_testkit::scope(s)).collect(),
        permissions: perms.into_iter().map(|p| p.parse().unwrap()).collect(),
        ..tessera_testkit::client(id)
    };
    s.add_client_with(exchanger("orders-api", vec!["ept:token", "token-exchange"], &["orders", "payments", "admin"]))
        .await;
    s.add_client_with(exchanger("narrow-api", vec!["ept:token", "token-exchange"], &["orders"])).await;
    s.add_client("no-exchange", SECRET, &["orders", "payments"], &[]).await;
    s
}

async fn token(s: &TestServer, client: &str, scope: &str) -> String {
    let (status, _, body) =
        s.post_form("/connect/token", client, SECRET, &format!("grant_type=client_credentials&scope={scope}")).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn exchange(s: &TestServer, client: &str, extra: &str) -> Reply {
    let body = format!("grant_type={GRANT_TYPE}{extra}");
    let r = s
        .http
        .post(s.url("/connect/token"))
        .basic_auth(client, Some(SECRET))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(body);
    split(r.send().await.unwrap()).await
}

#[tokio::test]
async fn rfc8693_an_exchange_keeps_the_subject_narrows_the_scope_and_names_the_actor() {
    let s = server().await;
    let subject = token(&s, "frontend", "orders payments").await;
    let (status, _, body) = exchange(
        &s,
        "orders-api",
        &format!("&subject_token={subject}&subject_token_type={ACCESS_TOKEN}&scope=payments"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // §2.2.1: issued_token_type REQUIRED.
    assert_eq!((body["issued_token_type"].as_str(), body["token_type"].as_str()), (Some(ACCESS_TOKEN), Some("Bearer")));
    assert_eq!(body["scope"], "payments");
    let t = jwt_payload(body["access_token"].as_str().unwrap());
    let original = jwt_payload(&subject);
    assert_eq!((t["sub"].as_str(), t["client_id"].as_str()), (Some("frontend"), Some("orders-api")));
    assert_eq!(t["act"], json!({ "sub": "orders-api" }), "§4.1: the acting party");
    assert_eq!(t["aud"], "payments-api");
    assert!(t["exp"].as_i64() <= original["exp"].as_i64(), "never outlives the subject token");
    // An actor token names someone else as the actor (§2.1).
    let actor = token(&s, "no-exchange", "orders").await;
    let (status, _, body) = exchange(
        &s,
        "orders-api",
        &format!("&subject_token={subject}&subject_token_type={ACCESS_TOKEN}&actor_token={actor}&actor_token_type={ACCESS_TOKEN}&scope=orders"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwt_payload(body["access_token"].as_str().unwrap())["act"], json!({ "sub": "no-exchange" }));
    // §4.1: exchanged again, the chain keeps the earlier actor, nested.
    let (_, _, first) =
        exchange(&s, "orders-api", &format!("&subject_token={subject}&subject_token_type={ACCESS_TOKEN}&scope=orders"))
            .await;
    let once = first["access_token"].as_str().unwrap();
    let (status, _, twice) =
        exchange(&s, "narrow-api", &format!("&subject_token={once}&subject_token_type={ACCESS_TOKEN}")).await;
    assert_eq!(status, 200, "{twice}");
    let t = jwt_payload(twice["access_token"].as_str().unwrap());
    assert_eq!(t["sub"], "frontend");
    assert_eq!(t["act"], json!({ "sub": "narrow-api", "act": { "sub": "orders-api" } }));
    // Discovery lists the grant.
    let meta = s.get_json("/.well-known/openid-configuration").await;
    assert!(meta["grant_types_supported"].as_array().unwrap().iter().any(|g| g == GRANT_TYPE));
}

#[tokio::test]
async fn rfc8693_every_refusal() {
    let s = server().await;
    let subject = token(&s, "frontend", "orders").await;
    let with = |t: &str, kind: &str| format!("&subject_token={t}&subject_token_type={kind}");
    // Wider than the subject token (payments is not in it), or than the exchanger may reach.
    assert_oauth_error(
        &exchange(&s, "orders-api", &format!("{}&scope=payments", with(&subject, ACCESS_TOKEN))).await,
        400,
        "invalid_scope",
    );
    let both = token(&s, "frontend", "orders payments").await;
    assert_oauth_error(
        &exchange(&s, "narrow-api", &format!("{}&scope=payments", with(&both, ACCESS_TOKEN))).await,
        400,
        "invalid_scope",
    );
    // A client without the grant's permission.
    assert_oauth_error(&exchange(&s, "no-exchange", &with(&subject, ACCESS_TOKEN)).await, 400, "unauthorized_client");
    // Missing parameters, an unknown token type.
    assert_oauth_error(&exchange(&s, "orders-api", &format!("&subject_token={subject}")).await, 400, "invalid_request");
    assert_oauth_error(
        &exchange(&s, "orders-api", &format!("&subject_token_type={ACCESS_TOKEN}")).await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &exchange(&s, "orders-api", &with(&subject, "urn:ietf:params:oauth:token-type:saml2")).await,
        400,
        "invalid_request",
    );
    assert_oauth_error(
        &exchange(&s, "orders-api", &format!("{}&actor_token={subject}", with(&subject, ACCESS_TOKEN))).await,
        400,
        "invalid_request",
    );
    // Garbage, a foreign JWT, a revoked token: invalid_grant.
    assert_oauth_error(&exchange(&s, "orders-api", &with("not-a-token", ACCESS_TOKEN)).await, 400, "invalid_grant");
    let (foreign, _) = tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap();
    let forged = foreign
        .sign_access_token(&json!({"iss": s.issuer(), "sub": "frontend", "client_id": "frontend",
        "aud": "orders-api", "scope": "orders", "exp": 4_000_000_000_i64, "iat": 1, "jti": "x"}))
        .unwrap();
    assert_oauth_error(&exchange(&s, "orders-api", &with(&forged, JWT)).await, 400, "invalid_grant");
    let revoked = token(&s, "frontend", "orders").await;
    let (status, _, _) = s.post_form("/connect/revoke", "frontend", SECRET, &format!("token={revoked}")).await;
    assert_eq!(status, 200);
    assert_oauth_error(&exchange(&s, "orders-api", &with(&revoked, ACCESS_TOKEN)).await, 400, "invalid_grant");
    // The subject token itself still works as before.
    assert_eq!(exchange(&s, "orders-api", &with(&subject, ACCESS_TOKEN)).await.0, 200);
}

#[tokio::test]
async fn rfc8693_a_bound_token_is_not_exchanged_and_the_result_never_outlives_its_subject() {
    let s = server().await;
    // A DPoP-bound token (RFC 9449): exchanging it without its key would strip the binding.
    let (key, _) = tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap();
    let url = format!("{}/connect/token", s.issuer());
    let proof = tessera_jose::dpop::sign_proof(
        &key,
        &tessera_jose::dpop::ProofClaims {
            jti: "x1",
            htm: "POST",
            htu: &url,
            iat: s.now().0,
            access_token: None,
            nonce: None,
        },
    )
    .unwrap();
    let r = s
        .http
        .post(s.url("/connect/token"))
        .basic_auth("frontend", Some(SECRET))
        .header("DPoP", proof)
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body("grant_type=client_credentials&scope=orders");
    let (status, _, body) = split(r.send().await.unwrap()).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")));
    let bound = body["access_token"].as_str().unwrap();
    let reply = exchange(&s, "orders-api", &format!("&subject_token={bound}&subject_token_type={ACCESS_TOKEN}")).await;
    assert_oauth_error(&reply, 400, "invalid_grant");
    // A subject token with a minute left: the exchanged one ends with it, not an hour later.
    s.add_client_with(ClientSpec {
        secret: tessera_testkit::secret(SECRET),
        scopes: vec![tessera_testkit::scope("orders")],
        access_token_lifetime: Some(60),
        ..tessera_testkit::client("short-lived")
    })
    .await;
    let short = token(&s, "short-lived", "orders").await;
    let (status, _, body) =
        exchange(&s, "orders-api", &format!("&subject_token={short}&subject_token_type={ACCESS_TOKEN}")).await;
    assert_eq!(status, 200, "{body}");
    let t = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(t["exp"], jwt_payload(&short)["exp"]);
    assert!(body["expires_in"].as_i64().unwrap() <= 60, "expires_in says the capped lifetime: {body}");
}

#[tokio::test]
async fn rfc8693_tessera_client_exchanges_a_token_it_received() {
    use tessera_client::{ClientConfig, ClientError, TokenSource};
    use tessera_types::{ClientId, ClientSecret, ErrorCode, Issuer, Resource, ScopeSet};
    let s = server().await;
    let subject = token(&s, "frontend", "orders payments").await;
    let cfg = ClientConfig::new(
        Issuer::new(s.issuer()).unwrap(),
        ClientId::new("orders-api").unwrap(),
        ClientSecret::new(SECRET).unwrap(),
    )
    .with_http_client(s.http.clone());
    let source = TokenSource::new(cfg);
    let payments = Resource::new("payments-api").unwrap();
    let narrowed = source
        .exchange(&subject, ACCESS_TOKEN, Some(&payments), Some(&ScopeSet::parse("payments").unwrap()))
        .await
        .unwrap();
    let t = jwt_payload(narrowed.access_token.expose());
    assert_eq!(
        (t["sub"].as_str(), t["aud"].as_str(), t["scope"].as_str()),
        (Some("frontend"), Some("payments-api"), Some("payments"))
    );
    assert_eq!(t["act"], json!({ "sub": "orders-api" }));
    // Wider than the subject token: the authority's refusal, as a typed error.
    let admin = ScopeSet::parse("admin").unwrap();
    match source.exchange(&subject, ACCESS_TOKEN, None, Some(&admin)).await {
        Err(ClientError::Refused { error: ErrorCode::InvalidScope, .. }) => {}
        other => panic!("expected invalid_scope, got {other:?}"),
    }
}
