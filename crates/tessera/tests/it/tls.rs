//! What only a real socket shows about the token endpoint: HTTP/2 negotiated by TLS ALPN, and
//! HTTP/1.1 still served. The endpoint's protocol rules are tested on the router in
//! tessera-server's own tests.

use reqwest::header::CONTENT_TYPE;
use tessera_testkit::Authority as _;

use crate::harness::{FORM, TestServer, client_for};

const CC: &str = "grant_type=client_credentials";

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let s = TestServer::start().await;
    s.seed_scenario().await;
    let r = s
        .http
        .post(s.url("/connect/token"))
        .basic_auth("CC", Some("cc_secret"))
        .header(CONTENT_TYPE, FORM)
        .body(CC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let h1 = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(s.data_dir().join("tls/dev-ca.pem")).unwrap()).unwrap(),
        )
        .http1_only()
        .build()
        .unwrap();
    let r = h1.get(s.url("/.well-known/jwks")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
    // The shared client negotiates HTTP/2 as well: it is the same CA, trusted the same way.
    let r = client_for(s.ca()).get(s.url("/.well-known/jwks")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
}
