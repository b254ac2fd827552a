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
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde::de::{self, Deserialize, Deserializer};

use crate::api::GrantRow;
use crate::vendor_api::GrantKind;

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

/// Where a unit's syncs stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    /// No sync started or waiting to start.
    Idle,
    /// Sync `seq` was asked for and has not gathered its members yet: whoever asks
    /// now is served by it, with its current state.
    Queued(u64),
    /// Sync `seq` gathered its members at `began`.
    Running(u64, Timestamp),
}

struct UnitState<K: GrantKind> {
    /// Sequence number of the last sync asked for.
    asked: u64,
    flight: Flight,
    /// Whether another sync must follow the running one (a member asked after it
    /// gathered its members).
    again: bool,
    last: Option<Arc<SyncOutcome<K>>>,
    /// Members waiting for an answer: the sequence number of the first sync that
    /// answers each. An entry lives until its member reads the answer, or one sync
    /// after the answer came (a member that went away never reads it).
    waiting: HashMap<ObjectRef<K>, u64>,
}

impl<K: GrantKind> Default for UnitState<K> {
    fn default() -> Self {
        UnitState {
            asked: 0,
            flight: Flight::Idle,
            again: false,
            last: None,
            waiting: HashMap::new(),
        }
    }
}

/// What a member's request for a sync got.
#[derive(Debug)]
pub enum Granted<K: GrantKind> {
    /// A finished sync answers the request.
    Answer(Arc<SyncOutcome<K>>),
    /// A sync queued or running will answer it; the member is woken then.
    Queued,
    /// Queued, and the caller must run sync number `seq` now (see [`Units::began`]
    /// and [`Units::finish`]).
    Start(u64),
}

/// Every unit with a sync in flight, a waiting member, or a recent outcome.
///
/// Reconciles never wait here: [`Units::request`] answers at once, from the last
/// outcome or by queueing the member. The sync itself runs in a task of its own
/// (see `grant::spawn_sync`), which reports back with [`Units::finish`]; the
/// members it answers are then woken to read their result. So a unit whose vendor
/// is slow holds no reconcile slot while it waits, and each sync runs once for
/// every member that asked.
pub struct Units<K: GrantKind> {
    units: Mutex<HashMap<UnitKey, UnitState<K>>>,
}

