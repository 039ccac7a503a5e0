//! Grant types (RFC 6749 §1.3), one file each, and the dispatcher that picks one. A new grant
//! (token exchange, RFC 8693; JWT bearer, RFC 7523) is a `GrantType` variant, a file here and
//! one arm in `resolve`: the match makes a forgotten one a compile error.

pub mod client_credentials;
mod token_exchange;

use tessera_store::ClientRecord;
use tessera_types::rfc8705::Confirmation;
use tessera_types::{ClientId, GrantType, Resource, ScopeSet, UnixTime};

use crate::error::OAuthError;
use crate::form::Form;
use crate::registry::Registry;

/// What a grant yields: what the token will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Audiences (`aud`): resources of the granted scopes, narrowed by RFC 8707 `resource`.
    pub audiences: Vec<Resource>,
    /// What the token is bound to: set from how the client authenticated (RFC 8705 §3), not
    /// by the grant.
    pub cnf: Option<Confirmation>,
    /// The workload behind the client, when a trust's rule identified it (issue 15).
    pub workload: Option<tessera_types::rfc9068::Workload>,
    /// RFC 8693: the subject the token stands for, when not the client (token exchange).
    pub subject: Option<ClientId>,
    /// RFC 8693 §4.1: who acts for the subject.
    pub act: Option<tessera_types::rfc8693::Actor>,
    /// The token may not live past this (the subject token's `exp`).
    pub not_after: Option<UnixTime>,
}

/// Resolves what an authenticated `client` is granted by a token request of `grant_type`;
/// `requested` is the request's already parsed `scope` (RFC 6749 §3.3).
pub(crate) async fn resolve(
    s: &crate::state::Inner,
    grant_type: GrantType,
    registry: &Registry,
    client: &ClientRecord,
    requested: Option<&ScopeSet>,
    form: &Form,
) -> Result<Grant, OAuthError> {
    match grant_type {
        GrantType::TokenExchange => token_exchange::resolve(s, registry, client, requested, form).await,
        // RFC 7523 §2.1: the assertion identified the client (issue 15: through a trust's
        // rules); what it may get is then what that client may get.
        GrantType::ClientCredentials | GrantType::JwtBearer => {
            client_credentials::resolve(registry, client, requested, form.multi("resource"))
        }
    }
}
