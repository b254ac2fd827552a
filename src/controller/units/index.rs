//! The index of grant resources by the target they declare, kept from the same
//! watch events as the reflector store and rebuilt on every relist, so a sync
//! finds every member of its unit without scanning every resource.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::vendor_api::GrantKind;

use super::watched::Watched;

/// The key of a resource in units and the index: namespace and name only (an
/// `ObjectRef` built from an object also carries its uid and resourceVersion,
/// which equality ignores but memory does not).
pub fn key_of<K: GrantKind, R: Resource>(object: &R) -> ObjectRef<K> {
    let name = object.meta().name.clone().unwrap_or_default();
    match &object.meta().namespace {
        Some(namespace) => ObjectRef::new(&name).within(namespace),
        None => ObjectRef::new(&name),
    }
}

/// Resources by the unit target they declare.
pub struct Index<K: GrantKind> {
    current: RwLock<HashMap<String, HashSet<ObjectRef<K>>>>,
    relisting: Mutex<Option<HashMap<String, HashSet<ObjectRef<K>>>>>,
    listed: tokio::sync::watch::Sender<bool>,
}

impl<K: GrantKind> Default for Index<K> {
    fn default() -> Self {
        Index {
            current: RwLock::new(HashMap::new()),
            relisting: Mutex::new(None),
            listed: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl<K: GrantKind> Index<K> {
    /// Follows one watch event (after the reflector store applied it).
    pub fn apply(&self, event: &watcher::Event<Watched<K>>) {
        match event {
            watcher::Event::Apply(object) => self.insert(object),
            watcher::Event::Delete(object) => {
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                let Some(target) = object.unit_key() else {
                    return;
                };
                if let Some(refs) = current.get_mut(&target) {
                    refs.remove(&key_of(object));
                    if refs.is_empty() {
                        current.remove(&target);
                    }
                }
            }
            watcher::Event::Init => {
                *self.relisting.lock().unwrap_or_else(|e| e.into_inner()) = Some(HashMap::new());
            }
            watcher::Event::InitApply(object) => {
                self.insert(object);
                if let Some(next) = self
                    .relisting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    && let Some(target) = object.unit_key()
                {
                    next.entry(target).or_default().insert(key_of(object));
                }
            }
            watcher::Event::InitDone => {
                if let Some(next) = self
                    .relisting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
                }
                self.listed.send_replace(true);
            }
        }
    }

    /// Turns true once the watch has listed everything once (the index is complete).
    pub fn listed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.listed.subscribe()
    }

    fn insert(&self, object: &Watched<K>) {
        let Some(target) = object.unit_key() else {
            return;
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current.entry(target).or_default().insert(key_of(object));
    }

    /// Resources that declare `target`.
    pub fn refs(&self, target: &str) -> Vec<ObjectRef<K>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .get(target)
            .map(|refs| refs.iter().cloned().collect())
            .unwrap_or_default()
    }
}
