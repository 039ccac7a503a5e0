//! `client_secret_post` (RFC 6749 §2.3.1): `client_id` and `client_secret` in the form body.

use tessera_types::{ClientId, ClientSecret, ErrorCode};

use super::{ClientAuthMethod, Credentials, Proof, failed};
use crate::error::OAuthError;
use crate::form::Form;

/// The credentials of a request without an `Authorization` header.
pub(super) fn credentials(form: &Form) -> Result<Credentials, OAuthError> {
    let failed = || failed(ClientAuthMethod::ClientSecretPost);
    match (form.single("client_id")?, form.single("client_secret")?) {
        (Some(id), Some(secret)) => Ok(Credentials {
            method: ClientAuthMethod::ClientSecretPost,
            client_id: ClientId::new(id).map_err(|_| failed())?,
            proof: Proof::Secret(ClientSecret::new(secret).map_err(|_| failed())?),
        }),
        // No credentials at all, or a client_id alone (a public client, which this server
        // does not have): challenge for Basic, the method RFC 6749 §2.3.1 says servers MUST
        // support.
        _ => {
            Err(OAuthError::new(ErrorCode::InvalidClient, "client authentication is required")
                .with_basic_challenge(true))
        }
    }
}
