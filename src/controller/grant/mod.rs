//! The grant controller, generic over the grant kinds.
//!
//! `reconcile` has one top-level step, the finalizer helper:
//! - **Apply**: a suspended resource only reports `Suspended`. Otherwise the
//!   resource needs a sync unless the unit's last sync covered it with the same
//!   inputs (generation, deletion, suspension, expiry, provider, namespace
//!   labels), succeeded, and is younger than its `syncInterval`; then it just
//!   waits for the next due time.
//! - **Cleanup**: `Orphan` and `Observe` release at once; otherwise a sync in
//!   which the resource declares nothing revokes what no other resource still
//!   declares, and the finalizer goes once that sync confirmed (by a read after
//!   its writes) that nothing the resource owned is left. When the sync fails, the
//!   resource is read again from the API server (not the watch cache) before the
//!   finalizer may go: only a resource that owns no grant there is released.
//!
//! A reconcile never waits for vendor I/O. It asks the [`Units`] coalescer for a
//! sync of its unit and, unless a finished sync already answers it, returns
//! [`Error::Queued`](crate::controller::Error::Queued). The sync runs in a task
//! of its own (`tasks::spawn_sync`), in its provider's lane (a bound on syncs in
//! flight per provider), and wakes every member it answered when it ends. So a
//! vendor that hangs holds its own lane, not the reconcile slots every other
//! provider needs.
//!
//! `pipeline::sync_unit` is the pipeline of one sync, for every member at once:
//! gather members -> provider (exists, right vendor, Ready) -> scoping per
//! member -> vendor client -> resolve target and grantees -> read -> plan ->
//! **record intents** -> apply -> read again -> rows, conditions and Events ->
//! status writes.
//! A failure before the plan changes no grant and keeps every status row, so a
//! failing sync can never forget or wrongly revoke a grant.
//!
//! **Write-ahead ownership.** Status rows are the operator's only memory of which
//! grants a resource owns (Additive mode and deletion revoke only owned grants).
//! So before any vendor write, every grant the plan is about to create or raise
//! is recorded in the status of each resource that declares it (rows `Pending`,
//! message `granting: ...`, see [`crate::plan::INTENT_MARK`]), and the write goes
//! ahead only once the API server confirmed those status writes. If the operator
//! dies, loses its lease or fails its status write after the vendor write, the
//! intent rows are still there: a restarted operator reads them from the cluster
//! and revokes the grant when its declaration goes away. A write whose outcome is
//! unknown (timeout, 5xx) keeps its intent rows until a later read settles it.
//!
//! **Unanswered writes.** A write that got no answer (a timeout, a connection
//! lost mid-request, a 504) may still be carried out later, after anything the
//! operator does next: a revoke sent after it could be overtaken by it, and a
//! read after it cannot show it. So the unit is fenced for twice the request
//! timeout: no sync of it writes, and none confirms a revocation (no finalizer
//! goes), until a read made after the fence shows what landed.
//!
//! **Writes a previous operator left in flight.** A process that died (or lost
//! its lease) may have sent writes that are still to be carried out, and no
//! answer will ever come for them. So at its first sync after this operator
//! started leading, a unit whose members show work in progress (intent or
//! revocation rows, a deletion or expiry from before the start whose grants are
//! not revoked yet, see `members::work_in_progress`) is fenced like one with an
//! unanswered write,
//! until twice the request timeout after the start: a late whole list (Dremio's
//! PUT) or revoke of the previous operator never overtakes this one's writes.
//! A unit whose first sync shows no such work is not fenced: nothing of the
//! previous operator can land there.
//!
//! The modules, in the order a resource meets them:
//! - this module: [`GrantContext`] (what the controller of one kind shares, the
//!   write fences of units) and the keys and inputs of a resource (`unit_of`,
//!   `fingerprint`, `sync_interval`);
//! - `reconcile`: [`reconcile`] and [`error_policy`]: the finalizer's apply and
//!   cleanup steps, and the Ready conditions they write without a sync;
//! - `tasks`: asking the unit coalescer for a sync and running it in its own task,
//!   in its provider's lane ([`SyncTasks`]);
//! - `members`: gathering the members of a unit (phase, status rows caught up
//!   with the last write) and the holdings of other resources on the same object;
//! - `pipeline`: one sync of a unit, from the provider checks to the plan carried
//!   out, with the intents recorded before any vendor write;
//! - `write`: the status writes and Events a sync ends with.

