//! Absorbing retransmitted non-INVITE requests over UDP (RFC 3261 §17.2.2, Timer J) without
//! a task per answered request.
//!
//! ezk keeps every answered UDP server transaction alive for Timer J (64*T1 = 32 s) in a task
//! that owns the transaction's channel: about 35 KB each (the channel's first block of slots
//! is allocated up front). At 8,000 MESSAGEs a second that held 1.7 GB after a few seconds
//! (BENCHMARKS.md, "IM"). stox sends the final response of a non-INVITE request over UDP
//! itself and keeps only the response's bytes for Timer J in this cache; a retransmitted
//! request is answered from it, as the Completed state requires, and never reaches the router
//! twice. Pure: the caller supplies the clock.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// RFC 3261 Timer J for unreliable transports: 64 * T1.
pub const TIMER_J: Duration = Duration::from_secs(32);

/// Entries kept at most. Past it the oldest entries go first: a request retransmitted more
/// than (cap / rate) seconds late would be taken for a new one, which only happens when more
/// than 8,000 requests a second arrive for 32 s.
pub const MAX_ENTRIES: usize = 262_144;

/// Values by key for a fixed time to live, oldest evicted first when full.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    map: HashMap<K, (Instant, V)>,
    order: VecDeque<(Instant, K)>,
    ttl: Duration,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> TtlCache<K, V> {
    /// An empty cache whose entries live `ttl`, at most `cap` of them.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        TtlCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            cap: cap.max(1),
        }
    }

    /// Remember `value` under `key` until `now + ttl` (a newer value replaces an older one).
    pub fn insert(&mut self, key: K, value: V, now: Instant) {
        self.prune(now);
        while self.map.len() >= self.cap {
            let Some((expiry, old)) = self.order.pop_front() else {
                break;
            };
            self.remove_if(&old, expiry);
        }
        let expiry = now + self.ttl;
        self.order.push_back((expiry, key.clone()));
        self.map.insert(key, (expiry, value));
    }

    /// The live value under `key`.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        self.prune(now);
        self.map.get(key).map(|(_, v)| v)
    }

    /// Live entries (and expired ones not yet pruned).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            let (expiry, key) = self.order.pop_front().expect("front exists");
            self.remove_if(&key, expiry);
        }
        if self.map.is_empty() && self.order.capacity() > 1024 {
            // Give a burst's worth of bookkeeping back once it has all expired.
            self.order.shrink_to_fit();
            self.map.shrink_to_fit();
        }
    }

    /// Remove `key` only if its entry is the one that expires at `expiry` (a re-inserted key
    /// has a later entry of its own in `order`).
    fn remove_if(&mut self, key: &K, expiry: Instant) {
        if self.map.get(key).is_some_and(|(e, _)| *e == expiry) {
            self.map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_lives_for_its_ttl_and_not_longer() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(32), 10);
        c.insert("z9hG4bK-1", 200, t0);
        assert_eq!(
            c.get(&"z9hG4bK-1", t0 + Duration::from_secs(31)),
            Some(&200)
        );
        assert_eq!(c.get(&"z9hG4bK-2", t0), None);
        assert_eq!(c.get(&"z9hG4bK-1", t0 + Duration::from_secs(32)), None);
        assert!(c.is_empty());
    }

    #[test]
    fn the_oldest_entry_goes_when_full() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(32), 2);
        c.insert(1, "a", t0);
        c.insert(2, "b", t0 + Duration::from_millis(1));
        c.insert(3, "c", t0 + Duration::from_millis(2));
        assert_eq!(c.len(), 2);
        let now = t0 + Duration::from_millis(3);
        assert_eq!(c.get(&1, now), None);
        assert_eq!(c.get(&2, now), Some(&"b"));
        assert_eq!(c.get(&3, now), Some(&"c"));
    }

    #[test]
    fn a_reinserted_key_keeps_its_newer_expiry() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(Duration::from_secs(10), 10);
        c.insert("k", 1, t0);
        c.insert("k", 2, t0 + Duration::from_secs(5));
        // The first entry's expiry passes; the second one's value stays.
        assert_eq!(c.get(&"k", t0 + Duration::from_secs(11)), Some(&2));
        assert_eq!(c.get(&"k", t0 + Duration::from_secs(15)), None);
    }
}
