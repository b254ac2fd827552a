//! Unit targets that reach one vendor object in different ways, learned as
//! targets resolve and forgotten with the last resource that declares them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Unit targets that name one vendor object in different ways (a Grafana data
/// source by uid in one resource and by name in another). Learned as targets
/// resolve, so that each such unit protects what the others hold: none of them
/// revokes, in `Authoritative` mode or on deletion, a grant another one owns.
#[derive(Default)]
pub struct Aliases {
    inner: Mutex<AliasMaps>,
}

/// (vendor account endpoint, the vendor's id of the object).
type VendorObject = (String, String);

#[derive(Default)]
struct AliasMaps {
    by_object: HashMap<VendorObject, BTreeSet<String>>,
    by_target: HashMap<String, BTreeSet<VendorObject>>,
}

impl Aliases {
    /// Records that unit target `target` resolved to `object` on the vendor account
    /// `endpoint`; returns the other unit targets known to resolve to it.
    pub fn record(&self, endpoint: &str, object: &str, target: &str) -> Vec<String> {
        let mut maps = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (endpoint.to_string(), object.to_string());
        maps.by_target
            .entry(target.to_string())
            .or_default()
            .insert(key.clone());
        let targets = maps.by_object.entry(key).or_default();
        targets.insert(target.to_string());
        targets
            .iter()
            .filter(|other| other.as_str() != target)
            .cloned()
            .collect()
    }

    /// Forgets a unit target no resource declares any more.
    pub fn forget(&self, target: &str) {
        let mut maps = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(objects) = maps.by_target.remove(target) else {
            return;
        };
        for object in objects {
            if let Some(targets) = maps.by_object.get_mut(&object) {
                targets.remove(target);
                if targets.is_empty() {
                    maps.by_object.remove(&object);
                }
            }
        }
    }

    /// Number of unit targets remembered (for tests of boundedness).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_target
            .len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
