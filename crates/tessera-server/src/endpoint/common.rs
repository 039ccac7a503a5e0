//! What the three client-authenticated POST endpoints share: reading the form and
//! authenticating the client.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_store::ClientRecord;
use tessera_types::{Endpoint, ErrorCode, Permission};

use crate::client_auth;
use crate::error::OAuthError;
use crate::form::{Form, require_form_content_type};
use crate::registry::Registry;
use crate::state::AppState;
use crate::transport::PeerAddr;

/// Renders the outcome of a client-authenticated endpoint: errors per RFC 6749 §5.2, with the
/// Basic challenge on a 401 whenever the client tried Basic.
pub(crate) async fn respond(
    headers: &HeaderMap,
    outcome: impl std::future::Future<Output = Result<Response, OAuthError>>,
) -> Response {
    let basic = client_auth::uses_basic(headers);
    match outcome.await {
        Ok(response) => response,
        Err(e) => {
            let challenge = e.basic_challenge || basic;
            e.with_basic_challenge(challenge).into_response()
        }
    }
}

/// Reads and parses a form body: content type (RFC 6749 appendix B), size limit (413), strict
/// decoding, and §3.2's "MUST NOT be included more than once" for all but `multi`.
pub(crate) async fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    peer: &Peer,
    body: Body,
    multi: &[&str],
) -> Result<Form, OAuthError> {
    // Someone backing off is refused before their body is read: a flood of large bodies with
    // wrong secrets costs no more than their headers.
    client_auth::early_gate(
        &state.0.registry.get(),
        &state.0.verifier,
        &state.0.failures,
        headers,
        peer.0,
        state.0.clock.now(),
    )?;
    require_form_content_type(headers)?;
    let bytes = read_body(headers, body, state.0.max_body_bytes).await?;
    let form = Form::parse(&bytes)?;
    form.reject_repeats(multi)?;
    Ok(form)
}

/// The peer's address, when the request came through the listener (tests driving the router
/// directly have none, and are then limited per client id only).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<PeerAddr>().map(|p| crate::transport::bucket(p.0.ip()))))
    }
}

/// Authenticates the client (RFC 6749 §2.3) and requires its permission for `endpoint`.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    endpoint: Endpoint,
    peer: &Peer,
) -> Result<(Arc<Registry>, Arc<ClientRecord>), OAuthError> {
    let creds = client_auth::extract(headers, form)?;
    let registry = state.0.registry.fresh().ok_or_else(|| OAuthError::unavailable("registry snapshot is stale"))?;
    let s = &state.0;
    let client =
        client_auth::authenticate(&registry, &s.verifier, &s.failures, &creds, peer.0, s.clock.now()).await?.clone();
    if !client.permissions.contains(&Permission::Endpoint(endpoint)) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("the client may not use the {} endpoint", endpoint.as_str()),
        ));
    }
    Ok((registry, client))
}

/// The `token` parameter of introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1):
/// REQUIRED; anything longer than any token this server issues is refused outright.
pub(crate) fn token_param(form: &Form) -> Result<&str, OAuthError> {
    let token = form.single("token")?.ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    if token.len() > MAX_TOKEN_PARAM {
        return Err(OAuthError::invalid_request(format!("token exceeds {MAX_TOKEN_PARAM} bytes")));
    }
    Ok(token)
}

/// Longest `token` parameter accepted.
pub(crate) const MAX_TOKEN_PARAM: usize = 8 * 1024;

/// Reads the body up to `limit` bytes; larger bodies get 413 and are not parsed.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, OAuthError> {
    let too_large = || {
        OAuthError::invalid_request(format!("request body exceeds {limit} bytes"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if inner.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large()
        } else {
            OAuthError::invalid_request("the request body could not be read")
        }
    })
}
