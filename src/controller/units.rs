//! Units and the syncs that serve them.
//!
//! A unit is one vendor object as reached through one provider. Every grant
//! resource on it is a member; one sync reads the vendor once for all of them.
//! Members ask for a sync that *started after they asked*; requests that arrive
//! while a sync runs are served together by the next one, so a burst of N
//! changes on one unit costs at most two syncs, and a steady resync costs one.
//!
//! The [`Index`] finds the members of a unit without scanning every resource;
//! it follows the same watch events as the reflector store and is rebuilt on
//! every relist, so it never misses a member (a missed member could be pruned
//! by an `Authoritative` neighbour).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::api::GrantRow;
use crate::vendor::GrantKind;

use super::Failure;
use super::clients::ProviderId;

/// One vendor object through one provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnitKey {
    /// The provider.
    pub provider: ProviderId,
    /// The declared target ([`GrantKind::unit_key`]).
    pub target: String,
}

/// What one sync concluded for one member.
#[derive(Clone, Debug)]
pub struct MemberResult {
    /// The inputs the member was synced with (see `grant::fingerprint`).
    pub fingerprint: u64,
    /// Whether it reached its declared state.
    pub result: Result<(), Failure>,
    /// The status rows this sync wrote (fresher than the watch cache for the next sync).
    pub rows: Option<Arc<Vec<GrantRow>>>,
}

/// The result of one sync of a unit.
#[derive(Debug)]
pub struct SyncOutcome<K: GrantKind> {
    /// Sequence number of the sync within its unit.
    pub seq: u64,
    /// When it started (its listing is at least this fresh).
    pub started: Timestamp,
    /// Per member.
    pub members: HashMap<ObjectRef<K>, MemberResult>,
}

struct UnitState<K: GrantKind> {
    running: tokio::sync::Mutex<()>,
    started: AtomicU64,
    last: Mutex<Option<Arc<SyncOutcome<K>>>>,
}

impl<K: GrantKind> UnitState<K> {
    fn last(&self) -> Option<Arc<SyncOutcome<K>>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Every unit with a sync in flight or a recent outcome.
pub struct Units<K: GrantKind> {
    units: Mutex<HashMap<UnitKey, Arc<UnitState<K>>>>,
}

impl<K: GrantKind> Default for Units<K> {
    fn default() -> Self {
        Units {
            units: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: GrantKind> Units<K> {
    fn state(&self, key: &UnitKey) -> Arc<UnitState<K>> {
        let mut units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        units
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(UnitState {
                    running: tokio::sync::Mutex::new(()),
                    started: AtomicU64::new(0),
                    last: Mutex::new(None),
                })
            })
            .clone()
    }

    /// The latest outcome of a unit, if it was synced since the operator started.
    pub fn last(&self, key: &UnitKey) -> Option<Arc<SyncOutcome<K>>> {
        let units = self.units.lock().unwrap_or_else(|e| e.into_inner());
        units.get(key).and_then(|state| state.last())
    }

    /// An outcome of a sync that started after this call: joins the next sync,
    /// or runs it (`run` gets the sequence number).
    pub async fn sync_fresh<F, Fut>(&self, key: &UnitKey, run: F) -> Arc<SyncOutcome<K>>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = SyncOutcome<K>>,
    {
        let state = self.state(key);
        let ticket = state.started.load(Ordering::SeqCst);
        let _running = state.running.lock().await;
        if let Some(last) = state.last()
            && last.seq > ticket
        {
            return last;
        }
        let seq = state.started.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = Arc::new(run(seq).await);
        *state.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.clone());
        if outcome.members.is_empty() {
            // Nobody is left on this unit: forget it (bounded by live units).
            self.units
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
        }
        outcome
    }

    /// Forgets a unit (its last member is gone).
    pub fn forget(&self, key: &UnitKey) {
        self.units
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Units known (for tests and metrics).
    pub fn len(&self) -> usize {
        self.units.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no unit is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Resources by the unit target they declare.
pub struct Index<K: GrantKind> {
    current: RwLock<HashMap<String, HashSet<ObjectRef<K>>>>,
    relisting: Mutex<Option<HashMap<String, HashSet<ObjectRef<K>>>>>,
}

impl<K: GrantKind> Default for Index<K> {
    fn default() -> Self {
        Index {
            current: RwLock::new(HashMap::new()),
            relisting: Mutex::new(None),
        }
    }
}

impl<K: GrantKind> Index<K> {
    /// Follows one watch event (after the reflector store applied it).
    pub fn apply(&self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => self.insert(object),
            watcher::Event::Delete(object) => {
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                let target = object.unit_key();
                if let Some(refs) = current.get_mut(&target) {
                    refs.remove(&ObjectRef::from_obj(object));
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
                {
                    next.entry(object.unit_key())
                        .or_default()
                        .insert(ObjectRef::from_obj(object));
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
            }
        }
    }

    fn insert(&self, object: &K) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        current
            .entry(object.unit_key())
            .or_default()
            .insert(ObjectRef::from_obj(object));
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
