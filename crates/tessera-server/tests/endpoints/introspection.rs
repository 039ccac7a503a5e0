//! POST /connect/introspect (RFC 7662).

use axum::body::Body;
use axum::http::Method;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, TestApp, assert_oauth_error, basic};
use tessera_types::UnixTime;

const API: (&str, &str) = ("rs_dataEventRecordsApi", "api_secret");

#[tokio::test]
async fn rfc7662_2_2_reference_token_is_active_with_its_claims() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let (status, _, body) = s.token_basic("CC", "cc_secret", "grant_type=client_credentials").await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap();
    assert!(!token.contains('.'), "opaque, not a JWT");
    assert_eq!(token.len(), 43, "a 22-character handle and 124 random bits");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe");
    let v = s.introspect_as(API.0, API.1, token).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["scope"], "dataEventRecords");
    assert_eq!(v["client_id"], "CC");
    assert_eq!(v["sub"], "CC");
    assert_eq!(v["aud"], "rs_dataEventRecordsApi");
    assert_eq!(v["iss"], s.issuer());
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["exp"].as_i64().unwrap() - v["iat"].as_i64().unwrap(), 3600);
    assert!(v["nbf"].is_i64());
    assert!(v["jti"].as_str().unwrap().len() >= 22);
    // The store holds the handle and a hash, not the token: the handle alone finds nothing.
    let key = tessera_server::token::reference::ReferenceKey::of(token);
    assert!(s.store.find_token(&key.handle, token).await.unwrap().is_none());
    let stored = s.store.find_token(&key.handle, &key.hash).await.unwrap().expect("stored");
    let rest = &token[key.handle.len()..];
    assert!(!stored.handle.contains(rest) && !stored.hash.contains(rest) && stored.hash != token);
}

#[tokio::test]
async fn rfc7662_our_own_jwts_are_introspected_too() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    s.add_client(API.0, API.1, &[], &["introspection"]).await;
    let token = s.token("CC", "cc_secret").await;
    let v = s.introspect_as(API.0, API.1, &token).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "CC");
    assert_eq!(v["jti"], tessera_testkit::jwt_payload(&token)["jti"]);
    // Tampered: inactive.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(s.introspect_as(API.0, API.1, &tampered).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7662_4_a_caller_outside_the_audience_learns_nothing() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    s.add_client("other_api", "other_secret", &[], &["introspection"]).await;
    let token = s.token("CC", "cc_secret").await;
    assert_eq!(s.introspect_as("other_api", "other_secret", &token).await, json!({"active": false}));
    assert_eq!(s.introspect_as(API.0, API.1, &token).await["active"], true);
}

#[tokio::test]
async fn rfc7662_2_1_a_caller_without_the_permission_gets_an_error_not_token_data() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    let resp = s.post_form("/connect/introspect", "CC", "cc_secret", &format!("token={token}")).await;
    assert_oauth_error(&resp, 400, "unauthorized_client");
    assert!(resp.2.get("active").is_none());
    // Unauthenticated callers: 401 invalid_client.
    let resp = s.post_form("/connect/introspect", API.0, "wrong", &format!("token={token}")).await;
    assert_oauth_error(&resp, 401, "invalid_client");
    let req = s.post("/connect/introspect").body(Body::from(format!("token={token}")));
    assert_oauth_error(&s.send(req.unwrap()).await, 401, "invalid_client");
}

#[tokio::test]
async fn rfc7662_2_2_unknown_malformed_and_expired_tokens_are_just_inactive() {
    let s = TestApp::at(UnixTime(1_800_000_000)).await;
    s.seed_reference_scenario().await;
    s.add_client_with(ClientSpec {
        secret: tessera_testkit::secret("jwt_secret"),
        scopes: vec![tessera_testkit::scope("dataEventRecords")],
        ..tessera_testkit::client("jwt")
    })
    .await;
    let reference = s.token("CC", "cc_secret").await;
    let jwt = s.token("jwt", "jwt_secret").await;
    for garbage in ["nope", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "%C3%BF%C3%BF", &"x".repeat(4000)] {
        assert_eq!(s.introspect_as(API.0, API.1, garbage).await, json!({"active": false}), "{garbage}");
    }
    s.clock.advance(3599);
    assert_eq!(s.introspect_as(API.0, API.1, &reference).await["active"], true);
    assert_eq!(s.introspect_as(API.0, API.1, &jwt).await["active"], true);
    s.clock.advance(1);
    assert_eq!(s.introspect_as(API.0, API.1, &reference).await, json!({"active": false}));
    assert_eq!(s.introspect_as(API.0, API.1, &jwt).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7662_2_1_token_type_hint_is_only_a_hint() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    for hint in ["access_token", "refresh_token", "made_up"] {
        let (status, _, v) =
            s.post_form("/connect/introspect", API.0, API.1, &format!("token={token}&token_type_hint={hint}")).await;
        assert_eq!(status, 200);
        assert_eq!(v["active"], true, "{hint}");
    }
}

#[tokio::test]
async fn rfc7662_bad_input_gets_rfc_errors_and_changes_nothing() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    let counts = s.store.token_counts().await.unwrap();
    let revision = s.store.revision().await.unwrap();
    for body in
        ["", "token=", &format!("token={token}&token={token}"), &format!("token={}", "a".repeat(9000)), "token=%zz"]
    {
        let resp = s.post_form("/connect/introspect", API.0, API.1, body).await;
        assert_oauth_error(&resp, 400, "invalid_request");
    }
    let req = s
        .request(Method::POST, "/connect/introspect")
        .header(AUTHORIZATION, basic(API.0, API.1))
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(format!(r#"{{"token":"{token}"}}"#)));
    assert_oauth_error(&s.send(req.unwrap()).await, 400, "invalid_request");
    let resp = s.post_form("/connect/introspect", API.0, API.1, &format!("token={}", "a".repeat(70 * 1024))).await;
    assert_oauth_error(&resp, 413, "invalid_request");
    assert_eq!(s.store.token_counts().await.unwrap(), counts);
    assert_eq!(s.store.revision().await.unwrap(), revision);
    assert_eq!(s.introspect_as(API.0, API.1, &token).await["active"], true);
}

#[tokio::test]
async fn rfc8414_discovery_advertises_introspection_and_revocation() {
    let s = TestApp::start().await;
    let d = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(d["introspection_endpoint"], format!("{}/connect/introspect", s.issuer()));
    assert_eq!(d["revocation_endpoint"], format!("{}/connect/revoke", s.issuer()));
    for k in ["introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"] {
        let methods =
            json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "self_signed_tls_client_auth"]);
        assert_eq!(d[k], methods, "{k}");
    }
}
