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
//! [`Error::Queued`]. The sync runs in a task of its own ([`spawn_sync`]), in its
//! provider's lane (a bound on syncs in flight per provider), and wakes every
//! member it answered when it ends. So a vendor that hangs holds its own lane, not
//! the reconcile slots every other provider needs.
//!
//! `sync_unit` is the pipeline of one sync, for every member at once:
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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::api::{
    DeletionPolicy, FINALIZER, GrantPolicy, GrantRow, GrantState, GrantStatus, ManagementPolicy,
    Reason, parse_duration,
};
use crate::plan::{self, Key, Permission, Phase};
use crate::vendor_api::{GrantKind, ResolvedTarget, Vendor};

use super::clients::{Provider, ProviderId};
use super::status::{apply_status, list_some, patch_ready, ready, ready_of};
use super::units::{
    Aliases, Freshness, Granted, Index, MemberResult, SyncOutcome, UnitKey, Units, Unreadable,
    Watched, key_of, rows_hash,
};
use super::{Config, Context, Error, Failure, jitter};

use crate::names::Names;
use crate::report::{Writes, member_status, reason_str};
use crate::sync::{self, MemberInput, PermOf};

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
        self.fences()
            .retain(|unit, _| unit.target != target || providers.contains(&unit.provider));
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

/// How long a queued resource waits before it asks again, should its wake-up be
/// lost (it is normally woken as soon as its sync ends).
const QUEUED_RECHECK: Duration = Duration::from_secs(60);

/// The sync tasks of one grant kind: they outlive the reconciles that started
/// them and end with the controller (`abort_all`).
#[derive(Default)]
pub struct SyncTasks {
    tasks: std::sync::Mutex<tokio::task::JoinSet<()>>,
    running: tokio::sync::watch::Sender<usize>,
}

impl SyncTasks {
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // Reap finished tasks so the set stays as large as what runs.
        while tasks.try_join_next().is_some() {}
        self.running.send_modify(|running| *running += 1);
        let running = self.running.clone();
        tasks.spawn(async move {
            struct Done(tokio::sync::watch::Sender<usize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0
                        .send_modify(|running| *running = running.saturating_sub(1));
                }
            }
            let _done = Done(running);
            task.await;
        });
    }

    /// Stops every sync task (the controller is stopping).
    pub fn abort_all(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }

    /// Completes once no sync task runs.
    pub async fn idle(&self) {
        let mut running = self.running.subscribe();
        // Err: the sender is gone, so nothing runs.
        let _ = running.wait_for(|running| *running == 0).await;
    }

    /// Sync tasks running (for tests).
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }
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

/// Reconciles one grant resource.
pub async fn reconcile<K: GrantKind>(
    watched: Arc<Watched<K>>,
    cx: Arc<GrantContext<K>>,
) -> Result<Action, Error> {
    let object = match &watched.object {
        Ok(object) => object.clone(),
        Err(unreadable) => {
            report_unreadable(watched.as_ref(), unreadable, &cx).await;
            return Ok(Action::await_change());
        }
    };
    let started = std::time::Instant::now();
    let key = object_key(object.as_ref());
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(cx.shared.client.clone(), &namespace);
    let handler = cx.clone();
    let result = finalizer(&api, FINALIZER, object, move |event| async move {
        match event {
            FinalizerEvent::Apply(object) => apply(object, &handler).await,
            FinalizerEvent::Cleanup(object) => cleanup(object, &handler).await,
        }
    })
    .await
    .map_err(Error::from_finalizer);

    if matches!(result, Err(Error::Queued)) {
        // Not a result yet: the sync's end wakes the resource, and that reconcile counts.
        return result;
    }
    let metrics = &cx.shared.metrics;
    let outcome = match &result {
        Ok(_) => "success".to_string(),
        Err(error) => error.reason().to_string(),
    };
    metrics
        .reconciles
        .get_or_create(&crate::metrics::ReconcileLabels {
            kind: K::KIND,
            result: outcome,
        })
        .inc();
    metrics
        .reconcile_duration
        .get_or_create(&crate::metrics::KindLabels { kind: K::KIND })
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        cx.shared.backoff.reset(&key);
    }
    result
}

