//! Compact JWS verification of access tokens: algorithm allow-list, key per algorithm, `typ`,
//! issuer, audience and time claims (saturating arithmetic), and the typed claims read back.

use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};
use tessera_types::rfc7517::Jwk;
use tessera_types::rfc9068::AccessTokenClaims;
use tessera_types::{Kid, SigningAlg};

/// Why a token or key was refused. The variants are for logs and tests; what a caller tells
/// the outside world is decided by the caller (introspection says only `active: false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not a compact JWS, bad base64url, bad JSON, too large, or stripped signature.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is `none`, HMAC, or anything outside the allow-list.
    #[error("algorithm {0:?} is not allowed")]
    Algorithm(String),
    /// No published key has this `kid` (for this algorithm).
    #[error("unknown signing key {0:?}")]
    UnknownKey(Option<Kid>),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Signature,
    /// `typ` is not the expected media type.
    #[error("token type {0:?} is not accepted")]
    Type(Option<String>),
    /// `iss` differs.
    #[error("issuer does not match")]
    Issuer,
    /// `aud` does not contain the expected audience.
    #[error("audience does not match")]
    Audience,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// A required claim is absent or of the wrong type.
    #[error("claim {0} is missing or malformed")]
    Claim(&'static str),
    /// Key material was refused.
    #[error("key: {0}")]
    Key(String),
}

/// Largest token considered at all.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A public key for one algorithm, from a JWK.
pub struct VerifyingKey {
    /// `kid` as published (a JWK without one, or with one that is not a valid [`Kid`], is
    /// matched only when it is the one key for its algorithm).
    pub kid: Option<Kid>,
    /// The one algorithm this key verifies.
    pub alg: SigningAlg,
    /// Parsed once: verification does not re-parse the key.
    key: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// The base64url member `field` of a JWK, which must be present.
pub(crate) fn b64(field: &'static str, v: &Option<String>) -> Result<Vec<u8>, JoseError> {
    let v = v.as_deref().ok_or_else(|| JoseError::Key(format!("{field} missing")))?;
    URL_SAFE_NO_PAD.decode(v).map_err(|_| JoseError::Key(format!("{field} is not base64url")))
}

impl VerifyingKey {
    /// Reads a public JWK. The algorithm comes from `alg`, or, when absent, from the key type
    /// (P-256 => ES256, Ed25519 => EdDSA, RSA => RS256). A key whose type does not fit its
    /// `alg` is refused, so a key can never be used with another algorithm family.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(JoseError::Key("not a signature key".into()));
        }
        let alg = match jwk.alg.as_deref() {
            Some(a) => SigningAlg::from_str(a).map_err(|_| JoseError::Algorithm(a.to_owned()))?,
            None => match (jwk.kty.as_str(), jwk.crv.as_deref()) {
                ("EC", Some("P-256")) => SigningAlg::ES256,
                ("OKP", Some("Ed25519")) => SigningAlg::EdDSA,
                ("RSA", _) => SigningAlg::RS256,
                _ => return Err(JoseError::Key(format!("unsupported key type {}", jwk.kty))),
            },
        };
        let parsed = |algorithm: &'static dyn VerificationAlgorithm, bytes: &[u8]| {
            ParsedPublicKey::new(algorithm, bytes).map_err(|e| JoseError::Key(e.to_string()))
        };
        let key = match (alg, jwk.kty.as_str(), jwk.crv.as_deref()) {
            (SigningAlg::ES256, "EC", Some("P-256")) => {
                let (x, y) = (b64("x", &jwk.x)?, b64("y", &jwk.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(JoseError::Key("P-256 coordinates must be 32 bytes".into()));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                parsed(&ECDSA_P256_SHA256_FIXED, &point)?
            }
            (SigningAlg::RS256 | SigningAlg::PS256, "RSA", _) => {
                let n = b64("n", &jwk.n)?;
                if n.len() < 256 {
                    return Err(JoseError::Key("RSA keys under 2048 bits are refused".into()));
                }
                let e = b64("e", &jwk.e)?;
                let der = RsaPublicKeyComponents { n: &n[..], e: &e[..] }
                    .as_der()
                    .map_err(|e| JoseError::Key(e.to_string()))?;
                let algorithm: &'static dyn VerificationAlgorithm =
                    if alg == SigningAlg::PS256 { &RSA_PSS_2048_8192_SHA256 } else { &RSA_PKCS1_2048_8192_SHA256 };
                parsed(algorithm, der.as_ref())?
            }
            (SigningAlg::EdDSA, "OKP", Some("Ed25519")) => {
                let x = b64("x", &jwk.x)?;
                if x.len() != 32 {
                    return Err(JoseError::Key("Ed25519 keys are 32 bytes".into()));
                }
                parsed(&ED25519, &x)?
            }
            _ => {
                return Err(JoseError::Key(format!("key type {} does not fit {alg}", jwk.kty)));
            }
        };
        Ok(Self { kid: Kid::new(jwk.kid.clone()).ok(), alg, key })
    }

    /// Whether `signature` is this key's signature over `message` with `alg`. A different
    /// algorithm never verifies.
    pub fn verify(&self, alg: SigningAlg, message: &[u8], signature: &[u8]) -> bool {
        if alg != self.alg {
            return false;
        }
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
#[allow(missing_docs)]
pub struct Jws<'a> {
    /// The header's `alg`, already checked against the allow-list.
    pub alg: SigningAlg,
    pub kid: Option<Kid>,
    pub typ: Option<String>,
    /// The `jwk` header as sent: read only by DPoP proof verification (RFC 9449 §4.2), where
    /// the proof carries its own key; every other verification ignores it.
    pub(crate) embedded_jwk: Option<Value>,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature: Vec<u8>,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JoseError::Malformed(format!("{what} is not base64url")))
}

