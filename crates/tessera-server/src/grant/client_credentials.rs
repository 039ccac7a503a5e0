//! RFC 6749 §4.4: the client credentials grant — which scopes and audiences a token gets.

use std::collections::BTreeSet;

use tessera_store::ClientRecord;
use tessera_types::{ErrorCode, Permission, Resource, ScopeName, ScopeSet};

use super::Grant;
use crate::error::OAuthError;
use crate::registry::Registry;

/// Resolves the scope and audience of a token for `client`.
///
/// - `scope` absent: every scope the client is permitted that exists (documented default,
///   RFC 6749 §3.3 lets the server pick "a pre-defined default value").
/// - each requested scope must exist and be permitted, else `invalid_scope` (§5.2).
/// - RFC 8707 §2: each `resource` must be an audience of the granted scopes, else
///   `invalid_target`; the token's audience is then exactly those resources and the scopes
///   narrow to those that grant access to one of them.
pub fn resolve(
    registry: &Registry,
    client: &ClientRecord,
    requested: Option<&ScopeSet>,
    resources: &[String],
) -> Result<Grant, OAuthError> {
    let permitted =
        |s: &ScopeName| client.permissions.contains(&Permission::Scope(s.clone())) && registry.scope(s).is_some();
    let mut scopes: ScopeSet = match requested {
        Some(req) => {
            for s in req.iter() {
                if !permitted(s) {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        format!("scope {s} is unknown or not permitted for this client"),
                    ));
                }
            }
            req.clone()
        }
        None => client
            .permissions
            .iter()
            .filter_map(|p| match p {
                Permission::Scope(s) if permitted(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
    };
    if scopes.is_empty() {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "the client is permitted no registered scope"));
    }
    let resources_of = |s: &ScopeName| registry.scope(s).map(|r| r.resources.clone()).unwrap_or_default();
    let mut audiences: BTreeSet<Resource> = scopes.iter().flat_map(resources_of).collect();

    if !resources.is_empty() {
        let mut wanted = BTreeSet::new();
        for raw in resources {
            let r = Resource::new(raw.as_str())
                .map_err(|_| OAuthError::new(ErrorCode::InvalidTarget, "resource is malformed (RFC 8707 section 2)"))?;
            if !audiences.contains(&r) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource is not an audience of the granted scopes (RFC 8707 section 2)",
                ));
            }
            wanted.insert(r);
        }
        scopes = scopes.iter().filter(|s| resources_of(s).iter().any(|r| wanted.contains(r))).cloned().collect();
        audiences = wanted;
    }
    if audiences.is_empty() {
        // RFC 9068 §2.2: `aud` is REQUIRED; a token for no audience is not issued.
        return Err(OAuthError::new(ErrorCode::InvalidScope, "the granted scopes name no resource (audience)"));
    }
    Ok(Grant {
        scopes,
        audiences: audiences.into_iter().collect(),
        cnf: None,
        workload: None,
        subject: None,
        act: None,
        not_after: None,
    })
}
