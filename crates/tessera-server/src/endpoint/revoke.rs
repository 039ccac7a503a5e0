//! `POST /connect/revoke` (RFC 7009), and the storage it writes to.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_types::{ClientId, ErrorCode, Jti, UnixTime};

use super::token_param::token_param;
use crate::client_auth::{ClientRequest, RevocationEndpoint};
use crate::error::{OAuthError, no_store};
use crate::state::AppState;
use crate::storage::StoreFuture;
use crate::token::lookup::{self, Kind, TokenLookup};

/// What revocation needs beyond finding the token: marking it revoked, durably.
pub trait RevocationStore: TokenLookup {
    /// Marks the reference token whose hash is `hash` revoked.
    fn revoke_reference<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, ()>;
    /// Remembers a JWT's `jti` as revoked until `exp`, when the token would expire anyway.
    fn revoke_jti<'a>(&'a self, jti: &'a Jti, client_id: &'a ClientId, exp: UnixTime) -> StoreFuture<'a, ()>;
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    request: ClientRequest<RevocationEndpoint>,
) -> Result<Response, OAuthError> {
    let s = &state.0;
    // §2.1: token REQUIRED, token_type_hint OPTIONAL.
    let token = token_param(request.form())?;
    let caller = request.authenticate(&state).await?;
    let store = &*s.stores.revocation;
    if let Some(t) = lookup::active(store, &s.issuer, &caller.registry, token, s.clock.now()).await? {
        // §2.1: the server "verifies whether the token was issued to the client making the
        // revocation request. If this validation fails, the request is refused".
        if t.client_id != caller.client.client_id {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "the token was not issued to this client"));
        }
        // Committed before the 200: an acknowledged revocation survives a crash.
        match t.kind {
            Kind::Reference { hash } => store.revoke_reference(&hash).await,
            Kind::Jwt => store.revoke_jti(&t.jti, &t.client_id, t.exp).await,
        }
        .map_err(OAuthError::unavailable)?;
        tracing::info!(client_id = %caller.client.client_id, jti = %t.jti, "revoked token");
    }
    // §2.2: 200 whether or not the token was known ("invalid tokens do not cause an error").
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}
