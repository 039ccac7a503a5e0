//! A bounded cache keyed by a SHA-256 of the token (the token itself is never kept), whose
//! entries expire at an absolute Unix time.

use std::collections::HashMap;
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

pub(crate) struct TtlCache<V> {
    map: Mutex<HashMap<TokenKey, (i64, V)>>,
    capacity: usize,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { map: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The value, if present and `now < until`.
    pub(crate) fn get(&self, k: &TokenKey, now: i64) -> Option<V> {
        let map = self.map.lock().expect("cache lock");
        map.get(k).filter(|(until, _)| now < *until).map(|(_, v)| v.clone())
    }

    /// Stores `v` until `until`; when full, expired entries go first, then everything (a flood
    /// of distinct tokens cannot grow memory without bound).
    pub(crate) fn put(&self, k: TokenKey, until: i64, v: V, now: i64) {
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= self.capacity {
            map.retain(|_, (u, _)| now < *u);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(k, (until, v));
    }
}
