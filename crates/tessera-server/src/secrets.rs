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
//!   run once (single-flight), and at most `kdf_max_parallel` (see [`crate::limits`]) run at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_store::SecretRecord;
use tessera_types::{ClientId, ClientSecret, UnixTime};
use tokio::sync::{OnceCell, Semaphore};

use crate::limits::AuthLimits;
use crate::lru::Lru;
use crate::random::{Random, random_token};

/// Prefix of generated secrets, so secret scanners can recognise leaked ones.
pub const GENERATED_PREFIX: &str = "tsec_";
/// How long a successful argon2id verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Successful argon2id verifications remembered; the least recent is forgotten first.
const SUCCESS_CAP: usize = 10_000;

/// The kind of a stored secret hash, read from its prefix once, here: everything else matches
/// on this, so a third kind (or a change of prefix) cannot be missed at one call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretHashKind {
    /// `sha256$<b64url>`: a secret Tessera generated, verified by a constant-time digest
    /// comparison.
    Sha256,
    /// An argon2 PHC string (`$argon2id$...`): an imported secret, verified by the KDF.
    Argon2,
}

impl SecretHashKind {
    const SHA256_PREFIX: &str = "sha256$";
    const ARGON2_PREFIX: &str = "$argon2";

    /// The kind of `hash`; `None` for a string of neither kind, which then matches nothing.
    pub fn of(hash: &str) -> Option<Self> {
        if hash.starts_with(Self::SHA256_PREFIX) {
            Some(Self::Sha256)
        } else if hash.starts_with(Self::ARGON2_PREFIX) {
            Some(Self::Argon2)
        } else {
            None
        }
    }

    /// Whether Tessera generated the secret behind this hash (for `client show`).
    pub fn is_generated(self) -> bool {
        self == Self::Sha256
    }
}

/// A new secret: 256 bits from the OS RNG, base64url, prefixed.
pub fn generate(rng: &dyn Random) -> ClientSecret {
    ClientSecret::new(format!("{GENERATED_PREFIX}{}", random_token(rng, 32))).expect("base64url is VSCHAR")
}

/// The stored form of a secret Tessera generated.
pub fn hash_generated(secret: &ClientSecret) -> String {
    let d = digest::digest(&digest::SHA256, secret.expose().as_bytes());
    // Every request authenticated by secret hashes it: one allocation, no `format!`.
    let mut out = String::with_capacity(SecretHashKind::SHA256_PREFIX.len() + 43);
    out.push_str(SecretHashKind::SHA256_PREFIX);
    URL_SAFE_NO_PAD.encode_string(d.as_ref(), &mut out);
    out
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
    SecretRecord::new(
        format!("sec_{}", random_token(rng, 6)),
        if generated { hash_generated(secret) } else { hash_imported(secret, rng) },
        now,
    )
}

type CacheKey = [u8; 32];

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The secret matches.
    Valid,
    /// It does not (or the client is unknown or disabled: the same answer, in the same time).
    Invalid,
    /// Too many argon2id verifications are waiting: try again shortly (503).
    Busy,
}

/// Verifies presented secrets against stored hashes, remembering argon2id successes briefly.
///
/// Every failure costs one argon2id verification, whether the client is unknown, disabled,
/// holds only generated secrets or an imported one: response time tells an attacker nothing
/// about which client ids exist or are worth guessing. That work is bounded: at most
/// `kdf_max_parallel` run at once, `kdf_max_queue` wait, none longer than `kdf_max_wait`;
/// beyond that the answer is [`Verdict::Busy`] at once, so a flood of wrong secrets becomes
/// quick 503s rather than a queue in front of legitimate clients. Successes live in their own
/// LRU map, so in-flight attempts never push them out.
pub struct SecretVerifier {
    successes: Mutex<Lru<CacheKey, Instant>>,
    in_flight: Mutex<HashMap<CacheKey, Arc<OnceCell<Verdict>>>>,
    kdf_permits: Semaphore,
    kdf_waiting: AtomicUsize,
    kdf_pool: KdfPool,
    limits: AuthLimits,
    ttl: Duration,
    dummy_hash: String,
}

impl Default for SecretVerifier {
    fn default() -> Self {
        Self::new(CACHE_TTL, crate::limits::Limits::default().auth)
    }
}

