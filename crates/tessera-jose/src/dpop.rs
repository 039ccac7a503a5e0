//! DPoP proofs (RFC 9449): the checks of §4.3 that need only the proof and the request, for
//! the authorization server (at the token endpoint) and the resource server (the guard)
//! alike. What needs state — the `jti` replay cache, server nonces — stays with the caller,
//! which gets the proof's `jti` and key thumbprint back.

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use tessera_types::rfc7517::Jwk;

use crate::{Jws, VerifyingKey, thumbprint};

/// RFC 9449 §4.2: the JOSE `typ` of a proof.
pub const TYP: &str = "dpop+jwt";

/// RFC 7517 §4, RFC 7518 §6: members that carry private or symmetric key material.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must match.
#[derive(Debug, Clone)]
pub struct ProofExpectations<'a> {
    /// The request's method (§4.3 item 8: `htm`).
    pub method: &'a str,
    /// The request's URL; query and fragment are ignored (§4.3 item 9: `htu`).
    pub url: &'a str,
    /// Now, seconds since the epoch (the caller's clock).
    pub now: i64,
    /// How old an `iat` may be (§4.3 item 11, "within an acceptable window").
    pub max_age: i64,
    /// How far in the future an `iat` may be (clock skew).
    pub leeway: i64,
    /// At a resource server, the access token presented with the proof (§4.3 item 12: `ath`).
    pub access_token: Option<&'a str>,
    /// The nonces the server accepts when it requires one (§8, §4.3 item 10): the current
    /// one and, across a rotation, the one before. Empty: none required.
    pub nonces: &'a [String],
}

/// A proof that passed: who holds the key, and the id the caller must not accept twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key: the token's `cnf.jkt` (§6).
    pub jkt: String,
    /// The proof's `jti` (§4.3 item 13: replay detection is the caller's).
    pub jti: String,
    /// Its `iat`.
    pub iat: i64,
}

/// Why a proof was refused. All are `invalid_dpop_proof` on the wire (§7.1 at a resource
/// server, §5 at the token endpoint) except [`ProofError::NonceRequired`] (`use_dpop_nonce`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)]
pub enum ProofError {
    #[error("the proof is not a well-formed JWS: {0}")]
    Malformed(String),
    #[error("typ must be dpop+jwt")]
    Type,
    #[error("the proof's key is not a usable public key: {0}")]
    Key(String),
    #[error("the signature does not verify with the proof's key")]
    Signature,
    #[error("claim {0} is missing or malformed")]
    Claim(&'static str),
    #[error("htm does not match the request method")]
    Method,
    #[error("htu does not match the request URL")]
    Url,
    #[error("iat is outside the accepted window")]
    IssuedAt,
    #[error("ath does not match the access token")]
    AccessTokenHash,
    #[error("the server requires a nonce")]
    NonceRequired,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<Value>,
    htm: Option<Value>,
    htu: Option<Value>,
    iat: Option<Value>,
    ath: Option<Value>,
    nonce: Option<Value>,
}

/// §4.2: `ath`, the base64url SHA-256 of the access token's ASCII.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref())
}

/// Checks `proof` by §4.3 items 2–12 (item 1, one `DPoP` header, and item 13, replay, are the
/// caller's): a JWS typed `dpop+jwt`, signed with an allowed asymmetric algorithm by the
/// public key in its own `jwk` header; `jti`, `htm`, `htu`, `iat` present; `htm` and `htu`
/// those of this request; `iat` in the window; `ath` and `nonce` when expected.
pub fn verify_proof(proof: &str, expect: &ProofExpectations<'_>) -> Result<VerifiedProof, ProofError> {
    // Item 5: `none` and MAC algorithms are refused by the parse, before any key is read.
    let jws = Jws::parse(proof).map_err(|e| ProofError::Malformed(e.to_string()))?;
    // Item 4.
    if !jws.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(TYP)) {
        return Err(ProofError::Type);
    }
    // Item 7: the key is public; a private member means the client has leaked its key.
    let raw = jws.embedded_jwk.as_ref().and_then(Value::as_object).ok_or(ProofError::Key("no jwk header".into()))?;
    if PRIVATE_MEMBERS.iter().any(|m| raw.contains_key(*m)) {
        return Err(ProofError::Key("the jwk holds private key material".into()));
    }
    let mut jwk: Jwk =
        serde_json::from_value(Value::Object(raw.clone())).map_err(|e| ProofError::Key(e.to_string()))?;
    // The key verifies the header's algorithm only, and must fit it (an RSA key under ES256
    // is refused by `from_jwk`).
    jwk.alg = Some(jws.alg.as_str().to_owned());
    let key = VerifyingKey::from_jwk(&jwk).map_err(|e| ProofError::Key(e.to_string()))?;
    // Item 6.
    jws.verify_signature(&key).map_err(|_| ProofError::Signature)?;
    let payload = jws.unverified_payload().map_err(|e| ProofError::Malformed(e.to_string()))?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| ProofError::Malformed("payload is not a JSON object".into()))?;
    let text = |v: Option<Value>, what| match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(ProofError::Claim(what)),
    };
    // Item 3.
    let jti = text(claims.jti, "jti")?;
    let htm = text(claims.htm, "htm")?;
    let htu = text(claims.htu, "htu")?;
    let iat = claims.iat.as_ref().and_then(Value::as_i64).ok_or(ProofError::Claim("iat"))?;
    // Item 8.
    if htm != expect.method {
        return Err(ProofError::Method);
    }
    // Item 9.
    if !htu_matches(&htu, expect.url) {
        return Err(ProofError::Url);
    }
    // Item 10 (§8): a proof without the nonce the server asked for, or with a stale one.
    if !expect.nonces.is_empty() {
        match claims.nonce {
            Some(Value::String(n)) if expect.nonces.contains(&n) => {}
            _ => return Err(ProofError::NonceRequired),
        }
    }
    // Item 11.
    if iat < expect.now.saturating_sub(expect.max_age) || iat > expect.now.saturating_add(expect.leeway) {
        return Err(ProofError::IssuedAt);
    }
    // Item 12.
    if let Some(token) = expect.access_token {
        match claims.ath {
            Some(Value::String(a)) if a == ath(token) => {}
            _ => return Err(ProofError::AccessTokenHash),
        }
    }
    Ok(VerifiedProof { jkt: thumbprint(&jwk), jti, iat })
}

