//! Signing keys at rest: sealing private keys with the key-encryption key, generation and
//! rotation in the store. The JOSE side (signing, JWKs, thumbprints) is `tessera-jose`.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_jose::JoseError;
pub use tessera_jose::SigningKey;
use tessera_store::{KeyRecord, KeyStatus, Store, StoreError};
use tessera_types::{Kid, SigningAlg, UnixTime};

use crate::random::Random;

/// Why a signing key or the key-encryption key could not be made, loaded, sealed, opened
/// or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library refused.
    #[error("key material rejected: {0}")]
    Rejected(String),
    /// A sealed key did not open: wrong key-encryption key, or tampered data.
    #[error("sealed private key {0} does not open with this key-encryption key")]
    Unseal(Kid),
    /// The key-encryption key file is unusable.
    #[error("key-encryption key {path}: {why}")]
    #[allow(missing_docs)]
    Kek { path: String, why: String },
    /// The key-encryption key is not the one that sealed the store's signing keys.
    #[error(
        "key-encryption key {path} (id {file_id}) is not the one that seals this database's signing keys \
         (id {db_id}); nothing was written. Pass the key-encryption key file the running servers use \
         (--key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE)"
    )]
    #[allow(missing_docs)]
    Mismatch {
        path: String,
        /// Short id of the file's key.
        file_id: String,
        /// Short id of the key the database records, or a description.
        db_id: String,
    },
    #[error(transparent)]
    #[allow(missing_docs)]
    Store(#[from] StoreError),
}

fn short_id(check: &str) -> String {
    check.strip_prefix("hmac-sha256:").unwrap_or(check).chars().take(12).collect()
}

/// Opens the key-encryption key for `store`, making sure it is the one that seals the
/// store's signing keys, before anything is read or written:
///
/// - a recorded check value must match the file's, whoever opens it;
/// - without one, the file must open the store's existing keys, and its check value is then
///   recorded (databases from before the check existed get theirs on first use);
/// - a missing file is an error, except for [`KekUse::Server`] on a store with neither keys
///   nor a recorded check value: then it is created (0600) and recorded.
pub async fn open_kek(
    store: &Store,
    path: &Path,
    who: KekUse,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<Kek, KeyError> {
    let recorded = store.kek_check().await?;
    let keys = store.list_keys().await?;
    let missing = |why: &str| KeyError::Kek { path: path.display().to_string(), why: why.to_owned() };
    let kek = if path.exists() {
        Kek::load(path)?
    } else if who == KekUse::Server && recorded.is_none() && keys.is_empty() {
        Kek::load_or_create(path, rng)?
    } else if who == KekUse::Cli {
        return Err(missing(
            "no such file; the CLI never creates a key-encryption key: pass the file the servers use \
             (--key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE), or create a new store with `tessera init`",
        ));
    } else {
        return Err(missing(
            "no such file, and this database already has signing keys sealed with a key-encryption key: pass the \
             file the other instances use (--key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE)",
        ));
    };
    let mismatch =
        |db_id: String| KeyError::Mismatch { path: kek.path.display().to_string(), file_id: kek.id(), db_id };
    match recorded {
        Some(check) if check == kek.check => return Ok(kek),
        Some(check) => return Err(mismatch(short_id(&check))),
        None => {}
    }
    // No check value yet: the keys themselves say whether this is their key.
    for k in &keys {
        if kek.open(&k.kid, &k.sealed_private_key).is_err() {
            return Err(mismatch(format!("none recorded; key {} does not open with this file", k.kid)));
        }
    }
    let winner = store.record_kek_check(&kek.check, now).await?;
    if winner != kek.check {
        return Err(mismatch(short_id(&winner)));
    }
    tracing::info!(kek = %kek.path.display(), id = %kek.id(), "recorded the key-encryption key check value");
    Ok(kek)
}

impl From<JoseError> for KeyError {
    fn from(e: JoseError) -> Self {
        Self::Rejected(e.to_string())
    }
}

/// The key-encryption key: AES-256-GCM, sealing private signing keys before they reach the
/// store. Kept in a 0600 file beside (not inside) the database, so a copy of the database
/// alone reveals no private key; instances sharing a database share this file.
///
/// The database records a check value of the key that seals its keys ([`Kek::check`]), so a
/// process holding another key refuses to start or to seal keys ([`open_kek`]).
pub struct Kek {
    key: LessSafeKey,
    /// The key as an HMAC key, to derive other shared secrets from (never the sealing key
    /// itself: each use gets its own label).
    derive: hmac::Key,
    check: String,
    path: PathBuf,
}

/// Label whose HMAC under the key-encryption key is the check value kept in the database.
const CHECK_LABEL: &[u8] = b"tessera key-encryption key check v1";

/// Who is opening the key-encryption key, which decides whether it may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KekUse {
    /// `serve` and `init`: may create the file, but only for a store with no signing keys
    /// and no recorded check value.
    Server,
    /// Other CLI commands: never create a key-encryption key.
    Cli,
}

