//! Issue 13: tessera-client's `private_key_jwt` against the real server (TLS, dev CA), where
//! every assertion is verified and its `jti` accepted once; and the seed scenario's key
//! client, in `tessera demo` and on its own.

use std::sync::Mutex;

use serde_json::json;
use tessera_client::{AssertionKey, ClientConfig, ClientError, TokenSource};
use tessera_demo::{PRIVATE_KEY_JWT_CLIENT, demo_reporting, greet, sample_key};
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, TestServer, client, jwt_payload};
use tessera_types::{ClientId, ErrorCode, ScopeSet, SigningAlg};

use crate::World;

/// A fresh key pair; its `kid` is the RFC 7638 thumbprint, which the server also derives.
fn fresh_key() -> AssertionKey {
    AssertionKey::from_signing_key(tessera_testkit::assertion::key(SigningAlg::ES256))
}

/// A server (TLS, dev CA) with scope dataEventRecords and client `svc` allowed it, registered
/// with the public half of a fresh key and no secret (the registry has it on return); the key.
async fn with_svc() -> (TestServer, AssertionKey) {
    let kit = TestServer::start().await;
    kit.seed_scenario().await;
    let key = fresh_key();
    let jwks = json!({ "keys": [key.public_jwk()] });
    let spec =
        ClientSpec { jwks: Some(jwks), scopes: vec![tessera_testkit::scope("dataEventRecords")], ..client("svc") };
    assert!(kit.add_client_with(spec).await.is_none(), "a client given keys only gets no secret");
    (kit, key)
}

fn source(kit: &TestServer, id: &str, key: AssertionKey) -> TokenSource {
    let config = ClientConfig::with_private_key(kit.running().issuer.clone(), ClientId::new(id).unwrap(), key)
        .scope(ScopeSet::parse("dataEventRecords").unwrap());
    TokenSource::new(config.with_http_client(kit.http.clone()))
}

#[tokio::test]
async fn rfc7523_a_token_source_with_a_private_key_gets_tokens_from_the_real_server_and_refreshes() {
    let (kit, key) = with_svc().await;
    let source = source(&kit, "svc", key);
    let before = kit.running().tokens_issued();

    let first = source.token().await.unwrap();
    let claims = jwt_payload(first.access_token.expose());
    assert_eq!((&claims["client_id"], &claims["scope"]), (&json!("svc"), &json!("dataEventRecords")), "{claims}");

    // A forced refresh signs a new assertion: the server accepts each jti once, so reusing the
    // first one would be refused as a replay (invalid_client) instead of giving a token.
    source.invalidate(&first.access_token);
    let second = source.token().await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(jwt_payload(second.access_token.expose())["client_id"], "svc");
    assert_eq!(kit.running().tokens_issued() - before, 2, "counted at the server");
    assert_eq!(source.requests_sent(), 2, "no retry hid a refusal");
}

#[tokio::test]
async fn rfc6749_5_2_a_key_the_server_does_not_hold_is_invalid_client() {
    let (kit, registered) = with_svc().await;
    let before = kit.running().tokens_issued();
    let refused = |r: Result<_, ClientError>, what: &str| match r {
        Err(ClientError::Refused { error: ErrorCode::InvalidClient, .. }) => {}
        other => panic!("{what}: {other:?}"),
    };
    // Another key under the registered kid: the signature does not verify.
    let impostor = fresh_key().with_kid(registered.kid().clone());
    refused(source(&kit, "svc", impostor).token().await, "an impostor key");
    // Another key under its own kid: svc has no such key.
    refused(source(&kit, "svc", fresh_key()).token().await, "an unregistered key");
    // A client the server does not know at all.
    refused(source(&kit, "nobody", fresh_key()).token().await, "an unknown client");
    assert_eq!(kit.running().tokens_issued(), before, "nothing issued");
}

#[tokio::test]
async fn the_seed_key_client_gets_its_greeting_with_the_sample_key_and_no_secret() {
    let w = World::start().await;
    let id = ClientId::new(PRIVATE_KEY_JWT_CLIENT).unwrap();
    assert!(tessera_demo::sample_secret(&id).is_none(), "examples/seed.toml gives it no secret");
    let key = sample_key(&id).expect("a sample key");
    let config = ClientConfig::with_private_key(w.server().issuer.clone(), id, key)
        .scope(ScopeSet::parse("dataEventRecords").unwrap())
        .with_http_client(w.http.clone());
    let source = TokenSource::new(config);
    assert_eq!(greet(&w.greeter.url(), &w.ca, source.clone()).await.unwrap(), "Greeting: Hello GreeterClient");
    let claims = jwt_payload(source.token().await.unwrap().access_token.expose());
    assert_eq!(claims["client_id"], PRIVATE_KEY_JWT_CLIENT);
    // Other clients have no sample key: they keep logging in with their secrets.
    assert!(sample_key(&ClientId::new("CC").unwrap()).is_none());
}

#[tokio::test]
async fn tessera_demo_shows_the_private_key_jwt_client_calling_the_greeter() {
    let dir = std::env::temp_dir().join(format!("tessera-demo-test-{}", std::process::id()));
    let lines = Mutex::new(Vec::new());
    let result = demo_reporting(&dir, &|line| lines.lock().unwrap().push(line.to_owned())).await;
    let _ = std::fs::remove_dir_all(&dir);
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
    let keyed = format!(
        "Greeting: Hello GreeterClient ({PRIVATE_KEY_JWT_CLIENT}: private_key_jwt, assertion signed by key cc-pkjwt-sample, no secret)"
    );
    let at = lines.iter().position(|l| l == &keyed).unwrap_or_else(|| panic!("{lines:#?}"));
    let finished = lines.iter().position(|l| l == "demo finished: everything shut down").unwrap();
    assert!(at < finished, "{lines:#?}");
}
