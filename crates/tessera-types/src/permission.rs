//! What a client may do, spelled as OpenIddict does: endpoints, grant types, scopes; and the
//! token format it receives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{InvalidValue, ScopeName};

/// An endpoint a client may call (OpenIddict's `ept:` permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// `/connect/token` (RFC 6749 §3.2).
    Token,
    /// `/connect/introspect` (RFC 7662).
    Introspection,
    /// `/connect/revoke` (RFC 7009).
    Revocation,
    /// `/connect/events`: the revocation feed (RFC 8936 poll delivery of RFC 8417 SETs).
    Events,
}

impl Endpoint {
    /// The name used in permissions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Introspection => "introspection",
            Self::Revocation => "revocation",
            Self::Events => "events",
        }
    }
}

/// RFC 7523 §2.1: the `grant_type` of a JWT used as an authorization grant.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A grant type (RFC 6749 §4). An unknown `grant_type` is not a variant: it is
/// `unsupported_grant_type` before it ever becomes a value of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 7523 §2.1: a JWT as the authorization grant (issue 15: a workload's token from a
    /// trusted issuer).
    JwtBearer,
    /// RFC 8693: token exchange.
    TokenExchange,
}

impl GrantType {
    /// Parses the `grant_type` parameter; `None` for grants this server does not support.
    pub fn from_param(value: &str) -> Option<Self> {
        match value {
            "client_credentials" => Some(Self::ClientCredentials),
            JWT_BEARER_GRANT => Some(Self::JwtBearer),
            crate::rfc8693::GRANT_TYPE => Some(Self::TokenExchange),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::JwtBearer => JWT_BEARER_GRANT,
            Self::TokenExchange => crate::rfc8693::GRANT_TYPE,
        }
    }
}

/// What a client is allowed to do, written as OpenIddict writes it:
/// `ept:token`, `gt:client_credentials`, `scp:dataEventRecords`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Permission {
    /// May call this endpoint.
    Endpoint(Endpoint),
    /// May use this grant type.
    GrantType(GrantType),
    /// May request this scope.
    Scope(ScopeName),
}

impl FromStr for Permission {
    type Err = InvalidValue;

    /// Accepts `ept:X`, `gt:X`, `scp:X`, and the bare names `token`, `introspection`,
    /// `revocation`, `events` and `client_credentials` for convenience on the command line.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = InvalidValue {
            what: "permission",
            why: "expected ept:token|ept:introspection|ept:revocation|ept:events, gt:client_credentials, \
                  gt:jwt-bearer, gt:token-exchange or scp:SCOPE",
        };
        let endpoint = |name: &str| match name {
            "token" => Some(Endpoint::Token),
            "introspection" => Some(Endpoint::Introspection),
            "revocation" => Some(Endpoint::Revocation),
            "events" => Some(Endpoint::Events),
            _ => None,
        };
        if let Some(name) = s.strip_prefix("ept:") {
            return endpoint(name).map(Self::Endpoint).ok_or(err);
        }
        // `jwt-bearer` is shorthand for the RFC 7523 URN on the command line.
        if s == "jwt-bearer" || s == "gt:jwt-bearer" {
            return Ok(Self::GrantType(GrantType::JwtBearer));
        }
        if s == "token-exchange" || s == "gt:token-exchange" {
            return Ok(Self::GrantType(GrantType::TokenExchange));
        }
        if let Some(name) = s.strip_prefix("gt:") {
            return GrantType::from_param(name).map(Self::GrantType).ok_or(err);
        }
        if let Some(name) = s.strip_prefix("scp:") {
            return ScopeName::new(name).map(Self::Scope);
        }
        if let Some(e) = endpoint(s) {
            return Ok(Self::Endpoint(e));
        }
        GrantType::from_param(s).map(Self::GrantType).ok_or(err)
    }
}

impl TryFrom<String> for Permission {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Permission> for String {
    fn from(value: Permission) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Endpoint(e) => write!(f, "ept:{}", e.as_str()),
            Self::GrantType(g) => write!(f, "gt:{}", g.as_str()),
            Self::Scope(s) => write!(f, "scp:{s}"),
        }
    }
}

/// The format of the access tokens a client receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// A signed JWT (RFC 9068), validated by resource servers on their own.
    #[default]
    Jwt,
    /// An opaque reference (RFC 7662): resource servers introspect it; revocable at once.
    Reference,
}

impl TokenFormat {
    /// The stored and configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Reference => "reference",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jwt" => Ok(Self::Jwt),
            "reference" => Ok(Self::Reference),
            _ => Err(InvalidValue { what: "token format", why: "expected jwt or reference" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip() {
        for s in ["ept:token", "ept:introspection", "gt:client_credentials", "scp:dataEventRecords"] {
            assert_eq!(s.parse::<Permission>().unwrap().to_string(), s);
        }
        assert_eq!("introspection".parse::<Permission>().unwrap().to_string(), "ept:introspection");
        assert!("ept:authorize".parse::<Permission>().is_err());
        assert!("gt:password".parse::<Permission>().is_err());
    }
}