impl Kek {
    /// Reads the key file, creating it with 32 random bytes if absent. Does not consult the
    /// store: servers and the CLI use [`open_kek`].
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
        Self::load(path)
    }

    /// Reads an existing key file. Refuses a file that group or others may access: the key
    /// opens every private signing key.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::Kek { path: path.display().to_string(), why };
        crate::tls::check_private(path).map_err(&err)?;
        let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw = STANDARD.decode(text.trim()).map_err(|_| err("not base64".into()))?;
        if raw.len() != 32 {
            return Err(err("must hold 32 bytes, base64-encoded".into()));
        }
        let derive = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        let tag = hmac::sign(&derive, CHECK_LABEL);
        Ok(Self {
            derive,
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).map_err(|e| err(e.to_string()))?),
            check: format!("hmac-sha256:{}", STANDARD.encode(tag.as_ref())),
            path: path.to_owned(),
        })
    }

    /// The check value recorded in the database: HMAC-SHA256 of a fixed label under this
    /// key. It identifies the key without revealing it.
    pub fn check(&self) -> &str {
        &self.check
    }

    /// A secret for `label`'s use (HMAC-SHA256 of the label under this key, a PRF): every
    /// instance sharing the key-encryption key derives the same one, and it reveals neither
    /// the key nor the other labels' secrets.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.derive, label).as_ref());
        out
    }

    /// A short id of this key for messages (the start of its check value).
    pub fn id(&self) -> String {
        short_id(&self.check)
    }

    /// Seals `plain`, binding it to `kid`: `v1.` + base64(nonce || ciphertext || tag).
    pub fn seal(&self, kid: &Kid, plain: &[u8], rng: &dyn Random) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_str().as_bytes()), &mut buf)
            .expect("AES-GCM seals any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("v1.{}", STANDARD.encode(out))
    }

    /// Opens what [`Kek::seal`] produced for `kid`.
    pub fn open(&self, kid: &Kid, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bad = || KeyError::Unseal(kid.clone());
        let raw = sealed.strip_prefix("v1.").and_then(|b| STANDARD.decode(b).ok()).ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let mut buf = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let plain = self.key.open_in_place(nonce, Aad::from(kid.as_str().as_bytes()), &mut buf).map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

/// A new active key of `alg`, sealed (the caller may make it a next key instead).
pub(crate) async fn new_record(
    kek: &Kek,
    alg: SigningAlg,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<KeyRecord, KeyError> {
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
        activates_at: Some(now),
        retired_at: None,
        remove_after: None,
    })
}

/// Generates a key for `alg`, seals it, and stores it as the active key of its algorithm at
/// once (`tessera key rotate --now`: for a compromised key; verifiers that cached the JWK
/// Set meet the new kid and refetch). The previous key is retired and stays published until
/// the tokens it signed have expired: `default_lifetime` or the longest client lifetime.
pub async fn rotate(
    store: &Store,
    kek: &Kek,
    alg: SigningAlg,
    default_lifetime: i64,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<Kid, KeyError> {
    let record = new_record(kek, alg, rng, now).await?;
    let keep = crate::rotation::longest_lifetime(store, default_lifetime).await?;
    store.add_active_key(&record, now.plus(keep + crate::rotation::RETIRE_LEEWAY)).await?;
    tracing::info!(kid = %record.kid, %alg, "generated signing key");
    Ok(record.kid)
}

/// Why `key remove` refused.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[allow(missing_docs)]
    #[error("no key {0}")]
    Unknown(Kid),
    /// Active or next: it signs, or is about to.
    #[error("key {0} is {1}: only a retired key can be removed (rotate first)")]
    InUse(Kid, &'static str),
    /// Tokens it signed may still be valid.
    #[error(
        "tokens key {kid} signed may be valid until {until}; removing it now makes verifiers refuse them \
         (--force removes it anyway, e.g. for a compromised key)"
    )]
    #[allow(missing_docs)]
    StillNeeded { kid: Kid, until: String },
    #[allow(missing_docs)]
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stops publishing the retired key `kid`: refused while tokens it signed may still be valid
/// (its `remove_after`, or unknown for a key retired before rotation was scheduled), unless
/// `force`. Every receiver of the revocation feed is told: tokens it signed are void.
pub async fn remove(store: &Store, kid: &Kid, force: bool, now: UnixTime) -> Result<(), RemoveError> {
    let keys = store.list_keys().await?;
    let key = keys.iter().find(|k| k.kid == *kid).ok_or_else(|| RemoveError::Unknown(kid.clone()))?;
    if key.status != KeyStatus::Retired {
        return Err(RemoveError::InUse(kid.clone(), key.status.as_str()));
    }
    let due = key.remove_after.is_some_and(|at| now >= at);
    if !due && !force {
        let until = key
            .remove_after
            .map_or_else(|| "an unknown time (retired before scheduled rotation)".into(), |t| t.0.to_string());
        return Err(RemoveError::StillNeeded { kid: kid.clone(), until });
    }
    if !store.remove_retired_key(kid, now).await? {
        return Err(RemoveError::Unknown(kid.clone()));
    }
    Ok(())
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
    use crate::random::SystemRandom;

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let dir = tempfile::tempdir().unwrap();
        let rng = SystemRandom::default();
        let kek = Kek::load_or_create(&dir.path().join("kek"), &rng).unwrap();
        let (kid1, kid2) = (Kid::new("kid1").unwrap(), Kid::new("kid2").unwrap());
        let sealed = kek.seal(&kid1, b"secret key", &rng);
        assert!(!sealed.contains("secret"));
        assert_eq!(kek.open(&kid1, &sealed).unwrap(), b"secret key");
        assert!(kek.open(&kid2, &sealed).is_err(), "bound to its kid");
        let other = Kek::load_or_create(&dir.path().join("other"), &rng).unwrap();
        assert!(other.open(&kid1, &sealed).is_err());
        let again = Kek::load_or_create(&dir.path().join("kek"), &rng).unwrap();
        assert_eq!(again.open(&kid1, &sealed).unwrap(), b"secret key", "persisted");
    }
}