/// Server-provided nonces (§8 at an authorization server, §9 at a resource server), made
/// without state: a nonce names a rotation period and carries an HMAC of it, so every
/// instance holding the same secret issues and accepts the same nonces, and nothing is
/// stored. A nonce is accepted during its period and the next one, so a client that just
/// received one is not refused at a rotation; after that the server answers `use_dpop_nonce`
/// with the current one.
pub struct NonceIssuer {
    key: hmac::Key,
    period: i64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NonceIssuer(period={}s)", self.period)
    }
}

impl NonceIssuer {
    /// Nonces keyed by `secret` (at least 32 bytes of randomness, shared by the instances
    /// that must accept each other's nonces), rotating every `period_s` seconds.
    pub fn new(secret: &[u8], period_s: u64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            period: i64::try_from(period_s.max(1)).unwrap_or(i64::MAX),
        }
    }

    fn nonce_of(&self, index: i64) -> String {
        let index = index.to_be_bytes();
        let tag = hmac::sign(&self.key, &index);
        let mut raw = Vec::with_capacity(8 + 16);
        raw.extend_from_slice(&index);
        // 128 bits of tag: forging one is as hard as guessing a random nonce of that size.
        raw.extend_from_slice(&tag.as_ref()[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce to hand out at `now` (seconds since the epoch).
    pub fn current(&self, now: i64) -> String {
        self.nonce_of(now.div_euclid(self.period))
    }

    /// The nonces a proof may carry at `now`: the current period's and the previous one's.
    pub fn accepted(&self, now: i64) -> [String; 2] {
        let index = now.div_euclid(self.period);
        [self.nonce_of(index), self.nonce_of(index.saturating_sub(1))]
    }
}

/// What a client puts in a proof (§4.2).
#[derive(Debug, Clone)]
pub struct ProofClaims<'a> {
    /// A fresh unique id.
    pub jti: &'a str,
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL without query and fragment.
    pub htu: &'a str,
    /// Now.
    pub iat: i64,
    /// The access token it accompanies, at a resource server.
    pub access_token: Option<&'a str>,
    /// The server's nonce, when it gave one.
    pub nonce: Option<&'a str>,
}

/// Signs a proof with `key`, its public half in the `jwk` header (§4.2).
pub fn sign_proof(key: &crate::SigningKey, claims: &ProofClaims<'_>) -> Result<String, crate::JoseError> {
    let mut jwk = serde_json::to_value(key.public_jwk()).expect("a JWK serialises");
    // The key is identified by itself; `kid` and `use` mean nothing here.
    if let Some(o) = jwk.as_object_mut() {
        o.remove("kid");
        o.remove("use");
    }
    let header = serde_json::json!({ "typ": TYP, "alg": key.alg.as_str(), "jwk": jwk });
    let mut payload = serde_json::json!({ "jti": claims.jti, "htm": claims.htm, "htu": claims.htu, "iat": claims.iat });
    if let Some(token) = claims.access_token {
        payload["ath"] = ath(token).into();
    }
    if let Some(nonce) = claims.nonce {
        payload["nonce"] = nonce.into();
    }
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON serialises"));
    let signing_input = format!("{}.{}", b64(&header), b64(&payload));
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// §4.3 item 9: `htu` names the request's URL "ignoring any query and fragment parts", after
/// RFC 3986 §6.2.2 (case of scheme, host and percent-encodings) and §6.2.3 (default port,
/// empty path) normalisation.
pub fn htu_matches(htu: &str, request_url: &str) -> bool {
    match (normalize(htu), normalize(request_url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn normalize(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    // Percent-encodings compare case-blind: upper-case their hex digits.
    let mut normal_path = String::with_capacity(path.len());
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        normal_path.push(c);
        if c == '%' {
            for _ in 0..2 {
                normal_path.push(chars.next()?.to_ascii_uppercase());
            }
        }
    }
    Some(format!("{scheme}://{authority}{normal_path}"))
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
