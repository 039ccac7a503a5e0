//! Protocol identifiers validated on construction: client ids, secrets (redacted), resources,
//! Unix times.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that does not have the shape its protocol element requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// What was being parsed, e.g. "client_id".
    pub what: &'static str,
    /// Why it was refused.
    pub why: &'static str,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.why)
    }
}

impl std::error::Error for InvalidValue {}

/// RFC 6749 appendix A: VSCHAR = %x20-7E.
pub(crate) fn is_vschar(c: char) -> bool {
    ('\x20'..='\x7e').contains(&c)
}

/// The conversions every validated text value shares: `as_str`, `TryFrom<String>` (through
/// `new`, so serde validates too), back into `String`, and `Display` as the wire text.
/// Secrets are left out on purpose: they must not print.
macro_rules! text_value {
    ($t:ident) => {
        impl $t {
            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = $crate::InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$t> for String {
            fn from(value: $t) -> Self {
                value.0.into()
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}
pub(crate) use text_value;

/// A client identifier (RFC 6749 §2.2, appendix A.1: `client-id = *VSCHAR`).
/// Tessera also refuses the empty string and anything over 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Parses a client identifier.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let err = |why| InvalidValue { what: "client_id", why };
        if value.is_empty() {
            return Err(err("empty"));
        }
        if value.len() > 255 {
            return Err(err("longer than 255 characters"));
        }
        if !value.chars().all(is_vschar) {
            return Err(err("characters outside %x20-7E (RFC 6749 appendix A.1)"));
        }
        Ok(Self(value))
    }
}

text_value!(ClientId);

/// A client secret in clear, as presented by a client or generated once.
/// Its `Debug` and `Display` print `[redacted]`; the value is reachable only through
/// [`ClientSecret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret (RFC 6749 appendix A.2: `client-secret = *VSCHAR`).
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let err = |why| InvalidValue { what: "client_secret", why };
        if value.is_empty() {
            return Err(err("empty"));
        }
        if value.len() > 1024 {
            return Err(err("longer than 1024 characters"));
        }
        if !value.chars().all(is_vschar) {
            return Err(err("characters outside %x20-7E (RFC 6749 appendix A.2)"));
        }
        Ok(Self(value))
    }

    /// The secret in clear. Call sites are the few places that hash or print it once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A resource (audience) a scope grants access to: the `aud` of tokens (RFC 9068 §2.2)
/// and the value of RFC 8707 `resource` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Resource(String);

impl Resource {
    /// Parses a resource name or URI: printable ASCII without spaces, 1..=255 characters.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let err = |why| InvalidValue { what: "resource", why };
        if value.is_empty() {
            return Err(err("empty"));
        }
        if value.len() > 255 {
            return Err(err("longer than 255 characters"));
        }
        if !value.chars().all(|c| ('\x21'..='\x7e').contains(&c) && c != '"' && c != '\\') {
            return Err(err("only printable ASCII without spaces, quotes or backslashes"));
        }
        Ok(Self(value))
    }
}

text_value!(Resource);

/// Seconds since the Unix epoch, the unit of JWT `NumericDate` (RFC 7519 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// This instant plus `seconds`.
    pub fn plus(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = ClientSecret::new("hunter2").unwrap();
        assert_eq!(format!("{s:?} {s}"), "ClientSecret([redacted]) [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn rfc6749_a_1_client_id_is_vschar() {
        assert!(ClientId::new("CC").is_ok());
        assert!(ClientId::new("with space").is_ok());
        assert!(ClientId::new("").is_err());
        assert!(ClientId::new("tab\there").is_err());
        assert!(ClientId::new("é").is_err());
    }
}
