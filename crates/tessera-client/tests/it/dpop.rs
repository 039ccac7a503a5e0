//! DPoP (RFC 9449, issue 14) from the client's side, against the real server and a guarded
//! API: the source asks for DPoP-bound tokens with a proof, and `AuthorizedClient` sends each
//! call with `Authorization: DPoP` and a fresh proof; the same token without the key is refused.

use axum::Router;
use axum::routing::get;
use tessera_client::{AuthorizedClient, ClientConfig, DpopKey, TokenSource};
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode};
use tessera_testkit::{Authority as _, TestServer, client_for, jwt_payload};
use tessera_types::clock::Clock as _;
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

/// A REST API guarded for audience `rs_api`, on a port of its own; returns its base URL.
async fn api(authority: &TestServer) -> String {
    api_with(authority, |c| c).await
}

/// As [`api`], its guard configured further by `change`.
async fn api_with(authority: &TestServer, change: impl FnOnce(GuardConfig) -> GuardConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let cfg = GuardConfig::new(Issuer::new(authority.issuer()).unwrap(), Resource::new("rs_api").unwrap(), Mode::Jwt)
        .with_http_client(authority.http.clone())
        .with_public_base_url(base.clone());
    let cfg = change(cfg);
    let layer = GuardLayer::new(Guard::new(cfg).unwrap());
    let app = Router::new().route("/data", get(|| async { "data" })).layer(layer);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn rfc9449_the_source_gets_dpop_bound_tokens_and_every_call_carries_a_fresh_proof() {
    let s = TestServer::start().await;
    s.add_scope("api", &["rs_api"]).await;
    s.add_client("dpop-c", "dpop_client_secret_0123456789", &["api"], &[]).await;
    let key = DpopKey::generate().unwrap();
    let cfg = ClientConfig::new(
        Issuer::new(s.issuer()).unwrap(),
        ClientId::new("dpop-c").unwrap(),
        ClientSecret::new("dpop_client_secret_0123456789").unwrap(),
    )
    .scope(ScopeSet::parse("api").unwrap())
    .with_http_client(client_for(s.ca()))
    .with_dpop(key.clone());
    let source = TokenSource::new(cfg);
    let token = source.token().await.unwrap();
    assert!(token.dpop_bound, "token_type DPoP");
    assert_eq!(jwt_payload(token.access_token.expose())["cnf"]["jkt"], key.thumbprint());
    assert!(format!("{key:?}").contains(&key.thumbprint()) && !format!("{key:?}").contains("\"d\""));

    let base = api(&s).await;
    let client = AuthorizedClient::new(reqwest::Client::new(), source.clone());
    for _ in 0..2 {
        let r = client.send(client.http().get(format!("{base}/data?q=1"))).await.unwrap();
        assert_eq!(r.status(), 200, "a fresh proof per call (query ignored by htu)");
    }
    // The same token without the key: as Bearer, refused.
    let r = reqwest::Client::new()
        .get(format!("{base}/data"))
        .bearer_auth(token.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn rfc9449_9_authorized_client_follows_an_apis_nonce_without_the_caller_noticing() {
    let s = TestServer::start().await;
    s.add_scope("api", &["rs_api"]).await;
    s.add_client("dpop-n", "dpop_client_secret_0123456789", &["api"], &[]).await;
    let key = DpopKey::generate().unwrap();
    let cfg = ClientConfig::new(
        Issuer::new(s.issuer()).unwrap(),
        ClientId::new("dpop-n").unwrap(),
        ClientSecret::new("dpop_client_secret_0123456789").unwrap(),
    )
    .scope(ScopeSet::parse("api").unwrap())
    .with_http_client(client_for(s.ca()))
    .with_dpop(key.clone());
    let source = TokenSource::new(cfg);
    let base = api_with(&s, |c| c.with_dpop_nonces(tessera_guard::DpopNonces::per_process())).await;
    // Without the client's help the API refuses a proof lacking its nonce.
    let token = source.token().await.unwrap();
    let url = format!("{base}/data");
    let bare = reqwest::Client::new()
        .get(&url)
        .header("authorization", format!("DPoP {}", token.access_token.expose()))
        .header(
            "dpop",
            key.proof("GET", &url, tessera_types::clock::SystemClock.now().0, Some(token.access_token.expose()))
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert!(bare.headers()["www-authenticate"].to_str().unwrap().contains("use_dpop_nonce"));
    // The client: the refusal is retried once with the nonce, the token kept; later calls
    // carry the nonce from the start.
    let client = AuthorizedClient::new(reqwest::Client::new(), source.clone());
    for _ in 0..3 {
        let r = client.send(client.http().get(&url)).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(source.requests_sent(), 1, "one token for all: a nonce refusal does not discard it");
}
