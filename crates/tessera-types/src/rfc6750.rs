//! RFC 6750 bearer token usage: the error codes of the `WWW-Authenticate` challenge.

use std::fmt;
use std::str::FromStr;

use crate::InvalidValue;

/// §3.1 error codes a protected resource answers with. Closed: the guard renders them, the
/// client reacts to `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BearerError {
    /// "The request is missing a required parameter, ... or is otherwise malformed." (400)
    InvalidRequest,
    /// "The access token provided is expired, revoked, malformed, or invalid for other
    /// reasons." (401) The client gets a new token and tries once more.
    InvalidToken,
    /// "The request requires higher privileges than provided by the access token." (403)
    InsufficientScope,
}

impl BearerError {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// The `error` attribute of a `Bearer` challenge (§3), if it has one of the §3.1 codes.
    /// Auth-params are `name=value` or `name="value"` separated by commas (RFC 9110 §11.2);
    /// only the challenge whose scheme is `Bearer` is read, and a code merely mentioned in
    /// `error_description` does not count.
    pub fn from_challenge(header: &str) -> Option<Self> {
        challenge_error(header)?.parse().ok()
    }
}

/// The `error` of a `Bearer` or `DPoP` challenge (RFC 6750 §3, RFC 9449 §7.1), whatever the
/// code: RFC 9449 adds `invalid_dpop_proof` and `use_dpop_nonce` (§9) to RFC 6750's.
pub fn challenge_error(header: &str) -> Option<&str> {
    let (scheme, params) = header.trim_start().split_once(' ').unwrap_or((header.trim(), ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")) {
        return None;
    }
    params.split(',').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("error").then(|| value.trim().trim_matches('"'))
    })
}

impl FromStr for BearerError {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::InvalidRequest, Self::InvalidToken, Self::InsufficientScope]
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or(InvalidValue { what: "bearer error", why: "not an RFC 6750 section 3.1 code" })
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_3_the_error_attribute_names_the_code() {
        let h = r#"Bearer realm="api", error="invalid_token", error_description="expired""#;
        assert_eq!(BearerError::from_challenge(h), Some(BearerError::InvalidToken));
        let h = r#"Bearer realm="api", error="insufficient_scope", scope="a b""#;
        assert_eq!(BearerError::from_challenge(h), Some(BearerError::InsufficientScope));
        // Mentioned only in the description, or in another scheme: not an invalid_token answer.
        assert_eq!(BearerError::from_challenge(r#"Bearer realm="x", error_description="no invalid_token""#), None);
        assert_eq!(BearerError::from_challenge(r#"Basic realm="invalid_token""#), None);
        assert_eq!(BearerError::from_challenge("Bearer"), None);
        let h = r#"DPoP realm="api", error="invalid_token", algs="ES256""#;
        assert_eq!(BearerError::from_challenge(h), Some(BearerError::InvalidToken));
    }
}
