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

#[cfg(test)]
mod tests {
    use super::*;

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
