//! Client authentication at the client-authenticated endpoints (RFC 6749 §2.3), as one step:
//! the [`ClientRequest`] extractor reads the `Authorization` header and the form once, and
//! [`ClientRequest::authenticate`] returns the client with the [`ClientAuthMethod`] it used.
//!
//! One file per method ([`basic`], [`post`]) and two dispatchers: [`presented`] picks the
//! method a request used, [`verify`] the check that method needs. A new method
//! (`private_key_jwt`, mTLS, a federated assertion) is a new file, a variant of
//! [`ClientAuthMethod`] and one arm in each dispatcher; the brute-force limits around secret
//! verification are [`gate`] (before the body is read) and [`secret`] (after).

mod basic;
mod gate;
mod post;
mod request;
mod secret;

use std::net::IpAddr;
use std::sync::Arc;

use tessera_store::ClientRecord;
use tessera_types::{ClientId, ClientSecret, ErrorCode};

pub(crate) use basic::AuthorizationHeader;
pub(crate) use request::{ClientRequest, IntrospectionEndpoint, RevocationEndpoint, TokenEndpoint};

use crate::error::OAuthError;
use crate::form::Form;
use crate::registry::Registry;
use crate::state::Inner;

/// How a client authenticated; the names are RFC 8414's `token_endpoint_auth_methods_supported`
/// values (IANA "OAuth Token Endpoint Authentication Methods").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// Credentials in the form body (§2.3.1, "NOT RECOMMENDED" but supported).
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// Every method this server accepts, as discovery advertises them.
    pub const SUPPORTED: [Self; 2] = [Self::ClientSecretBasic, Self::ClientSecretPost];

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    /// RFC 6749 §5.2: after a failed authentication through the `Authorization` header the
    /// 401 "MUST include the WWW-Authenticate response header field" matching that scheme.
    fn challenges(self) -> bool {
        self == Self::ClientSecretBasic
    }
}

/// What a client presented, before it is checked against the registry.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Credentials {
    pub method: ClientAuthMethod,
    pub client_id: ClientId,
    /// Redacted in Debug.
    pub secret: ClientSecret,
}

/// The one answer for unknown client, wrong secret and disabled client alike: they all read
/// the same from outside.
fn failed(method: ClientAuthMethod) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "client authentication failed").with_basic_challenge(method.challenges())
}

/// Picks the method the request used and reads its credentials, enforcing §2.3: "The client
/// MUST NOT use more than one authentication method in each request."
pub(crate) fn presented(header: &AuthorizationHeader, form: &Form) -> Result<Credentials, OAuthError> {
    match header {
        AuthorizationHeader::Absent => post::credentials(form),
        header => basic::credentials(header, form),
    }
}

/// Checks presented credentials against the registry snapshot by the rules of their method.
async fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    peer: Option<IpAddr>,
) -> Result<&'r Arc<ClientRecord>, OAuthError> {
    match creds.method {
        // The two differ only in where the secret travels.
        ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
            secret::verify(registry, &s.verifier, &s.failures, creds, peer, s.clock.now()).await
        }
    }
}
