//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2, OpenID Connect Core §9): the client
//! signs a short-lived JWT with its private key; the server checks it against the public
//! keys the client registered, with the RFC 7523bis audience rule, and remembers its `jti`
//! in the store so it is never accepted twice. A valid assertion costs one signature
//! verification and one INSERT; there is no KDF on this path.

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_jose::{Jws, VerifyingKey};
use tessera_store::ClientRecord;
use tessera_types::rfc7523::{AssertionClaims, JWT_BEARER};
use tessera_types::{ClientAuthMethod, ClientId, ErrorCode, JwksUri, UnixTime};

use super::gate::backing_off;
use super::{Credentials, Proof, failed};
use crate::error::OAuthError;
use crate::form::Form;
use crate::limits::{AssertionAudience, AssertionLimits};
use crate::registry::Registry;
use crate::state::Inner;
use crate::storage::StoreFuture;

/// Where used assertion ids are remembered (RFC 7523 §3 item 7): shared by every instance
/// and kept across restarts, so a replay is caught wherever it lands.
pub trait AssertionReplayStore: Send + Sync {
    /// Records the `jti` (hashed) of an assertion by `client_id` valid until `expires_at`;
    /// `false` when it was recorded before.
    fn use_jti<'a>(&'a self, client_id: &'a ClientId, jti_hash: &'a str, expires_at: UnixTime)
    -> StoreFuture<'a, bool>;
    /// Counts one more use of what `owner` keeps under `hash` until `expires_at`; `false` once
    /// it has been used `max_uses` times (a trust's bound on reusing a workload token).
    fn count_use<'a>(
        &'a self,
        owner: &'a ClientId,
        hash: &'a str,
        expires_at: UnixTime,
        max_uses: i64,
    ) -> StoreFuture<'a, bool>;
}

/// Why an assertion was refused, for the WARN line (the assertion itself is never logged,
/// nor is anything told to the client beyond `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    UnsupportedAssertionType,
    TooLarge,
    Malformed,
    /// `none`, HMAC or an unknown `alg` (RFC 7515 §4.1.1 allow-list in tessera-jose).
    Algorithm,
    /// `crit` present (RFC 7515 §4.1.11).
    Critical,
    ClientIdMismatch,
    UnknownClient,
    DisabledClient,
    NoKeys,
    /// The client's `jwks_uri` could not be fetched (the cause is logged where it failed).
    KeysUnavailable,
    UnknownKey,
    BadSignature,
    Issuer,
    Subject,
    Audience,
    MissingExp,
    Expired,
    TooLongLived,
    NotYetValid,
    IssuedInFuture,
    MissingJti,
    Replayed,
}

/// Whether the form carries a client assertion (either parameter is enough to route the
/// request here, where a missing partner is reported).
pub(super) fn presented(form: &Form) -> bool {
    form.multi("client_assertion").len() + form.multi("client_assertion_type").len() > 0
}

fn refuse(failure: Failure, client_id: Option<&str>) -> OAuthError {
    tracing::warn!(client_id, reason = ?failure, "client authentication failed (private_key_jwt)");
    failed(ClientAuthMethod::PrivateKeyJwt).with_auth_failure("private_key_jwt", &failure)
}

/// The credentials of a request with `client_assertion` (RFC 7521 §4.2): the assertion and
/// the client its `sub` names, not yet verified.
pub(super) fn credentials(form: &Form, max_bytes: usize) -> Result<Credentials, OAuthError> {
    // RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    // request."
    if form.single("client_secret")?.is_some() {
        return Err(OAuthError::invalid_request(
            "client authenticated with both client_secret and client_assertion (RFC 6749 section 2.3)",
        ));
    }
    // RFC 7521 §4.2: both parameters are REQUIRED.
    let (Some(kind), Some(assertion)) = (form.single("client_assertion_type")?, form.single("client_assertion")?)
    else {
        return Err(OAuthError::invalid_request(
            "client_assertion and client_assertion_type go together (RFC 7521 section 4.2)",
        ));
    };
    if kind != JWT_BEARER {
        return Err(refuse(Failure::UnsupportedAssertionType, None));
    }
    // Bounded before anything is decoded (the form body limit bounds it too, but that is
    // sized for other parameters).
    if assertion.len() > max_bytes {
        return Err(refuse(Failure::TooLarge, None));
    }
    // Issue 15: a workload's token from a trusted issuer (its `iss` a URL, not the client).
    if let Some(claims) = unverified_json(assertion) {
        if let Some(issuer) = super::federated::issuer_of(&claims) {
            let key = ClientId::new(issuer).map_err(|_| refuse(Failure::Malformed, None))?;
            let param = match form.single("client_id")? {
                Some(id) => Some(ClientId::new(id).map_err(|_| refuse(Failure::ClientIdMismatch, None))?),
                None => None,
            };
            return Ok(Credentials {
                method: ClientAuthMethod::PrivateKeyJwt,
                client_id: key,
                proof: Proof::Federated { assertion: assertion.to_owned(), client_id: param, grant: false },
            });
        }
    }
    let sub = unverified_claims(assertion).ok().and_then(|c| c.sub).ok_or_else(|| refuse(Failure::Malformed, None))?;
    let client_id = ClientId::new(sub.as_str()).map_err(|_| refuse(Failure::Malformed, None))?;
    // RFC 7521 §4.2: client_id, if present, "MUST identify the client"; RFC 7523 §3: sub is
    // the client_id.
    if form.single("client_id")?.is_some_and(|id| id != client_id.as_str()) {
        return Err(refuse(Failure::ClientIdMismatch, Some(client_id.as_str())));
    }
    Ok(Credentials {
        method: ClientAuthMethod::PrivateKeyJwt,
        client_id,
        proof: Proof::Assertion(assertion.to_owned()),
    })
}