/// Requeues a failed resource with per-object backoff, capped at its sync interval.
pub fn error_policy<K: GrantKind>(
    watched: Arc<Watched<K>>,
    error: &Error,
    cx: Arc<GrantContext<K>>,
) -> Action {
    match error {
        // Still waiting out an earlier failure: not a new one.
        Error::Backoff { wait, .. } => return Action::requeue(*wait),
        // Not a failure: woken when its sync ends.
        Error::Queued => return Action::requeue(QUEUED_RECHECK),
        _ => {}
    }
    let Ok(object) = &watched.object else {
        return Action::await_change();
    };
    let cap = sync_interval(object.policy(), &cx.shared.config);
    let wait = cx.shared.backoff.fail(
        &object_key(object.as_ref()),
        cap,
        error.retry_after(),
        error.transient(),
    );
    warn!(
        kind = K::KIND,
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        reason = error.reason(),
        %error,
        retry_in = ?wait,
        "reconcile failed"
    );
    Action::requeue(wait)
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

async fn apply<K: GrantKind>(object: Arc<K>, cx: &Arc<GrantContext<K>>) -> Result<Action, Error> {
    let context = &cx.shared;
    let now = context.clock.now();
    let policy = object.policy();
    let interval = sync_interval(policy, &context.config);

    if policy.suspend {
        report_suspended(object.as_ref(), cx, now).await?;
        return Ok(Action::await_change());
    }

    let unit = unit_of(object.as_ref());
    let oref = key_of(object.as_ref());
    let fingerprint = fingerprint(object.as_ref(), context, &unit.provider, now);
    // The sync this resource asked for is done: its result, whatever the backoff.
    if let Some(outcome) =
        cx.units
            .take_answer(&unit, &oref, fingerprint, Freshness::StartedAfterRequest)
    {
        return applied(&outcome, &oref, policy, now, interval);
    }
    let mut freshness = Freshness::StartedAfterRequest;
    if let Some(last) = cx.units.last(&unit)
        && let Some(member) = last.member(&oref)
        && member.fingerprint == fingerprint
    {
        match member.result() {
            Ok(()) => {
                let due = last
                    .started
                    .saturating_add(
                        SignedDuration::try_from(interval).unwrap_or(SignedDuration::MAX),
                    )
                    .unwrap_or(Timestamp::MAX);
                freshness = Freshness::StartedSince(due);
                if now < due {
                    let wait = Duration::try_from(due.duration_since(now)).unwrap_or_default();
                    return Ok(Action::requeue(until_expiry(
                        policy,
                        now,
                        wait + jitter(interval),
                    )));
                }
            }
            Err(failure) => backing_off(context, object.as_ref(), failure)?,
        }
    }

    let has_ready = object
        .status()
        .is_some_and(|status| ready_of(&status.conditions).is_some());
    if !has_ready {
        report_progressing(object.as_ref(), cx, now).await?;
    }

    let Some(outcome) = request(cx, &unit, &oref, fingerprint, freshness) else {
        return Err(Error::Queued);
    };
    applied(&outcome, &oref, policy, now, interval)
}

/// What a sync's outcome means for an active resource.
fn applied<K: GrantKind>(
    outcome: &SyncOutcome<K>,
    oref: &ObjectRef<K>,
    policy: &GrantPolicy,
    now: Timestamp,
    interval: Duration,
) -> Result<Action, Error> {
    match outcome.member(oref).map(MemberResult::result) {
        Some(Ok(())) => Ok(Action::requeue(until_expiry(
            policy,
            now,
            interval + jitter(interval),
        ))),
        Some(Err(failure)) => Err(Error::Failed(failure.clone())),
        None => Err(Error::Failed(Failure::new(
            Reason::Progressing,
            "the resource was not yet part of its target's sync; retrying",
        ))),
    }
}

/// Fails with [`Error::Backoff`] while an unchanged resource still waits out its last failure.
fn backing_off<K: GrantKind>(
    context: &Context,
    object: &K,
    failure: &Failure,
) -> Result<(), Error> {
    match context.backoff.remaining(&object_key(object)) {
        Some(wait) => Err(Error::Backoff {
            failure: failure.clone(),
            wait,
        }),
        None => Ok(()),
    }
}

/// Shortens `wait` so the resource wakes up when it expires.
fn until_expiry(policy: &GrantPolicy, now: Timestamp, wait: Duration) -> Duration {
    match &policy.expires_at {
        Some(at) if at.0 > now => {
            let left = Duration::try_from(at.0.duration_since(now)).unwrap_or_default();
            wait.min(left + Duration::from_millis(100))
        }
        _ => wait,
    }
}

async fn cleanup<K: GrantKind>(object: Arc<K>, cx: &Arc<GrantContext<K>>) -> Result<Action, Error> {
    let policy = object.policy();
    let unit = unit_of(object.as_ref());
    let oref = key_of(object.as_ref());
    if policy.deletion_policy == DeletionPolicy::Orphan
        || policy.management_policy == ManagementPolicy::Observe
    {
        info!(
            kind = K::KIND,
            namespace = object.namespace().unwrap_or_default(),
            name = object.name_any(),
            "deleted without revoking (deletionPolicy Orphan or managementPolicy Observe)"
        );
        release(cx, &unit, &oref);
        return Ok(Action::await_change());
    }
    let now = cx.shared.clock.now();
    if policy.suspend {
        // No vendor call behind a suspension; a resource that owns nothing may go.
        if !owns_grants_now(cx, object.as_ref()).await? {
            release(cx, &unit, &oref);
            return Ok(Action::await_change());
        }
        let failure = Failure::new(
            Reason::Deleting,
            "deletion waits: the resource is suspended; set spec.suspend to false to revoke its grants, or spec.deletionPolicy to Orphan to keep them",
        );
        report_condition(object.as_ref(), cx, now, "False", &failure).await?;
        return Err(Error::Failed(failure));
    }
    let fingerprint = fingerprint(object.as_ref(), &cx.shared, &unit.provider, now);
    let answer = cx
        .units
        .take_answer(&unit, &oref, fingerprint, Freshness::StartedAfterRequest);
    let outcome = match answer {
        Some(outcome) => outcome,
        None => {
            if let Some(last) = cx.units.last(&unit)
                && let Some(member) = last.member(&oref)
                && member.fingerprint == fingerprint
                && let Err(failure) = member.result()
            {
                backing_off(&cx.shared, object.as_ref(), failure)?;
            }
            let requested = request(
                cx,
                &unit,
                &oref,
                fingerprint,
                Freshness::StartedAfterRequest,
            );
            let Some(outcome) = requested else {
                return Err(Error::Queued);
            };
            outcome
        }
    };
    let failure = match outcome.member(&oref).map(MemberResult::result) {
        // The sync revoked what the resource owned and read the target back.
        Some(Ok(())) => {
            release(cx, &unit, &oref);
            return Ok(Action::await_change());
        }
        Some(Err(failure)) => failure.clone(),
        None => Failure::new(
            Reason::Deleting,
            "the resource was not yet part of its target's sync; retrying",
        ),
    };
    // The revocation did not go through. Only a resource that owns nothing, as the
    // API server has it now (not the object this reconcile was handed, which may
    // predate rows a sync wrote since), may go without it.
    if owns_grants_now(cx, object.as_ref()).await? {
        Err(Error::Failed(failure))
    } else {
        // Nothing of ours is live as far as the cluster knows: do not hold the
        // deletion hostage to a provider that cannot be reached.
        release(cx, &unit, &oref);
        Ok(Action::await_change())
    }
}

/// Whether the resource, read from the API server now, has status rows that own a
/// grant (applied, with a vendor id, a pending revocation, or an intent).
async fn owns_grants_now<K: GrantKind>(cx: &GrantContext<K>, object: &K) -> Result<bool, Error> {
    let api: Api<Watched<K>> = Api::namespaced(
        cx.shared.client.clone(),
        &object.namespace().unwrap_or_default(),
    );
    match api.get_opt(&object.name_any()).await.map_err(Error::Kube)? {
        None => Ok(false),
        Some(Watched { object: Ok(fresh) }) => Ok(!sync::owned_rows::<K>(&fresh, None).is_empty()),
        // Unreadable now: it may own anything.
        Some(Watched { object: Err(_) }) => Ok(true),
    }
}

/// Forgets the unit's state once the resource being released was its last member,
/// and the target's aliases once no resource declares it.
fn release<K: GrantKind>(cx: &GrantContext<K>, unit: &UnitKey, leaving: &ObjectRef<K>) {
    let mut providers = HashSet::new();
    let mut unknown = false;
    for oref in cx.index.refs(&unit.target) {
        if &oref == leaving {
            continue;
        }
        match cx.lookup(&oref) {
            Some(Ok(object)) => {
                providers.insert(unit_of(object.as_ref()).provider);
            }
            // Unreadable: it may be on any unit.
            Some(Err(_)) => unknown = true,
            None => {}
        }
    }
    if unknown {
        return;
    }
    if !providers.contains(&unit.provider) {
        cx.units.forget(unit);
    }
    cx.units.forget_others(&unit.target, &providers);
    cx.fences()
        .retain(|fenced, _| fenced.target != unit.target || providers.contains(&fenced.provider));
    if providers.is_empty() {
        cx.aliases.forget(&unit.target);
    }
}

/// Asks for a sync of `unit` on behalf of `oref`: the outcome that answers it, or
/// `None` when it is queued (it is woken when the sync ends). Starts the sync when
/// it is this caller's turn.
fn request<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    unit: &UnitKey,
    oref: &ObjectRef<K>,
    fingerprint: u64,
    freshness: Freshness,
) -> Option<Arc<SyncOutcome<K>>> {
    match cx.units.request(unit, oref, fingerprint, freshness) {
        Granted::Answer(outcome) => Some(outcome),
        Granted::Queued => None,
        Granted::Start(seq) => {
            spawn_sync(cx, unit.clone(), seq);
            None
        }
    }
}

