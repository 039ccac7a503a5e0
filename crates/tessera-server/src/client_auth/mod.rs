//! Client authentication at the client-authenticated endpoints (RFC 6749 §2.3), as one step:
//! the [`ClientRequest`] extractor reads the `Authorization` header and the form once, and
//! [`ClientRequest::authenticate`] returns the client with the [`ClientAuthMethod`] it used.
//!
//! One file per method ([`basic`], [`post`], [`private_key_jwt`]) and two dispatchers: [`presented`] picks the
//! method a request used, [`verify`] the check that method needs. A new method
//! (`private_key_jwt`, mTLS, a federated assertion) is a new file, a variant of
//! [`ClientAuthMethod`] and one arm in each dispatcher; the brute-force limits around secret
//! verification are [`gate`] (before the body is read) and [`secret`] (after).

mod basic;
mod federated;
mod gate;
mod mtls;
mod post;
mod private_key_jwt;
mod request;
mod secret;

use std::net::IpAddr;
use std::sync::Arc;

use tessera_store::ClientRecord;
pub use tessera_types::ClientAuthMethod;
use tessera_types::rfc9068::Workload;
use tessera_types::{ClientId, ClientSecret, ErrorCode};

pub(crate) use basic::AuthorizationHeader;
pub(crate) use federated::subject as workload_subject;
pub use private_key_jwt::AssertionReplayStore;
pub(crate) use request::{
    ClientRequest, DpopHeader, EventsEndpoint, IntrospectionEndpoint, RevocationEndpoint, TokenEndpoint,
};

use crate::certificate::ClientCertificate;
use crate::error::OAuthError;
use crate::form::Form;
use crate::registry::Registry;
use crate::state::Inner;

/// RFC 6749 §5.2: after a failed authentication through the `Authorization` header the 401
/// "MUST include the WWW-Authenticate response header field" matching that scheme.
fn challenges(method: ClientAuthMethod) -> bool {
    method == ClientAuthMethod::ClientSecretBasic
}

/// What a client presented, before it is checked against the registry.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Credentials {
    pub method: ClientAuthMethod,
    /// For an assertion: its `sub`, not yet verified.
    pub client_id: ClientId,
    pub proof: Proof,
}

/// What proves the client's identity. Both redact themselves in `Debug`, so credentials can
/// be logged safely.
pub enum Proof {
    /// A shared secret (`client_secret_basic`, `client_secret_post`).
    Secret(ClientSecret),
    /// A signed JWT (`private_key_jwt`), as sent.
    Assertion(String),
    /// The certificate of the TLS connection (mutual TLS).
    Certificate(ClientCertificate),
    /// A workload's token from a trusted issuer (issue 15), and the `client_id` sent along,
    /// if any: the trust's rules name the client.
    /// `grant`: sent as the RFC 7523 §2.1 authorization grant (`assertion`) rather than as
    /// client authentication (`client_assertion`).
    Federated { assertion: String, client_id: Option<ClientId>, grant: bool },
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            // An unused assertion is a bearer credential until it expires: never logged.
            Self::Assertion(_) => f.write_str("Assertion([redacted])"),
            Self::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
            Self::Federated { client_id, grant, .. } => f
                .debug_struct("Federated")
                .field("assertion", &"[redacted]")
                .field("client_id", client_id)
                .field("grant", grant)
                .finish(),
        }
    }
}

impl Credentials {
    /// The presented secret, for the secret methods.
    #[cfg(test)]
    pub fn secret(&self) -> Option<&ClientSecret> {
        match &self.proof {
            Proof::Secret(s) => Some(s),
            Proof::Assertion(_) | Proof::Certificate(_) | Proof::Federated { .. } => None,
        }
    }
}

/// The one answer for unknown client, wrong secret and disabled client alike: they all read
/// the same from outside.
fn failed(method: ClientAuthMethod) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "client authentication failed").with_basic_challenge(challenges(method))
}

/// Picks the method the request used and reads its credentials, enforcing §2.3: "The client
/// MUST NOT use more than one authentication method in each request."
/// `max_assertion_bytes` bounds a client assertion before it is decoded. A certificate
/// authenticates only a request that presents nothing else: a client may hold a certificate
/// for its connection and still authenticate with a secret.
pub(crate) fn presented(
    header: &AuthorizationHeader,
    form: &Form,
    certificate: Option<&ClientCertificate>,
    max_assertion_bytes: usize,
) -> Result<Credentials, OAuthError> {
    match (header, certificate) {
        (AuthorizationHeader::Absent, _) if federated::grant_presented(form) => {
            federated::grant_credentials(form, max_assertion_bytes)
        }
        (AuthorizationHeader::Absent, _) if private_key_jwt::presented(form) => {
            private_key_jwt::credentials(form, max_assertion_bytes)
        }
        (AuthorizationHeader::Absent, Some(cert)) if mtls::presented(form, Some(cert)) => mtls::credentials(form, cert),
        (AuthorizationHeader::Absent, _) => post::credentials(form),
        (header, _) => basic::credentials(header, form),
    }
}

/// Checks presented credentials against the registry snapshot by the rules of their method;
/// returns the client and the method that authenticated it.
async fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    peer: Option<IpAddr>,
) -> Result<(&'r Arc<ClientRecord>, ClientAuthMethod, Option<Workload>), OAuthError> {
    let outcome = verify_by_method(registry, s, creds, peer).await;
    // The audit trail keeps refusals of credentials, not answers that verified nothing
    // (backoff, overload, an unavailable store).
    if let Err(e) = &outcome {
        if matches!(e.code, ErrorCode::InvalidClient | ErrorCode::InvalidGrant) {
            s.audit.auth_failed(creds.client_id.as_str(), creds.method.as_str(), e.code.as_str(), peer);
        }
    }
    outcome
}

async fn verify_by_method<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    peer: Option<IpAddr>,
) -> Result<(&'r Arc<ClientRecord>, ClientAuthMethod, Option<Workload>), OAuthError> {
    let mut workload = None;
    let (client, method) = match &creds.proof {
        // The two secret methods differ only in where the secret travels.
        Proof::Secret(secret) => (secret::verify(registry, s, creds, secret, peer).await?, creds.method),
        Proof::Assertion(assertion) => {
            (private_key_jwt::verify(registry, s, creds, assertion, peer).await?, creds.method)
        }
        Proof::Certificate(certificate) => mtls::verify(registry, s, creds, certificate, peer)?,
        Proof::Federated { assertion, client_id, grant } => {
            let (client, who) =
                federated::verify(registry, s, creds, assertion, client_id.as_ref(), *grant, peer).await?;
            workload = Some(who);
            (client, creds.method)
        }
    };
    // A client registered for one method is refused any other (RFC 7591 §2
    // `token_endpoint_auth_method`), with the answer every other failure gets.
    if client.auth_method.is_some_and(|m| m != method) {
        tracing::warn!(client_id = %creds.client_id, method = %creds.method, "client authentication failed: method not allowed for this client");
        s.failures.failed(creds.client_id.as_str(), peer, s.clock.now());
        return Err(failed(creds.method).with_auth_failure(creds.method.as_str(), &"MethodNotAllowed"));
    }
    Ok((client, method, workload))
}