/// The JOSE header as parsed: the members verification reads, each named once here. The
/// `jku` and `x5u` headers land in `_other` and are never read; `jwk` only by DPoP. RFC 7515 §4: names
/// must be unique; a repeated one makes the header unparsable rather than "the last wins".
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default, deserialize_with = "present")]
    alg: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    kid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    typ: Option<Value>,
    /// Present at all (even `null`) is refused.
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jwk: Option<Value>,
    #[serde(flatten)]
    _other: Map<String, Value>,
}

/// `Some` for a member that is present, even `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl<'a> Jws<'a> {
    /// Parses `header.payload.signature`. Refuses: more or fewer than three parts, an empty
    /// signature, `alg` outside ES256/RS256/PS256/EdDSA (so `none` and HS256 are refused
    /// before any key is looked at), and any `crit` header (RFC 7515 §4.1.11).
    pub fn parse(token: &'a str) -> Result<Self, JoseError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JoseError::Malformed("too large".into()));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JoseError::Malformed("not three dot-separated parts".into()));
        };
        if h.is_empty() || p.is_empty() || s.is_empty() {
            return Err(JoseError::Malformed("empty part (stripped signature?)".into()));
        }
        let header: RawHeader = serde_json::from_slice(&decode_part(h, "header")?)
            .map_err(|_| JoseError::Malformed("header is not a JSON object (or repeats a member)".into()))?;
        let string = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let alg_name = string(header.alg).ok_or_else(|| JoseError::Malformed("no alg".into()))?;
        let alg = SigningAlg::from_str(&alg_name).map_err(|_| JoseError::Algorithm(alg_name))?;
        // RFC 7515 §4.1.11: a recipient that does not understand the listed extensions MUST
        // reject the JWS; Tessera understands none.
        if header.crit.is_some() {
            return Err(JoseError::Malformed("crit headers are not understood".into()));
        }
        // A `kid` that is not a string is ignored as before; a string that cannot be a key id
        // (empty, control characters, over 255 characters) can match no key.
        let kid = string(header.kid).map(Kid::new).transpose().map_err(|e| JoseError::Malformed(e.to_string()))?;
        let typ = string(header.typ);
        Ok(Self {
            alg,
            kid,
            typ,
            embedded_jwk: header.jwk,
            signing_input: &token[..h.len() + 1 + p.len()],
            payload_b64: p,
            signature: decode_part(s, "signature")?,
        })
    }
}