mod members;
mod pipeline;
mod reconcile;
mod tasks;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::api::{GrantPolicy, parse_duration};
use crate::vendor_api::GrantKind;

use super::clients::{Provider, ProviderId};
use super::units::{Aliases, Index, UnitKey, Units, Unreadable, Watched};
use super::{Config, Context};

pub use reconcile::{error_policy, reconcile};
pub use tasks::SyncTasks;

/// Everything the controller of one grant kind shares.
pub struct GrantContext<K: GrantKind> {
    /// Shared context.
    pub shared: Arc<Context>,
    /// The reflector store of the kind.
    pub store: Store<Watched<K>>,
    /// Resources by target.
    pub index: Arc<Index<K>>,
    /// Units and their syncs.
    pub units: Units<K>,
    /// Units that resolved to the same vendor object.
    pub aliases: Aliases,
    /// Wakes a resource whose sync is done (the controller reconciles it).
    wake: tokio::sync::mpsc::UnboundedSender<ObjectRef<Watched<K>>>,
    /// The sync tasks.
    pub syncs: Arc<SyncTasks>,
    /// Units with a write that got no answer, and until when they are fenced
    /// (see the module docs). Entries go when they expire or their unit goes.
    fences: std::sync::Mutex<std::collections::HashMap<UnitKey, std::time::Instant>>,
    /// Units whose first sync of this term was checked for a previous
    /// operator's work in progress (see the module docs). Entries go with their unit.
    checked: std::sync::Mutex<HashSet<UnitKey>>,
    /// Start (Unix seconds) of the latest sync that read the vendor for a member
    /// neither suspended nor expired: the kind's last successful sync, which the
    /// status's `lastSyncTime` shows only when it is written (see
    /// [`keep_last_sync_time`]).
    pub last_synced: Arc<std::sync::atomic::AtomicI64>,
}

impl<K: GrantKind> GrantContext<K> {
    /// A context for kind `K`; resources whose sync is done are sent to `wake`.
    pub fn new(
        shared: Arc<Context>,
        store: Store<Watched<K>>,
        index: Arc<Index<K>>,
        wake: tokio::sync::mpsc::UnboundedSender<ObjectRef<Watched<K>>>,
    ) -> GrantContext<K> {
        GrantContext {
            shared,
            store,
            index,
            units: Units::default(),
            aliases: Aliases::default(),
            wake,
            syncs: Arc::new(SyncTasks::default()),
            fences: std::sync::Mutex::new(std::collections::HashMap::new()),
            checked: std::sync::Mutex::new(HashSet::new()),
            last_synced: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        }
    }

