//! Mutual-TLS client authentication (RFC 8705 §2): the client presents a certificate in the
//! TLS handshake and names itself with `client_id` in the form. `self_signed_tls_client_auth`
//! (§2.2) matches the certificate against the ones the client registered;
//! `tls_client_auth` (§2.1) checks that it chains to a configured client CA and carries the
//! registered subject. Tokens issued this way are bound to the certificate (§3).

use std::net::IpAddr;
use std::sync::Arc;

use tessera_store::ClientRecord;
use tessera_types::{ClientAuthMethod, ClientId, ErrorCode};

use super::gate::backing_off;
use super::{Credentials, Proof, failed};
use crate::certificate::{CertificateFailure, ClientCertificate};
use crate::error::OAuthError;
use crate::form::Form;
use crate::registry::Registry;
use crate::state::Inner;

/// Why a certificate did not authenticate its client, for the WARN line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    UnknownClient,
    DisabledClient,
    /// The client registered no certificate and no subject.
    NotRegistered,
    /// Not one of its registered certificates, and it has no `tls_client_auth` subject.
    UnregisteredCertificate,
    Certificate(CertificateFailure),
}

/// Whether a request authenticates by its certificate: it carries one and presents no other
/// credentials, so `client_id` alone names the client (§2: "the client_id parameter ... MUST
/// be included").
pub(super) fn presented(form: &Form, certificate: Option<&ClientCertificate>) -> bool {
    certificate.is_some() && form.multi("client_secret").is_empty()
}

/// The credentials: the form's `client_id` and the certificate. Which of the two methods it
/// is depends on the client's registration, so the method here is provisional.
pub(super) fn credentials(form: &Form, certificate: &ClientCertificate) -> Result<Credentials, OAuthError> {
    let Some(id) = form.single("client_id")? else {
        return Err(
            OAuthError::new(ErrorCode::InvalidClient, "client authentication is required").with_basic_challenge(true)
        );
    };
    Ok(Credentials {
        method: ClientAuthMethod::SelfSignedTlsClientAuth,
        client_id: ClientId::new(id).map_err(|_| failed(ClientAuthMethod::SelfSignedTlsClientAuth))?,
        proof: Proof::Certificate(certificate.clone()),
    })
}

/// Authenticates by certificate against the registry snapshot; returns the client and the
/// method that matched. Failures count towards the same backoff as any other.
pub(super) fn verify<'r>(
    registry: &'r Registry,
    s: &Inner,
    creds: &Credentials,
    certificate: &ClientCertificate,
    peer: Option<IpAddr>,
) -> Result<(&'r Arc<ClientRecord>, ClientAuthMethod), OAuthError> {
    let now = s.clock.now();
    let id = creds.client_id.as_str();
    let outcome = match registry.client(&creds.client_id) {
        None => Err(Failure::UnknownClient),
        Some(c) if !c.enabled => Err(Failure::DisabledClient),
        Some(c) if c.tls.is_empty() => Err(Failure::NotRegistered),
        // §2.2: "the client ... registers its certificate(s)"; the thumbprint is compared,
        // nothing about the certificate is validated (it is self-signed).
        Some(c) if c.tls.certificates.contains(certificate.thumbprint()) => {
            Ok((c, ClientAuthMethod::SelfSignedTlsClientAuth))
        }
        Some(c) => match &c.tls.subject {
            None => Err(Failure::UnregisteredCertificate),
            Some(subject) => s
                .mtls
                .check_tls_client_auth(certificate, subject, now)
                .map(|()| (c, ClientAuthMethod::TlsClientAuth))
                .map_err(Failure::Certificate),
        },
    };
    let failure = match outcome {
        Ok(found) => {
            s.failures.succeeded(id);
            return Ok(found);
        }
        Err(failure) => failure,
    };
    if let Err(retry_after) = s.failures.check(id, peer, now) {
        tracing::debug!(client_id = %creds.client_id, peer = ?peer, retry_after, "authentication refused: backing off");
        return Err(backing_off(retry_after));
    }
    s.failures.failed(id, peer, now);
    tracing::warn!(
        client_id = %creds.client_id,
        certificate = %certificate.thumbprint(),
        reason = %describe(&failure),
        "client authentication failed (mutual TLS)"
    );
    Err(failed(creds.method).with_auth_failure("mtls", &failure))
}

fn describe(failure: &Failure) -> String {
    match failure {
        Failure::Certificate(f) => f.to_string(),
        other => format!("{other:?}"),
    }
}
