//! Signing keys with their parsed key pairs, JWKs, RFC 7638 thumbprints, and compact JWS
//! signing.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
    RsaKeyPair,
};
use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_types::rfc7517::Jwk;
use tessera_types::{Kid, SigningAlg};

use crate::JoseError;

pub(crate) enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key, parsed once and reused: aws-lc key pairs are not re-parsed per
/// signature (jsonwebtoken's re-parsing makes RS256 2.5x slower).
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: Kid,
    #[allow(missing_docs)]
    pub alg: SigningAlg,
    header_b64: String,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

pub(crate) fn rejected(e: impl std::fmt::Display) -> JoseError {
    JoseError::Key(e.to_string())
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 encoding.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), JoseError> {
        let pkcs8 = match alg {
            SigningAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(rejected)?
                .to_pkcs8v1()
                .map_err(rejected)?
                .as_ref()
                .to_vec(),
            SigningAlg::RS256 | SigningAlg::PS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(rejected)?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(rejected)?;
                der.as_ref().to_vec()
            }
            SigningAlg::EdDSA => {
                Ed25519KeyPair::generate().map_err(rejected)?.to_pkcs8().map_err(rejected)?.as_ref().to_vec()
            }
        };
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }

    /// Parses a PKCS#8 private key for `alg`.
    pub fn from_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, JoseError> {
        let pair = match alg {
            SigningAlg::ES256 => {
                Pair::Ecdsa(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(rejected)?)
            }
            SigningAlg::RS256 | SigningAlg::PS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
            SigningAlg::EdDSA => Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
        };
        Ok(Self::from_pair(alg, pair))
    }

    /// A key for `alg` around an already parsed pair; the caller has checked that the pair
    /// fits `alg` (an RSA pair for RS256 or PS256, and so on).
    pub(crate) fn from_pair(alg: SigningAlg, pair: Pair) -> Self {
        let kid = Kid::new(thumbprint(&public_jwk(alg, &pair, String::new())))
            .expect("a thumbprint is 43 base64url characters");
        let header =
            tessera_types::rfc9068::Header { alg, typ: tessera_types::rfc9068::TYP.to_owned(), kid: kid.clone() };
        let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serialises"));
        Self { kid, alg, header_b64, pair }
    }

    /// The public key as a JWK (no private members).
    pub fn public_jwk(&self) -> Jwk {
        public_jwk(self.alg, &self.pair, self.kid.to_string())
    }

    /// Signs `message` (the JWS signing input) and returns the raw JWS signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let rng = rand::SystemRandom::new();
        match &self.pair {
            // RFC 7518 §3.4: the signature is R || S, 64 bytes: the FIXED encoding.
            Pair::Ecdsa(p) => Ok(p.sign(&rng, message).map_err(rejected)?.as_ref().to_vec()),
            Pair::Rsa(p) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if self.alg == SigningAlg::PS256 { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(padding, &rng, message, &mut sig).map_err(rejected)?;
                Ok(sig)
            }
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }

    /// Signs a JSON payload as an RFC 9068 access token: compact serialisation (RFC 7515
    /// §7.1) with the header `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn sign_access_token<T: serde::Serialize>(&self, claims: &T) -> Result<String, JoseError> {
        self.sign_compact(&self.header_b64, claims)
    }

    /// Signs a JSON payload as a compact JWS (RFC 7515 §7.1) with the header
    /// `{"alg", "typ", "kid"}`: `alg` is always this key's own, so a caller cannot label a
    /// signature with another algorithm; `typ` is left out when `None`. For JWTs other than
    /// access tokens, such as RFC 7523 client assertions, whose `kid` is the one the
    /// recipient registered (not necessarily this key's thumbprint).
    pub fn sign_jwt<T: serde::Serialize>(&self, kid: &Kid, typ: Option<&str>, claims: &T) -> Result<String, JoseError> {
        #[derive(serde::Serialize)]
        struct Header<'a> {
            alg: SigningAlg,
            #[serde(skip_serializing_if = "Option::is_none")]
            typ: Option<&'a str>,
            kid: &'a Kid,
        }
        let header = Header { alg: self.alg, typ, kid };
        let header_b64 =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|e| JoseError::Malformed(e.to_string()))?);
        self.sign_compact(&header_b64, claims)
    }

    fn sign_compact<T: serde::Serialize>(&self, header_b64: &str, claims: &T) -> Result<String, JoseError> {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| JoseError::Malformed(e.to_string()))?);
        let mut token = String::with_capacity(header_b64.len() + payload.len() + 400);
        token.push_str(header_b64);
        token.push('.');
        token.push_str(&payload);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// The public members of `pair` as a JWK published for `alg` under `kid`.
fn public_jwk(alg: SigningAlg, pair: &Pair, kid: String) -> Jwk {
    let b64 = |b: &[u8]| Some(URL_SAFE_NO_PAD.encode(b));
    let mut jwk = Jwk {
        kty: String::new(),
        kid,
        use_: Some("sig".into()),
        alg: Some(alg.as_str().into()),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
    };
    match pair {
        Pair::Ecdsa(p) => {
            // Uncompressed SEC1 point: 0x04 || x || y.
            let point = p.public_key().as_ref();
            jwk.kty = "EC".into();
            jwk.crv = Some("P-256".into());
            jwk.x = b64(&point[1..33]);
            jwk.y = b64(&point[33..65]);
        }
        Pair::Rsa(p) => {
            jwk.kty = "RSA".into();
            jwk.n = b64(p.public_key().modulus().big_endian_without_leading_zero());
            jwk.e = b64(p.public_key().exponent().big_endian_without_leading_zero());
        }
        Pair::Ed25519(p) => {
            jwk.kty = "OKP".into();
            jwk.crv = Some("Ed25519".into());
            jwk.x = b64(p.public_key().as_ref());
        }
    }
    jwk
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Jwk) -> String {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let canonical = match jwk.kty.as_str() {
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, s(&jwk.crv), s(&jwk.x), s(&jwk.y)),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&jwk.e), s(&jwk.n)),
        _ => format!(r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#, s(&jwk.crv), jwk.kty, s(&jwk.x)),
    };
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_3_1_example_thumbprint() {
        // The RSA key of RFC 7638 §3.1 and its thumbprint.
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: String::new(),
            use_: None,
            alg: None,
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn every_alg_generates_signs_and_round_trips_through_pkcs8() {
        for alg in SigningAlg::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(key.kid, again.kid, "{alg}");
            assert!(!key.sign(b"msg").unwrap().is_empty());
            let jwk = serde_json::to_value(key.public_jwk()).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwk.get(private).is_none(), "{alg} leaks {private}");
            }
        }
    }
}
