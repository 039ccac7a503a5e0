//! The DPoP proof replay cache (RFC 9449 §11.1, §4.3 item 13): every proof `jti` accepted is
//! remembered for as long as its `iat` keeps it acceptable, so the same proof is refused the
//! second time.
//!
//! Bounded and failing closed: when it holds `capacity` live entries, new proofs are refused
//! (the guard answers 503) until entries age out, rather than forgetting a `jti` that could
//! then be replayed. Entries leave once the proof's `iat` is out of the window, so the cache
//! never holds more than the proofs accepted in one window (`dpop_max_age` plus the leeway).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use aws_lc_rs::digest;

/// Key of a proof: SHA-256 over the key thumbprint and the `jti`, so one client's `jti`s
/// never collide with another's (§11.1 lets the server track `jti` per key).
type ProofKey = [u8; 32];

/// Why a proof was not let through the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// This `jti` was already accepted within its window.
    Seen,
    /// The cache is full of live entries: refused rather than forgotten.
    Full,
}

struct Entries {
    /// Proof key to the first time it may be forgotten.
    map: HashMap<ProofKey, i64>,
    /// `(until, key)` of every entry, soonest first.
    by_expiry: BTreeSet<(i64, ProofKey)>,
}

pub(crate) struct ReplayCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

fn proof_key(jkt: &str, jti: &str) -> ProofKey {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(&[0]);
    ctx.update(jti.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(ctx.finish().as_ref());
    k
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(Entries { map: HashMap::new(), by_expiry: BTreeSet::new() }), capacity }
    }

    /// Records the proof `(jkt, jti)`, remembered while `now < until`; refuses it if seen
    /// before (and still remembered) or if the cache is full of live entries.
    pub(crate) fn insert(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<(), Replay> {
        let k = proof_key(jkt, jti);
        let mut e = self.entries.lock().expect("replay cache lock");
        // Entries whose proofs can no longer be accepted leave first.
        while let Some(&(t, old)) = e.by_expiry.first() {
            if t > now {
                break;
            }
            e.by_expiry.pop_first();
            e.map.remove(&old);
        }
        if e.map.contains_key(&k) {
            return Err(Replay::Seen);
        }
        if e.map.len() >= self.capacity {
            return Err(Replay::Full);
        }
        e.map.insert(k, until);
        e.by_expiry.insert((until, k));
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("replay cache lock").map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_11_1_a_jti_is_refused_within_its_window_and_forgotten_after() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.insert("k1", "j1", 161, 100), Ok(()));
        assert_eq!(cache.insert("k1", "j1", 161, 100), Err(Replay::Seen));
        assert_eq!(cache.insert("k1", "j1", 161, 160), Err(Replay::Seen), "still inside the window");
        // Another key's proof with the same jti is another proof.
        assert_eq!(cache.insert("k2", "j1", 161, 100), Ok(()));
        // At `until` the entry leaves (the proof's iat is then out of the window anyway).
        assert_eq!(cache.insert("k1", "j2", 300, 161), Ok(()));
        assert_eq!(cache.len(), 1, "both expired entries left");
        assert_eq!(cache.insert("k1", "j1", 222, 161), Ok(()));
    }

    #[test]
    fn a_full_replay_cache_refuses_new_proofs_rather_than_forget_live_ones() {
        let cache = ReplayCache::new(3);
        for j in ["a", "b", "c"] {
            assert_eq!(cache.insert("k", j, 160, 100), Ok(()));
        }
        assert_eq!(cache.insert("k", "d", 160, 100), Err(Replay::Full), "fail closed when full");
        // Nothing live was forgotten to make room.
        for j in ["a", "b", "c"] {
            assert_eq!(cache.insert("k", j, 160, 150), Err(Replay::Seen), "{j} forgotten");
        }
        // Once the entries age out, there is room again.
        assert_eq!(cache.insert("k", "d", 220, 160), Ok(()));
        assert_eq!(cache.len(), 1);
    }
}