/// The payload as JSON, unverified (to tell a workload's token from a client's assertion).
fn unverified_json(assertion: &str) -> Option<Value> {
    let jws = Jws::parse(assertion).ok()?;
    serde_json::from_slice(&jws.unverified_payload().ok()?).ok()
}

/// Parses the JWS and its claims without trusting them (to find whose keys apply).
fn unverified_claims(assertion: &str) -> Result<AssertionClaims, Failure> {
    let jws = Jws::parse(assertion).map_err(jose_failure)?;
    serde_json::from_slice(&jws.unverified_payload().map_err(|_| Failure::Malformed)?).map_err(|_| Failure::Malformed)
}

fn jose_failure(e: tessera_jose::JoseError) -> Failure {
    use tessera_jose::JoseError;
    match e {
        JoseError::Algorithm(_) => Failure::Algorithm,
        JoseError::Malformed(m) if m.contains("crit") => Failure::Critical,
        JoseError::UnknownKey(_) => Failure::UnknownKey,
        JoseError::Signature => Failure::BadSignature,
        _ => Failure::Malformed,
    }
}

/// What the claim rules need besides the assertion.
struct Expected<'a> {
    issuer: &'a str,
    token_endpoint: &'a str,
    limits: &'a AssertionLimits,
    now: UnixTime,
}

/// An assertion whose signature and claims passed; its `jti` is still to be recorded.
#[derive(Debug)]
struct Checked {
    jti: String,
    /// Until when the assertion could be accepted (its `exp` plus the leeway): how long the
    /// `jti` must be remembered.
    valid_until: UnixTime,
}

/// Verifies `assertion` as `client_id`'s, with `keys` (the client's registered keys): the
/// signature, then RFC 7523 §3's claim rules.
fn check(
    assertion: &str,
    client_id: &ClientId,
    keys: &[VerifyingKey],
    expected: &Expected<'_>,
) -> Result<Checked, Failure> {
    let jws = Jws::parse(assertion).map_err(jose_failure)?;
    if keys.is_empty() {
        return Err(Failure::NoKeys);
    }
    // RFC 7523 §3 item 9: "The JWT MUST be digitally signed", by one of the client's keys.
    jws.verify_with_any(keys).map_err(jose_failure)?;
    let claims: AssertionClaims = serde_json::from_slice(&jws.unverified_payload().map_err(|_| Failure::Malformed)?)
        .map_err(|_| Failure::Malformed)?;
    check_claims(&claims, client_id, expected)
}

/// RFC 7523 §3's rules, each at its item, on claims whose signature verified.
fn check_claims(claims: &AssertionClaims, client_id: &ClientId, expected: &Expected<'_>) -> Result<Checked, Failure> {
    let (now, leeway, max) = (expected.now.0, expected.limits.leeway, expected.limits.max_lifetime);
    // §3 item 1: "The JWT MUST contain an "iss" (issuer) claim"; §2.2 / OIDC Core §9: for
    // client authentication it is the client_id.
    if claims.iss.as_deref() != Some(client_id.as_str()) {
        return Err(Failure::Issuer);
    }
    // §3 item 2.B: "For client authentication, the subject MUST be the "client_id" of the
    // OAuth client."
    if claims.sub.as_deref() != Some(client_id.as_str()) {
        return Err(Failure::Subject);
    }
    // §3 item 3, as RFC 7523bis narrows it: the audience "MUST be the issuer identifier of
    // the authorization server", as the sole value (CVE-2025-27370/27371: an assertion meant
    // for another server must not be accepted here, nor ours there).
    let audience = match &claims.aud {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(one)) if one.len() == 1 => one[0].as_str(),
        _ => None,
    };
    let audience_ok = match (audience, expected.limits.audience) {
        (Some(a), _) if a == expected.issuer => true,
        (Some(a), AssertionAudience::IssuerOrTokenEndpoint) => a == expected.token_endpoint,
        _ => false,
    };
    if !audience_ok {
        return Err(Failure::Audience);
    }
    // §3 item 4: "The JWT MUST contain an "exp" (expiration time) claim ... The
    // authorization server MUST reject any JWT with an expiration time that has passed,
    // subject to allowable clock skew between systems."
    let exp = claims.exp.ok_or(Failure::MissingExp)?;
    if now >= exp.saturating_add(leeway) {
        return Err(Failure::Expired);
    }
    // §3 item 4: "The authorization server MAY reject JWTs with an "exp" claim value that is
    // unreasonably far in the future." Bounded both from now and from its own iat.
    if exp.saturating_sub(now) > max || claims.iat.is_some_and(|iat| exp.saturating_sub(iat) > max) {
        return Err(Failure::TooLongLived);
    }
    // §3 item 5: "The authorization server MUST reject a JWT that is not valid at the time
    // of processing (nbf)", with the same skew.
    if claims.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(Failure::NotYetValid);
    }
    // §3 item 6: "The authorization server MAY reject JWTs with an "iat" claim value that is
    // unreasonably far in the past" (covered by the lifetime bound) — and one from the future
    // is refused too.
    if claims.iat.is_some_and(|iat| now.saturating_add(leeway) < iat) {
        return Err(Failure::IssuedInFuture);
    }
    // §3 item 7: "The JWT MAY contain a "jti" (JWT ID) claim"; Tessera requires it, so that
    // every assertion can be used once (recorded by the caller).
    let jti = claims.jti.clone().filter(|j| !j.is_empty()).ok_or(Failure::MissingJti)?;
    Ok(Checked { jti, valid_until: UnixTime(exp.saturating_add(leeway)) })
}