impl SecretVerifier {
    /// A verifier whose cache keeps successes for `ttl`.
    pub fn new(ttl: Duration, limits: AuthLimits) -> Self {
        // A hash of a random secret nobody knows, verified in place of a missing one.
        let mut salt = [0u8; 16];
        let mut unknowable = [0u8; 32];
        aws_lc_rs::rand::fill(&mut salt).expect("OS RNG");
        aws_lc_rs::rand::fill(&mut unknowable).expect("OS RNG");
        let dummy_hash = argon2::Argon2::default()
            .hash_password_with_salt(&unknowable, &salt)
            .expect("argon2 accepts 32 bytes")
            .to_string();
        Self {
            successes: Mutex::new(Lru::new(SUCCESS_CAP)),
            in_flight: Mutex::new(HashMap::new()),
            kdf_permits: Semaphore::new(limits.kdf_max_parallel.max(1)),
            kdf_waiting: AtomicUsize::new(0),
            kdf_pool: KdfPool::new(limits.kdf_max_parallel.max(1)),
            limits,
            ttl,
            dummy_hash,
        }
    }

    /// Whether `presented` is known good without argon2id work: a generated secret, or an
    /// imported one verified within the cache lifetime.
    pub fn verify_cheap(&self, client_id: &ClientId, stored: &[SecretRecord], presented: &ClientSecret) -> bool {
        self.matched(client_id, stored, presented).is_some()
    }

    /// The stored secret `presented` is known to match without a KDF run: a generated one,
    /// or an imported one verified recently (so, right after [`Self::verify`] said `Valid`,
    /// the one it matched). Expired secrets included: the caller decides what expiry means.
    pub fn matched<'s>(
        &self,
        client_id: &ClientId,
        stored: &'s [SecretRecord],
        presented: &ClientSecret,
    ) -> Option<&'s SecretRecord> {
        matching_generated(stored, presented).or_else(|| {
            stored
                .iter()
                .filter(|s| SecretHashKind::of(&s.hash) == Some(SecretHashKind::Argon2))
                .find(|s| self.cached_success(&cache_key(client_id, s, presented)))
        })
    }

    fn cached_success(&self, key: &CacheKey) -> bool {
        self.successes.lock().expect("cache lock").get(key).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Whether `presented` matches one of `stored` (`None`: unknown or disabled client).
    pub async fn verify(
        &self,
        client_id: &ClientId,
        stored: Option<&[SecretRecord]>,
        presented: &ClientSecret,
    ) -> Verdict {
        let stored = stored.unwrap_or_default();
        if matching_generated(stored, presented).is_some() {
            return Verdict::Valid;
        }
        let mut tried = false;
        for s in stored.iter().filter(|s| SecretHashKind::of(&s.hash) == Some(SecretHashKind::Argon2)) {
            tried = true;
            match self.verify_kdf(client_id, s, presented).await {
                Verdict::Invalid => {}
                other => return other,
            }
        }
        if !tried {
            // Unknown, disabled, or generated secrets only: spend what a wrong imported
            // secret costs, under the same bound.
            let dummy = SecretRecord::new(String::new(), self.dummy_hash.clone(), UnixTime(0));
            if self.run_kdf(&dummy, presented).await == Verdict::Busy {
                return Verdict::Busy;
            }
        }
        Verdict::Invalid
    }

    async fn verify_kdf(&self, client_id: &ClientId, stored: &SecretRecord, presented: &ClientSecret) -> Verdict {
        let key = cache_key(client_id, stored, presented);
        if self.cached_success(&key) {
            return Verdict::Valid;
        }
        // Concurrent verifications of the same credentials run once.
        let cell = self.in_flight.lock().expect("in-flight lock").entry(key).or_default().clone();
        let verdict = *cell.get_or_init(|| self.run_kdf(stored, presented)).await;
        {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                in_flight.remove(&key);
            }
        }
        if verdict == Verdict::Valid {
            self.successes.lock().expect("cache lock").put(key, Instant::now());
        }
        verdict
    }

    /// One argon2id verification within the bounds.
    async fn run_kdf(&self, stored: &SecretRecord, presented: &ClientSecret) -> Verdict {
        let waiting = self.kdf_waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.kdf_waiting);
        if waiting >= self.limits.kdf_max_queue + self.limits.kdf_max_parallel {
            return Verdict::Busy;
        }
        let Ok(Ok(_permit)) = tokio::time::timeout(self.limits.kdf_max_wait, self.kdf_permits.acquire()).await else {
            return Verdict::Busy;
        };
        if self.kdf_pool.verify(stored.hash.clone(), presented.clone()).await {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }
}

type KdfJob = (String, ClientSecret, tokio::sync::oneshot::Sender<bool>);

