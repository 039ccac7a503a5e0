//! Signing keys: generation, JWK publication with RFC 7638 thumbprints as `kid`, signing
//! with cached aws-lc key pairs, and sealing of private keys at rest.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_store::{KeyRecord, KeyStatus, Store, StoreError};
use tessera_types::rfc7517::Jwk;
use tessera_types::{SigningAlg, UnixTime};

use crate::clock::Random;

/// Errors with keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library refused.
    #[error("key material rejected: {0}")]
    Rejected(String),
    /// A sealed key did not open: wrong key-encryption key, or tampered data.
    #[error("sealed private key {0} does not open with this key-encryption key")]
    Unseal(String),
    /// The key-encryption key file is unusable.
    #[error("key-encryption key {path}: {why}")]
    Kek {
        /// Its path.
        path: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key, parsed once and kept for the life of the registry snapshot.
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// The JOSE header of access tokens signed with this key, base64url-encoded once.
    pub(crate) header_b64: String,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn rejected(e: impl std::fmt::Display) -> KeyError {
    KeyError::Rejected(e.to_string())
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 encoding.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), KeyError> {
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
            SigningAlg::EdDSA => Ed25519KeyPair::generate()
                .map_err(rejected)?
                .to_pkcs8()
                .map_err(rejected)?
                .as_ref()
                .to_vec(),
        };
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }

    /// Parses a PKCS#8 private key for `alg`.
    pub fn from_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = match alg {
            SigningAlg::ES256 => Pair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(rejected)?,
            ),
            SigningAlg::RS256 | SigningAlg::PS256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
            SigningAlg::EdDSA => {
                Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
        };
        let mut key = Self {
            kid: String::new(),
            alg,
            header_b64: String::new(),
            pair,
        };
        key.kid = thumbprint(&key.public_jwk());
        let header = tessera_types::rfc9068::Header {
            alg: alg.as_str().to_owned(),
            typ: tessera_types::rfc9068::TYP.to_owned(),
            kid: key.kid.clone(),
        };
        key.header_b64 =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serialises"));
        Ok(key)
    }

    /// The public key as a JWK (no private members).
    pub fn public_jwk(&self) -> Jwk {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = Jwk {
            kty: String::new(),
            kid: self.kid.clone(),
            use_: "sig".into(),
            alg: self.alg.as_str().into(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match &self.pair {
            Pair::Ecdsa(p) => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = p.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64(&point[1..33]));
                jwk.y = Some(b64(&point[33..65]));
            }
            Pair::Rsa(p) => {
                jwk.kty = "RSA".into();
                jwk.n = Some(b64(p
                    .public_key()
                    .modulus()
                    .big_endian_without_leading_zero()));
                jwk.e = Some(b64(p
                    .public_key()
                    .exponent()
                    .big_endian_without_leading_zero()));
            }
            Pair::Ed25519(p) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64(p.public_key().as_ref()));
            }
        }
        jwk
    }

    /// Signs `message` (the JWS signing input) and returns the raw JWS signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = rand::SystemRandom::new();
        match &self.pair {
            // RFC 7518 §3.4: the signature is R || S, 64 bytes: the FIXED encoding.
            Pair::Ecdsa(p) => Ok(p.sign(&rng, message).map_err(rejected)?.as_ref().to_vec()),
            Pair::Rsa(p) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if self.alg == SigningAlg::PS256 {
                        &RSA_PSS_SHA256
                    } else {
                        &RSA_PKCS1_SHA256
                    };
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(padding, &rng, message, &mut sig).map_err(rejected)?;
                Ok(sig)
            }
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }
}

/// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Jwk) -> String {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let canonical = match jwk.kty.as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s(&jwk.crv),
            s(&jwk.x),
            s(&jwk.y)
        ),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&jwk.e), s(&jwk.n)),
        _ => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            s(&jwk.crv),
            jwk.kty,
            s(&jwk.x)
        ),
    };
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
}

