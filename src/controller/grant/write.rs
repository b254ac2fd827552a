//! How a sync ends for each member: its status (rows, Ready condition,
//! `lastSyncTime`) written, its Events published, and its result kept for the
//! reconciles the sync answers. Also the status write itself, which counts a
//! resource's first time Ready.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::jiff::Timestamp;
use tracing::debug;

use crate::api::{GrantState, GrantStatus, Reason};
use crate::controller::Failure;
use crate::controller::status::{apply_status, ready, ready_of};
use crate::controller::units::{MemberResult, SyncOutcome, rows_hash};
use crate::plan::Phase;
use crate::report::{Writes, member_status, reason_str};
use crate::sync::PermOf;
use crate::vendor_api::GrantKind;

use super::members::Member;
use super::pipeline::Synced;
use super::{GrantContext, sync_interval};

/// Status, Events and results of a sync that got as far as the plan.
pub(super) async fn finish<K: GrantKind>(
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
pub(super) fn keep_last_sync_time<K: GrantKind>(
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

/// Reports a failure that happened before the plan for every member the sync
/// reports on (see [`fail`]).
pub(super) async fn fail_reported<K: GrantKind>(
    cx: &Arc<GrantContext<K>>,
    outcome: &mut SyncOutcome<K>,
    members: &[Member<K>],
    failure: &Failure,
) {
    for member in members.iter().filter(|member| member.phase.reported()) {
        fail(cx, outcome, member, failure).await;
    }
}

/// Reports a failure that happened before the plan: rows and target are kept.
pub(super) async fn fail<K: GrantKind>(
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

pub(super) async fn write_status<K: GrantKind>(
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
