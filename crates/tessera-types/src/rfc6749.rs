//! RFC 6749 wire types: the token response (§5.1) and the error response (§5.2), written by
//! the server and read by the client.

use serde::{Deserialize, Serialize};

use crate::{AccessToken, ErrorCode};

/// §5.1 successful access token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (redacted in `Debug`).
    pub access_token: AccessToken,
    /// `Bearer` (RFC 6750); §5.1: the value is case insensitive.
    pub token_type: String,
    /// Lifetime in seconds. §5.1: RECOMMENDED, so other servers may leave it out; Tessera
    /// always sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// The granted scope, space-delimited (§3.3). Sent always, since it may differ from the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued (REQUIRED there, absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// §5.2 error response body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ErrorResponse {
    pub error: ErrorCode,
    /// Human-readable ASCII text (%x20-21 / %x23-5B / %x5D-7E).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}