/// Runs sync `seq` of `unit` in its provider's lane, then the syncs asked for
/// while it ran, waking the members each one answers.
fn spawn_sync<K: GrantKind>(cx: &Arc<GrantContext<K>>, unit: UnitKey, seq: u64) {
    let cx = cx.clone();
    let tasks = cx.syncs.clone();
    tasks.spawn(async move {
        let mut seq = seq;
        loop {
            let lane = cx.shared.lanes.of(&unit.provider);
            // The semaphore is never closed.
            let permit = lane.acquire_owned().await.ok();
            let mut guard = CutShort {
                cx: &cx,
                unit: &unit,
                seq,
                armed: true,
            };
            let outcome = Arc::new(sync_unit(cx.clone(), unit.clone(), seq).await);
            guard.armed = false;
            drop(permit);
            let (woken, next) = cx.units.finish(&unit, seq, Some(outcome));
            for member in woken {
                // Err: the controller is gone, and so is the need to wake anyone.
                let _ = cx.wake.send(cast(&member));
            }
            match next {
                Some(next) => seq = next,
                None => break,
            }
        }
    });
}

/// Marks a sync that did not finish (it panicked) as cut short, and wakes its
/// waiting members so they ask again.
struct CutShort<'a, K: GrantKind> {
    cx: &'a GrantContext<K>,
    unit: &'a UnitKey,
    seq: u64,
    armed: bool,
}

impl<K: GrantKind> Drop for CutShort<'_, K> {
    fn drop(&mut self) {
        if self.armed {
            let (woken, _) = self.cx.units.finish(self.unit, self.seq, None);
            for member in woken {
                let _ = self.cx.wake.send(cast(&member));
            }
        }
    }
}

async fn report_suspended<K: GrantKind>(
    object: &K,
    cx: &GrantContext<K>,
    now: Timestamp,
) -> Result<(), Error> {
    let previous = object.status().cloned().unwrap_or_default();
    // Ready keeps its status; only the reason says Suspended.
    let status = ready_of(&previous.conditions)
        .map(|condition| condition.status.clone())
        .unwrap_or_else(|| "Unknown".into());
    let failure = Failure::new(
        Reason::Suspended,
        "reconciliation is suspended (spec.suspend); no vendor calls are made",
    );
    report_condition(object, cx, now, &status, &failure).await
}

async fn report_progressing<K: GrantKind>(
    object: &K,
    cx: &GrantContext<K>,
    now: Timestamp,
) -> Result<(), Error> {
    let failure = Failure::new(Reason::Progressing, "first sync under way");
    report_condition(object, cx, now, "Unknown", &failure).await
}

/// An object this version cannot read: say so in an Event, and touch nothing
/// (its finalizer stays, so its grants are not forgotten).
async fn report_unreadable<K: GrantKind>(
    watched: &Watched<K>,
    unreadable: &Unreadable,
    cx: &GrantContext<K>,
) {
    warn!(
        kind = K::KIND,
        namespace = watched.meta().namespace.as_deref().unwrap_or_default(),
        name = watched.meta().name.as_deref().unwrap_or_default(),
        error = %unreadable.error,
        "cannot read this resource; it is left as is"
    );
    cx.shared
        .metrics
        .reconciles
        .get_or_create(&crate::metrics::ReconcileLabels {
            kind: K::KIND,
            result: "Unreadable".into(),
        })
        .inc();
    cx.shared
        .events
        .publish(
            watched,
            true,
            "Unreadable",
            "Reconcile",
            format!(
                "this version of grant-operator cannot read this resource ({}); it is left as is, and its target is not changed until it can be read",
                unreadable.error
            ),
        )
        .await;
}