/// [`check`] with the keys published at the client's `jwks_uri` (RFC 7591 §2). A `kid` they
/// lack (or, without one, no key of the header's algorithm) may mean the client has rotated:
/// the keys are fetched again, once, within the cache's refetch interval, and the assertion
/// checked against them.
async fn check_remote(
    s: &Inner,
    assertion: &str,
    client_id: &ClientId,
    uri: &JwksUri,
    expected: &Expected<'_>,
) -> Result<Checked, Failure> {
    // Not worth a fetch if it is not even a JWS with an acceptable algorithm.
    Jws::parse(assertion).map_err(jose_failure)?;
    let keys = s.remote_keys.keys(client_id, uri, None).await.map_err(|_| Failure::KeysUnavailable)?;
    match check(assertion, client_id, &keys.keys, expected) {
        Err(Failure::UnknownKey) => match s.remote_keys.refetch(client_id, uri, None, keys.generation).await {
            Some(newer) => check(assertion, client_id, &newer.keys, expected),
            None => Err(Failure::UnknownKey),
        },
        outcome => outcome,
    }
}

/// A `jti` as the replay table keeps it: SHA-256, base64url (bounded size, whatever the
/// client sent).
fn jti_hash(jti: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, jti.as_bytes()).as_ref())
}

/// Authenticates an assertion against the registry snapshot. A valid one passes even while
/// its client id backs off (as known-good secrets do), so failures in someone else's name
/// cannot lock a client out; failures count towards the same backoff as wrong secrets.
pub(super) async fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    assertion: &str,
    peer: Option<IpAddr>,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let now = s.clock.now();
    let id = creds.client_id.as_str();
    let expected = Expected { issuer: s.issuer.as_str(), token_endpoint: &s.token_endpoint, limits: &s.assertion, now };
    let client = registry.client(&creds.client_id);
    let outcome = match client {
        None => Err(Failure::UnknownClient),
        Some(c) if !c.enabled => Err(Failure::DisabledClient),
        Some(c) => match &c.jwks_uri {
            Some(uri) => check_remote(s, assertion, &c.client_id, uri, &expected).await.map(|ok| (c, ok)),
            None => check(assertion, &c.client_id, registry.client_keys(&c.client_id), &expected).map(|ok| (c, ok)),
        },
    };
    let failure = match outcome {
        Ok((client, checked)) => {
            match s.stores.assertions.use_jti(&client.client_id, &jti_hash(&checked.jti), checked.valid_until).await {
                Ok(true) => {
                    s.failures.succeeded(id);
                    return Ok(client);
                }
                Ok(false) => Failure::Replayed,
                Err(e) => {
                    tracing::error!(error = %e, "recording a client assertion id failed");
                    let mut e = OAuthError::new(
                        ErrorCode::TemporarilyUnavailable,
                        "client authentication is unavailable; retry shortly",
                    )
                    .with_retry_after(1);
                    e.store_error = true;
                    return Err(e);
                }
            }
        }
        Err(failure) => failure,
    };
    if let Err(retry_after) = s.failures.check(id, peer, now) {
        tracing::debug!(client_id = %creds.client_id, peer = ?peer, retry_after, "authentication refused: backing off");
        return Err(backing_off(retry_after));
    }
    s.failures.failed(id, peer, now);
    Err(refuse(failure, Some(id)))
}

#[cfg(test)]
#[path = "private_key_jwt_tests.rs"]
mod tests;
