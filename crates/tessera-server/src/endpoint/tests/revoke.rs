//! `POST /connect/revoke` (RFC 7009) against the in-memory store.

use axum::http::StatusCode;
use serde_json::json;

use super::{Auth, Fixture, payload};
use crate::token::reference;

#[tokio::test]
async fn rfc7009_2_2_a_revoked_reference_token_is_inactive() {
    let f = Fixture::new();
    let token = f.token_for("ref_client").await;
    let a =
        f.post("/connect/revoke", Auth::Basic("ref_client", f.secret("ref_client")), &format!("token={token}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(f.store.tokens.lock().unwrap()[&reference::hash(&token)].revoked);
    assert_eq!(f.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7009_2_2_a_revoked_jwt_is_remembered_until_it_expires() {
    let f = Fixture::new();
    let token = f.token_for("jwt_client").await;
    let a =
        f.post("/connect/revoke", Auth::Post("jwt_client", f.secret("jwt_client")), &format!("token={token}")).await;
    assert_eq!(a.status, StatusCode::OK);
    let claims = payload(&token);
    let revoked = f.store.revoked_jtis.lock().unwrap();
    let (client, exp) = &revoked[&tessera_types::Jti::new(claims["jti"].as_str().unwrap()).unwrap()];
    assert_eq!((client.as_str(), exp.0), ("jwt_client", claims["exp"].as_i64().unwrap()));
    drop(revoked);
    assert_eq!(f.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn rfc7009_2_1_revocation_by_another_client_changes_nothing() {
    let f = Fixture::new();
    let reference_token = f.token_for("ref_client").await;
    let jwt = f.token_for("jwt_client").await;
    for (token, owner, other) in [(&reference_token, "ref_client", "jwt_client"), (&jwt, "jwt_client", "ref_client")] {
        let a = f.post("/connect/revoke", Auth::Basic(other, f.secret(other)), &format!("token={token}")).await;
        assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "unauthorized_client"), "{owner}'s token");
        assert_eq!(f.introspect(token).await["active"], true, "{owner}'s token is still active");
    }
    assert!(!f.store.tokens.lock().unwrap()[&reference::hash(&reference_token)].revoked);
    assert!(f.store.revoked_jtis.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rfc7009_2_2_an_unknown_token_is_200_and_changes_nothing() {
    let f = Fixture::new();
    let a = f.post("/connect/revoke", Auth::Basic("ref_client", f.secret("ref_client")), "token=unknown").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(f.store.tokens.lock().unwrap().is_empty() && f.store.revoked_jtis.lock().unwrap().is_empty());
}
