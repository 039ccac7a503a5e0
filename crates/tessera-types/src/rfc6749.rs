//! RFC 6749 wire types: the token response (§5.1) and the error response (§5.2).

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// §5.1 successful access token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer` (RFC 6750).
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// The granted scope, space-delimited (§3.3). Sent always, since it may differ from the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// §5.2 error response body.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable ASCII text (%x20-21 / %x23-5B / %x5D-7E).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}
