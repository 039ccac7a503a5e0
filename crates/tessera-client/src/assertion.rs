//! `private_key_jwt` client authentication: a private key that never leaves this process, and
//! a fresh, short-lived client assertion signed with it for every token request (RFC 7523 §2.2
//! and §3, RFC 7521 §4.2, with the RFC 7523bis audience rule).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use tessera_jose::{JoseError, SigningKey};
use tessera_types::rfc7517::Jwk;
use tessera_types::{ClientId, Kid, SigningAlg};

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub use tessera_types::rfc7523::JWT_BEARER as JWT_BEARER_ASSERTION_TYPE;

/// The longest assertion lifetime this client signs: Tessera's default
/// `max_client_assertion_lifetime`, and what other servers commonly accept.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The private key a `private_key_jwt` client signs its assertions with, and the `kid` it
/// names in them. Cheap to clone (the parsed key is shared). `Debug` shows the `kid`, the
/// algorithm and the lifetime, never key material, and nothing here sends the private key
/// anywhere: only signatures and [`AssertionKey::public_jwk`] leave this type.
///
/// The `kid` defaults to the RFC 7638 thumbprint of the public key, which is also the key id
/// the Tessera server derives for a registered JWK that has none; register the key under
/// another `kid` and name it with [`AssertionKey::with_kid`] (a JWK's own `kid` is kept).
#[derive(Clone)]
pub struct AssertionKey {
    key: Arc<SigningKey>,
    kid: Kid,
    lifetime: Duration,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionKey")
            .field("kid", &self.kid)
            .field("alg", &self.key.alg)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: i64,
    exp: i64,
}

impl AssertionKey {
    /// Assertions valid for 60 s: long enough for a slow network and a little clock skew,
    /// short enough that the server's replay cache stays small.
    const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

    /// A PEM private key (unencrypted PKCS#8 as `openssl genpkey` writes it, or SEC 1 / PKCS#1):
    /// P-256 signs ES256, Ed25519 EdDSA, RSA RS256 (see [`AssertionKey::from_pem_with_alg`]
    /// for PS256).
    pub fn from_pem(pem: &str) -> Result<Self, JoseError> {
        SigningKey::from_pem(pem, None).map(Self::from_signing_key)
    }

    /// A PEM private key that must sign `alg`, e.g. an RSA key for PS256.
    pub fn from_pem_with_alg(pem: &str, alg: SigningAlg) -> Result<Self, JoseError> {
        SigningKey::from_pem(pem, Some(alg)).map(Self::from_signing_key)
    }

    /// A private JWK (RFC 7517): its `alg` or, without one, the key type's default as for
    /// PEM; its `kid` if it has one, else the thumbprint.
    pub fn from_jwk(json: &str) -> Result<Self, JoseError> {
        let (key, kid) = SigningKey::from_private_jwk(json)?;
        let mut this = Self::from_signing_key(key);
        if let Some(kid) = kid {
            this.kid = kid;
        }
        Ok(this)
    }

    /// A key already parsed, named by its thumbprint.
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self { kid: key.kid.clone(), key: Arc::new(key), lifetime: Self::DEFAULT_LIFETIME }
    }

    /// Names the key `kid` in assertions: the key id it is registered under at the server.
    pub fn with_kid(mut self, kid: Kid) -> Self {
        self.kid = kid;
        self
    }

    /// Assertions valid for `lifetime` (default 60 s) from their `iat`; whole seconds, at
    /// least 1 s and at most [`MAX_ASSERTION_LIFETIME`], which the server would refuse.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Result<Self, JoseError> {
        if lifetime.as_secs() == 0 || lifetime > MAX_ASSERTION_LIFETIME {
            return Err(JoseError::Key(format!("assertion lifetime {lifetime:?} is not within 1 s..=300 s")));
        }
        self.lifetime = Duration::from_secs(lifetime.as_secs());
        Ok(self)
    }

    /// The key id named in assertions.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The algorithm assertions are signed with.
    pub fn alg(&self) -> SigningAlg {
        self.key.alg
    }

    /// The public key as a JWK under [`AssertionKey::kid`]: what to register at the server
    /// (`tessera client add ID --jwks FILE` takes a set of these).
    pub fn public_jwk(&self) -> Jwk {
        Jwk { kid: self.kid.to_string(), ..self.key.public_jwk() }
    }

    /// A new client assertion for `client_id` at the authority whose issuer identifier,
    /// exactly as its metadata publishes it, is `issuer`, issued at `now` (Unix seconds).
    ///
    /// RFC 7523 §3: "The JWT MUST contain an "iss" (issuer) claim that contains a unique
    /// identifier for the entity that issued the JWT" and, for client authentication, "the
    /// subject MUST be the "client_id" of the OAuth client" (both the client_id, RFC 7523
    /// §3 item 2.B). RFC 7523bis: `aud` is the authorization server's issuer identifier as a
    /// single string, never the token endpoint, so that an assertion cannot be replayed at
    /// another server that shares an endpoint name (CVE-2025-27370). A new `jti` every time:
    /// the server refuses one it has seen, so a retried request needs a new assertion too.
    pub(crate) fn assertion(&self, client_id: &ClientId, issuer: &str, now: i64) -> Result<String, JoseError> {
        let mut nonce = [0u8; 16]; // 128 bits: collisions never happen in practice
        SystemRandom::new().fill(&mut nonce).map_err(|_| JoseError::Key("no randomness for the jti".into()))?;
        let jti = URL_SAFE_NO_PAD.encode(nonce);
        let claims = Claims {
            iss: client_id.as_str(),
            sub: client_id.as_str(),
            aud: issuer,
            jti: &jti,
            iat: now,
            exp: now.saturating_add(self.lifetime.as_secs() as i64),
        };
        self.key.sign_jwt(&self.kid, Some("JWT"), &claims)
    }
}
