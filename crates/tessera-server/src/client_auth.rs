//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic` and
//! `client_secret_post`.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use tessera_store::ClientRecord;
use tessera_types::{ClientId, ClientSecret, ErrorCode, UnixTime};

use crate::error::OAuthError;
use crate::form::{self, Form};
use crate::registry::Registry;
use crate::secrets::{SecretVerifier, Verdict};
use crate::throttle::FailureLimiter;

/// The method a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic (RFC 6749 §2.3.1).
    Basic,
    /// Credentials in the form body (§2.3.1, "NOT RECOMMENDED" but supported).
    Post,
}

/// Presented credentials.
#[derive(Debug)]
pub struct Credentials {
    /// How they came.
    pub method: Method,
    /// The client id.
    pub client_id: ClientId,
    /// The secret (redacted in Debug).
    pub secret: ClientSecret,
}

fn failed(basic: bool) -> OAuthError {
    // Unknown client, wrong secret and disabled client all read the same from outside.
    OAuthError::new(ErrorCode::InvalidClient, "client authentication failed").with_basic_challenge(basic)
}

/// Whether the request carries an `Authorization: Basic` header.
pub fn uses_basic(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

/// Extracts the credentials, enforcing §2.3: "The client MUST NOT use more than one
/// authentication method in each request."
pub fn extract(headers: &HeaderMap, form: &Form) -> Result<Credentials, OAuthError> {
    let body_id = form.single("client_id")?;
    let body_secret = form.single("client_secret")?;
    match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| failed(true))?;
            let (scheme, rest) = value.split_once(' ').ok_or_else(|| failed(true))?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClient,
                    "only the Basic authorization scheme is accepted",
                )
                .with_basic_challenge(true));
            }
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "client authenticated with both Basic and client_secret (RFC 6749 section 2.3)",
                ));
            }
            let (id, secret) = decode_basic(rest.trim()).ok_or_else(|| failed(true))?;
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request("client_id in the body differs from the Basic credentials"));
            }
            Ok(Credentials {
                method: Method::Basic,
                client_id: ClientId::new(id).map_err(|_| failed(true))?,
                secret: ClientSecret::new(secret).map_err(|_| failed(true))?,
            })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Credentials {
                method: Method::Post,
                client_id: ClientId::new(id).map_err(|_| failed(false))?,
                secret: ClientSecret::new(secret).map_err(|_| failed(false))?,
            }),
            // No credentials at all, or a client_id alone (a public client, which this server
            // does not have): challenge for Basic.
            _ => Err(OAuthError::new(ErrorCode::InvalidClient, "client authentication is required")
                .with_basic_challenge(true)),
        },
    }
}

/// §2.3.1: the id and secret are form-urlencoded, then joined by `:` and base64-encoded.
fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(b64).ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    let id = form::decode(&raw[..colon]).ok()?;
    let secret = form::decode(&raw[colon + 1..]).ok()?;
    Some((id, secret))
}

/// The answer while a client id or an address backs off: 429 rather than a delay, so the
/// attacker holds no connection of ours while waiting, and a well-behaved client learns when
/// to retry.
pub(crate) fn backing_off(retry_after: u64) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "too many failed authentications; retry later (RFC 6749 section 2.3.1)")
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(retry_after)
}

/// Before the body is read: while the address (or the Basic client id) backs off, only
/// known-good Basic credentials get further. Costs two map look-ups when nobody backs off.
pub(crate) fn early_gate(
    registry: &Registry,
    verifier: &SecretVerifier,
    limiter: &FailureLimiter,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| decode_basic(rest.trim()));
    let id = basic.as_ref().map_or("", |(id, _)| id.as_str());
    let Err(retry_after) = limiter.check(id, peer, now) else { return Ok(()) };
    let known_good = basic.as_ref().is_some_and(|(id, secret)| {
        let (Some(client), Ok(secret)) = (registry.client(id), ClientSecret::new(secret.as_str())) else {
            return false;
        };
        client.enabled && verifier.verify_cheap(&client.client_id, &client.secrets, &secret)
    });
    if known_good { Ok(()) } else { Err(backing_off(retry_after)) }
}

/// Why an authentication failed, for the WARN line (never sent to the client).
#[derive(Debug, Clone, Copy)]
enum Failure {
    UnknownClient,
    DisabledClient,
    WrongSecret,
}

/// Authenticates against the registry snapshot, within the brute-force limits: credentials
/// known good (a generated secret, or an imported one verified recently) pass at once; anyone
/// else backing off gets 429; the rest are verified, every failure costing the same time.
pub(crate) async fn authenticate<'r>(
    registry: &'r Registry,
    verifier: &SecretVerifier,
    limiter: &FailureLimiter,
    creds: &Credentials,
    peer: Option<IpAddr>,
    now: UnixTime,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let basic = creds.method == Method::Basic;
    let id = creds.client_id.as_str();
    let client = registry.client(id);
    let usable = client.filter(|c| c.enabled);
    if let Some(c) = usable {
        if verifier.verify_cheap(&c.client_id, &c.secrets, &creds.secret) {
            limiter.succeeded(id);
            return Ok(c);
        }
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
        .with_retry_after(1));
    };
    match verifier.verify(&creds.client_id, usable.map(|c| c.secrets.as_slice()), &creds.secret).await {
        Verdict::Valid => {
            limiter.succeeded(id);
            Ok(usable.expect("only a usable client verifies"))
        }
        Verdict::Busy => Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many authentications in progress; retry shortly",
        )
        .with_retry_after(1)),
        Verdict::Invalid => {
            let reason = match client {
                None => Failure::UnknownClient,
                Some(c) if !c.enabled => Failure::DisabledClient,
                Some(_) => Failure::WrongSecret,
            };
            tracing::warn!(client_id = %creds.client_id, peer = ?peer, ?reason, "client authentication failed");
            limiter.failed(id, peer, now);
            Err(failed(basic))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_2_3_1_basic_credentials_are_form_decoded() {
        let b64 = STANDARD.encode("my%20client:p%3Ass+word");
        assert_eq!(decode_basic(&b64), Some(("my client".into(), "p:ss word".into())));
        assert_eq!(decode_basic(&STANDARD.encode("no-colon")), None);
        assert_eq!(decode_basic("!!!"), None);
    }
}
