//! Federated workload identity as client authentication (issue 15): the `client_assertion`
//! (RFC 7521 §4.2, RFC 7523 §2.2) is a token an external issuer gave the workload — a
//! Kubernetes projected service-account token, a SPIFFE JWT-SVID, a GitHub Actions OIDC token
//! — rather than one the client signed itself. Its issuer must be a trust; its signature
//! verifies with the trust's keys; its claims must fit the trust's bounds; and the first of
//! the trust's rules that matches its claims names the client the request authenticates as.
//!
//! Told apart from `private_key_jwt` by its claims: there `iss` and `sub` are both the
//! client id (RFC 7523 §3), here `iss` is an issuer URL and `sub` the workload.

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_jose::{Jws, VerifyingKey};
use tessera_store::ClientRecord;
use tessera_types::rfc9068::Workload;
use tessera_types::{ClientAuthMethod, ClientId, ErrorCode, JWT_BEARER_GRANT, UnixTime};

use super::gate::backing_off;
use super::{Credentials, failed};
use crate::error::OAuthError;
use crate::federation::{Trusted, kinds};
use crate::form::Form;
use crate::registry::Registry;
use crate::state::Inner;

/// Longest lifetime (`exp` − `iat`) accepted from a trust without `--max-lifetime`: workload
/// tokens live minutes to hours (Kubernetes' default is an hour).
const DEFAULT_MAX_LIFETIME: i64 = 86_400;

/// Why a federated assertion was refused (logged; the client is told `invalid_client` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    UntrustedIssuer,
    Malformed,
    NoKeys,
    KeysUnavailable,
    UnknownKey,
    BadSignature,
    Audience,
    MissingExp,
    Expired,
    NotYetValid,
    IssuedInFuture,
    /// `iat` missing where the trust bounds the token's age or lifetime.
    MissingIat,
    TooOld,
    TooLongLived,
    /// Not of the shape the trust's kind prescribes (federation::kinds).
    Shape,
    NoRule,
    /// The rule names a client that is gone or disabled.
    UnknownClient,
    ClientIdMismatch,
    Replayed,
}

/// The issuer of `assertion` when it is a workload's token: `iss` an http(s) URL, not the
/// `sub` (which `private_key_jwt` has equal to it).
pub(super) fn issuer_of(claims: &Value) -> Option<&str> {
    let iss = claims.get("iss")?.as_str()?;
    let url = iss.starts_with("https://") || iss.starts_with("http://");
    (url && claims.get("sub").and_then(Value::as_str) != Some(iss)).then_some(iss)
}

fn refuse(failure: Failure, issuer: &str, grant: bool) -> OAuthError {
    tracing::warn!(issuer, reason = ?failure, grant, "workload token refused (federated workload identity)");
    if grant {
        // RFC 7523 §3.1: an assertion that is not valid as a grant is `invalid_grant`.
        OAuthError::new(ErrorCode::InvalidGrant, "the assertion was refused")
            .with_auth_failure("jwt_bearer_grant", &failure)
    } else {
        failed(ClientAuthMethod::PrivateKeyJwt).with_auth_failure("federated", &failure)
    }
}

/// Whether the request is a JWT bearer grant (RFC 7523 §2.1) whose assertion alone names
/// the client: no other client authentication in the form.
pub(super) fn grant_presented(form: &Form) -> bool {
    form.single("grant_type").ok().flatten() == Some(JWT_BEARER_GRANT)
        && form.multi("client_assertion").is_empty()
        && form.multi("client_secret").is_empty()
}

/// The credentials of a JWT bearer grant: the assertion (`assertion`, RFC 7523 §2.1), which
/// must be a workload's token from a trusted issuer (§3.1: otherwise `invalid_grant`).
pub(super) fn grant_credentials(form: &Form, max_bytes: usize) -> Result<Credentials, OAuthError> {
    let assertion = form
        .single("assertion")?
        .ok_or_else(|| OAuthError::invalid_request("assertion is missing (RFC 7523 section 2.1)"))?;
    let invalid = |why: &'static str| OAuthError::new(ErrorCode::InvalidGrant, why);
    if assertion.len() > max_bytes {
        return Err(invalid("the assertion is too large"));
    }
    let claims: Option<Value> = Jws::parse(assertion)
        .ok()
        .and_then(|jws| jws.unverified_payload().ok())
        .and_then(|p| serde_json::from_slice(&p).ok());
    let issuer = claims
        .as_ref()
        .and_then(issuer_of)
        .ok_or_else(|| invalid("the assertion is not a workload token from an issuer this server trusts"))?;
    let key = ClientId::new(issuer).map_err(|_| invalid("the assertion's issuer is malformed"))?;
    let client_id = match form.single("client_id")? {
        Some(id) => Some(ClientId::new(id).map_err(|_| OAuthError::invalid_request("client_id is malformed"))?),
        None => None,
    };
    Ok(Credentials {
        method: ClientAuthMethod::PrivateKeyJwt,
        client_id: key,
        proof: super::Proof::Federated { assertion: assertion.to_owned(), client_id, grant: true },
    })
}

