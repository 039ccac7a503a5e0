//! `POST /connect/token` (RFC 6749 §3.2, §4.4, §5).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_types::AccessToken;
use tessera_types::rfc6749::TokenResponse;
use tessera_types::{Endpoint, ErrorCode, GrantType, Permission, ScopeSet, TokenFormat};

use super::common::{Peer, authenticate, read_form, respond};
use crate::error::{OAuthError, no_store};
use crate::grant::client_credentials;
use crate::limits::RateLimitMode;
use crate::state::AppState;
use crate::token::{jwt, reference};

/// The handler.
pub async fn token(State(state): State<AppState>, peer: Peer, headers: HeaderMap, body: Body) -> Response {
    respond(&headers, handle(&state, &peer, &headers, body)).await
}

async fn handle(state: &AppState, peer: &Peer, headers: &HeaderMap, body: Body) -> Result<Response, OAuthError> {
    let s = &state.0;
    // §3.2: parameters MUST NOT be repeated; RFC 8707 §2 lets `resource` repeat.
    let form = read_form(state, headers, peer, body, &["resource"]).await?;

    // §4.4.2: grant_type REQUIRED, value MUST be "client_credentials".
    let grant_type = form.single("grant_type")?.ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let Some(grant_type) = GrantType::from_param(grant_type) else {
        return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "only client_credentials is supported"));
    };
    let requested = match form.single("scope")? {
        Some(raw) => Some(
            ScopeSet::parse(raw)
                .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed (RFC 6749 section 3.3)"))?,
        ),
        None => None,
    };

    // §4.4.2: "The client MUST authenticate with the authorization server".
    let (registry, client) = authenticate(state, headers, &form, Endpoint::Token, peer).await?;
    if !client.permissions.contains(&Permission::GrantType(grant_type)) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "the client may not use this grant type"));
    }

    // Per-client issuance rate: a client that caches its tokens as it should never meets it.
    if let Err(retry_after) = s.issuance.take(&client, tokio::time::Instant::now()) {
        match s.issuance.mode() {
            RateLimitMode::Enforce => {
                tracing::info!(client_id = %client.client_id, retry_after, "issuance rate limit reached");
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "token issuance rate limit reached for this client; reuse tokens until they expire",
                )
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .with_retry_after(retry_after));
            }
            RateLimitMode::Monitor => {
                s.rate_limited_monitored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(client_id = %client.client_id, "issuance rate limit exceeded (monitor mode: issued)");
            }
        }
    }

    let grant = match grant_type {
        GrantType::ClientCredentials => {
            client_credentials::resolve(&registry, &client, requested.as_ref(), form.multi("resource"))?
        }
    };

    let now = s.clock.now();
    let access_token = match client.token_format {
        TokenFormat::Jwt => {
            let alg = client.signing_alg.unwrap_or(s.signing_algs[0]);
            let key = registry.signing_key(alg).ok_or_else(|| {
                OAuthError::server_error(format!("no active {alg} key; configure it in signing_algs"))
            })?;
            let claims = jwt::claims(&s.issuer, &client.client_id, &grant, now, client.access_token_lifetime, &*s.rng);
            let token = jwt::sign(key, &claims).map_err(OAuthError::server_error)?;
            tracing::info!(client_id = %client.client_id, jti = %claims.jti, scope = %grant.scopes, kid = %key.kid, "issued access token");
            token
        }
        TokenFormat::Reference => {
            if !s.issuance.take_live(&client) {
                tracing::warn!(client_id = %client.client_id, "live reference token cap reached");
                return Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "this client holds as many live reference tokens as it may; reuse them until they expire",
                )
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .with_retry_after(60));
            }
            let token = reference::generate(&*s.rng);
            let record =
                reference::record(&token, &client.client_id, &grant, now, client.access_token_lifetime, &*s.rng);
            // Committed (group commit) before the response is sent: a token the client holds
            // is never lost to a crash.
            if let Err(e) = s.token_writer.insert(record.clone()).await {
                s.issuance.untake_live(&client);
                return Err(OAuthError::unavailable(e));
            }
            s.issuance.committed_live(&client);
            tracing::info!(client_id = %client.client_id, jti = %record.jti, scope = %grant.scopes, "issued reference token");
            token
        }
    };

    s.tokens_issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // §5.1: the response carries Cache-Control: no-store and Pragma: no-cache.
    let mut response = axum::Json(TokenResponse {
        access_token: AccessToken::new(access_token),
        token_type: "Bearer".into(),
        expires_in: Some(client.access_token_lifetime),
        scope: Some(grant.scopes.to_string()),
    })
    .into_response();
    no_store(&mut response);
    Ok(response)
}
