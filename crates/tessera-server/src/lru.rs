//! A map bounded by count that evicts its least recently written entry: what the caches and
//! limiters use, so a flood of new keys pushes out the oldest entries one at a time and never
//! empties the map (a wholesale `clear()` would drop every cached success with the garbage).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub(crate) struct Lru<K, V> {
    map: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    next: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { map: HashMap::new(), order: BTreeMap::new(), next: 0, capacity: capacity.max(1) }
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.map.get(k).map(|(v, _)| v)
    }

    /// Inserts or replaces `k`, making it the most recent; evicts the least recent entry when
    /// over capacity.
    pub(crate) fn put(&mut self, k: K, v: V) {
        let seq = self.next;
        self.next += 1;
        if let Some((_, old)) = self.map.insert(k.clone(), (v, seq)) {
            self.order.remove(&old);
        }
        self.order.insert(seq, k);
        while self.map.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.map.remove(&oldest);
        }
    }

    pub(crate) fn remove<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let (v, seq) = self.map.remove(k)?;
        self.order.remove(&seq);
        Some(v)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_new_keys_evicts_oldest_first_and_keeps_recent_entries() {
        let mut lru = Lru::new(3);
        lru.put("keep", 1);
        lru.put("a", 2);
        lru.put("b", 3);
        lru.put("keep", 4); // rewritten: now the most recent
        lru.put("c", 5);
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get(&"a"), None, "least recent evicted");
        assert_eq!(lru.get(&"keep"), Some(&4));
        for i in 0..1000 {
            lru.put(if i % 2 == 0 { "x" } else { "y" }, i);
        }
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.remove(&"y"), Some(999));
        assert_eq!(lru.len(), 2);
    }
}
