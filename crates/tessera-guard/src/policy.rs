//! What a route or gRPC method requires of a token: scopes, and whether it must be
//! sender-constrained.

use tessera_types::{ScopeName, ScopeSet};

use crate::{GuardError, Principal};

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
    /// The inner policy, from a sender-constrained token only: DPoP-bound (RFC 9449) or
    /// certificate-bound (RFC 8705), its binding satisfied. RFC 9700 §2.2.1 recommends them;
    /// FAPI 2.0 requires them.
    SenderConstrained(Box<Policy>),
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

    /// This policy, for sender-constrained tokens only (see [`Self::SenderConstrained`]).
    pub fn sender_constrained(self) -> Self {
        match self {
            already @ Self::SenderConstrained(_) => already,
            inner => Self::SenderConstrained(Box::new(inner)),
        }
    }

    /// Whether `p` satisfies the policy: [`GuardError::InsufficientScope`] naming the scopes
    /// for RFC 6750 §3.1's answer, [`GuardError::SenderConstraintRequired`] for a bearer
    /// token where a bound one is required. `p` comes from the guard, which has already
    /// checked that a bound token was presented as its binding requires.
    pub fn check(&self, p: &Principal) -> Result<(), GuardError> {
        match self {
            Self::Authenticated => Ok(()),
            Self::AnyOf(s) if p.scopes.contains_any(s) => Ok(()),
            Self::AllOf(s) if p.scopes.contains_all(s) => Ok(()),
            Self::AnyOf(s) | Self::AllOf(s) => Err(GuardError::InsufficientScope(s.clone())),
            Self::SenderConstrained(inner) => {
                let bound = p.cnf.as_ref().is_some_and(|c| c.jkt.is_some() || c.x5t_s256.is_some());
                if !bound {
                    return Err(GuardError::SenderConstraintRequired);
                }
                inner.check(p)
            }
        }
    }
}
