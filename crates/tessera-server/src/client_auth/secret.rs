//! Verifying a presented client secret within the brute-force limits: the failure limiter,
//! the per-address cap on KDF work in progress, and the bounded KDF pool behind
//! [`SecretVerifier`]. Every failure costs the same time, whatever its reason.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use tessera_store::ClientRecord;
use tessera_types::{ClientSecret, ErrorCode, UnixTime};

use super::gate::backing_off;
use super::{Credentials, failed};
use crate::error::OAuthError;
use crate::metrics::Limited;
use crate::registry::Registry;
use crate::secrets::{SecretVerifier, Verdict};
use crate::throttle::FailureLimiter;

/// Why an authentication failed, for the WARN line (never sent to the client).
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnknownClient,
    DisabledClient,
    WrongSecret,
}

/// Authenticates against the registry snapshot: credentials known good (a generated
/// secret, or an imported one verified recently) pass at once; anyone else backing off gets
/// 429; the rest are verified, every failure costing the same time.
pub(super) async fn verify<'r>(
    registry: &'r Registry,
    verifier: &SecretVerifier,
    limiter: &FailureLimiter,
    creds: &Credentials,
    secret: &ClientSecret,
    peer: Option<IpAddr>,
    now: UnixTime,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let id = creds.client_id.as_str();
    let client = registry.client(&creds.client_id);
    let usable = client.filter(|c| c.enabled);
    if let Some(c) = usable
        && verifier.verify_cheap(&c.client_id, &c.secrets, secret)
    {
        limiter.succeeded(id);
        return Ok(c);
    }
    if let Err(retry_after) = limiter.check(id, peer, now) {
        tracing::debug!(client_id = %creds.client_id, peer = ?peer, retry_after, "authentication refused: backing off");
        return Err(backing_off(retry_after));
    }
    let Some(_pending) = limiter.begin(peer) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "too many authentications in progress from this address; retry shortly",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(1)
        .limited_by(Limited::KdfPerAddress));
    };
    match verifier.verify(&creds.client_id, usable.map(|c| c.secrets.as_slice()), secret).await {
        Verdict::Valid => {
            limiter.succeeded(id);
            Ok(usable.expect("only a usable client verifies"))
        }
        Verdict::Busy => Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many authentications in progress; retry shortly",
        )
        .with_retry_after(1)
        .limited_by(Limited::KdfBusy)),
        Verdict::Invalid => {
            let reason = match client {
                None => Failure::UnknownClient,
                Some(c) if !c.enabled => Failure::DisabledClient,
                Some(_) => Failure::WrongSecret,
            };
            tracing::warn!(client_id = %creds.client_id, peer = ?peer, ?reason, "client authentication failed");
            limiter.failed(id, peer, now);
            Err(failed(creds.method).with_auth_failure(creds.method.as_str(), &reason))
        }
    }
}
