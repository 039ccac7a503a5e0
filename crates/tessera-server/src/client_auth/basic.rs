//! `client_secret_basic` (RFC 6749 §2.3.1): the `Authorization: Basic` header, parsed once
//! per request for both the early gate and authentication.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_types::{ClientId, ClientSecret, ErrorCode};

use super::{ClientAuthMethod, Credentials, Proof, failed};
use crate::error::OAuthError;
use crate::form::{self, Form};

/// What the `Authorization` header says.
#[derive(Debug)]
pub(crate) enum AuthorizationHeader {
    Absent,
    /// Not visible ASCII, or no space after the scheme.
    Malformed,
    /// A scheme other than Basic.
    OtherScheme,
    /// Basic, with the decoded id and secret unless the payload did not decode.
    Basic(Option<(String, String)>),
}

impl AuthorizationHeader {
    /// Reads the (first) `Authorization` header. The scheme is case-insensitive (RFC 9110 §11.1).
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(header::AUTHORIZATION) else { return Self::Absent };
        let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
            return Self::Malformed;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Self::OtherScheme;
        }
        Self::Basic(decode_basic(rest.trim()))
    }

    /// The decoded Basic id and secret, if the header holds them.
    pub(crate) fn basic(&self) -> Option<(&str, &str)> {
        match self {
            Self::Basic(Some((id, secret))) => Some((id, secret)),
            _ => None,
        }
    }
}

/// The credentials of a request that carries an `Authorization` header.
pub(super) fn credentials(header: &AuthorizationHeader, form: &Form) -> Result<Credentials, OAuthError> {
    let failed = || failed(ClientAuthMethod::ClientSecretBasic);
    let body_id = form.single("client_id")?;
    let body_secret = form.single("client_secret")?;
    let decoded = match header {
        AuthorizationHeader::Basic(decoded) => decoded,
        AuthorizationHeader::Absent | AuthorizationHeader::Malformed => return Err(failed()),
        AuthorizationHeader::OtherScheme => {
            return Err(OAuthError::new(ErrorCode::InvalidClient, "only the Basic authorization scheme is accepted")
                .with_basic_challenge(true));
        }
    };
    if body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "client authenticated with both Basic and client_secret (RFC 6749 section 2.3)",
        ));
    }
    if super::private_key_jwt::presented(form) {
        return Err(OAuthError::invalid_request(
            "client authenticated with both Basic and client_assertion (RFC 6749 section 2.3)",
        ));
    }
    let (id, secret) = decoded.as_ref().ok_or_else(failed)?;
    if body_id.is_some_and(|b| b != id) {
        return Err(OAuthError::invalid_request("client_id in the body differs from the Basic credentials"));
    }
    Ok(Credentials {
        method: ClientAuthMethod::ClientSecretBasic,
        client_id: ClientId::new(id.as_str()).map_err(|_| failed())?,
        proof: Proof::Secret(ClientSecret::new(secret.as_str()).map_err(|_| failed())?),
    })
}

/// §2.3.1: the id and secret are form-urlencoded, then joined by `:` and base64-encoded.
fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(b64).ok()?;
    let colon = raw.iter().position(|b| *b == b':')?;
    let id = form::decode(&raw[..colon]).ok()?;
    let secret = form::decode(&raw[colon + 1..]).ok()?;
    Some((id, secret))
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