/// `kdf_max_parallel` threads that run argon2id and nothing else. Each verification takes
/// 19 MiB; on the blocking pool every new thread would keep its own copy of that in its
/// allocator arena, so memory grew with the number of threads the pool had ever used. Here it
/// is bounded by the thread count.
struct KdfPool(std::sync::mpsc::SyncSender<KdfJob>);

impl KdfPool {
    fn new(threads: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<KdfJob>(threads * 4);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("tessera-kdf-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().expect("kdf queue").recv();
                        let Ok((hash, secret, done)) = job else { return };
                        let ok = argon2::Argon2::default()
                            .verify_password(secret.expose().as_bytes(), hash.as_str())
                            .is_ok();
                        let _ = done.send(ok);
                    }
                })
                .expect("spawn a KDF thread");
        }
        Self(tx)
    }

    /// Runs one verification (the caller holds a permit, so the queue never fills).
    async fn verify(&self, hash: String, secret: ClientSecret) -> bool {
        let (done, result) = tokio::sync::oneshot::channel();
        if self.0.try_send((hash, secret, done)).is_err() {
            return false;
        }
        result.await.unwrap_or(false)
    }
}

/// Generated secrets: constant-time comparison of SHA-256 digests (fixed-length encodings,
/// compared without early exit).
/// The generated secret `presented` is, comparing with every one in constant time.
fn matching_generated<'s>(stored: &'s [SecretRecord], presented: &ClientSecret) -> Option<&'s SecretRecord> {
    let presented_digest = hash_generated(presented);
    let mut found = None;
    for s in stored.iter().filter(|s| SecretHashKind::of(&s.hash) == Some(SecretHashKind::Sha256)) {
        if aws_lc_rs::constant_time::verify_slices_are_equal(s.hash.as_bytes(), presented_digest.as_bytes()).is_ok() {
            found = Some(s);
        }
    }
    found
}

/// When each secret was last used (issue 16), kept in memory and written in batches by the
/// pruner: a successful authentication costs a map lookup, not a database write. Each
/// secret's time is recorded at most once per `granularity` seconds.
///
/// One entry per secret used within the last `granularity` seconds, keyed by the secret's id
/// (the store's primary key, unique across clients), marked while it waits to be written.
/// The pruner's [`Self::take`] collects the marked ones and forgets those too old to matter,
/// so the map is bounded by the secrets in use, not by a count that, once passed, would turn
/// every request into a new entry and a new row to write (issue 17: at a million clients a
/// fixed cap of 100,000 did, and each flush rewrote every client's secret).
pub struct SecretUsage {
    granularity: i64,
    recorded: Mutex<HashMap<String, Recorded>>,
}

#[derive(Clone, Copy)]
struct Recorded {
    at: i64,
    /// Not yet written.
    pending: bool,
}

impl SecretUsage {
    /// A tracker recording each secret at most once per `granularity` seconds.
    pub fn new(granularity: i64) -> Self {
        Self { granularity, recorded: Mutex::default() }
    }

    /// The secret `secret_id` authenticated at `now`; `stored` is the last use the registry
    /// snapshot read from the store, so that a restarted server does not write again what the
    /// store already holds within the resolution (at a million clients in use, a million rows
    /// after every restart).
    pub fn used(&self, secret_id: &str, stored: Option<UnixTime>, now: UnixTime) {
        let fresh = |at: i64| now.0.saturating_sub(at) < self.granularity;
        let mut recorded = self.recorded.lock().expect("usage lock");
        match recorded.get_mut(secret_id) {
            Some(r) if fresh(r.at) => {}
            Some(r) => *r = Recorded { at: now.0, pending: true },
            None => {
                let r = match stored {
                    Some(at) if fresh(at.0) => Recorded { at: at.0, pending: false },
                    _ => Recorded { at: now.0, pending: true },
                };
                recorded.insert(secret_id.to_owned(), r);
            }
        }
    }

    /// What is to be written (secret id, time), taken; entries recorded `granularity` or more
    /// before `now` are forgotten (the next use records anew anyway).
    pub fn take(&self, now: UnixTime) -> Vec<(String, UnixTime)> {
        let mut recorded = self.recorded.lock().expect("usage lock");
        let mut out = Vec::new();
        recorded.retain(|id, r| {
            if r.pending {
                out.push((id.clone(), UnixTime(r.at)));
                r.pending = false;
            }
            now.0.saturating_sub(r.at) < self.granularity
        });
        // After a burst of clients, give the room back.
        if recorded.capacity() > 4 * recorded.len().max(1024) {
            recorded.shrink_to_fit();
        }
        out
    }

