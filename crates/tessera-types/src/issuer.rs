//! The issuer identifier (RFC 8414 §2), validated once: every crate compares and derives
//! URLs from this one value instead of trimming slashes where it reads one.

use serde::{Deserialize, Serialize};

use crate::InvalidValue;
use crate::ids::text_value;

/// An authorization server's issuer identifier: an absolute `https` (or, for development,
/// `http`) URL without query or fragment. Trailing slashes are trimmed here, once, so that
/// `https://as.example/` and `https://as.example` name the same authority and `well_known`
/// paths join without a double slash.
///
/// Whether plain `http` is acceptable is the caller's policy (the guard's and the client's
/// `allow_insecure_http`, the server's development mode); this type only rules out what can
/// never be an issuer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Issuer(String);

impl Issuer {
    /// Parses an issuer. RFC 8414 §2: "a URL that uses the "https" scheme and has no query or
    /// fragment components".
    pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidValue> {
        let value = value.as_ref();
        let err = |why| InvalidValue { what: "issuer", why };
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or(err("not an absolute https URL (RFC 8414 section 2)"))?;
        if rest.starts_with('/') || rest.is_empty() {
            return Err(err("no host"));
        }
        if value.contains(['?', '#']) {
            return Err(err("has a query or fragment (RFC 8414 section 2)"));
        }
        if value.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(err("contains whitespace or control characters"));
        }
        if value.len() > 2048 {
            return Err(err("longer than 2048 characters"));
        }
        Ok(Self(value.trim_end_matches('/').to_owned()))
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `{issuer}/.well-known/openid-configuration`: where OpenID Connect Discovery 1.0 §4
    /// publishes the metadata (served by Tessera next to RFC 8414's own path).
    pub fn openid_configuration_url(&self) -> String {
        self.url("/.well-known/openid-configuration")
    }

    /// The URL of `path` (which starts with `/`) at this issuer, e.g. an endpoint the
    /// metadata publishes. The issuer has no trailing slash, so the two join with one.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

text_value!(Issuer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_2_issuer_is_an_absolute_url_without_query_or_fragment() {
        assert_eq!(Issuer::new("https://as.example/").unwrap().as_str(), "https://as.example");
        assert_eq!(Issuer::new("https://as.example/t1//").unwrap().as_str(), "https://as.example/t1");
        assert!(Issuer::new("http://127.0.0.1:8443").unwrap().as_str().starts_with("http://"));
        assert!(!Issuer::new("http://127.0.0.1:8443").unwrap().is_https());
        for bad in [
            "",
            "as.example",
            "ftp://as.example",
            "https://",
            "https:///x",
            "https://a?b",
            "https://a#b",
            "https://a b",
        ] {
            assert!(Issuer::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Issuer::new("https://as.example").unwrap().openid_configuration_url(),
            "https://as.example/.well-known/openid-configuration"
        );
        assert_eq!(
            Issuer::new("https://as.example/t1/").unwrap().url("/connect/token"),
            "https://as.example/t1/connect/token"
        );
    }
}
