//! A bounded cache keyed by a SHA-256 of the token (the token itself is never kept), whose
//! entries expire at an absolute Unix time.
//!
//! Eviction when full: the entry that expires soonest goes. Expired entries have the smallest
//! expiry, so they go first; after them, the entry with the least life left, which is the one
//! whose loss costs least (it would have had to be revalidated soonest anyway). Nothing is ever
//! cleared wholesale, so a burst of new entries cannot flush the valid ones. An expiry index
//! (`BTreeSet` ordered by expiry) makes eviction O(log n); a lookup stays one lock and one hash
//! probe.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use aws_lc_rs::digest;

/// Key of a token in the caches.
pub(crate) type TokenKey = [u8; 32];

/// SHA-256 of a token.
pub(crate) fn key(token: &str) -> TokenKey {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    k
}

struct Entries<V> {
    map: HashMap<TokenKey, (i64, V)>,
    /// `(until, key)` of every entry in `map`, soonest expiry first.
    by_expiry: BTreeSet<(i64, TokenKey)>,
}

pub(crate) struct TtlCache<V> {
    entries: Mutex<Entries<V>>,
    capacity: usize,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries { map: HashMap::new(), by_expiry: BTreeSet::new() }),
            capacity: capacity.max(1),
        }
    }

    /// The value, if present and `now < until`.
    pub(crate) fn get(&self, k: &TokenKey, now: i64) -> Option<V> {
        let e = self.entries.lock().expect("cache lock");
        e.map.get(k).filter(|(until, _)| now < *until).map(|(_, v)| v.clone())
    }

    /// Stores `v` until `until`, replacing what `k` had; when full, the entry that expires
    /// soonest makes room (see the module comment).
    pub(crate) fn put(&self, k: TokenKey, until: i64, v: V) {
        let mut e = self.entries.lock().expect("cache lock");
        if let Some((old, _)) = e.map.remove(&k) {
            e.by_expiry.remove(&(old, k));
        }
        while e.map.len() >= self.capacity {
            let Some(soonest) = e.by_expiry.pop_first() else { break };
            e.map.remove(&soonest.1);
        }
        e.by_expiry.insert((until, k));
        e.map.insert(k, (until, v));
    }

    /// Drops `k`'s entry, if any.
    pub(crate) fn remove(&self, k: &TokenKey) {
        let mut e = self.entries.lock().expect("cache lock");
        if let Some((until, _)) = e.map.remove(k) {
            e.by_expiry.remove(&(until, *k));
        }
    }

    /// Entries held, expired ones included (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> TokenKey {
        key(&format!("token-{i}"))
    }

    #[test]
    fn a_full_cache_keeps_its_valid_entries_while_garbage_floods_it() {
        let now = 1_000;
        let cache = TtlCache::new(100);
        // 50 valid entries for a minute, then a flood of 10 000 short-lived ones.
        for i in 0..50 {
            cache.put(k(i), now + 60, i);
        }
        for i in 1_000..11_000 {
            cache.put(k(i), now + 5, i);
        }
        assert_eq!(cache.len(), 100, "bounded");
        for i in 0..50 {
            assert_eq!(cache.get(&k(i), now), Some(i), "valid entry {i} was evicted by the flood");
        }
        // The newest garbage is there too: the flood evicted older garbage, not everything.
        assert_eq!(cache.get(&k(10_999), now), Some(10_999));
    }

    #[test]
    fn expired_entries_are_evicted_before_live_ones() {
        let cache = TtlCache::new(3);
        cache.put(k(1), 10, 1); // expired at now = 20
        cache.put(k(2), 100, 2);
        cache.put(k(3), 50, 3);
        cache.put(k(4), 200, 4);
        assert_eq!(cache.get(&k(1), 5), None, "the expired entry made room");
        assert_eq!((cache.get(&k(2), 20), cache.get(&k(3), 20), cache.get(&k(4), 20)), (Some(2), Some(3), Some(4)));
        // Full of live entries: the one expiring soonest (3, at 50) goes.
        cache.put(k(5), 300, 5);
        assert_eq!(cache.get(&k(3), 20), None);
        assert_eq!((cache.get(&k(2), 20), cache.get(&k(4), 20), cache.get(&k(5), 20)), (Some(2), Some(4), Some(5)));
    }

    #[test]
    fn replacing_an_entry_moves_its_expiry_and_does_not_count_twice() {
        let cache = TtlCache::new(2);
        cache.put(k(1), 10, 1);
        cache.put(k(1), 500, 11);
        cache.put(k(2), 100, 2);
        assert_eq!(cache.len(), 2);
        cache.put(k(3), 200, 3);
        // k(1) now expires at 500, so k(2) (at 100) is the one to go.
        assert_eq!((cache.get(&k(1), 0), cache.get(&k(2), 0), cache.get(&k(3), 0)), (Some(11), None, Some(3)));
    }

    #[test]
    fn entries_are_not_served_past_their_expiry() {
        let cache = TtlCache::new(4);
        cache.put(k(1), 10, 1);
        assert_eq!(cache.get(&k(1), 9), Some(1));
        assert_eq!(cache.get(&k(1), 10), None);
    }
}
