//! RFC 9068 access tokens, validated by an independent JWT library (jsonwebtoken) using only
//! what discovery and the JWKS publish.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use serde_json::Value;
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, TestApp, jwt_payload as payload};

/// The JWKS found the way a resource server finds it: discovery -> jwks_uri. The router has
/// no host, so the URI must lie under the issuer and is fetched by its path.
pub async fn published_jwks(s: &TestApp) -> (Value, JwkSet) {
    let discovery = s.get_json("/.well-known/openid-configuration").await;
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let path = jwks_uri.strip_prefix(discovery["issuer"].as_str().unwrap()).expect("jwks_uri under the issuer");
    let jwks = serde_json::from_value(s.get_json(path).await).unwrap();
    (discovery, jwks)
}

/// Validates `token` the way a resource server would: discovery -> jwks_uri -> key by kid.
pub async fn validate(s: &TestApp, token: &str, audience: &str) -> (jsonwebtoken::Header, Value) {
    let (discovery, jwks) = published_jwks(s).await;
    let header = decode_header(token).unwrap();
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
    let data = decode::<Value>(token, &key, &validation).unwrap_or_else(|e| panic!("{e}: {token}"));
    (header, data.claims)
}

#[tokio::test]
async fn rfc9068_token_validates_with_an_independent_library_from_discovery_and_jwks() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let (status, _, body) =
        s.token_basic("CC", "cc_secret", "grant_type=client_credentials&scope=dataEventRecords").await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = validate(&s, token, "rs_dataEventRecordsApi").await;
    // §2.1: typ at+jwt; kid present; ES256 by default.
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    // §2.2 claims.
    assert_eq!(claims["iss"], s.issuer());
    assert_eq!(claims["sub"], "CC");
    assert_eq!(claims["client_id"], "CC");
    assert_eq!(claims["aud"], "rs_dataEventRecordsApi");
    assert_eq!(claims["scope"], "dataEventRecords");
    let (iat, exp, nbf) =
        (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap(), claims["nbf"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600);
    assert_eq!(nbf, iat);
    assert!(claims["jti"].as_str().unwrap().len() >= 22, "128-bit jti");
    // Two tokens never share a jti.
    let (_, _, again) = s.token_basic("CC", "cc_secret", "grant_type=client_credentials").await;
    assert_ne!(payload(again["access_token"].as_str().unwrap())["jti"], claims["jti"]);
}

#[tokio::test]
async fn rfc9068_4_every_signing_algorithm_validates() {
    let s = TestApp::with_algs(&["ES256", "RS256", "PS256", "EdDSA"]).await;
    s.add_scope("api", &["api1"]).await;
    let discovery = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        discovery["access_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256", "PS256", "EdDSA"])
    );
    for (alg, expected) in [
        ("ES256", Algorithm::ES256),
        ("RS256", Algorithm::RS256),
        ("PS256", Algorithm::PS256),
        ("EdDSA", Algorithm::EdDSA),
    ] {
        let id = format!("client-{alg}");
        s.add_client_with(ClientSpec {
            secret: tessera_testkit::secret("s3cret-value"),
            scopes: vec![tessera_testkit::scope("api")],
            signing_alg: Some(alg.parse().unwrap()),
            ..tessera_testkit::client(&id)
        })
        .await;
        let (status, _, body) = s.token_basic(&id, "s3cret-value", "grant_type=client_credentials").await;
        assert_eq!(status, 200, "{alg}: {body}");
        let (header, claims) = validate(&s, body["access_token"].as_str().unwrap(), "api1").await;
        assert_eq!(header.alg, expected);
        assert_eq!(claims["client_id"], id.as_str());
    }
}

#[tokio::test]
async fn a_tampered_token_does_not_validate() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let (_, _, body) = s.token_basic("CC", "cc_secret", "grant_type=client_credentials").await;
    let token = body["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut claims = payload(token);
    claims["scope"] = "admin".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");
    let (_, jwks) = published_jwks(&s).await;
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&["rs_dataEventRecordsApi"]);
    assert!(decode::<Value>(&tampered, &key, &v).is_err());
    assert!(decode::<Value>(token, &key, &v).is_ok());
}
