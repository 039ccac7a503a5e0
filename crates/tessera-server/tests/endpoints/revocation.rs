//! POST /connect/revoke (RFC 7009). Pruning on a schedule needs the running server's pruner:
//! it is tested in the binary crate.

use serde_json::json;
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, Reply, TestApp, assert_oauth_error};

const API: (&str, &str) = ("rs_dataEventRecordsApi", "api_secret");

async fn revoke(s: &TestApp, id: &str, secret: &str, token: &str) -> Reply {
    s.post_form("/connect/revoke", id, secret, &format!("token={token}")).await
}

#[tokio::test]
async fn rfc7009_2_1_a_revoked_reference_token_is_inactive_at_once() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    assert_eq!(s.introspect_as(API.0, API.1, &token).await["active"], true);
    let (status, h, _) = revoke(&s, "CC", "cc_secret", &token).await;
    assert_eq!(status, 200);
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(s.introspect_as(API.0, API.1, &token).await, json!({"active": false}));
    // Revoking again is still 200.
    assert_eq!(revoke(&s, "CC", "cc_secret", &token).await.0, 200);
}

#[tokio::test]
async fn rfc7009_2_1_a_revoked_jwt_is_inactive_by_its_jti() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    s.add_client(API.0, API.1, &[], &["introspection"]).await;
    let token = s.token("CC", "cc_secret").await;
    let other = s.token("CC", "cc_secret").await;
    let (status, _, _) = s
        .post_form("/connect/revoke", "CC", "cc_secret", &format!("token={token}&token_type_hint=refresh_token"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.introspect_as(API.0, API.1, &token).await, json!({"active": false}));
    assert_eq!(s.introspect_as(API.0, API.1, &other).await["active"], true, "only that jti");
    assert_eq!(s.store.token_counts().await.unwrap().1, 1, "one jti remembered");
}

#[tokio::test]
async fn rfc7009_2_2_unknown_tokens_answer_200() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    for token in ["unknown", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        let (status, _, body) = revoke(&s, "CC", "cc_secret", token).await;
        assert_eq!(status, 200, "{token}: {body}");
    }
    assert_eq!(s.store.token_counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn rfc7009_2_1_another_clients_token_is_refused_and_stays_active() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    s.add_client_with(ClientSpec {
        secret: tessera_testkit::secret("mallory_secret"),
        scopes: vec![tessera_testkit::scope("dataEventRecords")],
        ..tessera_testkit::client("mallory")
    })
    .await;
    let reference = s.token("CC", "cc_secret").await;
    let resp = revoke(&s, "mallory", "mallory_secret", &reference).await;
    assert_oauth_error(&resp, 400, "unauthorized_client");
    assert_eq!(s.introspect_as(API.0, API.1, &reference).await["active"], true);
    // And for JWTs: CC's JWT cannot be revoked by mallory either.
    s.store
        .update_client(
            &tessera_types::ClientId::new("CC").unwrap(),
            &tessera_store::ClientUpdate { token_format: Some(tessera_types::TokenFormat::Jwt), ..Default::default() },
        )
        .await
        .unwrap();
    s.sync().await;
    let jwt = s.token("CC", "cc_secret").await;
    assert!(jwt.contains('.'));
    assert_oauth_error(&revoke(&s, "mallory", "mallory_secret", &jwt).await, 400, "unauthorized_client");
    assert_eq!(s.introspect_as(API.0, API.1, &jwt).await["active"], true);
}

#[tokio::test]
async fn rfc7009_bad_input_gets_rfc_errors() {
    let s = TestApp::start().await;
    s.seed_reference_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    for body in ["", &format!("token={token}&token={token}"), &format!("token={}", "b".repeat(9000))] {
        assert_oauth_error(&s.post_form("/connect/revoke", "CC", "cc_secret", body).await, 400, "invalid_request");
    }
    assert_oauth_error(&revoke(&s, "CC", "bad", &token).await, 401, "invalid_client");
    // The API client may introspect but not revoke.
    assert_oauth_error(&revoke(&s, API.0, API.1, &token).await, 400, "unauthorized_client");
    assert_eq!(s.introspect_as(API.0, API.1, &token).await["active"], true);
}
