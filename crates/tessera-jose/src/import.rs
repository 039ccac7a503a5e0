//! Private keys brought from elsewhere: PEM files (PKCS#8, SEC 1, PKCS#1) and private JWKs
//! (RFC 7517, RFC 7518 §6, RFC 8037 §2), for clients that sign their own JWTs (RFC 7523).
//! Key material is decoded here, handed to aws-lc, and never kept or printed by us.

use std::str::FromStr;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use tessera_types::{Kid, SigningAlg};

use crate::JoseError;
use crate::sign::{Pair, SigningKey, rejected};
use crate::verify::b64;

impl SigningKey {
    /// Reads an unencrypted private key in PEM: `PRIVATE KEY` (PKCS#8, what `openssl
    /// genpkey` writes), `EC PRIVATE KEY` (SEC 1) or `RSA PRIVATE KEY` (PKCS#1). Without
    /// `alg` the key type decides: P-256 → ES256, Ed25519 → EdDSA, RSA → RS256; with it, the
    /// key must fit (PS256 is the way to sign RSA-PSS). Encrypted keys are refused: decrypt
    /// them with `openssl pkey` first.
    pub fn from_pem(pem: &str, alg: Option<SigningAlg>) -> Result<Self, JoseError> {
        let (label, der) = pem_block(pem)?;
        let rsa = |alg: Option<SigningAlg>| match alg {
            None | Some(SigningAlg::RS256) => Ok(SigningAlg::RS256),
            Some(SigningAlg::PS256) => Ok(SigningAlg::PS256),
            Some(other) => Err(JoseError::Key(format!("an RSA key cannot sign {other}"))),
        };
        match label.as_str() {
            "PRIVATE KEY" => match alg {
                Some(alg) => Self::from_pkcs8(alg, &der),
                // The key type is inside the DER; trying each parser is how aws-lc tells.
                None => [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256]
                    .into_iter()
                    .find_map(|alg| Self::from_pkcs8(alg, &der).ok())
                    .ok_or_else(|| JoseError::Key("not a P-256, Ed25519 or RSA PKCS#8 private key".into())),
            },
            "EC PRIVATE KEY" => {
                if alg.is_some_and(|a| a != SigningAlg::ES256) {
                    return Err(JoseError::Key("an EC key signs ES256 only".into()));
                }
                let pair =
                    EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(rejected)?;
                Ok(Self::from_pair(SigningAlg::ES256, Pair::Ecdsa(pair)))
            }
            "RSA PRIVATE KEY" => {
                let alg = rsa(alg)?;
                Ok(Self::from_pair(alg, Pair::Rsa(RsaKeyPair::from_der(&der).map_err(rejected)?)))
            }
            "ENCRYPTED PRIVATE KEY" => {
                Err(JoseError::Key("encrypted private keys are not read; decrypt it first".into()))
            }
            other => Err(JoseError::Key(format!("PEM block {other:?} is not a private key"))),
        }
    }

    /// Reads a private JWK (a JSON object with `d`, and for RSA `p`, `q`, `dp`, `dq`, `qi`).
    /// The algorithm is its `alg`, or from the key type as in [`SigningKey::from_pem`]; the
    /// private part must match the public one. Returns the key with the JWK's `kid`, if it
    /// has one, which is the name the recipient knows it by.
    pub fn from_private_jwk(json: &str) -> Result<(Self, Option<Kid>), JoseError> {
        let jwk: PrivateJwk = serde_json::from_str(json).map_err(|_| JoseError::Key("not a JWK object".into()))?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(JoseError::Key("not a signature key".into()));
        }
        let alg = jwk.alg.as_deref().map(|a| SigningAlg::from_str(a).map_err(|_| JoseError::Algorithm(a.to_owned())));
        let alg = alg.transpose()?;
        let d = b64("d", &jwk.d)?;
        let key = match (jwk.kty.as_str(), jwk.crv.as_deref(), alg) {
            ("EC", Some("P-256"), None | Some(SigningAlg::ES256)) => {
                // SEC 1 uncompressed point: 0x04 || x || y.
                let mut point = vec![4u8];
                point.extend(b64("x", &jwk.x)?);
                point.extend(b64("y", &jwk.y)?);
                let pair = EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point)
                    .map_err(rejected)?;
                Self::from_pair(SigningAlg::ES256, Pair::Ecdsa(pair))
            }
            ("OKP", Some("Ed25519"), None | Some(SigningAlg::EdDSA)) => {
                // RFC 8037 §2: `d` is the 32-byte seed, `x` the public key it must yield.
                let pair = Ed25519KeyPair::from_seed_and_public_key(&d, &b64("x", &jwk.x)?).map_err(rejected)?;
                Self::from_pair(SigningAlg::EdDSA, Pair::Ed25519(pair))
            }
            ("RSA", _, None | Some(SigningAlg::RS256 | SigningAlg::PS256)) => {
                let alg = alg.unwrap_or(SigningAlg::RS256);
                let fields = [
                    b64("n", &jwk.n)?,
                    b64("e", &jwk.e)?,
                    d,
                    b64("p", &jwk.p)?,
                    b64("q", &jwk.q)?,
                    b64("dp", &jwk.dp)?,
                    b64("dq", &jwk.dq)?,
                    b64("qi", &jwk.qi)?,
                ];
                let pair = RsaKeyPair::from_der(&rsa_private_key_der(&fields)).map_err(rejected)?;
                Self::from_pair(alg, Pair::Rsa(pair))
            }
            (kty, crv, alg) => {
                return Err(JoseError::Key(format!("key type {kty} {} does not fit {alg:?}", crv.unwrap_or(""))));
            }
        };
        let kid = jwk.kid.map(Kid::new).transpose().map_err(|e| JoseError::Key(e.to_string()))?;
        Ok((key, kid))
    }
}

