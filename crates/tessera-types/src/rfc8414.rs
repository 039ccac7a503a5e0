//! RFC 8414 authorization server metadata (also served as OpenID Connect Discovery 1.0): the
//! one type the server serialises and the guard and the client read.

use serde::{Deserialize, Serialize};

use crate::Issuer;

/// RFC 8414 §2 metadata. Members that OpenID Connect Discovery marks REQUIRED are present
/// too, so that OIDC client libraries accept the document. Read back from other issuers,
/// every member but `issuer` may be absent (RFC 8414 §2 makes most OPTIONAL, and a consumer
/// checks for the ones it needs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The issuer identifier exactly as published: §3.3 "The "issuer" value returned MUST be
    /// identical to the authorization server's issuer identifier", and RFC 9068 §4 compares
    /// `iss` with it as is. Compare it with a configured authority through
    /// [`Metadata::is_issued_by`].
    pub issuer: String,
    /// The token endpoint (REQUIRED unless only the implicit grant is supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The JWK Set document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Scopes registered on this server.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Always empty: no front-channel flow is offered (OIDC Discovery requires the member).
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `client_credentials`.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms a `private_key_jwt` assertion may be signed with (RFC 8414 §2: required
    /// when `private_key_jwt` is listed; `none` never appears).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Algorithms access tokens are signed with.
    #[serde(default)]
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// OIDC Discovery requires it; no ID tokens are issued, the value mirrors the access
    /// token algorithms.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// OIDC Discovery requires it.
    #[serde(default)]
    pub subject_types_supported: Vec<String>,
    /// RFC 7662 introspection endpoint (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// How callers of the introspection endpoint authenticate.
    #[serde(default)]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// As `token_endpoint_auth_signing_alg_values_supported`, for introspection (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 7009 revocation endpoint (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// How callers of the revocation endpoint authenticate.
    #[serde(default)]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// As `token_endpoint_auth_signing_alg_values_supported`, for revocation (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8707 resource indicators are honoured at the token endpoint.
    #[serde(default)]
    pub resource_indicators_supported: bool,
    /// Tessera's revocation feed (RFC 8936 poll delivery of RFC 8417 SETs), which the guard
    /// follows; absent on other servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_events_endpoint: Option<String>,
    /// RFC 9449 §5.1: the algorithms DPoP proofs may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 8705 §3.3: tokens issued to mutual-TLS clients are bound to their certificate.
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// RFC 8705 §5: endpoints a client presenting a certificate uses instead of the ones
    /// above, when the server asks for certificates elsewhere only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<crate::rfc8705::MtlsEndpointAliases>,
}

impl Metadata {
    /// OIDC Discovery §4.3, RFC 8414 §3.3: the document must name the authority it was
    /// fetched from, else it is an impostor's. Trailing slashes aside (see [`Issuer`]).
    pub fn is_issued_by(&self, authority: &Issuer) -> bool {
        Issuer::new(&self.issuer).is_ok_and(|i| &i == authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_3_3_the_issuer_must_be_the_authority_asked() {
        let authority = Issuer::new("https://as.example").unwrap();
        let doc: Metadata = serde_json::from_str(r#"{"issuer": "https://as.example/"}"#).unwrap();
        assert!(doc.is_issued_by(&authority));
        assert_eq!(doc.issuer, "https://as.example/", "kept as published for the iss comparison");
        assert!(doc.token_endpoint.is_none());
        let doc: Metadata = serde_json::from_str(r#"{"issuer": "https://evil.example"}"#).unwrap();
        assert!(!doc.is_issued_by(&authority));
    }
}
