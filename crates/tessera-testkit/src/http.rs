//! HTTP helpers shared by the socket and the router harnesses: a client trusting a CA, one
//! answer shape (status, headers, JSON body) and the RFC 6749 §5.2 error assertion.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

/// The token, introspection and revocation endpoints' media type.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// An answer: status, headers, and the body as JSON (a JSON string when it is not JSON).
pub type Reply = (u16, HeaderMap, Value);

/// An HTTP client trusting the CA certificate at `ca` (the development CA of a test server).
pub fn client_for(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        // A hung server fails the test instead of hanging it.
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POSTs a form to `url` with Basic credentials.
pub async fn post_basic(http: &reqwest::Client, url: &str, id: &str, secret: &str, body: &str) -> Reply {
    let r = http
        .post(url)
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, FORM)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    split(r).await
}

/// Takes a response apart into a [`Reply`].
pub async fn split(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, headers, body_json(text))
}

pub(crate) fn body_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Asserts an RFC 6749 §5.2 error: status, code, no-store headers, ASCII description.
pub fn assert_oauth_error(resp: &Reply, status: u16, code: &str) {
    let (s, h, body) = resp;
    assert_eq!(*s, status, "status for {body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    if let Some(d) = body["error_description"].as_str() {
        // §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
        assert!(d.chars().all(|c| c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)), "{d}");
    }
}

/// The decoded payload of a JWT, without verification (for narrow assertions).
pub fn jwt_payload(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The decoded JOSE header of a JWT, without verification.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, n: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(n).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
