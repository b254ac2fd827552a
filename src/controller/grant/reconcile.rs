//! The reconcile of one grant resource: the finalizer helper's apply and cleanup
//! steps, the requeue after a failure ([`error_policy`]), and the Ready
//! conditions written without a sync (suspended, first sync under way,
//! deletion waiting, an unreadable resource).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{DeletionPolicy, FINALIZER, GrantPolicy, ManagementPolicy, Reason};
use crate::controller::status::{patch_ready, ready, ready_of};
use crate::controller::units::{
    Freshness, MemberResult, SyncOutcome, UnitKey, Unreadable, Watched, key_of,
};
use crate::controller::{Context, Error, Failure, jitter};
use crate::sync;
use crate::vendor_api::GrantKind;

use super::tasks::request;
use super::{GrantContext, fingerprint, object_key, sync_interval, unit_of};

/// How long a queued resource waits before it asks again, should its wake-up be
/// lost (it is normally woken as soon as its sync ends).
const QUEUED_RECHECK: Duration = Duration::from_secs(60);

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
    cx.forget_fences(&unit.target, &providers);
    if providers.is_empty() {
        cx.aliases.forget(&unit.target);
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
