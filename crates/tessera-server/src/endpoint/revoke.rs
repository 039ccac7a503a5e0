//! `POST /connect/revoke` (RFC 7009), and the storage it writes to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_types::{ClientId, ErrorCode, Jti, Resource, UnixTime};

use super::token_param::token_param;
use crate::client_auth::{ClientRequest, RevocationEndpoint};
use crate::error::{OAuthError, no_store};
use crate::state::AppState;
use crate::storage::StoreFuture;
use crate::token::lookup::{self, Kind, TokenLookup};
use crate::token::reference::ReferenceKey;

/// What revocation needs beyond finding the token: marking it revoked, durably, and telling
/// the revocation feed in the same commit.
pub trait RevocationStore: TokenLookup {
    /// Marks the reference token with `key` revoked.
    fn revoke_reference<'a>(&'a self, key: &'a ReferenceKey, now: UnixTime) -> StoreFuture<'a, ()>;
    /// Remembers a JWT's `jti` as revoked until `exp`, when the token would expire anyway.
    fn revoke_jti<'a>(&'a self, jwt: RevokedJwt<'a>, now: UnixTime) -> StoreFuture<'a, ()>;
}

/// A JWT being revoked: what the feed tells, and whom (its audiences, RFC 7519 `aud`).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct RevokedJwt<'a> {
    pub jti: &'a Jti,
    pub client_id: &'a ClientId,
    pub exp: UnixTime,
    pub audiences: &'a [Resource],
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    request: Result<ClientRequest<RevocationEndpoint>, OAuthError>,
) -> Result<Response, OAuthError> {
    let result = match request {
        Ok(request) => respond(&state, request).await,
        Err(refused) => Err(refused),
    };
    state.0.metrics.revocation(result.is_ok());
    result
}

async fn respond(state: &AppState, request: ClientRequest<RevocationEndpoint>) -> Result<Response, OAuthError> {
    let s = &state.0;
    // §2.1: token REQUIRED, token_type_hint OPTIONAL.
    let token = token_param(request.form())?;
    let caller = request.authenticate(state).await?;
    let store = &*s.stores.revocation;
    if let Some(t) = lookup::active(store, &s.issuer, &caller.registry, token, s.clock.now()).await? {
        // §2.1: the server "verifies whether the token was issued to the client making the
        // revocation request. If this validation fails, the request is refused".
        if t.client_id != caller.client.client_id {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "the token was not issued to this client"));
        }
        // Committed before the 200: an acknowledged revocation survives a crash.
        let now = s.clock.now();
        let format = if matches!(t.kind, Kind::Jwt) { "jwt" } else { "reference" };
        match t.kind {
            Kind::Reference(key) => store.revoke_reference(&key, now).await,
            Kind::Jwt => {
                let jwt = RevokedJwt { jti: &t.jti, client_id: &t.client_id, exp: t.exp, audiences: &t.aud };
                store.revoke_jti(jwt, now).await
            }
        }
        .map_err(OAuthError::unavailable)?;
        s.events.notify_waiters();
        let detail = serde_json::json!({
            "jti": t.jti.as_str(),
            "format": format,
        });
        let actor = format!("client:{}", caller.client.client_id);
        s.audit.record(actor, tessera_store::AuditAction::TokenRevoked, t.client_id.as_str(), detail);
        tracing::info!(client_id = %caller.client.client_id, jti = %t.jti, "revoked token");
    }
    // §2.2: 200 whether or not the token was known ("invalid tokens do not cause an error").
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}
