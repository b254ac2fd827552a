//! A bounded LRU cache that allocates as it fills (the `lru` crate's bounded
//! constructor reserves its full capacity up front).

use std::borrow::Borrow;
use std::hash::Hash;

/// At most `capacity` entries; the least recently used goes first.
pub struct BoundedLru<K: Hash + Eq, V> {
    inner: lru::LruCache<K, V>,
    capacity: usize,
}

impl<K: Hash + Eq, V> BoundedLru<K, V> {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedLru {
            inner: lru::LruCache::unbounded(),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, marked as recently used.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.get(key)
    }

    /// Inserts, evicting the least recently used entry when full.
    pub fn put(&mut self, key: K, value: V) {
        self.inner.put(key, value);
        while self.inner.len() > self.capacity {
            self.inner.pop_lru();
        }
    }

    /// Removes `key`.
    pub fn pop<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.pop(key)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Answers of vendor look-ups (names to ids), shared by the syncs of one
/// provider: bounded in size and trusted for a limited time.
pub struct TtlCache<K: Hash + Eq, V: Clone> {
    inner: std::sync::Mutex<BoundedLru<K, (V, tokio::time::Instant)>>,
    ttl: std::time::Duration,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// At most `capacity` entries, each trusted for `ttl`.
    pub fn new(capacity: usize, ttl: std::time::Duration) -> Self {
        TtlCache {
            inner: std::sync::Mutex::new(BoundedLru::new(capacity)),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedLru<K, (V, tokio::time::Instant)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key`, unless it is missing or too old.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        match inner.get(key) {
            Some((value, at)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                inner.pop(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` from now on.
    pub fn put(&self, key: K, value: V) {
        self.lock().put(key, (value, tokio::time::Instant::now()));
    }

    /// Forgets everything (the vendor showed some answer is stale, and which one is unknown).
    pub fn clear(&self) {
        let mut inner = self.lock();
        let capacity = inner.capacity;
        *inner = BoundedLru::new(capacity);
    }

    /// Forgets `key` (the vendor showed the answer is stale).
    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().pop(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ttl_entries_expire_and_can_be_forgotten() {
        let cache = TtlCache::new(10, std::time::Duration::from_secs(60));
        cache.put("a".to_string(), 1);
        cache.put("b".to_string(), 2);
        assert_eq!(cache.get("a"), Some(1));
        cache.forget("b");
        assert_eq!(cache.get("b"), None);
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert_eq!(cache.get("a"), None, "too old to be trusted");
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache = BoundedLru::new(2);
        cache.put("a", 1);
        cache.put("b", 2);
        assert_eq!(cache.get(&"a"), Some(&1));
        cache.put("c", 3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"b"), None, "b was least recently used");
        assert_eq!(cache.get(&"a"), Some(&1));
        assert_eq!(cache.pop(&"a"), Some(1));
        assert_eq!(cache.len(), 1);
    }
}
