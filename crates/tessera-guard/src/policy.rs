//! What a route or gRPC method requires of a token's scopes.

use crate::Principal;

/// A scope requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Any valid token.
    Authenticated,
    /// At least one of these scopes.
    AnyOf(Vec<String>),
    /// Every one of these scopes.
    AllOf(Vec<String>),
}

impl Policy {
    /// At least one of `scopes`.
    pub fn any_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::AnyOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Every one of `scopes`.
    pub fn all_of<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::AllOf(scopes.into_iter().map(Into::into).collect())
    }

    /// Whether `p` satisfies the policy; otherwise the `scope` value for RFC 6750's
    /// `insufficient_scope` answer (space-delimited).
    pub fn check(&self, p: &Principal) -> Result<(), String> {
        let ok = match self {
            Self::Authenticated => true,
            Self::AnyOf(s) => s.iter().any(|x| p.scopes.contains(x)),
            Self::AllOf(s) => s.iter().all(|x| p.scopes.contains(x)),
        };
        match (ok, self) {
            (true, _) => Ok(()),
            (false, Self::AnyOf(s) | Self::AllOf(s)) => Err(s.join(" ")),
            (false, Self::Authenticated) => Err(String::new()),
        }
    }
}