/// Writes only the Ready condition (and observedGeneration), keeping the rest of status.
async fn report_condition<K: GrantKind>(
    object: &K,
    cx: &GrantContext<K>,
    now: Timestamp,
    status: &str,
    failure: &Failure,
) -> Result<(), Error> {
    let previous = object.status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let condition = ready(
        &previous.conditions,
        status,
        failure.reason,
        &failure.message,
        generation,
        now,
    );
    if ready_of(&previous.conditions) == Some(&condition)
        && previous.observed_generation == generation
    {
        return Ok(());
    }
    patch_ready(&cx.shared.client, object, &condition, &cx.shared.writes)
        .await
        .map_err(Error::Kube)?;
    if failure.reason != Reason::Progressing {
        let warning = failure.reason == Reason::Deleting;
        cx.shared
            .events
            .publish(
                object,
                warning,
                failure.reason.as_str(),
                "Reconcile",
                failure.message.clone(),
            )
            .await;
    }
    Ok(())
}

/// A member of the unit being synced.
struct Member<K: GrantKind> {
    object: Arc<K>,
    oref: ObjectRef<K>,
    phase: Phase,
    fingerprint: u64,
    /// Rows of the previous sync (this process's last write when newer than the store).
    previous_rows: Vec<GrantRow>,
    /// Scoping refusal.
    refused: Option<Failure>,
}

/// The status rows of a resource.
fn status_rows<K: GrantKind>(object: &K) -> Vec<GrantRow> {
    object
        .status()
        .map(|status| status.grants.clone())
        .unwrap_or_default()
}

