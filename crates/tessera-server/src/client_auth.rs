//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic` and
//! `client_secret_post`.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use tessera_store::ClientRecord;
use tessera_types::{ClientId, ClientSecret, ErrorCode};

use crate::error::OAuthError;
use crate::form::{self, Form};
use crate::registry::Registry;
use crate::secrets::SecretVerifier;

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

/// Authenticates against the registry snapshot.
pub async fn authenticate<'r>(
    registry: &'r Registry,
    verifier: &SecretVerifier,
    creds: &Credentials,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    let basic = creds.method == Method::Basic;
    let Some(client) = registry.client(creds.client_id.as_str()) else {
        return Err(failed(basic));
    };
    if !client.enabled || !verifier.verify(&client.client_id, &client.secrets, &creds.secret).await {
        return Err(failed(basic));
    }
    Ok(client)
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