impl<K: GrantKind> Default for Units<K> {
    fn default() -> Self {
        Units {
            units: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: GrantKind> Units<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UnitKey, UnitState<K>>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest outcome of a unit, if it was synced since the operator started.
    pub fn last(&self, key: &UnitKey) -> Option<Arc<SyncOutcome<K>>> {
        self.lock().get(key).and_then(|state| state.last.clone())
    }

    /// Asks for a sync of `key` fresh enough for `freshness` on behalf of `member`,
    /// whose inputs now have `fingerprint` (an answer from a sync that saw other
    /// inputs answers an older request, not this one).
    pub fn request(
        &self,
        key: &UnitKey,
        member: &ObjectRef<K>,
        fingerprint: u64,
        freshness: Freshness,
    ) -> Granted<K> {
        if let Some(answer) = self.take_answer(key, member, fingerprint, freshness) {
            return Granted::Answer(answer);
        }
        let mut units = self.lock();
        let state = units.entry(key.clone()).or_default();
        if let Some(&needed) = state.waiting.get(member) {
            let answered = state.last.as_ref().is_some_and(|last| last.seq >= needed);
            if !answered && state.flight != Flight::Idle {
                return Granted::Queued;
            }
            // Answered for older inputs, or the sync it waited for was cut short.
            state.waiting.remove(member);
        }
        if let Freshness::StartedSince(due) = freshness
            && let Some(last) = state.last.as_ref().filter(|last| last.started >= due)
        {
            return Granted::Answer(last.clone());
        }
        match state.flight {
            Flight::Queued(seq) => {
                state.waiting.insert(member.clone(), seq);
                Granted::Queued
            }
            Flight::Running(seq, began) => {
                let served = matches!(freshness, Freshness::StartedSince(due) if began >= due);
                if served {
                    state.waiting.insert(member.clone(), seq);
                } else {
                    state.again = true;
                    state.waiting.insert(member.clone(), seq + 1);
                }
                Granted::Queued
            }
            Flight::Idle => {
                state.asked += 1;
                let seq = state.asked;
                state.flight = Flight::Queued(seq);
                state.waiting.insert(member.clone(), seq);
                Granted::Start(seq)
            }
        }
    }

    /// The answer to an earlier request of `member`, once its sync is done (the
    /// request is then settled). `None` while it waits, when it asked for nothing,
    /// or when the answer came from a sync that saw other inputs than `fingerprint`
    /// or is not fresh enough for `freshness`.
    pub fn take_answer(
        &self,
        key: &UnitKey,
        member: &ObjectRef<K>,
        fingerprint: u64,
        freshness: Freshness,
    ) -> Option<Arc<SyncOutcome<K>>> {
        let mut units = self.lock();
        let state = units.get_mut(key)?;
        let needed = *state.waiting.get(member)?;
        let last = state
            .last
            .as_ref()
            .filter(|last| last.seq >= needed)?
            .clone();
        state.waiting.remove(member);
        let current = last
            .member(member)
            .is_none_or(|result| result.fingerprint == fingerprint);
        let fresh = match freshness {
            Freshness::StartedAfterRequest => true,
            Freshness::StartedSince(due) => last.started >= due,
        };
        (current && fresh).then_some(last)
    }

    /// Sync `seq` is gathering its members now (`began`): members asking from now
    /// on need the next one.
    pub fn began(&self, key: &UnitKey, seq: u64, began: Timestamp) {
        if let Some(state) = self.lock().get_mut(key)
            && state.flight == Flight::Queued(seq)
        {
            state.flight = Flight::Running(seq, began);
        }
    }

    /// Records the outcome of a sync (`None`: it was cut short and answers nobody).
    /// Returns the members to wake, and the sequence number of the next sync the
    /// caller must run now, if one was asked for meanwhile.
    pub fn finish(
        &self,
        key: &UnitKey,
        seq: u64,
        outcome: Option<Arc<SyncOutcome<K>>>,
    ) -> (Vec<ObjectRef<K>>, Option<u64>) {
        let mut units = self.lock();
        let Some(state) = units.get_mut(key) else {
            return (Vec::new(), None);
        };
        let previous = state.last.as_ref().map_or(0, |last| last.seq);
        let woken: Vec<ObjectRef<K>> = match &outcome {
            Some(outcome) => {
                // Answers nobody read since the previous sync are dropped: their
                // members went away.
                state.waiting.retain(|_, needed| *needed > previous);
                state.last = Some(outcome.clone());
                state
                    .waiting
                    .iter()
                    .filter(|(_, needed)| **needed <= seq)
                    .map(|(member, _)| member.clone())
                    .collect()
            }
            // Cut short: everyone waiting is woken to ask again.
            None => {
                state.again = false;
                state.waiting.keys().cloned().collect()
            }
        };
        let next = if std::mem::take(&mut state.again) {
            state.asked += 1;
            state.flight = Flight::Queued(state.asked);
            Some(state.asked)
        } else {
            state.flight = Flight::Idle;
            None
        };
        let done = state.flight == Flight::Idle
            && state.waiting.is_empty()
            && state.last.as_ref().is_none_or(|last| last.is_empty());
        if done {
            // Nobody is left on this unit: forget it (bounded by live units).
            units.remove(key);
        }
        (woken, next)
    }

    /// Forgets a unit (its last member is gone), unless a sync of it is in flight
    /// (that sync's end forgets it when nobody is left).
    pub fn forget(&self, key: &UnitKey) {
        let mut units = self.lock();
        if units
            .get(key)
            .is_some_and(|state| state.flight == Flight::Idle)
        {
            units.remove(key);
        }
    }

    /// Forgets, among the units of `target`, those whose provider is not in
    /// `providers` (their members moved to another provider or went away) and
    /// that have no sync in flight.
    pub fn forget_others(&self, target: &str, providers: &HashSet<ProviderId>) {
        self.lock().retain(|key, state| {
            key.target != target
                || providers.contains(&key.provider)
                || state.flight != Flight::Idle
        });
    }

    /// Units known (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
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

    fn member(name: &str) -> ObjectRef<SigmaGrant> {
        ObjectRef::new(name).within("ns")
    }

    /// A successful outcome answering `members`.
    fn outcome(seq: u64, members: &[&str]) -> Arc<SyncOutcome<SigmaGrant>> {
        let mut outcome = SyncOutcome::new(seq, Timestamp::now());
        for name in members {
            outcome.insert(
                &member(name),
                MemberResult {
                    fingerprint: 0,
                    failure: None,
                    rows_hash: 0,
                },
            );
        }
        Arc::new(outcome)
    }

    fn names(mut woken: Vec<ObjectRef<SigmaGrant>>) -> Vec<String> {
        woken.sort_by(|a, b| a.name.cmp(&b.name));
        woken.into_iter().map(|member| member.name).collect()
    }

    #[test]
    fn a_periodic_resync_is_served_by_a_sync_already_running() {
        let units = Units::<SigmaGrant>::default();
        let due = Timestamp::UNIX_EPOCH;
        assert!(matches!(
            units.request(&key(), &member("a"), 0, Freshness::StartedSince(due)),
            Granted::Start(1)
        ));
        units.began(&key(), 1, Timestamp::now());
        // Due before the running sync started: that sync is fresh enough.
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedSince(due)),
            Granted::Queued
        ));
        let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &["a", "b"])));
        assert_eq!(names(woken), ["a", "b"]);
        assert_eq!(next, None, "one sync served both");
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedSince(due)),
            Granted::Answer(answer) if answer.seq == 1
        ));
    }

    #[test]
    fn a_changed_resource_waits_for_a_sync_that_starts_after_it_asked() {
        let units = Units::<SigmaGrant>::default();
        assert!(matches!(
            units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
            Granted::Start(1)
        ));
        units.began(&key(), 1, Timestamp::now());
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
            Granted::Queued
        ));
        // Sync 1 gathered its members before b asked: b needs sync 2, started at once.
        let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &["a", "b"])));
        assert_eq!(names(woken), ["a"]);
        assert_eq!(next, Some(2));
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
            Granted::Queued
        ));
        units.began(&key(), 2, Timestamp::now());
        let (woken, next) = units.finish(&key(), 2, Some(outcome(2, &["a", "b"])));
        assert_eq!(names(woken), ["b"]);
        assert_eq!(next, None);
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
            Granted::Answer(answer) if answer.seq == 2
        ));
        // A new request after the answer was read needs a new sync.
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
            Granted::Start(3)
        ));
    }

    #[test]
    fn a_burst_of_requests_costs_at_most_two_syncs() {
        let units = Units::<SigmaGrant>::default();
        let mut starts = 0;
        // Ten ask before the first sync gathers its members: it serves them all.
        for index in 0..10 {
            let name = format!("m{index}");
            if let Granted::Start(_) =
                units.request(&key(), &member(&name), 0, Freshness::StartedAfterRequest)
            {
                starts += 1;
            }
        }
        units.began(&key(), 1, Timestamp::now());
        // Ten more ask while it runs: one more sync serves them.
        for index in 10..20 {
            let name = format!("m{index}");
            if let Granted::Start(_) =
                units.request(&key(), &member(&name), 0, Freshness::StartedAfterRequest)
            {
                starts += 1;
            }
        }
        let all: Vec<String> = (0..20).map(|index| format!("m{index}")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (woken, next) = units.finish(&key(), 1, Some(outcome(1, &all)));
        assert_eq!(woken.len(), 10);
        assert_eq!(next, Some(2));
        units.began(&key(), 2, Timestamp::now());
        let (woken, next) = units.finish(&key(), 2, Some(outcome(2, &all)));
        assert_eq!(woken.len(), 10);
        assert_eq!((starts, next), (1, None), "two syncs in all");
    }

    #[test]
    fn a_sync_cut_short_wakes_its_members_to_ask_again() {
        let units = Units::<SigmaGrant>::default();
        assert!(matches!(
            units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
            Granted::Start(1)
        ));
        let (woken, next) = units.finish(&key(), 1, None);
        assert_eq!(names(woken), ["a"]);
        assert_eq!(next, None);
        assert!(matches!(
            units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest),
            Granted::Start(2)
        ));
    }

    #[test]
    fn units_and_unread_answers_are_forgotten() {
        let units = Units::<SigmaGrant>::default();
        units.request(&key(), &member("a"), 0, Freshness::StartedAfterRequest);
        units.began(&key(), 1, Timestamp::now());
        units.finish(&key(), 1, Some(outcome(1, &["a"])));
        // "a" went away without reading its answer: the next sync drops it, and a
        // sync that finds nobody forgets the unit.
        units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest);
        units.began(&key(), 2, Timestamp::now());
        units.finish(&key(), 2, Some(outcome(2, &[])));
        assert!(matches!(
            units.request(&key(), &member("b"), 0, Freshness::StartedAfterRequest),
            Granted::Answer(_)
        ));
        units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
        units.began(&key(), 3, Timestamp::now());
        let (woken, _) = units.finish(&key(), 3, Some(outcome(3, &[])));
        assert_eq!(names(woken), ["c"]);
        units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
        units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest);
        units.began(&key(), 4, Timestamp::now());
        units.finish(&key(), 4, Some(outcome(4, &[])));
        assert!(matches!(
            units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest),
            Granted::Answer(_)
        ));
        assert!(matches!(
            units.request(&key(), &member("c"), 0, Freshness::StartedAfterRequest),
            Granted::Start(5)
        ));
        assert_eq!(units.len(), 1);
        units.forget(&key());
        assert_eq!(units.len(), 1, "a unit with a sync in flight is kept");
        units.began(&key(), 5, Timestamp::now());
        units.finish(&key(), 5, Some(outcome(5, &[])));
        units.forget(&key());
        assert!(units.is_empty());

        // Units whose provider no member uses any more are forgotten.
        units.request(&key(), &member("d"), 0, Freshness::StartedAfterRequest);
        units.began(&key(), 1, Timestamp::now());
        units.finish(&key(), 1, Some(outcome(1, &["d"])));
        assert_eq!(units.len(), 1);
        units.forget_others("c", &HashSet::from([key().provider]));
        assert_eq!(units.len(), 1);
        units.forget_others("other", &HashSet::new());
        assert_eq!(units.len(), 1);
        units.forget_others("c", &HashSet::new());
        assert!(units.is_empty());
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
        Watched {
            object: Ok(Arc::new(grant)),
        }
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
}

