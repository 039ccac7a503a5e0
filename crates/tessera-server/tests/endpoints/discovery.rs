//! RFC 8414 and OIDC discovery, and the JWKS (RFC 7517).

use tessera_testkit::{Authority as _, TestApp};

#[tokio::test]
async fn rfc8414_3_both_documents_are_served_and_agree() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let oidc = s.get_json("/.well-known/openid-configuration").await;
    let oauth = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc, oauth);
    // §3.3: the issuer equals the URL the metadata was derived from.
    assert_eq!(oidc["issuer"], s.issuer());
    assert_eq!(oidc["token_endpoint"], format!("{}/connect/token", s.issuer()));
    assert_eq!(oidc["jwks_uri"], format!("{}/.well-known/jwks", s.issuer()));
    assert_eq!(
        oidc["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        oidc["token_endpoint_auth_methods_supported"],
        // A TLS listener sees client certificates; with no client CA configured,
        // tls_client_auth is not offered (RFC 8705 §2.1 needs one).
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "self_signed_tls_client_auth"
        ])
    );
    assert_eq!(oidc["tls_client_certificate_bound_access_tokens"], true);
    // RFC 8414 §2: listed with private_key_jwt; asymmetric algorithms only.
    assert_eq!(
        oidc["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256", "PS256", "EdDSA"])
    );
    assert_eq!(oidc["scopes_supported"], serde_json::json!(["dataEventRecords"]));
    for required in ["response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"] {
        assert!(oidc.get(required).is_some(), "OIDC Discovery requires {required}");
    }
}

#[tokio::test]
async fn rfc7517_jwks_publishes_public_keys_only_with_rfc7638_kids() {
    let s = TestApp::with_algs(&["ES256", "RS256", "EdDSA"]).await;
    let jwks = s.get_json("/.well-known/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "private member {private} in {k}");
        }
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"].as_str().unwrap().len(), 43, "base64url SHA-256 thumbprint");
    }
    let kinds: Vec<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"EC") && kinds.contains(&"RSA") && kinds.contains(&"OKP"));
}
