//! What a route or gRPC method requires of a token's scopes.

use tessera_types::{ScopeName, ScopeSet};

use crate::Principal;

/// What a route or gRPC method requires of a valid token's scopes before the request goes
/// through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Any valid token, whatever its scopes.
    Authenticated,
    /// At least one of these scopes.
    AnyOf(ScopeSet),
    /// Every one of these scopes.
    AllOf(ScopeSet),
}

impl Policy {
    /// At least one of `scopes` (a [`ScopeSet`] or any list of [`ScopeName`]s).
    pub fn any_of(scopes: impl IntoIterator<Item = ScopeName>) -> Self {
        Self::AnyOf(scopes.into_iter().collect())
    }

    /// Every one of `scopes` (a [`ScopeSet`] or any list of [`ScopeName`]s).
    pub fn all_of(scopes: impl IntoIterator<Item = ScopeName>) -> Self {
        Self::AllOf(scopes.into_iter().collect())
    }

    /// Whether `p` satisfies the policy; otherwise the scopes to name in RFC 6750 §3.1's
    /// `insufficient_scope` answer.
    pub fn check(&self, p: &Principal) -> Result<(), ScopeSet> {
        match self {
            Self::Authenticated => Ok(()),
            Self::AnyOf(s) if p.scopes.contains_any(s) => Ok(()),
            Self::AllOf(s) if p.scopes.contains_all(s) => Ok(()),
            Self::AnyOf(s) | Self::AllOf(s) => Err(s.clone()),
        }
    }
}
