//! `POST /connect/token` (RFC 6749 §3.2, §4.4, §5).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_store::ClientRecord;
use tessera_types::rfc6749::TokenResponse;
use tessera_types::{AccessToken, ErrorCode, GrantType, Permission, ScopeSet};

use crate::client_auth::{ClientRequest, TokenEndpoint};
use crate::error::{OAuthError, no_store};
use crate::grant;
use crate::limits::RateLimitMode;
use crate::metrics::Limited;
use crate::state::{AppState, Inner};
use crate::token;

/// What a token request turned out to be, as far as it got: the metrics' labels.
#[derive(Default)]
struct Seen {
    grant: Option<GrantType>,
    client: Option<Arc<ClientRecord>>,
}

pub(crate) async fn token(
    State(state): State<AppState>,
    request: Result<ClientRequest<TokenEndpoint>, OAuthError>,
) -> Result<Response, OAuthError> {
    let mut seen = Seen::default();
    // Refused before the body was read (backoff, size, content type) or after: counted alike.
    let result = match request {
        Ok(request) => respond(&state, request, &mut seen).await,
        Err(refused) => Err(refused),
    };
    let client = seen.client.as_ref().map(|c| &c.client_id);
    state.0.metrics.token_request(client, seen.grant, result.as_ref().err().map(|e| e.code));
    result
}

async fn respond(
    state: &AppState,
    request: ClientRequest<TokenEndpoint>,
    seen: &mut Seen,
) -> Result<Response, OAuthError> {
    let s = &state.0;
    let form = request.form();
    // §4.4.2: grant_type REQUIRED, value MUST be "client_credentials".
    let grant_type = form.single("grant_type")?.ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let Some(grant_type) = GrantType::from_param(grant_type) else {
        return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "only client_credentials is supported"));
    };
    seen.grant = Some(grant_type);
    let requested = match form.single("scope")? {
        Some(raw) => Some(
            ScopeSet::parse(raw)
                .map_err(|_| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed (RFC 6749 section 3.3)"))?,
        ),
        None => None,
    };

    // §4.4.2: "The client MUST authenticate with the authorization server".
    let caller = request.authenticate(state).await?;
    seen.client = Some(caller.client.clone());
    let client = &caller.client;
    // RFC 7523 §2.1: the grant is the assertion. A request that authenticated a client some
    // other way has not presented one (issue 15: the trust's rules name the client; sending
    // both is refused rather than reconciled).
    if grant_type == GrantType::JwtBearer && !caller.by_assertion_grant {
        return Err(OAuthError::invalid_request(
            "a jwt-bearer grant is authorized by its assertion alone: send no other client authentication",
        ));
    }
    if !client.permissions.contains(&Permission::GrantType(grant_type)) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "the client may not use this grant type"));
    }
    within_issuance_rate(s, client)?;
    let mut grant = grant::resolve(s, grant_type, &caller.registry, client, requested.as_ref(), form).await?;
    grant.cnf = caller.confirmation();
    // The subject's workload for an exchange (RFC 8693), else the caller's own.
    grant.workload = grant.workload.take().or_else(|| caller.workload.clone());
    // RFC 9449 §5: a valid proof binds the token to its key.
    let jkt = token::dpop::bind(s, request.dpop()).await?;
    if client.require_dpop && jkt.is_none() {
        let refusal =
            OAuthError::new(ErrorCode::InvalidDpopProof, "this client's tokens must be DPoP-bound: send a DPoP proof");
        // The nonce the retry will need, so that it is not refused a second time (§8.2).
        return Err(match token::dpop::current_nonce(s) {
            Some(nonce) => refusal.with_dpop_nonce(nonce),
            None => refusal,
        });
    }
    if let Some(jkt) = &jkt {
        grant.cnf.get_or_insert_with(Default::default).jkt = Some(jkt.clone());
    }
    let access_token = token::issue(s, &caller.registry, client, &grant).await?;

    s.tokens_issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // §5.1: the response carries Cache-Control: no-store and Pragma: no-cache.
    let mut response = axum::Json(TokenResponse {
        access_token: AccessToken::new(access_token),
        // RFC 9449 §5: "token_type": "DPoP" for a bound token.
        token_type: if jkt.is_some() { "DPoP" } else { "Bearer" }.into(),
        // What the token says: an exchanged token ends with its subject token (RFC 8693).
        expires_in: Some(match grant.not_after {
            Some(limit) => client.access_token_lifetime.min(limit.0.saturating_sub(s.clock.now().0)).max(0),
            None => client.access_token_lifetime,
        }),
        scope: Some(grant.scopes.to_string()),
        // RFC 8693 §2.2.1: REQUIRED in an exchange's answer.
        issued_token_type: (grant_type == GrantType::TokenExchange)
            .then(|| tessera_types::rfc8693::ACCESS_TOKEN.into()),
    })
    .into_response();
    no_store(&mut response);
    if let Some(nonce) = jkt.as_ref().and_then(|_| token::dpop::current_nonce(s)) {
        if let Ok(v) = axum::http::HeaderValue::from_str(&nonce) {
            response.headers_mut().insert(token::dpop::NONCE_HEADER, v);
        }
    }
    Ok(response)
}

/// Per-client issuance rate: a client that caches its tokens as it should never meets it.
/// Counted before the grant is resolved, so refused requests count too.
fn within_issuance_rate(s: &Inner, client: &ClientRecord) -> Result<(), OAuthError> {
    let Err(retry_after) = s.issuance.take(client, tokio::time::Instant::now()) else { return Ok(()) };
    match s.issuance.mode() {
        RateLimitMode::Enforce => {
            tracing::info!(client_id = %client.client_id, retry_after, "issuance rate limit reached");
            Err(OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "token issuance rate limit reached for this client; reuse tokens until they expire",
            )
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(retry_after)
            .limited_by(Limited::IssuanceRate))
        }
        RateLimitMode::Monitor => {
            s.rate_limited_monitored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.metrics.limited(Limited::IssuanceRateMonitored);
            tracing::warn!(client_id = %client.client_id, "issuance rate limit exceeded (monitor mode: issued)");
            Ok(())
        }
    }
}
