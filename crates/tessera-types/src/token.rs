//! Values that name or carry a token: the JWT id (`jti`), the key id (`kid`), and the
//! access token itself, which never prints.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;
use crate::ids::{is_vschar, text_value};

/// Checks the shape `jti` and `kid` share: 1..=255 printable ASCII characters. RFC 7519
/// §4.1.7 and RFC 7515 §4.1.4 only say "case-sensitive string"; the bound keeps a hostile
/// token from making us store or look up arbitrary data.
fn short_text(what: &'static str, value: String) -> Result<String, InvalidValue> {
    let err = |why| InvalidValue { what, why };
    if value.is_empty() {
        return Err(err("empty"));
    }
    if value.len() > 255 {
        return Err(err("longer than 255 characters"));
    }
    if !value.chars().all(is_vschar) {
        return Err(err("characters outside %x20-7E"));
    }
    Ok(value)
}

/// A JWT id (RFC 7519 §4.1.7): what revocation of a JWT remembers until its `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jti(String);

impl Jti {
    /// Parses a `jti`: 1..=255 printable ASCII characters.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        short_text("jti", value.into()).map(Self)
    }
}

text_value!(Jti);

/// A JWS key id (RFC 7515 §4.1.4); Tessera's are RFC 7638 thumbprints.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kid(String);

impl Kid {
    /// Parses a `kid`: 1..=255 printable ASCII characters.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        short_text("kid", value.into()).map(Self)
    }
}

text_value!(Kid);

/// A bearer access token (RFC 6750 §1.2): whoever holds it may use it, so its `Debug` and
/// `Display` print `[redacted]` and the value is reachable only through
/// [`AccessToken::expose`]. Cloning is one reference count: the client hands the cached token
/// to every caller.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// Wraps a token as received or issued. RFC 6750 §2.1 syntax is checked by whoever reads
    /// it from a header; here any text is kept as is.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The token in clear, for `Authorization: Bearer` and for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for AccessToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_never_prints() {
        let t = AccessToken::new("eyJ.secret.sig");
        assert_eq!(format!("{t:?} {t}"), "AccessToken([redacted]) [redacted]");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"eyJ.secret.sig\"");
    }

    #[test]
    fn rfc7519_4_1_7_jti_is_a_bounded_string() {
        assert!(Jti::new("a").is_ok());
        assert!(Jti::new("").is_err());
        assert!(Jti::new("x".repeat(256)).is_err());
        assert!(Kid::new("thumb-print_1").is_ok());
        assert!(Kid::new("\n").is_err());
    }
}
