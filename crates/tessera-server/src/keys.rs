//! Signing keys at rest: sealing private keys with the key-encryption key, generation and
//! rotation in the store. The JOSE side (signing, JWKs, thumbprints) is `tessera-jose`.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_jose::JoseError;
pub use tessera_jose::SigningKey;
use tessera_store::{KeyRecord, KeyStatus, Store, StoreError};
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

impl From<JoseError> for KeyError {
    fn from(e: JoseError) -> Self {
        Self::Rejected(e.to_string())
    }
}

/// The key-encryption key: AES-256-GCM, sealing private signing keys before they reach the
/// store. Kept in a 0600 file beside (not inside) the database, so a copy of the database
/// alone reveals no private key; instances sharing a database share this file.
pub struct Kek(LessSafeKey);

impl Kek {
    /// Reads the key file, creating it with 32 random bytes if absent.
    pub fn load_or_create(path: &Path, rng: &dyn Random) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::Kek { path: path.display().to_string(), why };
        if !path.exists() {
            let mut raw = [0u8; 32];
            rng.fill(&mut raw);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            match &mut f {
                Ok(f) => {
                    f.write_all(format!("{}\n", STANDARD.encode(raw)).as_bytes()).map_err(|e| err(e.to_string()))?;
                    f.sync_all().map_err(|e| err(e.to_string()))?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw = STANDARD.decode(text.trim()).map_err(|_| err("not base64".into()))?;
        if raw.len() != 32 {
            return Err(err("must hold 32 bytes, base64-encoded".into()));
        }
        Ok(Self(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).map_err(|e| err(e.to_string()))?)))
    }

    /// Seals `plain`, binding it to `kid`: `v1.` + base64(nonce || ciphertext || tag).
    pub fn seal(&self, kid: &str, plain: &[u8], rng: &dyn Random) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut buf)
            .expect("AES-GCM seals any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", STANDARD.encode(out))
    }

    /// Opens what [`Kek::seal`] produced for `kid`.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bad = || KeyError::Unseal(kid.to_owned());
        let raw = sealed.strip_prefix("v1.").and_then(|b| STANDARD.decode(b).ok()).ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let mut buf = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let plain = self.0.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf).map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

async fn new_record(kek: &Kek, alg: SigningAlg, rng: &dyn Random, now: UnixTime) -> Result<KeyRecord, KeyError> {
    let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|e| KeyError::Rejected(e.to_string()))??;
    Ok(KeyRecord {
        kid: key.kid.clone(),
        alg,
        status: KeyStatus::Active,
        sealed_private_key: kek.seal(&key.kid, &pkcs8, rng),
        public_jwk: serde_json::to_string(&key.public_jwk()).expect("jwk serialises"),
        created_at: now,
    })
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
    let record = new_record(kek, alg, rng, now).await?;
    store.add_active_key(&record).await?;
    tracing::info!(kid = %record.kid, %alg, "generated signing key");
    Ok(record.kid)
}

/// Makes sure each algorithm in `algs` has an active key, generating what is missing. Safe
/// when several instances sharing a database start together: one key wins, the others' are
/// discarded before use.
pub async fn ensure_active(
    store: &Store,
    kek: &Kek,
    algs: &[SigningAlg],
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(), KeyError> {
    let keys = store.list_keys().await?;
    for alg in algs {
        if !keys.iter().any(|k| k.alg == *alg && k.status == KeyStatus::Active) {
            let record = new_record(kek, *alg, rng, now).await?;
            if store.add_first_active_key(&record).await? {
                tracing::info!(kid = %record.kid, %alg, "generated signing key");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemRandom;

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
        assert_eq!(again.open("kid1", &sealed).unwrap(), b"secret key", "persisted");
    }
}
