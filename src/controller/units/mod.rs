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
//!
//! This module owns the coalescer ([`Units`]) and what a sync answers with;
//! `index` the [`Index`] of resources by target; `aliases` the [`Aliases`] of a
//! vendor object named in several ways; `watched` the [`Watched`] form of a grant
//! resource, readable or not.

mod aliases;
mod index;
#[cfg(test)]
mod tests;
mod watched;

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;

use crate::api::GrantRow;
use crate::vendor_api::GrantKind;

use super::Failure;
use super::clients::ProviderId;

pub use aliases::Aliases;
pub use index::{Index, key_of};
pub use watched::{Unreadable, Watched};

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
/// (see `grant::tasks::spawn_sync`), which reports back with [`Units::finish`]; the
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