impl Jws<'_> {
    /// The decoded payload, not yet trustworthy: for finding whose key should verify it
    /// (a client assertion names its client in `sub`) before [`Jws::verify_signature`].
    pub fn unverified_payload(&self) -> Result<Vec<u8>, JoseError> {
        decode_part(self.payload_b64, "payload")
    }

    /// Checks the signature with `key`, which must be for the header's `alg` (a key is used
    /// only with the algorithm it was registered for: no key confusion).
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), JoseError> {
        if key.alg != self.alg {
            return Err(JoseError::UnknownKey(self.kid.clone()));
        }
        if key.verify(self.alg, self.signing_input.as_bytes(), &self.signature) {
            Ok(())
        } else {
            Err(JoseError::Signature)
        }
    }

    /// Checks the signature against a party's registered keys (a client's, a trusted
    /// issuer's): by `kid` when the header names one, else every key of the header's
    /// algorithm. The `jku`, `x5u` and `jwk` headers are never read: only registered keys
    /// count. [`JoseError::UnknownKey`] when no key could apply (the caller may refetch).
    pub fn verify_with_any(&self, keys: &[VerifyingKey]) -> Result<(), JoseError> {
        match &self.kid {
            Some(kid) => {
                let key =
                    keys.iter().find(|k| k.kid.as_ref() == Some(kid)).ok_or(JoseError::UnknownKey(self.kid.clone()))?;
                self.verify_signature(key)
            }
            None => {
                let mut candidates = keys.iter().filter(|k| k.alg == self.alg).peekable();
                if candidates.peek().is_none() {
                    return Err(JoseError::UnknownKey(None));
                }
                if candidates.any(|k| self.verify_signature(k).is_ok()) { Ok(()) } else { Err(JoseError::Signature) }
            }
        }
    }
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// Exact `iss`.
    pub issuer: &'a str,
    /// An audience `aud` must contain; `None` leaves `aud` to the caller.
    pub audience: Option<&'a str>,
    /// Accepted `typ` (compared case-insensitively, with or without `application/`); `None`
    /// accepts any.
    pub typ: Option<&'a str>,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway: i64,
    /// Now, Unix seconds.
    pub now: i64,
}

/// A token whose signature and claims passed.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The algorithm it was signed with.
    pub alg: SigningAlg,
    /// The key id it was signed under.
    pub kid: Option<Kid>,
    /// The claims, typed: callers read fields, never a claim by name.
    pub claims: AccessTokenClaims,
}

fn typ_matches(actual: Option<&str>, expected: &str) -> bool {
    let norm = |t: &str| {
        let t = t.to_ascii_lowercase();
        t.strip_prefix("application/").map(str::to_owned).unwrap_or(t)
    };
    actual.is_some_and(|a| norm(a) == norm(expected))
}