    /// Marks `failed` (from [`Self::take`]) to be written again, unless a later use has been
    /// recorded since.
    pub fn requeue(&self, failed: Vec<(String, UnixTime)>) {
        let mut recorded = self.recorded.lock().expect("usage lock");
        for (id, at) in failed {
            let r = recorded.entry(id).or_insert(Recorded { at: at.0, pending: true });
            if r.at <= at.0 {
                *r = Recorded { at: at.0, pending: true };
            }
        }
    }

    /// Secrets remembered (written or not).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.recorded.lock().expect("usage lock").len()
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The floor for imported secrets: at least 16 characters, 8 of them distinct, and 64 bits
/// by a character-class estimate (length × log2 of the classes' alphabet). Generated secrets
/// (256 bits) need no check.
pub fn check_strength(secret: &ClientSecret) -> Result<(), String> {
    let s = secret.expose();
    let len = s.chars().count();
    if len < 16 {
        return Err(format!("{len} characters, at least 16 are required"));
    }
    let mut distinct: Vec<char> = s.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 8 {
        return Err(format!("only {} distinct characters, at least 8 are required", distinct.len()));
    }
    let classes = [
        (s.chars().any(|c| c.is_ascii_lowercase()), 26.0),
        (s.chars().any(|c| c.is_ascii_uppercase()), 26.0),
        (s.chars().any(|c| c.is_ascii_digit()), 10.0),
        (s.chars().any(|c| !c.is_ascii_alphanumeric()), 33.0),
    ];
    let alphabet: f64 = classes.iter().filter(|(present, _)| *present).map(|(_, n)| n).sum();
    let bits = len as f64 * alphabet.log2();
    if bits < 64.0 {
        return Err(format!("about {bits:.0} bits by its character classes, at least 64 are required"));
    }
    Ok(())
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
    use crate::random::SystemRandom;

    #[tokio::test]
    async fn generated_and_imported_secrets_verify_and_wrong_ones_do_not() {
        let rng = SystemRandom::default();
        let id = ClientId::new("CC").unwrap();
        let generated = generate(&rng);
        assert!(generated.expose().len() >= GENERATED_PREFIX.len() + 43, "256 bits in base64url");
        let imported = ClientSecret::new("cc_secret").unwrap();
        let stored = vec![record(&generated, true, &rng, UnixTime(0)), record(&imported, false, &rng, UnixTime(0))];
        assert_eq!(SecretHashKind::of(&stored[0].hash), Some(SecretHashKind::Sha256));
        assert!(stored[1].hash.starts_with("$argon2id$"));
        assert_eq!(SecretHashKind::of(&stored[1].hash), Some(SecretHashKind::Argon2));
        assert_eq!(SecretHashKind::of("plain"), None);
        assert!(!stored.iter().any(|s| s.hash.contains("cc_secret")));
        let v = SecretVerifier::default();
        assert_eq!(v.verify(&id, Some(&stored), &generated).await, Verdict::Valid);
        assert_eq!(v.verify(&id, Some(&stored), &imported).await, Verdict::Valid);
        assert_eq!(v.verify(&id, Some(&stored), &imported).await, Verdict::Valid, "cached success");
        assert_eq!(v.verify(&id, Some(&stored), &ClientSecret::new("cc_secreT").unwrap()).await, Verdict::Invalid);
        // Removing the secret takes effect at once, whatever the cache holds.
        assert_eq!(v.verify(&id, Some(&stored[..1]), &imported).await, Verdict::Invalid);
        assert_eq!(v.verify(&id, None, &imported).await, Verdict::Invalid, "unknown client");
    }

    #[tokio::test]
    async fn past_the_queue_bound_wrong_secrets_are_refused_at_once_and_successes_stay_cached() {
        let rng = SystemRandom::default();
        let id = ClientId::new("CC").unwrap();
        let imported = ClientSecret::new("cc_secret").unwrap();
        let stored = vec![record(&imported, false, &rng, UnixTime(0))];
        let limits = AuthLimits { kdf_max_parallel: 1, kdf_max_queue: 2, ..crate::limits::Limits::default().auth };
        let v = Arc::new(SecretVerifier::new(CACHE_TTL, limits));
        assert_eq!(v.verify(&id, Some(&stored), &imported).await, Verdict::Valid);
        let mut flood = Vec::new();
        for i in 0..40 {
            let (v, stored) = (v.clone(), stored.clone());
            flood.push(tokio::spawn(async move {
                let wrong = ClientSecret::new(format!("wrong-{i}")).unwrap();
                v.verify(&ClientId::new("CC").unwrap(), Some(&stored), &wrong).await
            }));
        }
        // The cached success is answered while the flood waits.
        let started = Instant::now();
        assert_eq!(v.verify(&id, Some(&stored), &imported).await, Verdict::Valid);
        assert!(started.elapsed() < Duration::from_millis(50));
        let mut busy = 0;
        for f in flood {
            let verdict = f.await.unwrap();
            assert_ne!(verdict, Verdict::Valid);
            busy += usize::from(verdict == Verdict::Busy);
        }
        assert!(busy >= 30, "at most parallel + queue run, the rest are refused: {busy} busy");
        assert!(v.in_flight.lock().unwrap().is_empty(), "nothing left in flight");
    }

    #[test]
    fn imported_secrets_have_a_strength_floor() {
        let weak = |s: &str| check_strength(&ClientSecret::new(s).unwrap()).is_err();
        assert!(weak("a"));
        assert!(weak("cc_secret"));
        assert!(weak("aaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(weak("abababababababababab"));
        assert!(weak("0123456789012345"), "16 digits: 53 bits");
        assert!(!weak("Xk3-vR9q_Lm2wPz8"));
        assert!(!weak("correct horse battery staple"));
    }

    #[test]
    fn a_secrets_use_is_recorded_once_per_granularity_and_forgotten_after_it() {
        let u = SecretUsage::new(60);
        let t = |s: i64| UnixTime(1_000 + s);
        for _ in 0..3 {
            u.used("a", None, t(0));
        }
        u.used("b", None, t(10));
        let mut taken = u.take(t(10));
        taken.sort();
        assert_eq!(taken, vec![("a".into(), t(0)), ("b".into(), t(10))]);
        // Within the minute: nothing new; after it, the new time.
        u.used("a", None, t(59));
        assert_eq!(u.take(t(59)), vec![]);
        u.used("a", None, t(60));
        assert_eq!(u.take(t(60)), vec![("a".into(), t(60))]);
        // b, unused for a minute, is forgotten: the map holds the secrets in use only.
        assert_eq!(u.len(), 2);
        assert_eq!(u.take(t(75)), vec![]);
        assert_eq!(u.len(), 1);
        assert_eq!(u.take(t(200)), vec![]);
        assert_eq!(u.len(), 0);
    }

    #[test]
    fn a_burst_of_distinct_secrets_is_written_once_each_and_does_not_stay() {
        // The case a fixed cap got wrong: more secrets in use than it held, so each use was
        // new again and was written again.
        let u = SecretUsage::new(60);
        let n = 150_000;
        for round in 0..2 {
            for i in 0..n {
                u.used(&format!("s{i}"), None, UnixTime(1_000 + round));
            }
        }
        assert_eq!(u.take(UnixTime(1_001)).len(), n);
        assert_eq!(u.take(UnixTime(1_002)).len(), 0, "each written once");
        assert_eq!(u.take(UnixTime(1_061)).len(), 0);
        assert_eq!(u.len(), 0);
        assert!(u.recorded.lock().unwrap().capacity() < n, "room given back");
    }

    #[test]
    fn a_failed_write_is_taken_again_unless_a_later_use_replaced_it() {
        let u = SecretUsage::new(60);
        u.used("a", None, UnixTime(1_000));
        u.used("b", None, UnixTime(1_000));
        let failed = u.take(UnixTime(1_000));
        u.used("b", None, UnixTime(1_070));
        u.requeue(failed);
        let mut again = u.take(UnixTime(1_070));
        again.sort();
        assert_eq!(again, vec![("a".into(), UnixTime(1_000)), ("b".into(), UnixTime(1_070))]);
    }

    #[test]
    fn a_use_the_store_already_holds_within_the_resolution_is_not_written_again() {
        let u = SecretUsage::new(60);
        u.used("a", Some(UnixTime(1_000)), UnixTime(1_030));
        u.used("b", Some(UnixTime(1_000)), UnixTime(1_060));
        assert_eq!(u.take(UnixTime(1_060)), vec![("b".into(), UnixTime(1_060))]);
        // a counts from the stored time: due again a minute after it.
        u.used("a", Some(UnixTime(1_000)), UnixTime(1_059));
        assert_eq!(u.take(UnixTime(1_059)), vec![]);
        u.used("a", Some(UnixTime(1_000)), UnixTime(1_060));
        assert_eq!(u.take(UnixTime(1_060)), vec![("a".into(), UnixTime(1_060))]);
    }
}
