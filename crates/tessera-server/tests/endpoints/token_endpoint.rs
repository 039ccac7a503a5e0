//! POST /connect/token: RFC 6749 §4.4 and §5, every rule with a test named after it.

use axum::body::Body;
use axum::http::Method;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use tessera_testkit::{Authority as _, TestApp, assert_oauth_error, basic};

const CC: &str = "grant_type=client_credentials";

#[tokio::test]
async fn rfc6749_4_4_3_basic_client_gets_a_bearer_token_with_no_store() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let (status, h, body) =
        s.token_basic("CC", "cc_secret", "grant_type=client_credentials&scope=dataEventRecords").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "dataEventRecords");
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    assert!(body.get("refresh_token").is_none(), "§4.4.3: a refresh token SHOULD NOT be included");
    // §5.1: Cache-Control: no-store and Pragma: no-cache.
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
}

#[tokio::test]
async fn rfc6749_2_3_1_client_secret_post_is_accepted() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let req =
        s.post("/connect/token").body(Body::from("grant_type=client_credentials&client_id=CC&client_secret=cc_secret"));
    let (status, _, body) = s.send(req.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "dataEventRecords");
}

#[tokio::test]
async fn rfc6749_2_3_1_basic_id_and_secret_are_form_urlencoded() {
    let s = TestApp::start().await;
    s.add_scope("api", &["api1"]).await;
    s.add_client("my client:1", "p@ss word+%", &["api"], &[]).await;
    // §2.3.1: each is form-urlencoded before base64: space is '+', ':' is %3A.
    let raw = basic("my+client%3A1", "p%40ss+word%2B%25");
    let req = s.post("/connect/token").header(AUTHORIZATION, raw).body(Body::from(CC));
    let (status, _, body) = s.send(req.unwrap()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rfc6749_2_3_two_auth_methods_is_invalid_request() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let resp = s.token_basic("CC", "cc_secret", "grant_type=client_credentials&client_secret=cc_secret").await;
    assert_oauth_error(&resp, 400, "invalid_request");
    let resp = s.token_basic("CC", "cc_secret", "grant_type=client_credentials&client_id=other").await;
    assert_oauth_error(&resp, 400, "invalid_request");
}

#[tokio::test]
async fn rfc6749_5_2_unknown_client_wrong_secret_and_disabled_client_look_the_same() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    s.add_client("off", "off_secret", &["dataEventRecords"], &[]).await;
    s.store.set_client_enabled(&tessera_types::ClientId::new("off").unwrap(), false, s.now()).await.unwrap();
    s.sync().await;
    let unknown = s.token_basic("nobody", "cc_secret", CC).await;
    let wrong = s.token_basic("CC", "not_the_secret", CC).await;
    let disabled = s.token_basic("off", "off_secret", CC).await;
    for resp in [&unknown, &wrong, &disabled] {
        assert_oauth_error(resp, 401, "invalid_client");
        // §5.2: Basic was used, so the 401 MUST carry a matching WWW-Authenticate.
        assert!(resp.1["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_eq!(resp.2, unknown.2, "indistinguishable bodies");
    }
}

#[tokio::test]
async fn rfc6749_5_2_invalid_client_by_post_has_no_basic_challenge_but_no_credentials_has() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let req = s.post("/connect/token").body(Body::from("grant_type=client_credentials&client_id=CC&client_secret=bad"));
    let resp = s.send(req.unwrap()).await;
    assert_oauth_error(&resp, 401, "invalid_client");
    assert!(resp.1.get("www-authenticate").is_none());
    let resp = s.send(s.post("/connect/token").body(Body::from(CC)).unwrap()).await;
    assert_oauth_error(&resp, 401, "invalid_client");
    assert!(resp.1["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    // A client_id alone is no authentication (no public clients here).
    let req = s.post("/connect/token").body(Body::from("grant_type=client_credentials&client_id=CC"));
    assert_oauth_error(&s.send(req.unwrap()).await, 401, "invalid_client");
    // Another scheme is not Basic.
    let req = s.post("/connect/token").header(AUTHORIZATION, "Bearer abc").body(Body::from(CC));
    assert_oauth_error(&s.send(req.unwrap()).await, 401, "invalid_client");
}

#[tokio::test]
async fn rfc6749_4_4_2_missing_grant_type_is_invalid_request() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    assert_oauth_error(&s.token_basic("CC", "cc_secret", "scope=dataEventRecords").await, 400, "invalid_request");
    // §3.1: an empty value counts as absent.
    assert_oauth_error(&s.token_basic("CC", "cc_secret", "grant_type=").await, 400, "invalid_request");
}

#[tokio::test]
async fn rfc6749_5_2_other_grant_types_are_unsupported_grant_type() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    for gt in [
        "password",
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "CLIENT_CREDENTIALS",
    ] {
        let resp = s.token_basic("CC", "cc_secret", &format!("grant_type={}", urlencode(gt))).await;
        assert_oauth_error(&resp, 400, "unsupported_grant_type");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn rfc6749_5_2_client_without_the_grant_permission_is_unauthorized_client() {
    let s = TestApp::start().await;
    s.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
    // The API's own client in the seed: introspection only, no token endpoint, no grant type.
    s.add_client("rs_dataEventRecordsApi", "api_secret", &["dataEventRecords"], &["ept:introspection"]).await;
    let resp = s.token_basic("rs_dataEventRecordsApi", "api_secret", CC).await;
    assert_oauth_error(&resp, 400, "unauthorized_client");
}

#[tokio::test]
async fn rfc6749_3_3_unknown_or_unpermitted_scope_is_invalid_scope() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    s.add_scope("other", &["api2"]).await;
    for scope in ["nope", "other", "dataEventRecords%20other", "bad%22quote"] {
        let resp = s.token_basic("CC", "cc_secret", &format!("grant_type=client_credentials&scope={scope}")).await;
        assert_oauth_error(&resp, 400, "invalid_scope");
    }
}

#[tokio::test]
async fn rfc6749_3_3_absent_scope_grants_every_permitted_scope() {
    let s = TestApp::start().await;
    s.add_scope("a", &["api1"]).await;
    s.add_scope("b", &["api2"]).await;
    s.add_scope("c", &["api3"]).await;
    s.add_client("multi", "multi_secret", &["a", "b"], &[]).await;
    let (status, _, body) = s.token_basic("multi", "multi_secret", CC).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "a b");
    let (status, _, body) = s.token_basic("multi", "multi_secret", "grant_type=client_credentials&scope=b").await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "b");
}

