//! `POST /connect/token`: issuance in both formats, and client authentication's answers.

use axum::extract::FromRequest as _;
use axum::http::{Request, StatusCode, header};

use super::{Auth, Fixture, LIFETIME, RS, T0, payload};
use crate::client_auth::{ClientAuthMethod, ClientRequest, TokenEndpoint};
use crate::token::reference;

#[tokio::test]
async fn rfc9068_jwt_carries_the_client_the_audience_and_the_clock_s_times() {
    let f = Fixture::new();
    let a = f
        .post("/connect/token", Auth::Basic("jwt_client", f.secret("jwt_client")), "grant_type=client_credentials")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    // RFC 6749 §5.1: no-store on every token response.
    assert_eq!(a.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(a.json["token_type"], "Bearer");
    assert_eq!(a.json["expires_in"], LIFETIME);
    assert_eq!(a.json["scope"], "api");
    let claims = payload(a.json["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], "jwt_client");
    assert_eq!(claims["sub"], "jwt_client");
    assert_eq!(claims["aud"], RS);
    assert_eq!(claims["iat"], T0.0);
    assert_eq!(claims["exp"], T0.0 + LIFETIME);
    assert!(f.store.tokens.lock().unwrap().is_empty(), "a JWT is not stored");
    assert_eq!(f.state.tokens_issued(), 1);
}

#[tokio::test]
async fn reference_tokens_are_stored_by_hash_only() {
    let f = Fixture::new();
    let a = f
        .post("/connect/token", Auth::Post("ref_client", f.secret("ref_client")), "grant_type=client_credentials")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let token = a.json["access_token"].as_str().unwrap();
    assert!(!token.contains('.'), "not a JWS");
    let tokens = f.store.tokens.lock().unwrap();
    let record = tokens.get(&reference::hash(token)).expect("stored under its hash");
    assert!(!tokens.contains_key(token));
    assert_eq!(record.client_id.as_str(), "ref_client");
    assert_eq!(record.exp, T0.plus(LIFETIME));
}

#[tokio::test]
async fn rfc6749_5_2_wrong_secret_by_basic_is_401_with_a_basic_challenge() {
    let f = Fixture::new();
    let a = f.post("/connect/token", Auth::Basic("jwt_client", "tsec_wrong"), "grant_type=client_credentials").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
    assert!(a.challenge().is_some_and(|c| c.starts_with("Basic ")), "{:?}", a.challenge());
}

#[tokio::test]
async fn rfc6749_5_2_wrong_secret_in_the_body_is_401_without_a_challenge() {
    let f = Fixture::new();
    let a = f.post("/connect/token", Auth::Post("jwt_client", "tsec_wrong"), "grant_type=client_credentials").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "invalid_client");
    assert_eq!(a.challenge(), None, "the client did not use the Authorization header");
    let unknown = f.post("/connect/token", Auth::Post("nobody", "tsec_wrong"), "grant_type=client_credentials").await;
    assert_eq!((unknown.status, unknown.error(), unknown.challenge()), (a.status, a.error(), None));
}

#[tokio::test]
async fn rfc6749_5_2_no_credentials_is_401_with_a_basic_challenge() {
    let f = Fixture::new();
    let a = f.post("/connect/token", Auth::None, "grant_type=client_credentials").await;
    assert_eq!((a.status, a.error()), (StatusCode::UNAUTHORIZED, "invalid_client"));
    assert!(a.challenge().is_some());
}

#[tokio::test]
async fn rfc6749_2_3_basic_and_client_secret_is_invalid_request() {
    let f = Fixture::new();
    let secret = f.secret("jwt_client");
    let body = format!("grant_type=client_credentials&client_secret={secret}");
    let a = f.post("/connect/token", Auth::Basic("jwt_client", secret), &body).await;
    assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn rfc6749_5_2_grant_type_is_checked_before_the_client_authenticates() {
    let f = Fixture::new();
    let a = f.post("/connect/token", Auth::Post("jwt_client", "tsec_wrong"), "grant_type=password").await;
    assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "unsupported_grant_type"));
    let a = f.post("/connect/token", Auth::None, "scope=api").await;
    assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "invalid_request"), "grant_type missing");
}

#[tokio::test]
async fn rfc6749_5_2_a_client_without_the_token_endpoint_permission_is_unauthorized_client() {
    let f = Fixture::new();
    let a = f.post("/connect/token", Auth::Basic(RS, f.secret(RS)), "grant_type=client_credentials").await;
    assert_eq!((a.status, a.error()), (StatusCode::BAD_REQUEST, "unauthorized_client"));
    assert_eq!(f.state.tokens_issued(), 0);
}

#[tokio::test]
async fn a_disabled_client_fails_like_a_wrong_secret() {
    let f = Fixture::new();
    f.edit_clients(|clients| clients[0].enabled = false);
    let a = f
        .post("/connect/token", Auth::Basic("jwt_client", f.secret("jwt_client")), "grant_type=client_credentials")
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::UNAUTHORIZED, "invalid_client"));
    assert!(a.challenge().is_some());
}

/// The extractor reports the method the client used, as the registered name.
#[tokio::test]
async fn the_extractor_returns_the_client_and_its_method() {
    let f = Fixture::new();
    let secret = f.secret("jwt_client");
    let basic = Request::post("/connect/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, super::basic_header("jwt_client", secret))
        .body(axum::body::Body::from("grant_type=client_credentials"))
        .unwrap();
    let post = Request::post("/connect/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("client_id=jwt_client&client_secret={secret}")))
        .unwrap();
    for (request, method) in [(basic, ClientAuthMethod::ClientSecretBasic), (post, ClientAuthMethod::ClientSecretPost)]
    {
        let request = ClientRequest::<TokenEndpoint>::from_request(request, &f.state).await.unwrap();
        let caller = request.authenticate(&f.state).await.unwrap();
        assert_eq!(caller.client.client_id.as_str(), "jwt_client");
        assert_eq!(caller.method, method);
    }
    assert_eq!(ClientAuthMethod::ClientSecretBasic.as_str(), "client_secret_basic");
}