    fn fences(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<UnitKey, std::time::Instant>> {
        self.fences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `unit` stays fenced after an unanswered write, if it is.
    fn fenced(&self, unit: &UnitKey) -> Option<Duration> {
        let mut fences = self.fences();
        let now = std::time::Instant::now();
        fences.retain(|_, until| *until > now);
        fences.get(unit).map(|until| *until - now)
    }

    /// Fences `unit` for `period` from now.
    fn fence(&self, unit: &UnitKey, period: Duration) {
        let until = std::time::Instant::now() + period;
        let mut fences = self.fences();
        let entry = fences.entry(unit.clone()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Whether this is the first sync of `unit` in this term to reach the check
    /// for a previous operator's writes (see the module docs); it is then
    /// recorded as checked.
    fn first_check(&self, unit: &UnitKey) -> bool {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(unit.clone())
    }

    /// Forgets the fences and start-of-term checks of the units of `target`
    /// whose provider is not in `providers`.
    fn forget_fences(&self, target: &str, providers: &HashSet<ProviderId>) {
        let keep = |unit: &UnitKey| unit.target != target || providers.contains(&unit.provider);
        self.fences().retain(|unit, _| keep(unit));
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|unit| keep(unit));
    }

    /// Units fenced now (for tests of boundedness).
    pub fn fenced_units(&self) -> usize {
        let mut fences = self.fences();
        let now = std::time::Instant::now();
        fences.retain(|_, until| *until > now);
        fences.len()
    }

    /// Forgets what is kept for a resource that is gone from the cluster (its
    /// backoff, and its unit, alias and lane entries once nothing else uses them).
    pub fn forget(&self, object: &Watched<K>) {
        self.shared.backoff.reset(&watched_key::<K>(object));
        if let Some(target) = object.unit_key() {
            self.forget_target_if_unused(&target);
        }
    }

    /// Forgets the units and aliases of `target` when no resource declares it.
    fn forget_target_if_unused(&self, target: &str) {
        let mut providers = HashSet::new();
        for oref in self.index.refs(target) {
            match self.lookup(&oref) {
                Some(Ok(object)) => {
                    providers.insert(unit_of(object.as_ref()).provider);
                }
                // Unreadable, or not in the cache yet: it may be on any unit.
                _ => return,
            }
        }
        self.units.forget_others(target, &providers);
        self.forget_fences(target, &providers);
        if providers.is_empty() {
            self.aliases.forget(target);
        }
    }

    /// A resource as the watch cache holds it: readable (shared, not copied), or not.
    fn lookup(&self, oref: &ObjectRef<K>) -> Option<Result<Arc<K>, Unreadable>> {
        let watched = self.store.get(&cast(oref))?;
        Some(match &watched.object {
            Ok(object) => Ok(object.clone()),
            Err(unreadable) => Err(unreadable.clone()),
        })
    }
}

/// The `syncInterval` of a resource.
pub fn sync_interval(policy: &GrantPolicy, config: &Config) -> Duration {
    policy
        .sync_interval
        .as_deref()
        .and_then(parse_duration)
        .filter(|interval| *interval >= Duration::from_secs(1))
        .unwrap_or(config.default_sync_interval)
}

fn object_key<K: GrantKind>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// [`object_key`] of a watched object, readable or not.
fn watched_key<K: GrantKind>(object: &Watched<K>) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

fn expired(policy: &GrantPolicy, now: Timestamp) -> bool {
    policy.expires_at.as_ref().is_some_and(|at| at.0 <= now)
}

/// The same object reference, for another type of the same resource.
fn cast<A: Resource<DynamicType = ()>, B: Resource<DynamicType = ()>>(
    oref: &ObjectRef<A>,
) -> ObjectRef<B> {
    match &oref.namespace {
        Some(namespace) => ObjectRef::new(&oref.name).within(namespace),
        None => ObjectRef::new(&oref.name),
    }
}

fn deleting<K: GrantKind>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

/// What a member's last sync depended on; a change means a new sync is needed.
fn fingerprint<K: GrantKind>(
    object: &K,
    context: &Context,
    provider: &ProviderId,
    now: Timestamp,
) -> u64 {
    let policy = object.policy();
    let mut hasher = DefaultHasher::new();
    object.meta().generation.hash(&mut hasher);
    deleting(object).hash(&mut hasher);
    policy.suspend.hash(&mut hasher);
    expired(policy, now).hash(&mut hasher);
    if let Ok(found) = Provider::find(context, provider) {
        found.version().hash(&mut hasher);
        if let Provider::Cluster(_) = found {
            let namespace = object.namespace().unwrap_or_default();
            context
                .stores
                .namespaces
                .get(&ObjectRef::new(&namespace))
                .and_then(|ns| ns.resource_version())
                .hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn unit_of<K: GrantKind>(object: &K) -> UnitKey {
    let namespace = object.namespace().unwrap_or_default();
    UnitKey {
        provider: ProviderId::of_ref(&object.policy().provider_ref, &namespace),
        target: object.unit_key(),
    }
}
