//! Client secrets at rest: how they are hashed and how a presented secret is verified.
//!
//! Two kinds of stored hash (see the README's security section):
//! - `sha256$<b64url>`: for secrets Tessera generated itself (256 bits from the OS RNG).
//!   Guessing such a secret is as hard as inverting SHA-256, so a slow KDF adds nothing and
//!   verification costs well under a microsecond.
//! - `$argon2id$...`: for secrets imported by an operator (`--secret VALUE`, config files),
//!   whose entropy is unknown. Argon2id (RFC 9106, OWASP parameters) makes offline guessing
//!   from a leaked database expensive. To keep the token endpoint fast, a successful
//!   verification is remembered in memory for [`CACHE_TTL`] under a SHA-256 of
//!   (client, secret id, presented secret); concurrent verifications of the same credentials
//!   run once (single-flight), and at most [`MAX_PARALLEL_KDF`] run at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_store::SecretRecord;
use tessera_types::{ClientId, ClientSecret, UnixTime};
use tokio::sync::{OnceCell, Semaphore};

use crate::clock::{Random, random_token};

/// Prefix of generated secrets, so secret scanners can recognise leaked ones.
pub const GENERATED_PREFIX: &str = "tsec_";
/// How long a successful argon2id verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Concurrent argon2id verifications; more wait their turn.
pub const MAX_PARALLEL_KDF: usize = 2;
const CACHE_CAP: usize = 10_000;

/// A new secret: 256 bits from the OS RNG, base64url, prefixed.
pub fn generate(rng: &dyn Random) -> ClientSecret {
    ClientSecret::new(format!("{GENERATED_PREFIX}{}", random_token(rng, 32))).expect("base64url is VSCHAR")
}

/// The stored form of a secret Tessera generated.
pub fn hash_generated(secret: &ClientSecret) -> String {
    let d = digest::digest(&digest::SHA256, secret.expose().as_bytes());
    format!("sha256${}", URL_SAFE_NO_PAD.encode(d.as_ref()))
}

/// The stored form of an imported secret: argon2id with a random salt.
pub fn hash_imported(secret: &ClientSecret, rng: &dyn Random) -> String {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    argon2::Argon2::default()
        .hash_password_with_salt(secret.expose().as_bytes(), &salt)
        .expect("argon2 accepts any password up to 4 GiB")
        .to_string()
}

/// A stored secret record for `secret`.
pub fn record(secret: &ClientSecret, generated: bool, rng: &dyn Random, now: UnixTime) -> SecretRecord {
    SecretRecord {
        id: format!("sec_{}", random_token(rng, 6)),
        hash: if generated { hash_generated(secret) } else { hash_imported(secret, rng) },
        created_at: now,
    }
}

type CacheKey = [u8; 32];

struct Entry {
    started: Instant,
    verified: Arc<OnceCell<bool>>,
}

/// Verifies presented secrets against stored hashes, remembering argon2id successes briefly.
pub struct SecretVerifier {
    cache: Mutex<HashMap<CacheKey, Entry>>,
    kdf_permits: Semaphore,
    ttl: Duration,
}

impl Default for SecretVerifier {
    fn default() -> Self {
        Self::new(CACHE_TTL)
    }
}

impl SecretVerifier {
    /// A verifier whose cache keeps successes for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { cache: Mutex::new(HashMap::new()), kdf_permits: Semaphore::new(MAX_PARALLEL_KDF), ttl }
    }

    /// Whether `presented` matches one of `stored`.
    pub async fn verify(&self, client_id: &ClientId, stored: &[SecretRecord], presented: &ClientSecret) -> bool {
        // Fast path first: generated secrets, constant-time comparison of SHA-256 digests.
        let presented_digest = hash_generated(presented);
        let mut any_match = false;
        for s in stored.iter().filter(|s| s.hash.starts_with("sha256$")) {
            // Both are fixed-length encodings of digests; compare without early exit.
            any_match |=
                aws_lc_rs::constant_time::verify_slices_are_equal(s.hash.as_bytes(), presented_digest.as_bytes())
                    .is_ok();
        }
        if any_match {
            return true;
        }
        for s in stored.iter().filter(|s| s.hash.starts_with("$argon2")) {
            if self.verify_kdf(client_id, s, presented).await {
                return true;
            }
        }
        false
    }

    async fn verify_kdf(&self, client_id: &ClientId, stored: &SecretRecord, presented: &ClientSecret) -> bool {
        let key = cache_key(client_id, stored, presented);
        let cell = {
            let mut cache = self.cache.lock().expect("cache lock");
            let fresh = cache.get(&key).is_some_and(|e| e.started.elapsed() < self.ttl);
            if !fresh {
                if cache.len() >= CACHE_CAP {
                    let ttl = self.ttl;
                    cache.retain(|_, e| e.started.elapsed() < ttl);
                    if cache.len() >= CACHE_CAP {
                        cache.clear();
                    }
                }
                cache.insert(key, Entry { started: Instant::now(), verified: Arc::new(OnceCell::new()) });
            }
            cache[&key].verified.clone()
        };
        let ok = *cell
            .get_or_init(|| async {
                let Ok(_permit) = self.kdf_permits.acquire().await else {
                    return false;
                };
                let hash = stored.hash.clone();
                let secret = presented.clone();
                tokio::task::spawn_blocking(move || {
                    argon2::Argon2::default().verify_password(secret.expose().as_bytes(), hash.as_str()).is_ok()
                })
                .await
                .unwrap_or(false)
            })
            .await;
        if !ok {
            // Only successes are remembered: a wrong guess is not cached, and evicting it keeps
            // the map from filling with garbage.
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.get(&key).is_some_and(|e| Arc::ptr_eq(&e.verified, &cell)) {
                cache.remove(&key);
            }
        }
        ok
    }
}

fn cache_key(client_id: &ClientId, stored: &SecretRecord, presented: &ClientSecret) -> CacheKey {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in
        [client_id.as_str().as_bytes(), stored.id.as_bytes(), stored.hash.as_bytes(), presented.expose().as_bytes()]
    {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemRandom;

    #[tokio::test]
    async fn generated_and_imported_secrets_verify_and_wrong_ones_do_not() {
        let rng = SystemRandom::default();
        let id = ClientId::new("CC").unwrap();
        let generated = generate(&rng);
        assert!(generated.expose().len() >= GENERATED_PREFIX.len() + 43, "256 bits in base64url");
        let imported = ClientSecret::new("cc_secret").unwrap();
        let stored = vec![record(&generated, true, &rng, UnixTime(0)), record(&imported, false, &rng, UnixTime(0))];
        assert!(stored[0].hash.starts_with("sha256$"));
        assert!(stored[1].hash.starts_with("$argon2id$"));
        assert!(!stored.iter().any(|s| s.hash.contains("cc_secret")));
        let v = SecretVerifier::default();
        assert!(v.verify(&id, &stored, &generated).await);
        assert!(v.verify(&id, &stored, &imported).await);
        assert!(v.verify(&id, &stored, &imported).await, "cached success");
        assert!(!v.verify(&id, &stored, &ClientSecret::new("cc_secreT").unwrap()).await);
        // Removing the secret takes effect at once, whatever the cache holds.
        assert!(!v.verify(&id, &stored[..1], &imported).await);
    }
}
