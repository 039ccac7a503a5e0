//! The closed set of OAuth 2.0 error codes (RFC 6749 §5.2 and friends).

use serde::{Deserialize, Serialize};

/// The closed set of OAuth 2.0 error codes Tessera answers with
/// (RFC 6749 §5.2, RFC 8707 §2). Rendering (status, headers, body) lives in one place in
/// the server; this type only names the codes. The client reads them back: a code outside
/// this set fails to deserialise, and the client reports the answer as a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing, repeated or malformed parameter; more than one authentication method.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant is invalid.
    InvalidGrant,
    /// The client may not use this grant type (or endpoint).
    UnauthorizedClient,
    /// The grant type is not supported by this server.
    UnsupportedGrantType,
    /// The requested scope is invalid, unknown or not permitted.
    InvalidScope,
    /// RFC 8707 §2: the requested resource is invalid or not permitted.
    InvalidTarget,
    /// An unexpected condition; details are logged, never sent.
    ServerError,
    /// The server is overloaded or in maintenance.
    TemporarilyUnavailable,
    /// RFC 9449 §5: the DPoP proof is missing where required, or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: the authorization server requires a nonce in the proof; the current one
    /// is in the `DPoP-Nonce` header of the answer.
    UseDpopNonce,
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
