//! `POST /connect/introspect` (RFC 7662).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tessera_types::rfc7662::IntrospectionResponse;
use tessera_types::rfc9068::Audience;

use super::token_param::token_param;
use crate::client_auth::{ClientRequest, IntrospectionEndpoint};
use crate::error::{OAuthError, no_store};
use crate::state::AppState;
use crate::token::lookup;

pub(crate) async fn introspect(
    State(state): State<AppState>,
    request: Result<ClientRequest<IntrospectionEndpoint>, OAuthError>,
) -> Result<Response, OAuthError> {
    let result = match request {
        Ok(request) => respond(&state, request).await,
        Err(refused) => Err(refused),
    };
    state.0.metrics.introspection(result.as_ref().ok().map(|(active, _)| *active));
    result.map(|(_, response)| response)
}

/// The answer, and whether it said `active`.
async fn respond(
    state: &AppState,
    request: ClientRequest<IntrospectionEndpoint>,
) -> Result<(bool, Response), OAuthError> {
    let s = &state.0;
    // §2.1: token REQUIRED, token_type_hint OPTIONAL.
    let token = token_param(request.form())?;
    // §2.1: "the protected resource MUST also be authenticated" — as a client holding the
    // introspection permission (as OpenIddict's ept:introspection).
    let caller = request.authenticate(state).await?;
    let found = lookup::active(&*s.stores.lookup, &s.issuer, &caller.registry, token, s.clock.now()).await?;
    // §4: a caller learns only about tokens meant for it — its client_id must be an audience.
    // Anything else is `{"active": false}` and nothing more, whatever the reason.
    let body = match found {
        Some(t) if t.aud.iter().any(|a| a.as_str() == caller.client.client_id.as_str()) => IntrospectionResponse {
            active: true,
            scope: t.scope.map(|s| s.to_string()),
            client_id: Some(t.client_id),
            sub: Some(t.sub),
            aud: Some(Audience::from_list(t.aud)),
            iss: Some(s.issuer.to_string()),
            exp: Some(t.exp),
            iat: Some(t.iat),
            nbf: Some(t.nbf),
            jti: Some(t.jti),
            // RFC 9449 §6.2: a DPoP-bound token is of type DPoP.
            token_type: Some(if t.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) { "DPoP" } else { "Bearer" }.into()),
            // RFC 8705 §3.2: the resource server compares it with the certificate the token
            // came with.
            cnf: t.cnf,
            act: t.act,
            workload: t.workload,
        },
        _ => IntrospectionResponse::inactive(),
    };
    let active = body.active;
    let mut response = axum::Json(body).into_response();
    no_store(&mut response);
    Ok((active, response))
}
