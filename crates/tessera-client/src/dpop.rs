//! DPoP (RFC 9449): the key a client proves possession of. Token requests carry a proof, so
//! the authority binds the token to the key (`cnf.jkt`); every call to an API then carries a
//! fresh proof for that call (§7), and a token stolen without the key is worth nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SecureRandom as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_jose::SigningKey;
use tessera_jose::dpop::{ProofClaims, sign_proof};
use tessera_types::SigningAlg;

use crate::ClientError;

/// RFC 9449 §8.1.
pub(crate) const NONCE_HEADER: &str = "dpop-nonce";

/// A DPoP key pair, with the nonces servers asked its proofs to carry (§8, §9). Cheap to
/// clone (clones share the nonces); `Debug` shows the key's thumbprint only.
#[derive(Clone)]
pub struct DpopKey {
    key: Arc<SigningKey>,
    /// The last `DPoP-Nonce` of each origin (`https://host:port`) that sent one.
    nonces: Arc<Mutex<HashMap<String, String>>>,
}

/// Origins whose nonces are kept: a client talks to a handful; a flood of distinct ones only
/// starts the map over.
const MAX_NONCE_ORIGINS: usize = 256;

/// Longest nonce kept (the server's to choose; ours are 32 characters).
const MAX_NONCE_LEN: usize = 512;

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpopKey(jkt={})", self.thumbprint())
    }
}

/// `scheme://authority` of `url`, lower-cased: what a nonce is kept under.
fn origin(url: &str) -> &str {
    let end = url.find("://").map(|i| i + 3).and_then(|s| url[s..].find(['/', '?', '#']).map(|e| s + e));
    &url[..end.unwrap_or(url.len())]
}

impl DpopKey {
    /// A new ES256 key, held in memory only: tokens bound to it die with the process.
    pub fn generate() -> Result<Self, ClientError> {
        SigningKey::generate(SigningAlg::ES256)
            .map(|(k, _)| Self::of(k))
            .map_err(|e| ClientError::Credentials(format!("no DPoP key could be generated: {e}")))
    }

    /// A key from PEM (PKCS#8, SEC 1 or PKCS#1), to keep tokens usable across restarts.
    pub fn from_pem(pem: &str) -> Result<Self, ClientError> {
        SigningKey::from_pem(pem, None)
            .map(Self::of)
            .map_err(|e| ClientError::Credentials(format!("not a DPoP key: {e}")))
    }

    fn of(key: SigningKey) -> Self {
        Self { key: Arc::new(key), nonces: Arc::default() }
    }

    /// RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn thumbprint(&self) -> String {
        tessera_jose::thumbprint(&self.key.public_jwk())
    }

    /// Keeps the `DPoP-Nonce` an answer from `url` carried (§8.2, §9): the next proofs for
    /// that origin carry it.
    pub(crate) fn remember_nonce(&self, url: &str, nonce: &str) {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return;
        }
        let origin = origin(url).to_ascii_lowercase();
        let mut nonces = self.nonces.lock().expect("nonce lock");
        if nonces.get(&origin).is_some_and(|n| n == nonce) {
            return;
        }
        if nonces.len() >= MAX_NONCE_ORIGINS && !nonces.contains_key(&origin) {
            nonces.clear();
        }
        nonces.insert(origin, nonce.to_owned());
    }

    /// Keeps the nonce of an answer's `DPoP-Nonce` header, if it has one.
    pub(crate) fn remember_nonce_from(&self, url: &str, headers: &http::HeaderMap) {
        if let Some(n) = headers.get(NONCE_HEADER).and_then(|v| v.to_str().ok()) {
            self.remember_nonce(url, n);
        }
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
        let nonce = self.nonces.lock().expect("nonce lock").get(&origin(htu).to_ascii_lowercase()).cloned();
        let claims = ProofClaims { jti: &jti, htm: method, htu, iat: now, access_token, nonce: nonce.as_deref() };
        sign_proof(&self.key, &claims)
            .map_err(|e| ClientError::Credentials(format!("a DPoP proof could not be signed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use tessera_jose::dpop::{ProofExpectations, verify_proof};

    use super::*;

    #[test]
    fn rfc9449_8_proofs_carry_the_last_nonce_of_their_origin_only() {
        let key = DpopKey::generate().unwrap();
        let expect = |url, nonces: &[String]| {
            let e =
                ProofExpectations { method: "GET", url, now: 100, max_age: 60, leeway: 5, access_token: None, nonces };
            verify_proof(&key.proof("GET", url, 100, None).unwrap(), &e).is_ok()
        };
        let a = "https://api.example:8443/x";
        let n1 = ["n-1".to_owned()];
        assert!(!expect(a, &n1), "no nonce before the server gave one");
        key.remember_nonce("https://API.example:8443/other?q", "n-1");
        assert!(expect(a, &n1), "the origin's nonce, whatever the path");
        assert!(!expect("https://api.example/x", &n1), "another origin (port) has its own");
        key.clone().remember_nonce(a, "n-2");
        assert!(expect(a, &["n-2".to_owned()]), "clones share the nonces; the last one wins");
        key.remember_nonce(a, &"x".repeat(MAX_NONCE_LEN + 1));
        assert!(expect(a, &["n-2".to_owned()]), "an oversized nonce is ignored");
        assert_eq!(origin("https://h:1/p?q"), "https://h:1");
        assert_eq!(origin("https://h"), "https://h");
    }
}
