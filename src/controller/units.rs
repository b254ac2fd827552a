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

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde::de::{self, Deserialize, Deserializer};

use crate::api::GrantRow;
use crate::vendor::GrantKind;

use super::Failure;
use super::clients::ProviderId;

/// How fresh a sync a member needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Started after the request: the resource changed, failed, or is new.
    StartedAfterRequest,
    /// Started at or after this time: a periodic resync that fell due then, which
    /// a sync already running for another member of the unit may serve.
    StartedSince(Timestamp),
}

/// One vendor object through one provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnitKey {
    /// The provider.
    pub provider: ProviderId,
    /// The declared target ([`GrantKind::unit_key`]).
    pub target: String,
}

/// What one sync concluded for one member (kept small: one per resource).
#[derive(Clone, Debug)]
pub struct MemberResult {
    /// The inputs the member was synced with (see `grant::fingerprint`).
    pub fingerprint: u64,
    /// Why it did not reach its declared state, if it did not.
    pub failure: Option<Box<Failure>>,
    /// Hash of the status rows as this sync left them, to tell whether the watch
    /// cache has caught up with that write when the next sync starts.
    pub rows_hash: u64,
}

impl MemberResult {
    /// Whether it reached its declared state.
    pub fn result(&self) -> Result<(), &Failure> {
        match &self.failure {
            None => Ok(()),
            Some(failure) => Err(failure),
        }
    }
}

/// The result of one sync of a unit.
#[derive(Debug)]
pub struct SyncOutcome<K: GrantKind> {
    /// Sequence number of the sync within its unit.
    pub seq: u64,
    /// When it started (its listing is at least this fresh).
    pub started: Timestamp,
    /// Per member, by [`member_hash`].
    members: HashMap<u64, MemberResult>,
    kind: PhantomData<fn() -> K>,
}

impl<K: GrantKind> SyncOutcome<K> {
    /// An outcome with no member yet.
    pub fn new(seq: u64, started: Timestamp) -> SyncOutcome<K> {
        SyncOutcome {
            seq,
            started,
            members: HashMap::new(),
            kind: PhantomData,
        }
    }

    /// The result of a member.
    pub fn member(&self, member: &ObjectRef<K>) -> Option<&MemberResult> {
        self.members.get(&member_hash(member))
    }

    /// Records the result of a member.
    pub fn insert(&mut self, member: &ObjectRef<K>, result: MemberResult) {
        self.members.insert(member_hash(member), result);
    }

