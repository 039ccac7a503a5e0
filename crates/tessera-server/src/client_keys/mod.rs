//! Clients' registered public keys for `private_key_jwt` (RFC 7523): a JWK Set checked once
//! on the way in (CLI, seed file) and parsed once per registry snapshot, or fetched from the
//! client's `jwks_uri` and checked the same way ([`remote`]).

pub mod remote;

use serde_json::Value;
use tessera_jose::VerifyingKey;
use tessera_types::rfc7517::{Jwk, JwkSet};
use tessera_types::{ClientId, Kid};

use crate::admin::AdminError;

/// How much key material a client may register (`[limits]` `max_client_keys`,
/// `max_client_jwks_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBounds {
    /// Most keys one client may register (a rotation needs two or three).
    pub max_keys: usize,
    /// Largest JWK Set document read (`--jwks FILE`, `jwks_file`, inline `jwks`), bytes.
    pub max_bytes: usize,
}

impl Default for KeyBounds {
    fn default() -> Self {
        Self { max_keys: 10, max_bytes: 64 * 1024 }
    }
}

/// RFC 7517 §4, RFC 7518 §6.2.2, §6.3.2, §6.4, RFC 8037 §2: the members that hold private or
/// symmetric key material. A JWK carrying any of them is refused, not stripped: whoever
/// sent it has leaked a private key and should learn so.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn refused(client_id: &ClientId, why: impl std::fmt::Display) -> AdminError {
    AdminError::Refused(format!("client {client_id}: JWK Set: {why}"))
}

/// Reads a JWK Set of public signature keys for `client_id` from `text`: within `bounds`, no private or symmetric key, each key usable
/// (its `alg`, or the one its type and curve determine, among ES256, RS256, PS256, EdDSA),
/// and each with a unique `kid` (the RFC 7638 thumbprint when it has none). The result
/// names every key's `kid` and `alg`, so what is stored is what is verified.
pub fn parse_jwks(client_id: &ClientId, text: &str, bounds: &KeyBounds) -> Result<JwkSet, AdminError> {
    if text.len() > bounds.max_bytes {
        return Err(refused(
            client_id,
            format!("larger than {} bytes (limits.max_client_jwks_bytes)", bounds.max_bytes),
        ));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| refused(client_id, format!("not JSON: {e}")))?;
    from_value(client_id, doc, bounds)
}

/// As [`parse_jwks`], from JSON already read (the seed file's inline `jwks` table).
pub fn from_value(client_id: &ClientId, doc: Value, bounds: &KeyBounds) -> Result<JwkSet, AdminError> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return Err(refused(client_id, "no \"keys\" array (RFC 7517 section 5)"));
    };
    if keys.is_empty() {
        return Err(refused(client_id, "no keys"));
    }
    if keys.len() > bounds.max_keys {
        let why = format!("{} keys; at most {} (limits.max_client_keys)", keys.len(), bounds.max_keys);
        return Err(refused(client_id, why));
    }
    let mut checked: Vec<Jwk> = Vec::with_capacity(keys.len());
    for (i, raw) in keys.iter().enumerate() {
        let jwk = public_key(raw).map_err(|why| refused(client_id, format!("key {i}: {why}")))?;
        if checked.iter().any(|k| k.kid == jwk.kid) {
            return Err(refused(client_id, format!("key {i}: kid {:?} appears twice", jwk.kid)));
        }
        checked.push(jwk);
    }
    Ok(JwkSet { keys: checked })
}

/// One key, checked and completed with its `kid` and `alg`.
fn public_key(raw: &Value) -> Result<Jwk, String> {
    let Some(members) = raw.as_object() else { return Err("not a JSON object".into()) };
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(format!(
            "has the private member {private:?}: register the public key only (the private key never leaves the client)"
        ));
    }
    if members.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err("a symmetric (oct) key cannot authenticate with private_key_jwt".into());
    }
    let mut jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|e| format!("not a JWK: {e}"))?;
    let key = VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    jwk.alg = Some(key.alg.as_str().to_owned());
    if jwk.kid.is_empty() {
        jwk.kid = tessera_jose::thumbprint(&jwk);
    }
    Kid::new(jwk.kid.as_str()).map_err(|e| format!("kid {:?}: {e}", jwk.kid))?;
    Ok(jwk)
}

/// The keys of a stored set, parsed for verification. A key that no longer parses (the
/// database was edited by hand) is left out with an error line rather than failing the
/// whole registry.
pub(crate) fn verifying_keys(client_id: &ClientId, jwks: &JwkSet) -> Vec<VerifyingKey> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            VerifyingKey::from_jwk(jwk)
                .inspect_err(|e| tracing::error!(%client_id, kid = %jwk.kid, error = %e, "stored client key refused"))
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tessera_jose::SigningKey;
    use tessera_types::SigningAlg;

    use super::*;

    fn id() -> ClientId {
        ClientId::new("c").unwrap()
    }

    fn parse(text: &str) -> Result<JwkSet, AdminError> {
        parse_jwks(&id(), text, &KeyBounds::default())
    }

    fn set_of(keys: Vec<Value>) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[test]
    fn public_keys_are_completed_with_kid_and_alg() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk.as_object_mut().unwrap().remove("alg");
        let set = parse(&set_of(vec![jwk])).unwrap();
        assert_eq!(set.keys[0].kid, key.kid.to_string(), "RFC 7638 thumbprint");
        assert_eq!(set.keys[0].alg.as_deref(), Some("ES256"));
        assert_eq!(verifying_keys(&id(), &set).len(), 1);
    }

    #[test]
    fn private_symmetric_oversized_and_crowded_sets_are_refused() {
        let (key, _) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        let public = serde_json::to_value(key.public_jwk()).unwrap();
        for member in PRIVATE_MEMBERS {
            let mut private = public.clone();
            private[member] = "AAAA".into();
            let e = parse(&set_of(vec![private])).unwrap_err().to_string();
            assert!(e.contains("private member"), "{member}: {e}");
        }
        let oct = serde_json::json!({"kty": "oct", "alg": "HS256"});
        assert!(parse(&set_of(vec![oct])).unwrap_err().to_string().contains("symmetric"));
        let crowded = set_of(
            (0..=KeyBounds::default().max_keys)
                .map(|i| {
                    let mut k = public.clone();
                    k["kid"] = format!("k{i}").into();
                    k
                })
                .collect(),
        );
        assert!(parse(&crowded).unwrap_err().to_string().contains("at most"));
        assert!(parse(&" ".repeat(KeyBounds::default().max_bytes + 1)).is_err());
        assert!(parse(&set_of(vec![public.clone(), public.clone()])).unwrap_err().to_string().contains("twice"));
        assert!(parse("{}").is_err());
        let tight = KeyBounds { max_keys: 1, max_bytes: 100 };
        let two = set_of(vec![
            serde_json::to_value(SigningKey::generate(SigningAlg::ES256).unwrap().0.public_jwk())
                .unwrap();
            2
        ]);
        assert!(parse_jwks(&id(), &two, &tight).unwrap_err().to_string().contains("max_client_jwks_bytes"));
        let tight = KeyBounds { max_keys: 1, max_bytes: 64 * 1024 };
        assert!(parse_jwks(&id(), &two, &tight).unwrap_err().to_string().contains("max_client_keys"));
        assert!(parse(&set_of(vec![])).is_err());
        let mut hs = public;
        hs["alg"] = "HS256".into();
        assert!(parse(&set_of(vec![hs])).is_err(), "an alg outside the allow-list");
    }
}