/// The resource with the status rows the last sync wrote (hash `hash`): from the
/// watch cache once it caught up (a few milliseconds, normally), else read from the
/// API server. Rows are the memory of what a resource owns, so a sync never plans
/// from older ones.
async fn caught_up<K: GrantKind>(
    cx: &GrantContext<K>,
    oref: &ObjectRef<K>,
    hash: u64,
) -> Result<Option<Arc<K>>, kube::Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    loop {
        let Some(Ok(object)) = cx.lookup(oref) else {
            return Ok(None);
        };
        if rows_hash(&status_rows(object.as_ref())) == hash {
            return Ok(Some(object));
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let api: Api<Watched<K>> = Api::namespaced(
        cx.shared.client.clone(),
        oref.namespace.as_deref().unwrap_or_default(),
    );
    debug!(kind = K::KIND, name = %oref.name, "status rows differ from the last write in the cache; reading the resource");
    Ok(match api.get_opt(&oref.name).await? {
        Some(Watched {
            object: Ok(mut fresh),
        }) => {
            super::run::slim(Arc::make_mut(&mut fresh));
            Some(fresh)
        }
        _ => None,
    })
}

async fn sync_unit<K: GrantKind>(
    cx: Arc<GrantContext<K>>,
    unit: UnitKey,
    seq: u64,
) -> SyncOutcome<K> {
    let context = cx.shared.clone();
    let started = context.clock.now();
    cx.units.began(&unit, seq, started);
    let previous = cx.units.last(&unit);
    let mut outcome = SyncOutcome::new(seq, started);

    // Gather the members of the unit, and the resources of other providers on the same target.
    let mut members: Vec<Member<K>> = Vec::new();
    let mut neighbours: Vec<Arc<K>> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    let mut stale: Vec<String> = Vec::new();
    let mut providers = HashSet::new();
    for oref in cx.index.refs(&unit.target) {
        let object = match cx.lookup(&oref) {
            None => continue,
            Some(Ok(object)) => object,
            Some(Err(error)) => {
                unreadable.push(format!(
                    "{}/{} ({})",
                    oref.namespace.as_deref().unwrap_or_default(),
                    oref.name,
                    error.error
                ));
                continue;
            }
        };
        if object.unit_key() != unit.target {
            continue;
        }
        providers.insert(unit_of(object.as_ref()).provider);
        if unit_of(object.as_ref()).provider != unit.provider {
            neighbours.push(object);
            continue;
        }
        // The status rows are the memory of what the resource holds: if the watch cache
        // has not caught up with the last sync's write yet, wait for it.
        let written = previous
            .as_ref()
            .and_then(|last| last.member(&oref))
            .map(|member| member.rows_hash);
        let object = match written {
            Some(hash) if rows_hash(&status_rows(object.as_ref())) != hash => {
                match caught_up(&cx, &oref, hash).await {
                    Ok(Some(object)) => object,
                    // Gone meanwhile, or no longer readable: the next sync sees it as it is.
                    Ok(None) => continue,
                    Err(error) => {
                        stale.push(format!(
                            "{}/{} ({error})",
                            oref.namespace.as_deref().unwrap_or_default(),
                            oref.name
                        ));
                        continue;
                    }
                }
            }
            _ => object,
        };
        let policy = object.policy();
        let phase = if deleting(object.as_ref()) {
            let ours = object
                .finalizers()
                .iter()
                .any(|finalizer| finalizer == FINALIZER);
            if !ours
                || policy.deletion_policy == DeletionPolicy::Orphan
                || policy.management_policy == ManagementPolicy::Observe
            {
                continue;
            }
            if policy.suspend {
                Phase::Suspended
            } else {
                Phase::Deleting
            }
        } else if !object
            .finalizers()
            .iter()
            .any(|finalizer| finalizer == FINALIZER)
        {
            // Its reconcile adds the finalizer first; until then a grant made for
            // it could outlive a deletion that nothing would hold up.
            Phase::Joining
        } else if policy.suspend {
            Phase::Suspended
        } else if expired(policy, started) {
            Phase::Expired
        } else {
            Phase::Active
        };
        let previous_rows = status_rows(object.as_ref());
        members.push(Member {
            fingerprint: fingerprint(object.as_ref(), &context, &unit.provider, started),
            oref,
            phase,
            previous_rows,
            refused: None,
            object,
        });
    }
    if unreadable.is_empty() {
        // Units of this target whose members all moved to another provider (or
        // went away) have nobody left to serve.
        cx.units.forget_others(&unit.target, &providers);
    }
    if members.is_empty() {
        return outcome;
    }
    debug!(kind = K::KIND, target = %unit.target, provider = %unit.provider, members = members.len(), seq, "sync");

    // Suspended members take part only by keeping what they hold: no status of
    // theirs is written here (their own reconcile reports `Suspended`).
    for member in members
        .iter()
        .filter(|member| member.phase == Phase::Suspended)
    {
        outcome.insert(
            &member.oref,
            MemberResult {
                fingerprint: member.fingerprint,
                failure: None,
                rows_hash: rows_hash(&member.previous_rows),
            },
        );
    }
    if members.iter().all(|member| !member.phase.reported()) {
        return outcome;
    }

    // A member whose current status rows could not be read may own grants the cache
    // does not show yet: change nothing until they can be read.
    if !stale.is_empty() {
        let failure = Failure::new(
            Reason::Progressing,
            format!(
                "could not read the current status of {} from the API server; no change is made to the target until it can",
                list_some(&stale, 3)
            ),
        );
        for member in members.iter().filter(|member| member.phase.reported()) {
            fail(&cx, &mut outcome, member, &failure).await;
        }
        return outcome;
    }

    // A member this version cannot read may hold grants here that nothing else
    // knows of: change nothing until it can be read.
    if !unreadable.is_empty() {
        let failure = Failure::new(
            Reason::InvalidSpec,
            format!(
                "this version of grant-operator cannot read {} on this target; no change is made to the target until it can",
                list_some(&unreadable, 3)
            ),
        );
        for member in members.iter().filter(|member| member.phase.reported()) {
            fail(&cx, &mut outcome, member, &failure).await;
        }
        return outcome;
    }

    // Provider, then scoping per member.
    let provider = Provider::find(&context, &unit.provider).and_then(|provider| {
        provider.usable_for::<K>(&unit.provider)?;
        Ok(provider)
    });
    let provider = match provider {
        Ok(provider) => provider,
        Err(failure) => {
            if failure.reason == Reason::ProviderNotFound {
                context.clients.forget(&unit.provider);
            }
            for member in members.iter().filter(|member| member.phase.reported()) {
                fail(&cx, &mut outcome, member, &failure).await;
            }
            return outcome;
        }
    };
    for member in members.iter_mut().filter(|member| member.phase.reported()) {
        let namespace = member.object.namespace().unwrap_or_default();
        if let Err(failure) = provider.allows(&context, &unit.provider, &namespace) {
            member.refused = Some(failure);
        }
    }
    let (refused, mut members): (Vec<Member<K>>, Vec<Member<K>>) = members
        .into_iter()
        .partition(|member| member.refused.is_some());
    for member in &refused {
        if let Some(failure) = &member.refused {
            fail(&cx, &mut outcome, member, failure).await;
        }
    }
    if members.iter().all(|member| !member.phase.reported()) {
        return outcome;
    }

    if let Some(left) = cx.fenced(&unit) {
        let failure = Failure {
            reason: Reason::VendorUnavailable,
            message: format!(
                "an earlier write to {} got no answer and may still be carried out; no new write, and no revocation confirmed, for {}s",
                K::VENDOR,
                left.as_secs().max(1)
            ),
            retry_after: Some(left),
        };
        for member in members.iter().filter(|member| member.phase.reported()) {
            fail(&cx, &mut outcome, member, &failure).await;
        }
        return outcome;
    }
    match read_plan_apply(&cx, &unit, &provider, &mut members, &neighbours, started).await {
        Ok(result) => finish(&cx, &mut outcome, &members, result, started).await,
        Err(failure) => {
            if failure.reason == Reason::Unauthorized {
                // Let the provider find out too, so every grant waits on it instead of failing alone.
                let _ = context.recheck.try_send(unit.provider.clone());
            }
            for member in members.iter().filter(|member| member.phase.reported()) {
                fail(&cx, &mut outcome, member, &failure).await;
            }
        }
    }
    outcome
}

/// What a sync learned, for `finish`.
struct Synced<P: Permission> {
    target: ResolvedTarget,
    input: plan::Unit<P>,
    plan: plan::Plan<P>,
    reports: Vec<plan::Report<P>>,
    failures: BTreeMap<Key, plan::Failure>,
    /// Keys whose write may have landed unseen (see [`sync::Carried::uncertain`]).
    uncertain: BTreeSet<Key>,
    /// Whether the target was read back after the writes (or nothing was written).
    confirmed: bool,
    /// Until when this sync's writes may still land.
    intent_until: Timestamp,
    unmanaged: usize,
    names: Names,
}

async fn read_plan_apply<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    unit: &UnitKey,
    provider: &Provider,
    members: &mut [Member<K>],
    neighbours: &[Arc<K>],
    started: Timestamp,
) -> Result<Synced<PermOf<K>>, Failure> {
    let context = &cx.shared;
    let client = provider.client(context, &unit.provider).await?;
    let vendor = K::client(&client).ok_or_else(|| {
        Failure::new(
            Reason::ProviderNotFound,
            format!("{} cannot serve {} resources", unit.provider, K::KIND),
        )
    })?;
    let first = members
        .iter()
        .find(|member| member.phase.reported())
        .unwrap_or(&members[0]);
    let target = vendor.resolve_target(&first.object.target()).await?;
    let neighbours = with_aliases(cx, unit, provider, &target, neighbours);
    let foreign = foreign_holdings::<K>(context, provider, &neighbours);

    let inputs: Vec<MemberInput<K>> = members
        .iter()
        .map(|member| MemberInput {
            object: member.object.clone(),
            phase: member.phase,
            previous_rows: member.previous_rows.clone(),
        })
        .collect();
    // A write of unknown outcome may land for as long as a vendor takes to carry
    // out a request: twice the request timeout (as the fence).
    let late =
        SignedDuration::try_from(2 * provider.request_timeout()).unwrap_or(SignedDuration::MAX);
    let after = |at: Timestamp| at.saturating_add(late).unwrap_or(Timestamp::MAX);
    let until = after(started);
    let watch = plan::Watch {
        now: started,
        unknown_until: after(context.leading_since),
    };
    let mut recorder = IntentRecorder { cx, members };
    let ran = sync::run::<K>(
        vendor.as_ref(),
        &target,
        &inputs,
        foreign,
        true,
        watch,
        &mut recorder,
    )
    .await?;
    let (observed, reports) = (ran.observed, ran.reports);
    let carried = ran
        .carried
        .ok_or_else(|| Failure::new(Reason::Progressing, "the sync did not carry its plan out"))?;
    if carried
        .errors
        .values()
        .any(|error| matches!(error, crate::vendor_api::VendorError::NoAnswer { .. }))
    {
        cx.fence(unit, 2 * provider.request_timeout());
    }
    for action in &observed.plan.actions {
        let outcome = if carried.errors.contains_key(&action.key) {
            "failure"
        } else {
            "success"
        };
        context
            .metrics
            .actions
            .get_or_create(&crate::metrics::ActionLabels {
                kind: K::KIND,
                action: action.kind().as_str(),
                outcome,
            })
            .inc();
    }
    if let Some(error) = &carried.read_back_error {
        warn!(kind = K::KIND, target = %unit.target, %error, "could not read the grants back after writing");
    }
    Ok(Synced {
        target,
        input: observed.input,
        plan: observed.plan,
        reports,
        failures: carried.failures,
        uncertain: carried.uncertain,
        confirmed: carried.read_back_error.is_none(),
        intent_until: until,
        unmanaged: observed.live.unmanaged,
        names: observed.names,
    })
}

