//! What a presented token is: one of ours and active, or nothing. Shared by introspection
//! (RFC 7662) and revocation (RFC 7009). Unknown, expired, revoked, malformed, foreign and
//! tampered tokens are all the same `None`.

use tessera_jose::{Expectations, verify_access_token};
use tessera_store::TokenRecord;
use tessera_types::rfc8705::Confirmation;
use tessera_types::rfc9068::Workload;
use tessera_types::{ClientId, Issuer, Jti, Resource, ScopeSet, UnixTime};

use crate::error::OAuthError;
use crate::registry::Registry;
use crate::storage::StoreFuture;
use crate::token::reference::{self, ReferenceKey};

/// The storage a lookup reads: reference tokens by handle and hash, and the `jti`s of revoked
/// JWTs (a JWT itself is stateless, RFC 7009 §2 revokes it by remembering it until `exp`).
pub trait TokenLookup: Send + Sync {
    /// The record of the reference token with `key`, revoked or not.
    fn find_reference<'a>(&'a self, key: &'a ReferenceKey) -> StoreFuture<'a, Option<TokenRecord>>;
    /// Whether a JWT with this `jti` was revoked.
    fn is_jti_revoked<'a>(&'a self, jti: &'a Jti) -> StoreFuture<'a, bool>;
}

/// How an active token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A reference token, by its handle and hash.
    Reference(ReferenceKey),
    /// A JWT: revoked by remembering its `jti` until `exp`.
    Jwt,
}

/// An active token of ours.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Active {
    pub kind: Kind,
    /// The client it was issued to.
    pub client_id: ClientId,
    pub sub: String,
    pub scope: Option<ScopeSet>,
    pub aud: Vec<Resource>,
    pub iat: UnixTime,
    pub nbf: UnixTime,
    pub exp: UnixTime,
    pub jti: Jti,
    /// What it is bound to (RFC 8705 §3).
    pub cnf: Option<Confirmation>,
    /// RFC 8693 §4.1: who acts for the subject (an exchanged token; always a JWT).
    pub act: Option<tessera_types::rfc8693::Actor>,
    /// The federated workload behind the client (issue 15).
    pub workload: Option<Workload>,
}

/// Finds `token` if it is one of ours and active at `now`.
pub(crate) async fn active<S: TokenLookup + ?Sized>(
    store: &S,
    issuer: &Issuer,
    registry: &Registry,
    token: &str,
    now: UnixTime,
) -> Result<Option<Active>, OAuthError> {
    if reference::looks_like_jwt(token) {
        let expect = Expectations {
            issuer: issuer.as_str(),
            audience: None,
            typ: Some(tessera_types::rfc9068::TYP),
            leeway: 0,
            now: now.0,
        };
        let Ok(v) = verify_access_token(token, |jws| jws.kid.as_ref().and_then(|k| registry.verifying_key(k)), &expect)
        else {
            return Ok(None);
        };
        let c = v.claims;
        // Every token Tessera signs carries `client_id` and `jti` (RFC 9068 §2.2); one without
        // them is not ours to describe or revoke.
        let (Some(client_id), Some(jti)) = (c.client_id, c.jti) else {
            return Ok(None);
        };
        let iat = c.iat.unwrap_or(c.exp);
        if !client_still_holds(registry, &client_id, iat) {
            return Ok(None);
        }
        if store.is_jti_revoked(&jti).await.map_err(OAuthError::unavailable)? {
            return Ok(None);
        }
        return Ok(Some(Active {
            kind: Kind::Jwt,
            // RFC 9068 §2.2: with no resource owner, `sub` is the client.
            sub: c.sub.unwrap_or_else(|| client_id.as_str().to_owned()),
            client_id,
            scope: c.scope.filter(|s| !s.is_empty()),
            aud: c.aud.into_iter().filter_map(|a| Resource::new(a).ok()).collect(),
            iat,
            nbf: c.nbf.unwrap_or(iat),
            exp: c.exp,
            jti,
            cnf: c.cnf,
            act: c.other.get("act").and_then(|a| serde_json::from_value(a.clone()).ok()),
            workload: c.other.get("workload").and_then(|w| serde_json::from_value(w.clone()).ok()),
        }));
    }
    let key = ReferenceKey::of(token);
    let Some(t) = store.find_reference(&key).await.map_err(OAuthError::unavailable)? else {
        return Ok(None);
    };
    if t.revoked || now >= t.exp || !client_still_holds(registry, &t.client_id, t.iat) {
        return Ok(None);
    }
    Ok(Some(Active {
        kind: Kind::Reference(key),
        sub: t.client_id.as_str().to_owned(),
        client_id: t.client_id,
        scope: t.scope,
        aud: t.audiences,
        iat: t.iat,
        nbf: t.iat,
        exp: t.exp,
        jti: t.jti,
        cnf: t.cnf,
        act: None,
        workload: t.workload,
    }))
}

/// A token is only as good as its client: once the client is disabled or removed, or its
/// tokens revoked wholesale (`tessera token revoke --client`), its tokens are inactive, as
/// soon as the registry snapshot shows it.
fn client_still_holds(registry: &Registry, client_id: &ClientId, iat: UnixTime) -> bool {
    registry
        .client(client_id)
        .is_some_and(|c| c.enabled && c.tokens_not_before.is_none_or(|not_before| iat >= not_before))
}
