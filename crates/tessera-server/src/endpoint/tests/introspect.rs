//! `POST /connect/introspect` (RFC 7662) against the in-memory store and a stepped clock.

use axum::http::StatusCode;
use serde_json::json;

use super::{Auth, Fixture, LIFETIME, RS, T0, payload};

#[tokio::test]
async fn rfc7662_2_2_reference_token_is_active_until_it_expires() {
    let f = Fixture::new();
    let token = f.token_for("ref_client").await;
    let v = f.introspect(&token).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "ref_client");
    assert_eq!(v["scope"], "api");
    assert_eq!(v["aud"], RS);
    assert_eq!(v["iss"], "https://issuer.test");
    assert_eq!(v["exp"], T0.0 + LIFETIME);
    f.clock.advance(LIFETIME - 1);
    assert_eq!(f.introspect(&token).await["active"], true, "one second before exp");
    f.clock.advance(1);
    assert_eq!(f.introspect(&token).await, json!({"active": false}), "at exp");
}

#[tokio::test]
async fn rfc7662_2_2_jwt_is_active_until_it_expires() {
    let f = Fixture::new();
    let token = f.token_for("jwt_client").await;
    let v = f.introspect(&token).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["jti"], payload(&token)["jti"]);
    assert_eq!(v["sub"], "jwt_client");
    f.clock.advance(LIFETIME + 1);
    assert_eq!(f.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7662_4_a_caller_outside_the_audience_learns_nothing() {
    let f = Fixture::new();
    let token = f.token_for("ref_client").await;
    // jwt_client may introspect, but is not an audience of this token.
    let a = f
        .post("/connect/introspect", Auth::Post("jwt_client", f.secret("jwt_client")), &format!("token={token}"))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json, json!({"active": false}));
}

#[tokio::test]
async fn a_disabled_client_s_tokens_are_inactive() {
    let f = Fixture::new();
    let token = f.token_for("ref_client").await;
    f.edit_clients(|clients| clients[1].enabled = false);
    assert_eq!(f.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7662_2_1_token_is_required_and_the_caller_must_authenticate() {
    let f = Fixture::new();
    let a = f.post("/connect/introspect", Auth::Basic(RS, f.secret(RS)), "token_type_hint=access_token").await;
    assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
    let a = f.post("/connect/introspect", Auth::Basic(RS, "tsec_wrong"), "token=x").await;
    assert_eq!((a.status, a.error()), (StatusCode::UNAUTHORIZED, "invalid_client"));
    assert!(a.challenge().is_some(), "RFC 6749 section 5.2: Basic was used");
    let unknown = f.introspect("not-a-token-of-ours").await;
    assert_eq!(unknown, json!({"active": false}));
}