/// The controller's part of a unit's run between planning and writing: counts
/// the sync, and records the intents (see [`record_intents`]).
struct IntentRecorder<'a, K: GrantKind> {
    cx: &'a Arc<GrantContext<K>>,
    members: &'a mut [Member<K>],
}

impl<K: GrantKind> sync::Observing<PermOf<K>> for IntentRecorder<'_, K> {
    async fn observed(&mut self, observed: &sync::Observed<PermOf<K>>) -> Result<(), Failure> {
        self.cx
            .shared
            .metrics
            .syncs
            .get_or_create(&crate::metrics::KindLabels { kind: K::KIND })
            .inc();
        // Write-ahead: what is about to be granted is owned before it can exist.
        let intents = plan::intents(&observed.input, &observed.plan);
        record_intents(self.cx, self.members, &intents, &observed.names).await
    }
}

/// Records, in the status of each member, the grants the plan is about to create
/// or raise on its behalf (see the module docs), and fails the sync, before any
/// vendor write, if one of those status writes fails.
async fn record_intents<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    members: &mut [Member<K>],
    intents: &[Vec<(Key, PermOf<K>)>],
    names: &Names,
) -> Result<(), Failure> {
    let mut writes = Vec::new();
    for (member, intents) in members.iter_mut().zip(intents) {
        if intents.is_empty() {
            continue;
        }
        writes.push(
            async move {
                let rows = sync::with_intents::<K>(&member.previous_rows, intents, names);
                if rows == member.previous_rows {
                    return Ok(());
                }
                let mut status = member.object.status().cloned().unwrap_or_default();
                status.grants = rows.clone();
                write_status(cx, member, &status).await?;
                member.previous_rows = rows;
                Ok::<(), kube::Error>(())
            }
            .boxed(),
        );
    }
    let results: Vec<Result<(), kube::Error>> =
        stream::iter(writes).buffer_unordered(16).collect().await;
    match results.into_iter().find_map(Result::err) {
        None => Ok(()),
        Some(error) => Err(Failure::new(
            Reason::Progressing,
            format!(
                "the grants about to be made could not be recorded in status first ({error}); nothing was written to {}; retrying",
                K::VENDOR
            ),
        )),
    }
}

/// `neighbours`, plus the resources of units that name the same vendor object
/// another way (their holdings are protected like those of other providers).
fn with_aliases<K: GrantKind>(
    cx: &GrantContext<K>,
    unit: &UnitKey,
    provider: &Provider,
    target: &ResolvedTarget,
    neighbours: &[Arc<K>],
) -> Vec<Arc<K>> {
    let mut all = neighbours.to_vec();
    // A target written as the vendor's own id has no other spelling.
    if target.id == unit.target {
        return all;
    }
    let Some(endpoint) = provider.endpoint::<K>() else {
        return all;
    };
    for other in cx.aliases.record(&endpoint, &target.id, &unit.target) {
        for oref in cx.index.refs(&other) {
            if let Some(Ok(object)) = cx.lookup(&oref)
                && object.unit_key() == other
            {
                all.push(object);
            }
        }
    }
    all
}

/// Grants held by resources that reach the same vendor object through another
/// provider or another spelling of the target.
fn foreign_holdings<K: GrantKind>(
    context: &Context,
    provider: &Provider,
    neighbours: &[Arc<K>],
) -> Vec<(Key, PermOf<K>)> {
    let Some(endpoint) = provider.endpoint::<K>() else {
        return Vec::new();
    };
    neighbours
        .iter()
        .filter(|neighbour| {
            let namespace = neighbour.namespace().unwrap_or_default();
            let id = ProviderId::of_ref(&neighbour.policy().provider_ref, &namespace);
            Provider::find(context, &id)
                .is_ok_and(|theirs| theirs.endpoint::<K>().as_ref() == Some(&endpoint))
        })
        .flat_map(|neighbour| sync::owned_rows::<K>(neighbour.as_ref(), None))
        .collect()
}

