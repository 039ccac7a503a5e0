//! RFC 8414 authorization server metadata (also served as OpenID Connect Discovery 1.0).

use serde::{Deserialize, Serialize};

/// RFC 8414 §2 metadata. Members that OpenID Connect Discovery marks REQUIRED are present
/// too, so that OIDC client libraries accept the document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    /// The issuer identifier; equals the `iss` of every token (§3.3).
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWK Set document.
    pub jwks_uri: String,
    /// Scopes registered on this server.
    pub scopes_supported: Vec<String>,
    /// Always empty: no front-channel flow is offered (OIDC Discovery requires the member).
    pub response_types_supported: Vec<String>,
    /// `client_credentials`.
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms access tokens are signed with.
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// OIDC Discovery requires it; no ID tokens are issued, the value mirrors the access
    /// token algorithms.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// OIDC Discovery requires it.
    pub subject_types_supported: Vec<String>,
    /// RFC 7662 introspection endpoint (RFC 8414 §2).
    pub introspection_endpoint: String,
    /// How callers of the introspection endpoint authenticate.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7009 revocation endpoint (RFC 8414 §2).
    pub revocation_endpoint: String,
    /// How callers of the revocation endpoint authenticate.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8707 resource indicators are honoured at the token endpoint.
    pub resource_indicators_supported: bool,
}
