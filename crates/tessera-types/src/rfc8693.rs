//! OAuth 2.0 Token Exchange (RFC 8693): the grant type, the token type identifiers, and the
//! `act` claim.

use serde::{Deserialize, Serialize};

/// §2.1: the `grant_type` of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// §3: an OAuth 2.0 access token (ours: a JWT or a reference token).
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// §3: a JWT (here: a workload's token from a trusted issuer, or one of our JWTs).
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// §4.1 `act`: who acts for the token's subject; a nested `act` is whoever acted before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting party.
    pub sub: String,
    /// The prior actor in a delegation chain (§4.1: "a chain of delegation").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}
