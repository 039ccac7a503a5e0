//! Client authentication methods (IANA "OAuth Token Endpoint Authentication Methods"), named
//! once for the server, its registry records and discovery.

use std::fmt;
use std::str::FromStr;

use crate::InvalidValue;

/// How a client authenticates; the names are RFC 8414's `token_endpoint_auth_methods_supported`
/// values (and RFC 7591's `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// Credentials in the form body (§2.3.1, "NOT RECOMMENDED" but supported).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OpenID Connect Core §9).
    PrivateKeyJwt,
    /// A TLS client certificate from a trusted CA whose subject matches the registration
    /// (RFC 8705 §2.1).
    TlsClientAuth,
    /// A TLS client certificate registered by the client itself (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// Every method, in the order discovery lists them.
    pub const ALL: [Self; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the method proves a shared secret (and so needs one registered).
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// Whether the method is mutual TLS (RFC 8705 §2), whose tokens are bound to the
    /// certificate (§3).
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

impl FromStr for ClientAuthMethod {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or(InvalidValue {
            what: "token_endpoint_auth_method",
            why: "expected client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth or \
                  self_signed_tls_client_auth",
        })
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