/// The members a private JWK may carry. No `Debug`: it holds the private key.
#[derive(Deserialize)]
struct PrivateJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
}

/// The first PEM block of `pem` (RFC 7468): its label and decoded contents.
fn pem_block(pem: &str) -> Result<(String, Vec<u8>), JoseError> {
    let malformed = || JoseError::Key("not a PEM private key".into());
    let start = pem.find("-----BEGIN ").ok_or_else(malformed)?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(malformed)?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----")).ok_or_else(malformed)?;
    let text: String = body[..end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(text).map_err(|_| malformed())?;
    Ok((label.to_owned(), der))
}

/// RFC 8017 Appendix A.1.2 `RSAPrivateKey` (two primes): the DER aws-lc reads, built from
/// the JWK's members `n, e, d, p, q, dp, dq, qi` (RFC 7518 §6.3.2) in that order.
fn rsa_private_key_der(fields: &[Vec<u8>; 8]) -> Vec<u8> {
    let mut body = der_integer(&[0]); // version two-prime
    for f in fields {
        body.extend(der_integer(f));
    }
    der_tlv(0x30, &body)
}

/// A DER INTEGER from unsigned big-endian bytes: minimal, with a zero byte when the high bit
/// would make it negative.
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let trimmed = match unsigned.iter().position(|&b| b != 0) {
        Some(i) => &unsigned[i..],
        None => &[0u8][..],
    };
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        v.push(0);
    }
    v.extend_from_slice(trimmed);
    der_tlv(0x02, &v)
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::{VerifyingKey, thumbprint};

    /// Test-only keys written by Python's `cryptography` (an independent implementation),
    /// each in every form it is read from; the thumbprints were computed there too.
    const RSA: [&str; 3] = [
        include_str!("../testdata/rsa.pkcs8.pem"),
        include_str!("../testdata/rsa.pkcs1.pem"),
        include_str!("../testdata/rsa.jwk.json"),
    ];
    const EC: [&str; 3] = [
        include_str!("../testdata/ec.pkcs8.pem"),
        include_str!("../testdata/ec.sec1.pem"),
        include_str!("../testdata/ec.jwk.json"),
    ];
    const ED: [&str; 2] = [include_str!("../testdata/ed25519.pkcs8.pem"), include_str!("../testdata/ed25519.jwk.json")];

    fn signs_for_its_public_key(key: &SigningKey) {
        let vk = VerifyingKey::from_jwk(&key.public_jwk()).unwrap();
        let sig = key.sign(b"input").unwrap();
        assert!(vk.verify(key.alg, b"input", &sig), "{}", key.alg);
    }

    #[test]
    fn every_form_of_one_key_is_the_same_key_with_the_rfc7638_thumbprint() {
        let cases: [(&[&str], SigningAlg, &str); 3] = [
            (&RSA, SigningAlg::RS256, "nLrUQZxRpoHM24dey0f59qNhyW2V-IomOxKkqxTV7dI"),
            (&EC, SigningAlg::ES256, "6JtEbyy84wqAPa4f8UAm_QYMsFjFmMMXqQoFZ4eaQ4A"),
            (&ED, SigningAlg::EdDSA, "1Lbjl-POrYzxuHFhWX7hKt_w6KIShmqIhNVCQR7aY8o"),
        ];
        for (forms, alg, tp) in cases {
            for form in forms {
                let key = if form.starts_with('{') {
                    let (key, kid) = SigningKey::from_private_jwk(form).unwrap();
                    assert_eq!(kid, None);
                    key
                } else {
                    SigningKey::from_pem(form, None).unwrap()
                };
                assert_eq!((key.alg, key.kid.as_str()), (alg, tp), "{form:.40}");
                assert_eq!(thumbprint(&key.public_jwk()), tp);
                signs_for_its_public_key(&key);
            }
        }
    }

    #[test]
    fn keys_from_openssl_genpkey_are_read() {
        // `openssl genpkey` writes PKCS#8 v1 (no public key inside) for both.
        for (pem, alg) in [
            (include_str!("../testdata/openssl-ec.pem"), SigningAlg::ES256),
            (include_str!("../testdata/openssl-ed25519.pem"), SigningAlg::EdDSA),
        ] {
            let key = SigningKey::from_pem(pem, None).unwrap();
            assert_eq!(key.alg, alg);
            signs_for_its_public_key(&key);
        }
    }

    #[test]
    fn an_rsa_key_signs_ps256_when_asked_and_no_key_signs_outside_its_family() {
        let key = SigningKey::from_pem(RSA[0], Some(SigningAlg::PS256)).unwrap();
        assert_eq!(key.alg, SigningAlg::PS256);
        signs_for_its_public_key(&key);
        assert!(SigningKey::from_pem(RSA[1], Some(SigningAlg::ES256)).is_err());
        assert!(SigningKey::from_pem(EC[0], Some(SigningAlg::RS256)).is_err());
        assert!(SigningKey::from_pem(EC[1], Some(SigningAlg::EdDSA)).is_err());
        let mut jwk: serde_json::Value = serde_json::from_str(EC[2]).unwrap();
        jwk["alg"] = "RS256".into();
        assert!(SigningKey::from_private_jwk(&jwk.to_string()).is_err());
    }

    #[test]
    fn a_jwk_keeps_its_kid_and_must_be_private_and_consistent() {
        let mut jwk: serde_json::Value = serde_json::from_str(EC[2]).unwrap();
        jwk["kid"] = "client-key-1".into();
        let (_, kid) = SigningKey::from_private_jwk(&jwk.to_string()).unwrap();
        assert_eq!(kid.unwrap().as_str(), "client-key-1");
        // A public key alone cannot sign.
        let mut public = jwk.clone();
        public.as_object_mut().unwrap().remove("d");
        assert!(SigningKey::from_private_jwk(&public.to_string()).is_err());
        // The private half of one key with the public half of another.
        for (one, alg) in [(EC[2], SigningAlg::ES256), (ED[1], SigningAlg::EdDSA)] {
            let mut mixed: serde_json::Value = serde_json::from_str(one).unwrap();
            let (other, _) = SigningKey::generate(alg).unwrap();
            mixed["x"] = serde_json::to_value(other.public_jwk().x).unwrap();
            assert!(SigningKey::from_private_jwk(&mixed.to_string()).is_err(), "{alg}");
        }
        let mut rsa: serde_json::Value = serde_json::from_str(RSA[2]).unwrap();
        rsa.as_object_mut().unwrap().remove("qi");
        assert!(SigningKey::from_private_jwk(&rsa.to_string()).is_err(), "CRT members are required");
        assert!(SigningKey::from_private_jwk(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_err(), "no HMAC keys");
    }

    #[test]
    fn pem_that_is_not_an_unencrypted_private_key_is_refused() {
        for bad in [
            "",
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n",
        ] {
            assert!(SigningKey::from_pem(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_integer(&[0]), [2, 1, 0]);
        assert_eq!(der_integer(&[0, 0, 0x7f]), [2, 1, 0x7f]);
        assert_eq!(der_integer(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(der_tlv(0x30, &[0; 200])[..3], [0x30, 0x81, 200]);
        assert_eq!(der_tlv(0x30, &[0; 300])[..4], [0x30, 0x82, 1, 44]);
    }

    #[test]
    fn sign_jwt_names_the_keys_own_alg_the_given_kid_and_typ() {
        let key = SigningKey::from_pem(ED[0], None).unwrap();
        let kid = Kid::new("k1").unwrap();
        let header = |jwt: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
        };
        let jwt = key.sign_jwt(&kid, Some("JWT"), &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(header(&jwt), serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}));
        let jwt = key.sign_jwt(&kid, None, &serde_json::json!({})).unwrap();
        assert_eq!(header(&jwt), serde_json::json!({"alg": "EdDSA", "kid": "k1"}));
        let crate::Jws { alg, .. } = crate::Jws::parse(&jwt).unwrap();
        assert_eq!(alg, SigningAlg::EdDSA);
    }
}
