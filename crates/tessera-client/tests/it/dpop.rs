//! DPoP (RFC 9449, issue 14) from the client's side, against the real server and a guarded
//! API: the source asks for DPoP-bound tokens with a proof, and `AuthorizedClient` sends each
//! call with `Authorization: DPoP` and a fresh proof; the same token without the key is refused.

use axum::Router;
use axum::routing::get;
use tessera_client::{AuthorizedClient, ClientConfig, DpopKey, TokenSource};
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode};
use tessera_testkit::{Authority as _, TestServer, client_for, jwt_payload};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

/// A REST API guarded for audience `rs_api`, on a port of its own; returns its base URL.
async fn api(authority: &TestServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let cfg = GuardConfig::new(Issuer::new(authority.issuer()).unwrap(), Resource::new("rs_api").unwrap(), Mode::Jwt)
        .with_http_client(authority.http.clone())
        .with_public_base_url(base.clone());
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
