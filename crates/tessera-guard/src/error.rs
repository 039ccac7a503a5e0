//! Why a request was not let through (or a guard could not be built), and which RFC 6750
//! error code that is.

use tessera_types::ScopeSet;
use tessera_types::rfc6750::BearerError;

/// RFC 9449 §7.1: the error code of a DPoP challenge for a bad proof.
const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";

/// RFC 9449 §9: the error code of a DPoP challenge asking for the server's nonce.
const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Why a request was not let through. Rendered per RFC 6750 §3 over HTTP and as gRPC status
/// codes by the layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// No bearer token (HTTP 401 without an error code, gRPC `Unauthenticated`).
    #[error("no bearer token")]
    Missing,
    /// The Authorization header is not a well-formed bearer credential (§3.1 `invalid_request`).
    #[error("malformed authorization header")]
    Malformed,
    /// The token is expired, revoked, malformed, or not for this API (§3.1 `invalid_token`).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The DPoP proof (RFC 9449 §4.3) is missing, malformed, not for this request, replayed, or
    /// by a key the token is not bound to (§7.1 `invalid_dpop_proof`, HTTP 401, gRPC
    /// `Unauthenticated`).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// The proof lacks the nonce this API requires, or carries a stale one (RFC 9449 §9
    /// `use_dpop_nonce`, HTTP 401 with the nonce in `DPoP-Nonce`, gRPC `Unauthenticated`
    /// with a `dpop-nonce` header).
    #[error("the DPoP proof must carry this API's current nonce")]
    UseDpopNonce(String),
    /// The route requires a sender-constrained token (DPoP- or certificate-bound) and got a
    /// bearer token (RFC 9449 §7.1 `invalid_token` with a `DPoP` challenge, gRPC
    /// `Unauthenticated`).
    #[error("this resource requires a sender-constrained token (DPoP or mutual TLS)")]
    SenderConstraintRequired,
    /// The token lacks the scope the route requires (§3.1 `insufficient_scope`, HTTP 403,
    /// gRPC `PermissionDenied`).
    #[error("insufficient scope, requires {0}")]
    InsufficientScope(ScopeSet),
    /// The authorization server cannot be reached: fail closed (HTTP 503, gRPC `Unavailable`).
    #[error("authorization server unavailable: {0}")]
    Unavailable(String),
}

impl GuardError {
    /// The RFC 6750 §3.1 error code of the challenge; `None` for a request without a token
    /// ("the resource server SHOULD NOT include an error code") and for an unavailable
    /// authority, which is no fault of the token.
    pub fn bearer_error(&self) -> Option<BearerError> {
        match self {
            Self::Missing | Self::Unavailable(_) | Self::InvalidDpopProof(_) | Self::UseDpopNonce(_) => None,
            Self::Malformed => Some(BearerError::InvalidRequest),
            Self::InvalidToken(_) | Self::SenderConstraintRequired => Some(BearerError::InvalidToken),
            Self::InsufficientScope(_) => Some(BearerError::InsufficientScope),
        }
    }

    /// The `error` of the challenge: an RFC 6750 §3.1 code ([`Self::bearer_error`]), or RFC
    /// 9449 §7.1 `invalid_dpop_proof`.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidDpopProof(_) => Some(INVALID_DPOP_PROOF),
            Self::UseDpopNonce(_) => Some(USE_DPOP_NONCE),
            other => other.bearer_error().map(BearerError::as_str),
        }
    }
}