#[tokio::test]
async fn rfc6749_3_2_repeated_parameter_is_invalid_request() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    for body in [
        "grant_type=client_credentials&grant_type=client_credentials",
        "grant_type=client_credentials&scope=dataEventRecords&scope=dataEventRecords",
    ] {
        assert_oauth_error(&s.token_basic("CC", "cc_secret", body).await, 400, "invalid_request");
    }
}

#[tokio::test]
async fn appendix_b_wrong_content_type_is_invalid_request() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    for ct in [Some("application/json"), Some("text/plain"), Some("multipart/form-data; boundary=x"), None] {
        let mut req = s.request(Method::POST, "/connect/token").header(AUTHORIZATION, basic("CC", "cc_secret"));
        if let Some(ct) = ct {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req.body(Body::from(r#"{"grant_type":"client_credentials"}"#)).unwrap();
        assert_oauth_error(&s.send(req).await, 400, "invalid_request");
    }
    // Parameters on the media type are fine.
    let req = s
        .request(Method::POST, "/connect/token")
        .header(AUTHORIZATION, basic("CC", "cc_secret"))
        .header(CONTENT_TYPE, "Application/X-WWW-Form-Urlencoded; charset=UTF-8")
        .body(Body::from(CC));
    assert_eq!(s.send(req.unwrap()).await.0, 200);
}

#[tokio::test]
async fn malformed_body_is_invalid_request() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    for body in ["grant_type=client_credentials&scope=%zz", "grant_type=%E2%28%A1", "grant_type=client_credentials%"] {
        assert_oauth_error(&s.token_basic("CC", "cc_secret", body).await, 400, "invalid_request");
    }
    // Non-ASCII garbage in Basic credentials is an authentication failure, not a crash.
    let req = s.post("/connect/token").header(AUTHORIZATION, "Basic ÿÿÿ###").body(Body::from(CC));
    assert_oauth_error(&s.send(req.unwrap()).await, 401, "invalid_client");
}

#[tokio::test]
async fn rfc6749_3_2_other_methods_get_405() {
    let s = TestApp::start().await;
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (status, h, _) = s.send(s.request(method.clone(), "/connect/token").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 405, "{method}");
        assert!(h["allow"].to_str().unwrap().contains("POST"));
    }
}

#[tokio::test]
async fn oversized_body_gets_413_and_changes_nothing() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let before = s.store.revision().await.unwrap();
    let huge = format!("grant_type=client_credentials&scope={}", "a".repeat(70 * 1024));
    let resp = s.token_basic("CC", "cc_secret", &huge).await;
    assert_oauth_error(&resp, 413, "invalid_request");
    // Streamed without a length: still refused.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..80).map(|_| Ok(vec![b'a'; 1024])).collect();
    let req = s
        .post("/connect/token")
        .header(AUTHORIZATION, basic("CC", "cc_secret"))
        .body(Body::from_stream(futures_util::stream::iter(chunks)));
    assert_eq!(s.send(req.unwrap()).await.0, 413);
    assert_eq!(s.store.revision().await.unwrap(), before);
}

#[tokio::test]
async fn rfc8707_resource_narrows_the_audience_and_unknown_resource_is_invalid_target() {
    let s = TestApp::start().await;
    s.add_scope("a", &["api1"]).await;
    s.add_scope("b", &["api2", "api3"]).await;
    s.add_client("multi", "multi_secret", &["a", "b"], &[]).await;
    let (status, _, body) = s.token_basic("multi", "multi_secret", "grant_type=client_credentials&resource=api2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "b");
    let claims = tessera_testkit::jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "api2");
    let (status, _, body) =
        s.token_basic("multi", "multi_secret", "grant_type=client_credentials&resource=api1&resource=api3").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tessera_testkit::jwt_payload(body["access_token"].as_str().unwrap())["aud"],
        serde_json::json!(["api1", "api3"])
    );
    let resp = s.token_basic("multi", "multi_secret", "grant_type=client_credentials&resource=elsewhere").await;
    assert_oauth_error(&resp, 400, "invalid_target");
    let resp = s.token_basic("multi", "multi_secret", "grant_type=client_credentials&scope=a&resource=api2").await;
    assert_oauth_error(&resp, 400, "invalid_target");
}

#[tokio::test]
async fn bad_input_barrage_never_changes_the_store() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let before = s.store.revision().await.unwrap();
    let clients_before = s.store.list_clients().await.unwrap();
    let bodies = [
        "",
        "&&&",
        "=",
        "grant_type",
        "grant_type=client_credentials&scope=%00",
        "%",
        "a=b=c",
        "grant_type=client_credentials&resource=%20",
    ];
    for body in bodies {
        let (status, _, v): (u16, _, Value) = s.token_basic("CC", "wrong", body).await;
        assert!((400..500).contains(&status), "{body}: {status} {v}");
    }
    assert_eq!(s.store.revision().await.unwrap(), before);
    assert_eq!(s.store.list_clients().await.unwrap(), clients_before);
}
