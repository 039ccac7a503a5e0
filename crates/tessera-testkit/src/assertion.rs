//! `private_key_jwt` client assertions (RFC 7523) signed with a test key: an honest one, and
//! the raw pieces to build hostile ones (any header, any claims).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tessera_jose::SigningKey;
use tessera_types::{SigningAlg, UnixTime};

pub use tessera_types::rfc7523::JWT_BEARER;

/// A fresh key pair for `alg`.
pub fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::generate(alg).unwrap().0
}

/// `{"keys": [...]}` with the public halves of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// The header an honest client sends: its key's `alg` and `kid`.
pub fn header(key: &SigningKey) -> Value {
    json!({ "alg": key.alg.as_str(), "kid": key.kid.as_str(), "typ": "JWT" })
}

/// Claims an honest client sends at `now`: `iss` = `sub` = `client_id`, `aud` = `audience`,
/// a minute of lifetime, and `jti`.
pub fn claims(client_id: &str, audience: &str, now: UnixTime, jti: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now.0,
        "exp": now.0 + 60,
        "jti": jti,
    })
}

/// Any header and claims, signed by `key` (compact JWS, RFC 7515 §7.1).
pub fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
    format!("{input}.{signature}")
}

/// An honest assertion.
pub fn assertion(key: &SigningKey, client_id: &str, audience: &str, now: UnixTime, jti: &str) -> String {
    sign(key, &header(key), &claims(client_id, audience, now, jti))
}

/// base64url of a JSON value, for hand-built tokens.
pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// The form fields that present `assertion` (RFC 7521 §4.2), form-encoded.
pub fn form(assertion: &str) -> String {
    format!("client_assertion_type={}&client_assertion={assertion}", JWT_BEARER.replace(':', "%3A"))
}
