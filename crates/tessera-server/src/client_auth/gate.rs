//! The brute-force gate in front of the form body: while an address or a Basic client id
//! backs off, only known-good Basic credentials get further (and then 429, not a delay).

use std::net::IpAddr;

use axum::http::StatusCode;
use tessera_types::{ClientId, ClientSecret, ErrorCode, UnixTime};

use crate::error::OAuthError;
use crate::registry::Registry;
use crate::secrets::SecretVerifier;
use crate::throttle::FailureLimiter;

/// The answer while a client id or an address backs off: 429 rather than a delay, so the
/// attacker holds no connection of ours while waiting, and a well-behaved client learns when
/// to retry.
pub(super) fn backing_off(retry_after: u64) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "too many failed authentications; retry later (RFC 6749 section 2.3.1)")
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(retry_after)
        .limited_by(crate::metrics::Limited::AuthBackoff)
}

/// Before the body is read: a flood of large bodies with wrong secrets costs no more than
/// their headers. Costs two map look-ups when nobody backs off.
pub(super) fn early_gate(
    registry: &Registry,
    verifier: &SecretVerifier,
    limiter: &FailureLimiter,
    basic: Option<(&str, &str)>,
    peer: Option<IpAddr>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let id = basic.map_or("", |(id, _)| id);
    let Err(retry_after) = limiter.check(id, peer, now) else { return Ok(()) };
    let known_good = basic.is_some_and(|(id, secret)| {
        let (Ok(id), Ok(secret)) = (ClientId::new(id), ClientSecret::new(secret)) else { return false };
        let Some(client) = registry.client(&id) else { return false };
        client.enabled && verifier.verify_cheap(&client.client_id, &client.secrets, &secret)
    });
    if known_good { Ok(()) } else { Err(backing_off(retry_after)) }
}
