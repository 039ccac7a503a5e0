//! A client's `jwks_uri` (RFC 7591 §2): where a `private_key_jwt` client publishes its public
//! keys, fetched by the server instead of registered inline.

use serde::{Deserialize, Serialize};

use crate::InvalidValue;
use crate::ids::text_value;

/// The URL of a client's JWK Set: absolute `https`, with a host, no userinfo and no fragment.
///
/// RFC 7591 §2 leaves the scheme open, but the keys decide who the client is: fetched over
/// plain HTTP, anyone on the path could hand the server their own. Userinfo would put a
/// credential in every log line that names the URL, and a fragment is never sent, so either
/// is a registration mistake. A query is allowed (it is part of the resource).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JwksUri(String);

impl JwksUri {
    /// Parses a `jwks_uri`.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let err = |why| InvalidValue { what: "jwks_uri", why };
        if value.len() > 2048 {
            return Err(err("longer than 2048 characters"));
        }
        if value.contains(|c: char| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(err("contains whitespace, control or non-ASCII characters"));
        }
        let Some(scheme_end) = value.find("://") else {
            return Err(err("not an absolute URL"));
        };
        if !value[..scheme_end].eq_ignore_ascii_case("https") {
            return Err(err("not https: the keys must come over TLS"));
        }
        if value.contains('#') {
            return Err(err("has a fragment"));
        }
        let rest = &value[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if authority.contains('@') {
            return Err(err("has userinfo (user:password@)"));
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            return Err(err("no host"));
        }
        Ok(Self(value))
    }
}

text_value!(JwksUri);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7591_2_jwks_uri_is_absolute_https_without_userinfo_or_fragment() {
        for good in [
            "https://svc.example/.well-known/jwks.json",
            "https://127.0.0.1:8443/jwks",
            "https://[::1]:8443/jwks",
            "HTTPS://svc.example/jwks?tenant=a",
            "https://svc.example",
        ] {
            assert_eq!(JwksUri::new(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("http://svc.example/jwks", "not https"),
            ("ftp://svc.example/jwks", "not https"),
            ("svc.example/jwks", "not an absolute URL"),
            ("/jwks", "not an absolute URL"),
            ("https://user:pw@svc.example/jwks", "userinfo"),
            ("https://user@svc.example/jwks", "userinfo"),
            ("https://svc.example/jwks#keys", "fragment"),
            ("https:///jwks", "no host"),
            ("https://:443/jwks", "no host"),
            ("https://[]/jwks", "no host"),
            ("https://svc.example/j wks", "whitespace"),
            ("https://svc.example/jwks\n", "whitespace"),
            ("https://svc.éxample/jwks", "non-ASCII"),
        ] {
            let e = JwksUri::new(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(JwksUri::new(format!("https://svc.example/{}", "a".repeat(2048))).is_err());
        // An @ in the path is not userinfo.
        assert!(JwksUri::new("https://svc.example/keys/@me").is_ok());
        // serde validates too.
        assert!(serde_json::from_str::<JwksUri>("\"http://svc.example/jwks\"").is_err());
    }
}