/// Status, Events and results of a sync that got as far as the plan.
async fn finish<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    outcome: &mut SyncOutcome<K>,
    members: &[Member<K>],
    synced: Synced<PermOf<K>>,
    started: Timestamp,
) {
    let context = &cx.shared;
    let drift: i64 = synced
        .reports
        .iter()
        .map(|report| report.drift_repaired)
        .sum();
    if drift > 0 {
        context
            .metrics
            .drift_repairs
            .get_or_create(&crate::metrics::KindLabels { kind: K::KIND })
            .inc_by(drift as u64);
    }
    if synced.unmanaged > 0 {
        debug!(kind = K::KIND, target = %synced.target.id, unmanaged = synced.unmanaged, "left alone grants with permissions the operator does not manage");
    }
    let done = Writes {
        plan: &synced.plan,
        failures: &synced.failures,
        uncertain: &synced.uncertain,
        confirmed: synced.confirmed,
        intent_until: synced.intent_until,
        names: &synced.names,
    };
    let mut writes = Vec::new();
    for ((member, report), input) in members
        .iter()
        .zip(&synced.reports)
        .zip(&synced.input.members)
    {
        if !member.phase.reported() {
            continue;
        }
        let cx = cx.clone();
        let target = &synced.target;
        let done = &done;
        writes.push(
            async move {
                let (mut status, result, events) = member_status::<K>(
                    member.object.as_ref(),
                    member.phase,
                    input,
                    report,
                    done,
                    target,
                    started,
                    cx.shared.clock.now(),
                );
                let interval = sync_interval(member.object.policy(), &cx.shared.config);
                let refresh = cx.shared.config.last_sync_refresh_intervals;
                if result.is_ok() && refresh > 1 {
                    let refresh = interval.saturating_mul(refresh);
                    keep_last_sync_time(member.object.as_ref(), &mut status, started, refresh);
                }
                if matches!(member.phase, Phase::Active | Phase::Deleting) {
                    cx.last_synced
                        .fetch_max(started.as_second(), std::sync::atomic::Ordering::Relaxed);
                }
                let written = write_status(&cx, member, &status).await;
                for (warning, reason, note) in events {
                    cx.shared
                        .events
                        .publish(member.object.as_ref(), warning, reason, "Sync", note)
                        .await;
                }
                // A failed write leaves the old rows, which still cover what is ours.
                let (result, rows) = match written {
                    Ok(()) => (result, &status.grants),
                    Err(error) => (
                        Err(Failure::new(
                            Reason::Progressing,
                            format!("status could not be written: {error}"),
                        )),
                        &member.previous_rows,
                    ),
                };
                (
                    member.oref.clone(),
                    MemberResult {
                        fingerprint: member.fingerprint,
                        failure: result.err().map(Box::new),
                        rows_hash: rows_hash(rows),
                    },
                )
            }
            .boxed(),
        );
    }
    let results: Vec<_> = stream::iter(writes).buffer_unordered(16).collect().await;
    for (oref, result) in results {
        outcome.insert(&oref, result);
    }
}

/// Keeps the recorded `lastSyncTime` of a resource that reached its declared state
/// when it is the only thing a sync would change in the status and it is younger
/// than `refresh` (`--last-sync-refresh-intervals` sync intervals): a steady
/// state then writes no status, so the API server, its watchers and this
/// controller (which the write's watch event would reconcile) have no work per
/// resource per interval. The kind's last successful sync, which alerts use, is
/// kept in memory as well ([`GrantContext::last_synced`]).
fn keep_last_sync_time<K: GrantKind>(
    object: &K,
    next: &mut GrantStatus,
    started: Timestamp,
    refresh: Duration,
) {
    let Some(previous) = object.status() else {
        return;
    };
    let Some(recorded) = previous.last_sync_time.clone() else {
        return;
    };
    let age = Duration::try_from(started.duration_since(recorded.0)).unwrap_or_default();
    if age >= refresh {
        return;
    }
    let fresh = next.last_sync_time.replace(recorded);
    if next != previous {
        next.last_sync_time = fresh;
    }
}

/// Reports a failure that happened before the plan: rows and target are kept.
async fn fail<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    outcome: &mut SyncOutcome<K>,
    member: &Member<K>,
    failure: &Failure,
) {
    let object = member.object.as_ref();
    let now = cx.shared.clock.now();
    let mut status = object.status().cloned().unwrap_or_default();
    status.grants = member.previous_rows.clone();
    let (reason, message) = if member.phase == Phase::Deleting {
        (
            Reason::Deleting,
            format!(
                "cannot revoke: {}; retrying (set spec.deletionPolicy to Orphan to keep the grants and release the resource)",
                failure.message
            ),
        )
    } else {
        (failure.reason, failure.message.clone())
    };
    let before = ready_of(&status.conditions).cloned();
    let condition = ready(
        &status.conditions,
        "False",
        reason,
        &message,
        object.meta().generation,
        now,
    );
    status.conditions = vec![condition.clone()];
    status.observed_generation = object.meta().generation;
    let written = write_status(cx, member, &status).await;
    let changed = before.is_none_or(|before| {
        before.reason != condition.reason || before.message != condition.message
    });
    if changed {
        cx.shared
            .events
            .publish(
                object,
                true,
                reason_str(reason.as_str()),
                "Sync",
                message.clone(),
            )
            .await;
    }
    let failure = match written {
        Ok(()) => Failure {
            reason,
            message,
            retry_after: failure.retry_after,
        },
        Err(error) => Failure::new(
            reason,
            format!("{message} (status could not be written: {error})"),
        ),
    };
    outcome.insert(
        &member.oref,
        MemberResult {
            fingerprint: member.fingerprint,
            failure: Some(Box::new(failure)),
            rows_hash: rows_hash(&member.previous_rows),
        },
    );
}

async fn write_status<K: GrantKind>(
    cx: &GrantContext<K>,
    member: &Member<K>,
    status: &GrantStatus,
) -> Result<(), kube::Error> {
    let object = member.object.as_ref();
    if object.status() == Some(status) {
        return Ok(());
    }
    apply_status(&cx.shared.client, object, status, &cx.shared.writes).await?;
    if first_ready(object, status)
        && let Some(created) = &object.meta().creation_timestamp
    {
        let waited = cx.shared.clock.now().duration_since(created.0);
        cx.shared
            .metrics
            .time_to_ready
            .get_or_create(&crate::metrics::KindLabels { kind: K::KIND })
            .observe(waited.as_secs_f64().max(0.0));
    }
    Ok(())
}

