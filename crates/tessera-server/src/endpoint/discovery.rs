//! `/.well-known/oauth-authorization-server` (RFC 8414 §3) and
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4): the same document.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tessera_types::SigningAlg;
use tessera_types::rfc8414::Metadata;

use crate::client_auth::ClientAuthMethod;
use crate::state::AppState;

/// The one metadata document; `tessera_types::rfc8414::Metadata` is also what the guard and
/// the client read.
pub async fn metadata(State(state): State<AppState>) -> Response {
    let s = &state.0;
    let registry = s.registry.get();
    let auth_methods: Vec<String> =
        ClientAuthMethod::ALL.iter().filter(|m| s.mtls.offers(**m)).map(|m| m.as_str().to_owned()).collect();
    let algs: Vec<String> = s.signing_algs.iter().map(|a| a.as_str().to_owned()).collect();
    // RFC 8414 §2: required with private_key_jwt; the asymmetric algorithms only, never
    // `none` (the allow-list tessera-jose verifies with).
    let assertion_algs: Vec<String> = SigningAlg::ALL.iter().map(|a| a.as_str().to_owned()).collect();
    let doc = Metadata {
        issuer: s.issuer.to_string(),
        token_endpoint: Some(s.token_endpoint.clone()),
        jwks_uri: Some(s.jwks_uri.clone()),
        scopes_supported: registry.scopes().map(|r| r.name.to_string()).collect(),
        response_types_supported: vec![],
        grant_types_supported: vec![
            "client_credentials".into(),
            tessera_types::JWT_BEARER_GRANT.into(),
            tessera_types::rfc8693::GRANT_TYPE.into(),
        ],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        access_token_signing_alg_values_supported: algs.clone(),
        id_token_signing_alg_values_supported: algs,
        subject_types_supported: vec!["public".into()],
        introspection_endpoint: Some(s.introspection_endpoint.clone()),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        revocation_endpoint: Some(s.revocation_endpoint.clone()),
        revocation_endpoint_auth_methods_supported: auth_methods,
        revocation_endpoint_auth_signing_alg_values_supported: assertion_algs,
        resource_indicators_supported: true,
        tls_client_certificate_bound_access_tokens: s.mtls.offers(ClientAuthMethod::SelfSignedTlsClientAuth),
        // RFC 8705 §5 makes aliases optional: the one listener asks every client for a
        // certificate, so the conventional endpoints serve mutual TLS too.
        mtls_endpoint_aliases: None,
        revocation_events_endpoint: Some(s.issuer.url("/connect/events")),
        // The asymmetric algorithms tessera-jose verifies (a proof is signed by the client's
        // own key, in any of them).
        dpop_signing_alg_values_supported: SigningAlg::ALL.iter().map(|a| a.as_str().to_owned()).collect(),
    };
    let mut response = axum::Json(doc).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}