/// Verifies the signature with the trust's `keys` (RFC 7523 §3 item 9).
fn signature(jws: &Jws<'_>, keys: &[VerifyingKey]) -> Result<(), Failure> {
    if keys.is_empty() {
        return Err(Failure::NoKeys);
    }
    jws.verify_with_any(keys).map_err(|e| match e {
        tessera_jose::JoseError::UnknownKey(_) => Failure::UnknownKey,
        _ => Failure::BadSignature,
    })
}

/// The signature against the trust's inline keys, or its `jwks_uri` ones (fetched and cached
/// as clients' are; an unknown `kid` triggers one rate-limited refetch: the issuer may have
/// rotated).
async fn verify_signature(s: &Inner, trust: &Trusted, jws: &Jws<'_>) -> Result<(), Failure> {
    if trust.record.jwks.is_some() {
        return signature(jws, &trust.keys);
    }
    let discovered;
    let uri = match &trust.jwks_uri {
        Some(uri) => uri,
        None => {
            discovered = s
                .discovered
                .jwks_uri(&s.remote_keys, trust.issuer(), trust.roots.as_deref(), s.clock.now().0)
                .await
                .map_err(|_| Failure::KeysUnavailable)?;
            &discovered
        }
    };
    let keys =
        s.remote_keys.keys(&trust.cache_id, uri, trust.roots.as_ref()).await.map_err(|_| Failure::KeysUnavailable)?;
    match signature(jws, &keys.keys) {
        Err(Failure::UnknownKey) => {
            match s.remote_keys.refetch(&trust.cache_id, uri, trust.roots.as_ref(), keys.generation).await {
                Some(newer) => signature(jws, &newer.keys),
                None => Err(Failure::UnknownKey),
            }
        }
        outcome => outcome,
    }
}

/// The claim checks (RFC 7523 §3 items 3–6, and the trust's own bounds); returns until when
/// the token could be accepted.
fn check_claims(claims: &Value, trust: &Trusted, tessera_issuer: &str, now: i64, leeway: i64) -> Result<i64, Failure> {
    let int = |name| claims.get(name).and_then(Value::as_i64);
    // §3 item 3: the token must name this server as an audience: the trust's configured one
    // (a Kubernetes `audiences:` entry, GitHub's `audience` input), by default our issuer.
    // One among several is enough: these tokens are minted by platforms, often for several.
    let want = trust.record.audience.as_deref().unwrap_or(tessera_issuer);
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == want,
        Some(Value::Array(all)) => all.iter().any(|a| a.as_str() == Some(want)),
        _ => false,
    };
    if !audience_ok {
        return Err(Failure::Audience);
    }
    // §3 item 4.
    let exp = int("exp").ok_or(Failure::MissingExp)?;
    if now >= exp.saturating_add(leeway) {
        return Err(Failure::Expired);
    }
    // §3 item 5.
    if int("nbf").is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(Failure::NotYetValid);
    }
    let iat = int("iat");
    if iat.is_some_and(|iat| now.saturating_add(leeway) < iat) {
        return Err(Failure::IssuedInFuture);
    }
    // §3 item 6 ("unreasonably far in the past"), as the trust defines it: a token issued
    // longer ago than `max_token_age` is refused whatever its `exp` (Kubernetes tokens may be
    // reused for their whole hour; this bounds how long a leaked one is worth anything).
    if let Some(max_age) = trust.record.max_token_age {
        let iat = iat.ok_or(Failure::MissingIat)?;
        if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
            return Err(Failure::TooOld);
        }
    }
    let max_lifetime = trust.record.max_lifetime.unwrap_or(DEFAULT_MAX_LIFETIME);
    let issued = iat.ok_or(Failure::MissingIat)?;
    if exp.saturating_sub(issued) > max_lifetime {
        return Err(Failure::TooLongLived);
    }
    Ok(exp.saturating_add(leeway))
}

/// Authenticates a federated assertion: the client the first matching rule names.
pub(super) async fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    assertion: &str,
    client_id_param: Option<&ClientId>,
    grant: bool,
    peer: Option<IpAddr>,
) -> Result<(&'r Arc<ClientRecord>, Workload), OAuthError> {
    let now = s.clock.now();
    // Failures count against the issuer, as against a client id elsewhere: a flood of bad
    // tokens in a cluster's name backs off, while valid tokens still pass.
    let key = creds.client_id.as_str();
    let outcome = authenticate(registry, s, assertion, client_id_param, now).await;
    match outcome {
        Ok(found) => {
            s.failures.succeeded(key);
            Ok(found)
        }
        Err(Err(unavailable)) => Err(unavailable),
        Err(Ok(failure)) => {
            if let Err(retry_after) = s.failures.check(key, peer, now) {
                return Err(backing_off(retry_after));
            }
            s.failures.failed(key, peer, now);
            Err(refuse(failure, key, grant))
        }
    }
}