    /// Whether the sync had no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// A member's key in an outcome: a hash of its namespace and name.
pub fn member_hash<K: GrantKind>(member: &ObjectRef<K>) -> u64 {
    let mut hasher = DefaultHasher::new();
    member.namespace.hash(&mut hasher);
    member.name.hash(&mut hasher);
    hasher.finish()
}

/// A hash of status rows.
pub fn rows_hash(rows: &[GrantRow]) -> u64 {
    let mut hasher = DefaultHasher::new();
    rows.hash(&mut hasher);
    hasher.finish()
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

    /// An outcome of a sync fresh enough for `freshness`: the one in flight or
    /// a new one (`run` gets the sequence number).
    pub async fn sync<F, Fut>(
        &self,
        key: &UnitKey,
        freshness: Freshness,
        run: F,
    ) -> Arc<SyncOutcome<K>>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = SyncOutcome<K>>,
    {
        let state = self.state(key);
        let ticket = state.started.load(Ordering::SeqCst);
        let _running = state.running.lock().await;
        if let Some(last) = state.last() {
            let fresh = last.seq > ticket
                || matches!(freshness, Freshness::StartedSince(due) if last.started >= due);
            if fresh {
                return last;
            }
        }
        let seq = state.started.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = Arc::new(run(seq).await);
        *state.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome.clone());
        if outcome.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_pair_targets_of_one_vendor_object_and_are_forgotten() {
        let aliases = Aliases::default();
        assert!(
            aliases
                .record("https://g#org=1", "P8E", "uid:P8E")
                .is_empty()
        );
        assert_eq!(
            aliases.record("https://g#org=1", "P8E", "name:Prometheus"),
            vec!["uid:P8E".to_string()]
        );
        assert!(
            aliases
                .record("https://other#org=1", "P8E", "id:4")
                .is_empty(),
            "the same id on another vendor account is another object"
        );
        assert_eq!(
            aliases.record("https://g#org=1", "P8E", "uid:P8E"),
            vec!["name:Prometheus".to_string()]
        );
        aliases.forget("name:Prometheus");
        assert!(
            aliases
                .record("https://g#org=1", "P8E", "uid:P8E")
                .is_empty()
        );
        aliases.forget("uid:P8E");
        aliases.forget("id:4");
        assert!(aliases.is_empty());
    }
    use crate::api::SigmaGrant;
    use crate::controller::clients::ProviderId;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn key() -> UnitKey {
        UnitKey {
            provider: ProviderId {
                kind: Default::default(),
                namespace: Some("ns".into()),
                name: "p".into(),
            },
            target: "c".into(),
        }
    }

    /// A successful outcome with one member.
    fn outcome(seq: u64) -> SyncOutcome<SigmaGrant> {
        let mut outcome = SyncOutcome::new(seq, Timestamp::now());
        outcome.insert(
            &ObjectRef::new("m").within("ns"),
            MemberResult {
                fingerprint: 0,
                failure: None,
                rows_hash: 0,
            },
        );
        outcome
    }

    /// Two members ask while one sync runs; counts the syncs that ran.
    async fn overlapping(second: Freshness) -> usize {
        let units: Arc<Units<SigmaGrant>> = Arc::new(Units::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let run = |runs: Arc<AtomicUsize>| {
            move |seq| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                outcome(seq)
            }
        };
        let due = Timestamp::now();
        let first = {
            let (units, runs) = (units.clone(), runs.clone());
            tokio::spawn(async move {
                units
                    .sync(&key(), Freshness::StartedSince(due), run(runs))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = units.sync(&key(), second, run(runs.clone())).await;
        let first = first.await.unwrap();
        assert!(second.seq >= first.seq);
        runs.load(Ordering::SeqCst)
    }

    fn grant(name: &str, connection: &str) -> SigmaGrant {
        let mut grant: SigmaGrant = serde_json::from_value(serde_json::json!({
            "apiVersion": "grantoperator.dev/v1alpha1",
            "kind": "SigmaGrant",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"providerRef": {"name": "p"}, "connectionId": connection, "grants": []}
        }))
        .unwrap();
        grant.metadata.uid = Some(format!("uid-{name}"));
        grant
    }

    fn readable(grant: SigmaGrant) -> Watched<SigmaGrant> {
        Watched { object: Ok(grant) }
    }

    #[test]
    fn the_index_follows_watch_events_and_forgets_what_a_relist_misses() {
        let index = Index::<SigmaGrant>::default();
        index.apply(&watcher::Event::Apply(readable(grant("a", "c1"))));
        index.apply(&watcher::Event::Apply(readable(grant("b", "c1"))));
        index.apply(&watcher::Event::Apply(readable(grant("c", "c2"))));
        assert_eq!(index.refs("c1").len(), 2);
        index.apply(&watcher::Event::Delete(readable(grant("a", "c1"))));
        assert_eq!(index.refs("c1"), vec![ObjectRef::new("b").within("ns")]);

        // A relist (after the watch lost its place) misses "b": it was deleted meanwhile.
        index.apply(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(readable(grant("c", "c2"))));
        index.apply(&watcher::Event::InitApply(readable(grant("d", "c1"))));
        // During the relist, new objects are visible and old ones not yet dropped.
        assert_eq!(index.refs("c1").len(), 2);
        index.apply(&watcher::Event::InitDone);
        assert_eq!(index.refs("c1"), vec![ObjectRef::new("d").within("ns")]);
        assert_eq!(index.refs("c2"), vec![ObjectRef::new("c").within("ns")]);
        assert!(index.refs("c3").is_empty());
    }

    #[tokio::test]
    async fn a_periodic_resync_is_served_by_a_sync_already_running() {
        // Due before the running sync started: that sync is fresh enough.
        assert_eq!(
            overlapping(Freshness::StartedSince(Timestamp::UNIX_EPOCH)).await,
            1
        );
    }

    #[tokio::test]
    async fn a_changed_resource_waits_for_a_sync_that_starts_after_it_asked() {
        assert_eq!(overlapping(Freshness::StartedAfterRequest).await, 2);
    }

    #[tokio::test]
    async fn a_burst_of_requests_costs_at_most_two_syncs() {
        let units: Arc<Units<SigmaGrant>> = Arc::new(Units::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (units, runs) = (units.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                units
                    .sync(
                        &key(),
                        Freshness::StartedAfterRequest,
                        move |seq| async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            outcome(seq)
                        },
                    )
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(
            runs.load(Ordering::SeqCst) <= 2,
            "{} syncs",
            runs.load(Ordering::SeqCst)
        );
    }
}

/// A grant resource as watched: readable, or kept with its metadata and the
/// target its raw spec names, so that one object this version cannot read
/// (a newer CRD, an unknown enum value) neither fails the watch for every
/// other object nor drops out of its target's members.
#[derive(Clone, Debug)]
pub struct Watched<K> {
    /// The object, or why it could not be read.
    pub object: Result<K, Unreadable>,
}

/// An object that did not deserialize.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// Its metadata.
    pub metadata: ObjectMeta,
    /// The target it names, if that much could be read.
    pub unit_key: Option<String>,
    /// The deserialization error.
    pub error: String,
}

impl<K: GrantKind> Watched<K> {
    /// The target the object declares, readable or not.
    pub fn unit_key(&self) -> Option<String> {
        match &self.object {
            Ok(object) => Some(object.unit_key()),
            Err(unreadable) => unreadable.unit_key.clone(),
        }
    }
}

impl<'de, K: GrantKind> Deserialize<'de> for Watched<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let object = match K::deserialize(&value) {
            Ok(object) => Ok(object),
            Err(error) => {
                let metadata =
                    ObjectMeta::deserialize(&value["metadata"]).map_err(de::Error::custom)?;
                Err(Unreadable {
                    metadata,
                    unit_key: K::unit_key_of(&value),
                    error: error.to_string(),
                })
            }
        };
        Ok(Watched { object })
    }
}

impl<K: GrantKind> Resource for Watched<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dynamic: &()) -> Cow<'_, str> {
        K::kind(dynamic)
    }
    fn group(dynamic: &()) -> Cow<'_, str> {
        K::group(dynamic)
    }
    fn version(dynamic: &()) -> Cow<'_, str> {
        K::version(dynamic)
    }
    fn plural(dynamic: &()) -> Cow<'_, str> {
        K::plural(dynamic)
    }
    fn meta(&self) -> &ObjectMeta {
        match &self.object {
            Ok(object) => object.meta(),
            Err(unreadable) => &unreadable.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.object {
            Ok(object) => object.meta_mut(),
            Err(unreadable) => &mut unreadable.metadata,
        }
    }
}
