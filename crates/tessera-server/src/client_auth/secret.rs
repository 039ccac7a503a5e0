//! Verifying a presented client secret within the brute-force limits: the failure limiter,
//! the per-address cap on KDF work in progress, and the bounded KDF pool behind
//! [`SecretVerifier`]. Every failure costs the same time, whatever its reason.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use tessera_store::{AuditAction, ClientRecord, SecretRecord};
use tessera_types::{ClientSecret, ErrorCode};

use super::gate::backing_off;
use super::{Credentials, failed};
use crate::error::OAuthError;
use crate::metrics::Limited;
use crate::registry::Registry;
use crate::secrets::Verdict;
use crate::state::Inner;

/// Why an authentication failed, for the WARN line (never sent to the client).
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnknownClient,
    DisabledClient,
    WrongSecret,
    /// The secret matches one whose `--expires-in` has passed.
    ExpiredSecret,
}

/// Authenticates against the registry snapshot: credentials known good (a generated
/// secret, or an imported one verified recently) pass at once; anyone else backing off gets
/// 429; the rest are verified, every failure costing the same time.
pub(super) async fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    secret: &ClientSecret,
    peer: Option<IpAddr>,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let (verifier, limiter, now) = (&s.verifier, &s.failures, s.clock.now());
    let id = creds.client_id.as_str();
    let client = registry.client(&creds.client_id);
    let usable = client.filter(|c| c.enabled);
    if let Some(c) = usable
        && let Some(matched) = verifier.matched(&c.client_id, &c.secrets, secret)
    {
        return accept(s, c, matched, creds, peer);
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
            let c = usable.expect("only a usable client verifies");
            // `verify` has just cached the success: this finds the secret without a KDF run.
            match verifier.matched(&c.client_id, &c.secrets, secret) {
                Some(matched) => accept(s, c, matched, creds, peer),
                None => Err(failed(creds.method)),
            }
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

/// A secret that matched: refused if expired (audited, counted as a failure), otherwise its
/// use recorded (batched) and the client authenticated.
fn accept<'r>(
    s: &Inner,
    client: &'r Arc<ClientRecord>,
    matched: &SecretRecord,
    creds: &Credentials,
    peer: Option<IpAddr>,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let now = s.clock.now();
    if matched.expired(now) {
        tracing::warn!(client_id = %creds.client_id, secret_id = %matched.id, peer = ?peer, reason = ?Failure::ExpiredSecret, "client authentication failed");
        let detail = serde_json::json!({ "secret_id": matched.id, "expired_at": matched.expires_at.map(|t| t.0) });
        s.audit.record(crate::audit::actor_of(peer), AuditAction::SecretExpired, creds.client_id.as_str(), detail);
        s.failures.failed(creds.client_id.as_str(), peer, now);
        // Counted as `tessera_auth_failures_total{method, reason="expired_secret"}`.
        return Err(failed(creds.method).with_auth_failure(creds.method.as_str(), &Failure::ExpiredSecret));
    }
    s.failures.succeeded(creds.client_id.as_str());
    s.secret_usage.used(&matched.id, matched.last_used_at, now);
    Ok(client)
}