/// `Err(Ok(why))` for a refusal, `Err(Err(answer))` when the store cannot say.
async fn authenticate<'r>(
    registry: &'r Registry,
    s: &Inner,
    assertion: &str,
    client_id_param: Option<&ClientId>,
    now: UnixTime,
) -> Result<(&'r Arc<ClientRecord>, Workload), Result<Failure, OAuthError>> {
    let jws = Jws::parse(assertion).map_err(|_| Ok(Failure::Malformed))?;
    let claims: Value = serde_json::from_slice(&jws.unverified_payload().map_err(|_| Ok(Failure::Malformed))?)
        .map_err(|_| Ok(Failure::Malformed))?;
    let issuer = issuer_of(&claims).ok_or(Ok(Failure::Malformed))?;
    let trust = registry.trust(issuer).ok_or(Ok(Failure::UntrustedIssuer))?;
    verify_signature(s, trust, &jws).await.map_err(Ok)?;
    let valid_until = check_claims(&claims, trust, s.issuer.as_str(), now.0, s.assertion.leeway).map_err(Ok)?;
    let rule_claims = kinds::rule_claims(trust.kind, &claims).map_err(|e| {
        tracing::info!(trust = %trust.record.name, reason = %e, "workload token of the wrong shape");
        Ok(Failure::Shape)
    })?;
    let rule = trust.rules.first_match(&rule_claims).ok_or(Ok(Failure::NoRule))?;
    let client_id = ClientId::new(rule.client.as_str()).map_err(|_| Ok(Failure::UnknownClient))?;
    let client = registry.client(&client_id).filter(|c| c.enabled).ok_or(Ok(Failure::UnknownClient))?;
    // RFC 7521 §4.2: a client_id sent along "MUST identify the client": the rule's.
    if client_id_param.is_some_and(|id| *id != client_id) {
        return Err(Ok(Failure::ClientIdMismatch));
    }
    // Issue 15: reuse is the trust's choice (Kubernetes reuses a projected token for its
    // hour); with `max_uses = N` each token passes N times, counted in the shared replay
    // table under the hash of its `jti` — or of the whole token, which has none. Single use
    // goes through the batched writer, as assertion ids do.
    if let Some(max_uses) = trust.record.max_uses {
        let id = claims.get("jti").and_then(Value::as_str).unwrap_or(assertion);
        let hash = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, id.as_bytes()).as_ref());
        let until = UnixTime(valid_until);
        let counted = if max_uses == 1 {
            s.stores.assertions.use_jti(&trust.cache_id, &hash, until).await
        } else {
            s.stores.assertions.count_use(&trust.cache_id, &hash, until, max_uses).await
        };
        match counted {
            Ok(true) => {}
            Ok(false) => return Err(Ok(Failure::Replayed)),
            Err(e) => {
                tracing::error!(error = %e, "recording a workload token failed");
                return Err(Err(OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "client authentication is unavailable; retry shortly",
                )
                .with_retry_after(1)));
            }
        }
    }
    let workload = Workload {
        iss: issuer.to_owned(),
        sub: claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned(),
        trust: trust.record.name.clone(),
        rule: rule.id,
    };
    tracing::info!(
        trust = %workload.trust,
        rule = workload.rule,
        subject = %workload.sub,
        client_id = %client.client_id,
        "workload authenticated by a federated token"
    );
    s.audit.record_first(
        format!("{}\n{}\n{}", workload.trust, workload.sub, workload.rule),
        3600,
        format!("workload:{}", workload.sub),
        tessera_store::AuditAction::WorkloadAuthenticated,
        client.client_id.as_str(),
        serde_json::json!({ "iss": workload.iss, "sub": workload.sub, "trust": workload.trust, "rule": workload.rule }),
    );
    Ok((client, workload))
}

/// A workload token from a trusted issuer as an RFC 8693 `subject_token` or `actor_token`:
/// the client its rule names, the workload, and the token's `exp`. Every check of
/// [`verify`] applies (single-use trusts count this use); a refusal is `None`, logged.
pub(crate) async fn subject<'r>(
    registry: &'r Registry,
    s: &Inner,
    token: &str,
    now: UnixTime,
) -> Option<(&'r Arc<ClientRecord>, Workload, UnixTime)> {
    match authenticate(registry, s, token, None, now).await {
        Ok((client, workload)) => {
            let exp = Jws::parse(token)
                .ok()
                .and_then(|j| j.unverified_payload().ok())
                .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
                .and_then(|c| c.get("exp").and_then(Value::as_i64))?;
            Some((client, workload, UnixTime(exp)))
        }
        Err(Ok(failure)) => {
            tracing::info!(reason = ?failure, "token exchange: workload token refused");
            None
        }
        Err(Err(_)) => None,
    }
}
