//! Mutual-TLS client authentication (RFC 8705 §2): the certificate and private key a client
//! presents in the TLS handshake instead of sending a secret, and the HTTP client that
//! presents them.

use std::sync::Arc;

use aws_lc_rs::digest;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tessera_types::rfc8705::CertificateThumbprint;

/// Why PEM could not be used as a client identity. Says what is missing or wrong, never
/// what the key is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not PEM, or a PEM section that cannot be read.
    #[error("not PEM: {0}")]
    NotPem(String),
    /// No `CERTIFICATE` section: a key alone cannot authenticate.
    #[error("no certificate: give the client certificate (then any intermediates) and its private key in one PEM")]
    NoCertificate,
    /// No `PRIVATE KEY` section: the TLS handshake proves possession of the key, so the
    /// certificate alone cannot authenticate.
    #[error("no private key: give the client certificate and its private key in one PEM")]
    NoPrivateKey,
    /// More than one private key: which one belongs to the certificate would be a guess.
    #[error("{0} private keys: give exactly one, the certificate's")]
    SeveralKeys(usize),
    /// A section other than certificates and one private key (a public key, a CSR, ...).
    #[error("unexpected PEM section {0}: give certificates and one private key only")]
    Unexpected(String),
    /// The key cannot sign TLS handshakes (an unsupported type) or is not the first
    /// certificate's.
    #[error("the private key cannot be used with the certificate: {0}")]
    Key(String),
}

/// A client certificate (the leaf first, then any intermediates) and its private key, as
/// `self_signed_tls_client_auth` and `tls_client_auth` (RFC 8705 §2) clients present them in
/// the TLS handshake. Cheap to clone. `Debug` shows the leaf's thumbprint and the chain length
/// only: the private key is never printed, and never sent anywhere (the handshake proves
/// possession with a signature).
#[derive(Clone)]
pub struct ClientIdentity(Arc<Inner>);

struct Inner {
    identity: reqwest::Identity,
    thumbprint: CertificateThumbprint,
    chain: usize,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("x5t#S256", &self.0.thumbprint.as_str())
            .field("chain", &self.0.chain)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// From PEM holding the certificate, any intermediates after it, and its unencrypted
    /// private key (PKCS#8 as `openssl genpkey` or `openssl req -newkey` write it, SEC 1 or
    /// PKCS#1), in any order: what `curl --cert` takes. Refused: no certificate, no key,
    /// several keys, other sections, and a key that is not the leaf certificate's — checked
    /// here, so that a mismatch is a clear error now rather than a failed handshake later.
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        let mut chain: Vec<CertificateDer<'static>> = Vec::new();
        let mut keys: Vec<PrivateKeyDer<'static>> = Vec::new();
        for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|e| IdentityError::NotPem(e.to_string()))?;
            match kind {
                SectionKind::Certificate => chain.push(CertificateDer::from(der)),
                SectionKind::PrivateKey => keys.push(PrivateKeyDer::Pkcs8(der.into())),
                SectionKind::EcPrivateKey => keys.push(PrivateKeyDer::Sec1(der.into())),
                SectionKind::RsaPrivateKey => keys.push(PrivateKeyDer::Pkcs1(der.into())),
                other => return Err(IdentityError::Unexpected(format!("{other:?}"))),
            }
        }
        let Some(leaf) = chain.first() else { return Err(IdentityError::NoCertificate) };
        let key = match keys.len() {
            0 => return Err(IdentityError::NoPrivateKey),
            1 => keys.pop().expect("one key"),
            n => return Err(IdentityError::SeveralKeys(n)),
        };
        // RFC 8705 §3.1: `x5t#S256` is the SHA-256 of the leaf certificate's DER, base64url;
        // the authority binds the tokens it issues to this value.
        let digest = digest::digest(&digest::SHA256, leaf.as_ref());
        let thumbprint = CertificateThumbprint::from_sha256(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"));
        // What the TLS stack will do with them when the HTTP client is built: parse the key
        // and compare its public half with the leaf's.
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let chain_len = chain.len();
        rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| IdentityError::Key(e.to_string()))?;
        let identity = reqwest::Identity::from_pem(pem).map_err(|e| IdentityError::Key(e.to_string()))?;
        Ok(Self(Arc::new(Inner { identity, thumbprint, chain: chain_len })))
    }

    /// RFC 8705 §3.1 `x5t#S256` of the leaf certificate: what `self_signed_tls_client_auth`
    /// registers (as the certificate itself) and what tokens issued to this client carry in
    /// `cnf`.
    pub fn thumbprint(&self) -> &CertificateThumbprint {
        &self.0.thumbprint
    }

    /// The certificate and key for a reqwest client of your own: tokens issued to this client
    /// are bound to the certificate (RFC 8705 §3), so an API that checks the binding must see
    /// it too (`reqwest::Client::builder().identity(..)` for [`crate::AuthorizedClient`]).
    /// `reqwest::Identity` prints nothing of the key either.
    pub fn reqwest_identity(&self) -> reqwest::Identity {
        self.0.identity.clone()
    }
}