/// A grant resource as watched: readable, or kept with its metadata and the
/// target its raw spec names, so that one object this version cannot read
/// (a newer CRD, an unknown enum value) neither fails the watch for every
/// other object nor drops out of its target's members.
#[derive(Clone, Debug)]
pub struct Watched<K> {
    /// The object, or why it could not be read. Shared: the reflector store, each
    /// reconcile and each sync that gathers it as a member read the same copy.
    pub object: Result<Arc<K>, Unreadable>,
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

/// The top-level fields a grant kind reads; everything else (and the metadata
/// fields in [`DROPPED_METADATA`]) is skipped while parsing, never built.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    #[serde(default)]
    api_version: Option<serde_json::Value>,
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<SlimMetadata>,
    #[serde(default)]
    spec: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

/// Metadata fields the controllers never read (see `run::slim`): on a real API
/// server `managedFields` and `last-applied-configuration` are most of an
/// object's bytes, so they are skipped as they are parsed.
const DROPPED_METADATA: [&str; 4] = ["managedFields", "annotations", "labels", "ownerReferences"];

/// An object's metadata without [`DROPPED_METADATA`].
struct SlimMetadata(serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for SlimMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = SlimMetadata;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("object metadata")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SlimMetadata, A::Error> {
                let mut kept = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if DROPPED_METADATA.contains(&key.as_str()) {
                        map.next_value::<de::IgnoredAny>()?;
                    } else {
                        kept.insert(key, map.next_value()?);
                    }
                }
                Ok(SlimMetadata(kept))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

impl<'de, K: GrantKind> Deserialize<'de> for Watched<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawObject::deserialize(deserializer)?;
        let mut value = serde_json::Map::new();
        let fields = [
            ("apiVersion", raw.api_version),
            ("kind", raw.kind),
            (
                "metadata",
                raw.metadata.map(|m| serde_json::Value::Object(m.0)),
            ),
            ("spec", raw.spec),
            ("status", raw.status),
        ];
        for (key, field) in fields {
            if let Some(field) = field {
                value.insert(key.into(), field);
            }
        }
        let value = serde_json::Value::Object(value);
        let object = match K::deserialize(&value) {
            Ok(object) => Ok(Arc::new(object)),
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
            // Unique while the watch slims it, before the store shares it.
            Ok(object) => Arc::make_mut(object).meta_mut(),
            Err(unreadable) => &mut unreadable.metadata,
        }
    }
}