/// Verifies an access token: parse, allow-listed `alg`, the key found by `kid` through `key`
/// (which must be for that same `alg`), signature, then `typ`, `iss`, `aud`, `exp`, `nbf`.
pub fn verify_access_token<'k>(
    token: &str,
    key: impl FnOnce(&Jws<'_>) -> Option<&'k VerifyingKey>,
    expect: &Expectations<'_>,
) -> Result<VerifiedToken, JoseError> {
    let jws = Jws::parse(token)?;
    let vk = key(&jws).ok_or_else(|| JoseError::UnknownKey(jws.kid.clone()))?;
    if vk.alg != jws.alg {
        // Key confusion: a key is used only with the algorithm it was published for.
        return Err(JoseError::UnknownKey(jws.kid.clone()));
    }
    if !vk.verify(jws.alg, jws.signing_input.as_bytes(), &jws.signature) {
        return Err(JoseError::Signature);
    }
    if let Some(t) = expect.typ {
        if !typ_matches(jws.typ.as_deref(), t) {
            return Err(JoseError::Type(jws.typ.clone()));
        }
    }
    let claims = AccessTokenClaims::from_json(&decode_part(jws.payload_b64, "payload")?).map_err(|e| match e.what {
        "payload" => JoseError::Malformed("payload is not a JSON object".into()),
        claim => JoseError::Claim(claim),
    })?;
    // RFC 9068 §4: "The issuer identifier ... MUST exactly match the value of the iss claim."
    if claims.iss.as_deref() != Some(expect.issuer) {
        return Err(JoseError::Issuer);
    }
    // RFC 9068 §4: the resource server "MUST validate that the aud claim contains a resource
    // indicator value corresponding to an identifier the resource server expects for itself".
    if let Some(want) = expect.audience {
        if !claims.aud.iter().any(|a| a == want) {
            return Err(JoseError::Audience);
        }
    }
    // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time".
    if expect.now >= claims.exp.0.saturating_add(expect.leeway) {
        return Err(JoseError::Expired);
    }
    // RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the not-before".
    if claims.nbf.is_some_and(|nbf| expect.now.saturating_add(expect.leeway) < nbf.0) {
        return Err(JoseError::NotYetValid);
    }
    Ok(VerifiedToken { alg: jws.alg, kid: jws.kid, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn expect(now: i64) -> Expectations<'static> {
        Expectations { issuer: "https://as", audience: Some("api1"), typ: Some("at+jwt"), leeway: 0, now }
    }

    fn token(key: &SigningKey, claims: Value) -> String {
        key.sign_access_token(&claims).unwrap()
    }

    fn good_claims() -> Value {
        serde_json::json!({"iss": "https://as", "aud": "api1", "exp": 2000, "nbf": 1000, "iat": 1000, "sub": "c"})
    }

    fn b64j(v: Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn each_algorithm_verifies_its_own_tokens_only() {
        for alg in SigningAlg::ALL {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
            let t = token(&key, good_claims());
            let v = verify_access_token(&t, |_| Some(&vk), &expect(1500)).unwrap();
            assert_eq!(v.claims.aud, vec!["api1"]);
            assert_eq!(v.alg, alg);
            let (other, _) = SigningKey::generate(alg).unwrap();
            let ovk = VerifyingKey::from_jwk(&other.public_jwk()).unwrap();
            assert_eq!(
                verify_access_token(&t, |_| Some(&ovk), &expect(1500)).unwrap_err(),
                JoseError::Signature,
                "{alg}"
            );
        }
    }

    #[test]
    fn claims_are_checked() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let t = token(&key, good_claims());
        assert_eq!(verify_access_token(&t, |_| Some(&vk), &expect(2000)).unwrap_err(), JoseError::Expired);
        assert_eq!(verify_access_token(&t, |_| Some(&vk), &expect(999)).unwrap_err(), JoseError::NotYetValid);
        let mut e = expect(1500);
        e.issuer = "https://other";
        assert_eq!(verify_access_token(&t, |_| Some(&vk), &e).unwrap_err(), JoseError::Issuer);
        let mut e = expect(1500);
        e.audience = Some("api2");
        assert_eq!(verify_access_token(&t, |_| Some(&vk), &e).unwrap_err(), JoseError::Audience);
        let mut e = expect(2005);
        e.leeway = 10;
        assert!(verify_access_token(&t, |_| Some(&vk), &e).is_ok(), "leeway");
    }

    #[test]
    fn alg_none_hmac_stripped_signature_and_key_confusion_are_refused() {
        let (key, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let t = token(&key, good_claims());
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!("{}.{}.", b64j(serde_json::json!({"alg": "none", "typ": "at+jwt"})), parts[1]);
        assert!(matches!(Jws::parse(&none).unwrap_err(), JoseError::Malformed(_)));
        let none_sig = format!("{}.{}.AAAA", b64j(serde_json::json!({"alg": "none", "typ": "at+jwt"})), parts[1]);
        assert_eq!(Jws::parse(&none_sig).unwrap_err(), JoseError::Algorithm("none".into()));
        let hs = format!("{}.{}.{}", b64j(serde_json::json!({"alg": "HS256", "typ": "at+jwt"})), parts[1], parts[2]);
        assert_eq!(Jws::parse(&hs).unwrap_err(), JoseError::Algorithm("HS256".into()));
        let stripped = format!("{}.{}.", parts[0], parts[1]);
        assert!(verify_access_token(&stripped, |_| Some(&vk), &expect(1500)).is_err());
        // PS256 header over an RS256 key: the key verifies RS256 only.
        let ps = format!("{}.{}.{}", b64j(serde_json::json!({"alg": "PS256", "typ": "at+jwt"})), parts[1], parts[2]);
        assert!(matches!(
            verify_access_token(&ps, |_| Some(&vk), &expect(1500)).unwrap_err(),
            JoseError::UnknownKey(_)
        ));
        let crit = format!("{}.{}.{}", b64j(serde_json::json!({"alg": "RS256", "crit": ["x"]})), parts[1], parts[2]);
        assert!(Jws::parse(&crit).is_err());
        assert!(Jws::parse("a.b").is_err());
        assert!(Jws::parse("a.b.c.d").is_err());
        assert!(Jws::parse(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(Jws::parse("\u{fffd}.\u{0}.é").is_err());
    }

    #[test]
    fn typ_must_be_at_jwt() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let t = token(&key, good_claims());
        let parts: Vec<&str> = t.split('.').collect();
        // Re-sign with a JWT typ header.
        let header = b64j(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": key.kid}));
        let input = format!("{header}.{}", parts[1]);
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
        let jwt = format!("{input}.{sig}");
        assert_eq!(
            verify_access_token(&jwt, |_| Some(&vk), &expect(1500)).unwrap_err(),
            JoseError::Type(Some("JWT".into()))
        );
        let mut e = expect(1500);
        e.typ = Some("application/at+jwt");
        assert!(verify_access_token(&t, |_| Some(&vk), &e).is_ok());
    }
}