/// `next` makes the resource Ready for the first time: it was not Ready before
/// and had no grant applied yet (so a recovery after a failure is not counted).
fn first_ready<K: GrantKind>(object: &K, next: &GrantStatus) -> bool {
    let is_ready =
        |status: &GrantStatus| ready_of(&status.conditions).is_some_and(|c| c.status == "True");
    let before = object.status();
    is_ready(next)
        && !before.is_some_and(is_ready)
        && !before.is_some_and(|status| {
            status
                .grants
                .iter()
                .any(|row| row.state == GrantState::Applied)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{GrantPolicy, ProviderRef, SigmaGrant, SigmaGrantSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::watcher;

    fn grant(rows: Vec<GrantRow>) -> SigmaGrant {
        let mut grant = SigmaGrant::new(
            "g",
            SigmaGrantSpec {
                policy: GrantPolicy {
                    provider_ref: ProviderRef {
                        kind: Default::default(),
                        name: "p".into(),
                    },
                    mode: Default::default(),
                    deletion_policy: Default::default(),
                    management_policy: Default::default(),
                    suspend: false,
                    sync_interval: None,
                    expires_at: None,
                },
                connection_id: "c".into(),
                grants: Vec::new(),
            },
        );
        grant.metadata.namespace = Some("ns".into());
        grant.status = Some(GrantStatus {
            grants: rows,
            ..GrantStatus::default()
        });
        grant
    }

    fn row(grantee: &str) -> GrantRow {
        GrantRow {
            grantee: grantee.into(),
            name: None,
            permission: "usage".into(),
            vendor_id: Some("id".into()),
            state: GrantState::Applied,
            message: String::new(),
        }
    }

    #[test]
    fn an_unchanged_status_keeps_its_last_sync_time_for_ten_intervals() {
        let at = |seconds: i64| Time(Timestamp::from_second(seconds).unwrap());
        let mut object = grant(vec![row("member:a")]);
        if let Some(status) = object.status.as_mut() {
            status.last_sync_time = Some(at(1_000));
        }
        let interval = Duration::from_secs(600);
        let next = |rows, synced| GrantStatus {
            grants: rows,
            last_sync_time: Some(at(synced)),
            ..GrantStatus::default()
        };

        // Only lastSyncTime would change: nothing to write.
        let mut same = next(vec![row("member:a")], 1_060);
        keep_last_sync_time(&object, &mut same, at(1_060).0, interval);
        assert_eq!(object.status.as_ref(), Some(&same));

        // Ten intervals on, it is refreshed.
        let mut old = next(vec![row("member:a")], 1_600);
        keep_last_sync_time(&object, &mut old, at(1_600).0, interval);
        assert_eq!(old.last_sync_time, Some(at(1_600)));

        // Anything else changed: written, with the new time.
        let mut changed = next(vec![row("member:a"), row("member:b")], 1_060);
        keep_last_sync_time(&object, &mut changed, at(1_060).0, interval);
        assert_eq!(changed.last_sync_time, Some(at(1_060)));
    }

    type Handle = tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >;

    /// A grant context over `store`, with a mock API server behind it.
    fn context(store: Store<Watched<SigmaGrant>>) -> (GrantContext<SigmaGrant>, Handle) {
        let (service, handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = kube::Client::new(service, "default");
        let stores = crate::controller::Stores {
            providers: kube::runtime::reflector::store().0,
            cluster_providers: kube::runtime::reflector::store().0,
            secrets: kube::runtime::reflector::store().0,
            namespaces: kube::runtime::reflector::store().0,
        };
        let (context, _) = Context::new(
            client,
            Config::default(),
            stores,
            Arc::new(crate::metrics::Metrics::new()),
            Arc::new(crate::controller::SystemClock),
        );
        let (wake, _) = tokio::sync::mpsc::unbounded_channel();
        (
            GrantContext::new(Arc::new(context), store, Arc::new(Index::default()), wake),
            handle,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_sync_plans_from_the_rows_its_last_write_left() {
        let (store, mut writer) = kube::runtime::reflector::store::<Watched<SigmaGrant>>();
        writer.apply_watcher_event(&watcher::Event::Apply(Watched {
            object: Ok(Arc::new(grant(vec![]))),
        }));
        let written = vec![row("member:a")];
        let expected = rows_hash(&written);
        let oref = ObjectRef::new("g").within("ns");
        let late = grant(written);
        let update = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer.apply_watcher_event(&watcher::Event::Apply(Watched {
                object: Ok(Arc::new(late)),
            }));
            writer
        });
        // The cache catches up within the short wait: no API call.
        let (cx, _handle) = context(store.clone());
        let seen = caught_up(&cx, &oref, expected).await.unwrap().unwrap();
        assert_eq!(status_rows(seen.as_ref()), vec![row("member:a")]);
        let mut writer = update.await.unwrap();

        // The cache does not catch up: the resource is read from the API server,
        // whose rows win (here someone else's write since).
        writer.apply_watcher_event(&watcher::Event::Apply(Watched {
            object: Ok(Arc::new(grant(vec![row("member:b")]))),
        }));
        let (cx, mut handle) = context(store.clone());
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a GET");
            assert_eq!(request.method(), http::Method::GET);
            assert_eq!(
                request.uri().path(),
                "/apis/grantoperator.dev/v1alpha1/namespaces/ns/sigmagrants/g"
            );
            let body = serde_json::to_vec(&grant(vec![row("member:c")])).unwrap();
            send.send_response(
                http::Response::builder()
                    .body(kube::client::Body::from(body))
                    .unwrap(),
            );
        });
        let seen = caught_up(&cx, &oref, expected).await.unwrap().unwrap();
        assert_eq!(status_rows(seen.as_ref()), vec![row("member:c")]);
        server.await.unwrap();
    }
}
