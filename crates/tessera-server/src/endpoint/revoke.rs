//! `POST /connect/revoke` (RFC 7009).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_types::rfc7009::TokenTypeHint;
use tessera_types::{Endpoint, ErrorCode};

use super::common::{Peer, authenticate, read_form, respond, token_param};
use crate::error::{OAuthError, no_store};
use crate::state::AppState;
use crate::token::lookup::{self, Kind};

/// The handler.
pub async fn revoke(State(state): State<AppState>, peer: Peer, headers: HeaderMap, body: Body) -> Response {
    respond(&headers, handle(&state, &peer, &headers, body)).await
}

async fn handle(state: &AppState, peer: &Peer, headers: &HeaderMap, body: Body) -> Result<Response, OAuthError> {
    let form = read_form(state, headers, peer, body, &[]).await?;
    // §2.1: token REQUIRED; token_type_hint is a hint: the search extends to every kind, so
    // any value (known or not) is accepted and then ignored. Only a repeated one is refused.
    let token = token_param(&form)?;
    let _hint = form.single("token_type_hint")?.map(TokenTypeHint::parse);
    let (registry, caller) = authenticate(state, headers, &form, Endpoint::Revocation, peer).await?;
    let now = state.0.clock.now();
    if let Some(t) = lookup::active(&state.0, &registry, token, now).await? {
        // §2.1: the server "verifies whether the token was issued to the client making the
        // revocation request. If this validation fails, the request is refused".
        if t.client_id != caller.client_id {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "the token was not issued to this client"));
        }
        // Committed before the 200: an acknowledged revocation survives a crash.
        match t.kind {
            Kind::Reference { hash } => {
                state.0.store.revoke_token(&hash).await.map_err(OAuthError::unavailable)?;
            }
            Kind::Jwt => {
                state.0.store.revoke_jti(&t.jti, &t.client_id, t.exp).await.map_err(OAuthError::unavailable)?
            }
        }
        tracing::info!(client_id = %caller.client_id, jti = %t.jti, "revoked token");
    }
    // §2.2: 200 whether or not the token was known ("invalid tokens do not cause an error").
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    Ok(response)
}
