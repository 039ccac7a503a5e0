//! RFC 8693 token exchange (issue 15): an authenticated client with the `gt:token-exchange`
//! permission trades a `subject_token` — one of our access tokens, or a workload's token from
//! a trusted issuer — for a token of the same subject, narrowed to what it asks for and may
//! get, acting for that subject (`act`).
//!
//! Never wider: the scopes are within the subject token's (and the requesting client's
//! permitted ones), and the token never outlives the subject token (the lesson of Keycloak's
//! CVE-2025-3910-class bugs, where exchanged tokens outlived their subject).

use tessera_store::ClientRecord;
use tessera_types::rfc8693::{ACCESS_TOKEN, Actor, JWT};
use tessera_types::{ClientId, ErrorCode, ScopeSet, UnixTime};

use super::Grant;
use crate::error::OAuthError;
use crate::form::Form;
use crate::registry::Registry;
use crate::state::Inner;
use crate::token::lookup;

/// A token presented as subject or actor, validated.
struct Party {
    /// Who it stands for: our token's `sub`, or the client a trust's rule names.
    subject: ClientId,
    scopes: ScopeSet,
    exp: UnixTime,
    workload: Option<tessera_types::rfc9068::Workload>,
    /// Who acted for it already (a token that was itself exchanged).
    act: Option<Actor>,
}

fn invalid_grant(why: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, why)
}

/// Validates a token of type `kind` (§3): ours when its issuer is us (JWT or reference),
/// else a workload token of a trust (type `jwt` only).
async fn party(
    s: &Inner,
    registry: &Registry,
    token: &str,
    kind: &str,
    what: &'static str,
) -> Result<Party, OAuthError> {
    if kind != ACCESS_TOKEN && kind != JWT {
        return Err(OAuthError::invalid_request(format!(
            "{what}_type must be {ACCESS_TOKEN} or {JWT} (RFC 8693 section 3)"
        )));
    }
    let now = s.clock.now();
    if let Some(t) = lookup::active(&*s.stores.lookup, &s.issuer, registry, token, now).await? {
        // A sender-constrained token proves nothing without its key or certificate, and this
        // request shows neither: exchanging it would turn a stolen bound token into a bearer.
        if t.cnf.is_some() {
            return Err(invalid_grant("a sender-constrained token cannot be exchanged"));
        }
        let subject =
            ClientId::new(t.sub.as_str()).map_err(|_| invalid_grant("the token's subject is not a client"))?;
        return Ok(Party { subject, scopes: t.scope.unwrap_or_default(), exp: t.exp, workload: None, act: t.act });
    }
    if kind == JWT {
        if let Some((client, workload, exp)) = crate::client_auth::workload_subject(registry, s, token, now).await {
            let scopes = client
                .permissions
                .iter()
                .filter_map(|p| match p {
                    tessera_types::Permission::Scope(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            return Ok(Party { subject: client.client_id.clone(), scopes, exp, workload: Some(workload), act: None });
        }
    }
    tracing::info!(what, "token exchange refused: the token is not active or not trusted");
    Err(invalid_grant("the token is not active, not ours, or from no trusted issuer"))
}

/// Resolves a token exchange by `client` (authenticated, with the grant's permission).
pub(crate) async fn resolve(
    s: &Inner,
    registry: &Registry,
    client: &ClientRecord,
    requested: Option<&ScopeSet>,
    form: &Form,
) -> Result<Grant, OAuthError> {
    // §2.1: subject_token and subject_token_type REQUIRED.
    let token = form.single("subject_token")?.ok_or_else(|| OAuthError::invalid_request("subject_token is missing"))?;
    let kind = form
        .single("subject_token_type")?
        .ok_or_else(|| OAuthError::invalid_request("subject_token_type is missing"))?;
    // §2.1: we issue access tokens only.
    if let Some(want) = form.single("requested_token_type")? {
        if want != ACCESS_TOKEN && want != JWT {
            return Err(OAuthError::invalid_request("requested_token_type: only access tokens are issued"));
        }
    }
    let subject = party(s, registry, token, kind, "subject_token").await?;
    // §2.1: actor_token_type is REQUIRED when actor_token is present, and not otherwise.
    let actor = match (form.single("actor_token")?, form.single("actor_token_type")?) {
        (Some(t), Some(k)) => Some(party(s, registry, t, k, "actor_token").await?),
        (None, None) => None,
        _ => return Err(OAuthError::invalid_request("actor_token and actor_token_type go together")),
    };
    // Never wider than the subject token: each requested scope must be one it holds.
    let scopes = match requested {
        Some(req) => {
            if let Some(extra) = req.iter().find(|sc| !subject.scopes.contains(sc)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {extra} is not held by the subject token: an exchange never widens"),
                ));
            }
            req.clone()
        }
        None => subject.scopes.clone(),
    };
    // §2.1 `resource` and `audience` both name where the token is for; ours are resource
    // identifiers either way. And the requesting client must itself be permitted each scope:
    // it cannot reach, through someone's token, an API it may not reach.
    let mut targets: Vec<String> = form.multi("resource").to_vec();
    targets.extend(form.multi("audience").iter().cloned());
    let mut grant = super::client_credentials::resolve(registry, client, Some(&scopes), &targets)?;
    grant.subject = Some(subject.subject.clone());
    grant.not_after = Some(subject.exp);
    grant.workload = subject.workload;
    // §4.1: the acting party — the actor token's subject, else the requesting client — and,
    // nested, whoever acted in the subject token already: "a chain of delegation".
    let acting = actor.map(|a| a.subject).unwrap_or_else(|| client.client_id.clone());
    grant.act = Some(Actor { sub: acting.as_str().to_owned(), act: subject.act.map(Box::new) });
    Ok(grant)
}