/// The key-encryption key: AES-256-GCM, sealing private signing keys before they reach the
/// store. Kept in a 0600 file beside (not inside) the database, so a copy of the database
/// alone reveals no private key; instances sharing a database share this file.
pub struct Kek(LessSafeKey);

impl Kek {
    /// Reads the key file, creating it with 32 random bytes if absent.
    pub fn load_or_create(path: &Path, rng: &dyn Random) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::Kek {
            path: path.display().to_string(),
            why,
        };
        if !path.exists() {
            let mut raw = [0u8; 32];
            rng.fill(&mut raw);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match &mut f {
                Ok(f) => {
                    f.write_all(format!("{}\n", STANDARD.encode(raw)).as_bytes())
                        .map_err(|e| err(e.to_string()))?;
                    f.sync_all().map_err(|e| err(e.to_string()))?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| err("not base64".into()))?;
        if raw.len() != 32 {
            return Err(err("must hold 32 bytes, base64-encoded".into()));
        }
        Ok(Self(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &raw).map_err(|e| err(e.to_string()))?,
        )))
    }

    /// Seals `plain`, binding it to `kid`: `v1.` + base64(nonce || ciphertext || tag).
    pub fn seal(&self, kid: &str, plain: &[u8], rng: &dyn Random) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM seals any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", STANDARD.encode(out))
    }

    /// Opens what [`Kek::seal`] produced for `kid`.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bad = || KeyError::Unseal(kid.to_owned());
        let raw = sealed
            .strip_prefix("v1.")
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let mut buf = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

/// Generates a key for `alg`, seals it, and stores it as the active key of its algorithm
/// (the previous one is retired but stays published).
pub async fn rotate(
    store: &Store,
    kek: &Kek,
    alg: SigningAlg,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<String, KeyError> {
    let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|e| KeyError::Rejected(e.to_string()))??;
    let record = KeyRecord {
        kid: key.kid.clone(),
        alg,
        status: KeyStatus::Active,
        sealed_private_key: kek.seal(&key.kid, &pkcs8, rng),
        public_jwk: serde_json::to_string(&key.public_jwk()).expect("jwk serialises"),
        created_at: now,
    };
    store.add_active_key(&record).await?;
    tracing::info!(kid = %record.kid, %alg, "generated signing key");
    Ok(record.kid)
}

/// Makes sure each algorithm in `algs` has an active key, generating what is missing.
pub async fn ensure_active(
    store: &Store,
    kek: &Kek,
    algs: &[SigningAlg],
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(), KeyError> {
    let keys = store.list_keys().await?;
    for alg in algs {
        if !keys
            .iter()
            .any(|k| k.alg == *alg && k.status == KeyStatus::Active)
        {
            rotate(store, kek, *alg, rng, now).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemRandom;

    #[test]
    fn rfc7638_3_1_example_thumbprint() {
        // The RSA key of RFC 7638 §3.1 and its thumbprint.
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: String::new(),
            use_: "sig".into(),
            alg: "RS256".into(),
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
        };
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
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

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let dir = tempfile::tempdir().unwrap();
        let rng = SystemRandom::default();
        let kek = Kek::load_or_create(&dir.path().join("kek"), &rng).unwrap();
        let sealed = kek.seal("kid1", b"secret key", &rng);
        assert!(!sealed.contains("secret"));
        assert_eq!(kek.open("kid1", &sealed).unwrap(), b"secret key");
        assert!(kek.open("kid2", &sealed).is_err(), "bound to its kid");
        let other = Kek::load_or_create(&dir.path().join("other"), &rng).unwrap();
        assert!(other.open("kid1", &sealed).is_err());
        let again = Kek::load_or_create(&dir.path().join("kek"), &rng).unwrap();
        assert_eq!(
            again.open("kid1", &sealed).unwrap(),
            b"secret key",
            "persisted"
        );
    }
}
