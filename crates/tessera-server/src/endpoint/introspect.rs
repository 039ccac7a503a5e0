//! `POST /connect/introspect` (RFC 7662).

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tessera_types::rfc7662::IntrospectionResponse;
use tessera_types::rfc9068::Audience;
use tessera_types::{Endpoint, Resource};

use super::common::{Peer, authenticate, read_form, respond, token_param};
use crate::error::{OAuthError, no_store};
use crate::state::AppState;
use crate::token::lookup;

/// The handler.
pub async fn introspect(State(state): State<AppState>, peer: Peer, headers: HeaderMap, body: Body) -> Response {
    respond(&headers, handle(&state, &peer, &headers, body)).await
}

async fn handle(state: &AppState, peer: &Peer, headers: &HeaderMap, body: Body) -> Result<Response, OAuthError> {
    let form = read_form(state, headers, peer, body, &[]).await?;
    // §2.1: token REQUIRED; token_type_hint OPTIONAL and only a hint — every kind is looked up.
    let token = token_param(&form)?;
    let _hint = form.single("token_type_hint")?;
    // §2.1: "the protected resource MUST also be authenticated" — as a client holding the
    // introspection permission (as OpenIddict's ept:introspection).
    let (registry, caller) = authenticate(state, headers, &form, Endpoint::Introspection, peer).await?;
    let now = state.0.clock.now();
    let found = lookup::active(&state.0, &registry, token, now).await?;
    // §4: a caller learns only about tokens meant for it — its client_id must be an audience.
    // Anything else is `{"active": false}` and nothing more, whatever the reason.
    let body = match found {
        Some(t) if t.aud.iter().any(|a| a == caller.client_id.as_str()) => IntrospectionResponse {
            active: true,
            scope: t.scope,
            client_id: Some(t.client_id),
            sub: Some(t.sub),
            aud: Some(Audience::from_list(t.aud.into_iter().filter_map(|a| Resource::new(a).ok()).collect())),
            iss: Some(state.0.issuer.clone()),
            exp: Some(t.exp),
            iat: Some(t.iat),
            nbf: Some(t.nbf),
            jti: Some(t.jti),
            token_type: Some("Bearer".into()),
        },
        _ => IntrospectionResponse::inactive(),
    };
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok(response)
}
