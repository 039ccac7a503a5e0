//! The JOSE Tessera needs, and no more: compact JWS (RFC 7515) signed with ES256, RS256, PS256
//! or EdDSA; public JWKs (RFC 7517) with RFC 7638 thumbprints; and verification of RFC 9068
//! access tokens with an algorithm allow-list — never `none`, never HMAC, and a key is only
//! ever used with the algorithm it was published for (no key confusion). The `jku`, `x5u`
//! and `jwk` headers are never read.
//!
//! Private keys are generated here or read from PEM or a private JWK
//! ([`SigningKey::from_pem`], [`SigningKey::from_private_jwk`]), for clients that sign their
//! own RFC 7523 assertions ([`SigningKey::sign_jwt`]).
#![deny(missing_docs)]

pub mod dpop;
mod import;
mod sign;
mod verify;

pub use sign::{SigningKey, thumbprint};
pub use verify::{Expectations, JoseError, Jws, VerifiedToken, VerifyingKey, verify_access_token};
