//! RFC 7523 JWT client assertions (RFC 7521 §4.2 parameters): the assertion type and the
//! claims a client assertion carries.

use serde::Deserialize;
use serde_json::Value;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The claims of a client assertion as sent, before any rule is applied. `aud` stays raw
/// JSON (a string or an array, RFC 7519 §4.1.3) so the single-audience rule can tell them
/// apart. A repeated member is refused by the derive (RFC 7515 §4 style uniqueness).
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // RFC 7519 §4.1 registered claim names
pub struct AssertionClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
}
