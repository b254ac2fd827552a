//! One sync of a unit, for every member at once: the provider (exists, right
//! vendor, Ready), scoping per member, the write fence, then `sync::run` (resolve,
//! read, plan, record intents, carry out, read back) and the status writes.
//! A failure before the plan changes no grant and keeps every status row.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use tracing::{debug, warn};

use crate::api::Reason;
use crate::controller::Failure;
use crate::controller::clients::Provider;
use crate::controller::status::list_some;
use crate::controller::units::{MemberResult, SyncOutcome, UnitKey, rows_hash};
use crate::names::Names;
use crate::plan::{Key, Permission, Phase};
use crate::sync::{MemberInput, PermOf};
use crate::vendor_api::{GrantKind, ResolvedTarget, Vendor};
use crate::{plan, sync};

use super::GrantContext;
use super::members::{Gathered, Member, foreign_holdings, gather, with_aliases, work_in_progress};
use super::write::{fail, fail_reported, finish, write_status};

/// Runs sync `seq` of `unit` for every member at once; the outcome answers
/// the reconciles that asked for it.
pub(super) async fn sync_unit<K: GrantKind>(
    cx: Arc<GrantContext<K>>,
    unit: UnitKey,
    seq: u64,
) -> SyncOutcome<K> {
    let context = cx.shared.clone();
    let started = context.clock.now();
    cx.units.began(&unit, seq, started);
    let previous = cx.units.last(&unit);
    let mut outcome = SyncOutcome::new(seq, started);

    let Gathered {
        mut members,
        neighbours,
        unreadable,
        stale,
        providers,
    } = gather(&cx, &unit, previous.as_deref(), started).await;
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
        fail_reported(&cx, &mut outcome, &members, &failure).await;
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
        fail_reported(&cx, &mut outcome, &members, &failure).await;
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
            fail_reported(&cx, &mut outcome, &members, &failure).await;
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
        let cause = format!("an earlier write to {} got no answer and", K::VENDOR);
        fail_reported(&cx, &mut outcome, &members, &fence_failure(&cause, left)).await;
        return outcome;
    }
    // A previous operator's writes may still land where it had work in progress.
    // Checked once per unit, at its first sync in the start-up window.
    let inherited = after_start(&context, &provider, started).filter(|_| cx.first_check(&unit));
    if let Some(left) = inherited
        && members
            .iter()
            .any(|member| work_in_progress(member, context.leading_since))
    {
        cx.fence(&unit, left);
        let cause = format!(
            "grant-operator restarted while work on this target was in progress: a write the previous process sent to {}",
            K::VENDOR
        );
        fail_reported(&cx, &mut outcome, &members, &fence_failure(&cause, left)).await;
        return outcome;
    }
    match read_plan_apply(&cx, &unit, &provider, &mut members, &neighbours, started).await {
        Ok(result) => finish(&cx, &mut outcome, &members, result, started).await,
        Err(failure) => {
            if failure.reason == Reason::Unauthorized {
                // Let the provider find out too, so every grant waits on it instead of failing alone.
                let _ = context.recheck.try_send(unit.provider.clone());
            }
            fail_reported(&cx, &mut outcome, &members, &failure).await;
        }
    }
    outcome
}

/// The failure of a sync held by a write fence: `cause` names the write that
/// may still land, `left` how long the fence lasts.
fn fence_failure(cause: &str, left: std::time::Duration) -> Failure {
    Failure {
        reason: Reason::VendorUnavailable,
        message: format!(
            "{cause} may still be carried out; no new write, and no revocation confirmed, for {}s",
            left.as_secs().max(1)
        ),
        retry_after: Some(left),
    }
}

/// How much longer, at `started`, a write sent by the process that led before
/// this one may still be carried out: twice the provider's request timeout
/// after this one started leading. `None` once that has passed.
fn after_start(
    context: &crate::controller::Context,
    provider: &Provider,
    started: Timestamp,
) -> Option<std::time::Duration> {
    let until = context
        .leading_since
        .saturating_add(SignedDuration::try_from(2 * provider.request_timeout()).ok()?)
        .ok()?;
    (started < until)
        .then(|| std::time::Duration::try_from(until.duration_since(started)).ok())
        .flatten()
}

/// What a sync learned, for `finish`.
pub(super) struct Synced<P: Permission> {
    pub(super) target: ResolvedTarget,
    pub(super) input: plan::Unit<P>,
    pub(super) plan: plan::Plan<P>,
    pub(super) reports: Vec<plan::Report<P>>,
    pub(super) failures: BTreeMap<Key, plan::Failure>,
    /// Keys whose write may have landed unseen (see [`sync::Carried::uncertain`]).
    pub(super) uncertain: BTreeSet<Key>,
    /// Whether the target was read back after the writes (or nothing was written).
    pub(super) confirmed: bool,
    /// Until when this sync's writes may still land.
    pub(super) intent_until: Timestamp,
    pub(super) unmanaged: usize,
    pub(super) names: Names,
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
