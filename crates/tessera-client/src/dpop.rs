//! DPoP (RFC 9449): the key a client proves possession of. Token requests carry a proof, so
//! the authority binds the token to the key (`cnf.jkt`); every call to an API then carries a
//! fresh proof for that call (§7), and a token stolen without the key is worth nothing.

use std::sync::Arc;

use aws_lc_rs::rand::SecureRandom as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_jose::SigningKey;
use tessera_jose::dpop::{ProofClaims, sign_proof};
use tessera_types::SigningAlg;

use crate::ClientError;

/// A DPoP key pair. Cheap to clone; `Debug` shows the key's thumbprint only.
#[derive(Clone)]
pub struct DpopKey(Arc<SigningKey>);

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpopKey(jkt={})", self.thumbprint())
    }
}

impl DpopKey {
    /// A new ES256 key, held in memory only: tokens bound to it die with the process.
    pub fn generate() -> Result<Self, ClientError> {
        SigningKey::generate(SigningAlg::ES256)
            .map(|(k, _)| Self(Arc::new(k)))
            .map_err(|e| ClientError::Credentials(format!("no DPoP key could be generated: {e}")))
    }

    /// A key from PEM (PKCS#8, SEC 1 or PKCS#1), to keep tokens usable across restarts.
    pub fn from_pem(pem: &str) -> Result<Self, ClientError> {
        SigningKey::from_pem(pem, None)
            .map(|k| Self(Arc::new(k)))
            .map_err(|e| ClientError::Credentials(format!("not a DPoP key: {e}")))
    }

    /// RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn thumbprint(&self) -> String {
        tessera_jose::thumbprint(&self.0.public_jwk())
    }

    /// A proof for one request (§4.2): a fresh `jti`, `htm` and `htu` of the request, now, and
    /// `ath` when it carries an access token.
    pub fn proof(&self, method: &str, url: &str, now: i64, access_token: Option<&str>) -> Result<String, ClientError> {
        let mut id = [0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| ClientError::Credentials("no randomness for a DPoP proof id".into()))?;
        let jti = URL_SAFE_NO_PAD.encode(id);
        // §4.2: htu "without query and fragment parts".
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let claims = ProofClaims { jti: &jti, htm: method, htu, iat: now, access_token, nonce: None };
        sign_proof(&self.0, &claims)
            .map_err(|e| ClientError::Credentials(format!("a DPoP proof could not be signed: {e}")))
    }
}
