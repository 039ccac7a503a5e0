//! Opaque reference tokens (RFC 7662's use case): 256 bits from the OS RNG, base64url. The
//! store keeps only their SHA-256, so a leaked database holds no usable token; a 256-bit
//! random value needs no salt or slow hash.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_store::TokenRecord;
use tessera_types::{ClientId, Jti, UnixTime};

use crate::clock::{Random, random_token};
use crate::grant::client_credentials::Grant;

/// A new token value.
pub fn generate(rng: &dyn Random) -> String {
    random_token(rng, 32)
}

/// What the store keys a token by.
pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Whether a presented token has the shape of a compact JWS (three dot-separated parts) rather
/// than of a reference token (base64url, no dots).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The record stored for `token`.
pub fn record(
    token: &str,
    client_id: &ClientId,
    grant: &Grant,
    now: UnixTime,
    lifetime: i64,
    rng: &dyn Random,
) -> TokenRecord {
    TokenRecord {
        hash: hash(token),
        jti: Jti::new(random_token(rng, 16)).expect("22 base64url characters are a valid jti"),
        client_id: client_id.clone(),
        scope: (!grant.scopes.is_empty()).then(|| grant.scopes.to_string()),
        audiences: grant.audiences.clone(),
        iat: now,
        exp: now.plus(lifetime),
        revoked: false,
    }
}
