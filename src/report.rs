//! The status and Event text of a sync, made from its result: each member's
//! rows (with names beside ids), its Ready condition (reason and message) and
//! its Events. Pure: the controller writes what it makes, the command line
//! (`apply`, `demo`) prints it.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{GrantRow, GrantState, GrantStatus, ManagementPolicy, Reason};
use crate::controller::Failure;
use crate::controller::status::{list_some, ready, ready_of};
use crate::names::{self, Names};
use crate::plan::{self, Declaration, INTENT_MARK, Key, Phase, REVOCATION_MARK};
use crate::sync::{self, PermOf};
use crate::vendor_api::{GrantKind, ResolvedTarget};

/// Events of one member after a sync: `(warning, reason, note)`.
pub type Events = Vec<(bool, &'static str, String)>;

/// What a sync's writes came to, for the status of its members.
pub struct Writes<'a, P> {
    /// The plan carried out.
    pub plan: &'a plan::Plan<P>,
    /// Failed actions by key.
    pub failures: &'a BTreeMap<Key, plan::Failure>,
    /// Keys whose write may have landed unseen.
    pub uncertain: &'a BTreeSet<Key>,
    /// Whether the target was read back after the writes (or nothing was written).
    pub confirmed: bool,
    /// Until when a write of this sync may still land (see [`plan::WATCH`]).
    pub intent_until: Timestamp,
    /// Names of keys for people (rows and Events show them beside the ids).
    pub names: &'a Names,
}

#[allow(clippy::too_many_arguments)]
/// The status, result and Events of one member after a sync (also what the
/// `apply` command prints).
pub fn member_status<K: GrantKind>(
    object: &K,
    phase: Phase,
    input: &plan::Member<PermOf<K>>,
    report: &plan::Report<PermOf<K>>,
    writes: &Writes<'_, PermOf<K>>,
    target: &ResolvedTarget,
    started: Timestamp,
    now: Timestamp,
) -> (GrantStatus, Result<(), Failure>, Events) {
    let previous = object.status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let observe = input.management == ManagementPolicy::Observe;

    let rows: Vec<GrantRow> = report
        .rows
        .iter()
        .map(|row| {
            let (grantee, permission) = K::row(&row.grantee, &row.perm);
            // A write that may have landed unseen stays owned (an intent) rather
            // than failed: a failed row would forget it.
            let in_doubt = row.resolved
                && row.state == GrantState::Failed
                && !row.message.starts_with(REVOCATION_MARK)
                && writes.uncertain.contains(&row.grantee);
            let (state, message) = if in_doubt {
                (
                    GrantState::Pending,
                    format!(
                        "{INTENT_MARK}: not confirmed ({}); counted as this resource's {} {}",
                        row.message,
                        plan::WATCH,
                        writes.intent_until
                    ),
                )
            } else {
                (row.state, row.message.clone())
            };
            GrantRow {
                name: row
                    .resolved
                    .then(|| writes.names.get(&row.grantee).cloned())
                    .flatten(),
                grantee,
                permission,
                vendor_id: row.vendor_id.clone(),
                state,
                message,
            }
        })
        .collect();
    let declared = rows
        .iter()
        .filter(|row| !row.message.starts_with(REVOCATION_MARK))
        .count();
    let applied = rows
        .iter()
        .filter(|row| row.state == GrantState::Applied)
        .count();
    let watched = rows
        .iter()
        .filter(|row| row.message.starts_with(plan::WATCHED_MARK))
        .count();
    let pending_revocations = rows
        .iter()
        .filter(|row| row.message.starts_with(REVOCATION_MARK))
        .count()
        - watched;
    let unresolved: Vec<String> = report
        .rows
        .iter()
        .filter(|row| !row.resolved)
        .map(|row| row.grantee.clone())
        .collect();
    let failure = report
        .failures
        .iter()
        .find(|failure| failure.reason != Reason::GranteeNotFound)
        .or(report.failures.first());

    let (status, reason, message) = match phase {
        Phase::Deleting => match failure {
            None if rows.is_empty() => (
                "False",
                Reason::Deleting,
                "grants revoked; removing the finalizer".to_string(),
            ),
            None => (
                "False",
                Reason::Deleting,
                format!("{} grants still to revoke; retrying", rows.len()),
            ),
            Some(failure) => (
                "False",
                Reason::Deleting,
                format!(
                    "revoking {} grants failed: {}; set spec.deletionPolicy to Orphan to keep them and release the resource",
                    rows.len(),
                    failure.message
                ),
            ),
        },
        Phase::Expired => {
            let at = object
                .policy()
                .expires_at
                .as_ref()
                .map(|at| at.0.to_string())
                .unwrap_or_default();
            match failure {
                None if rows.is_empty() => (
                    "False",
                    Reason::Expired,
                    format!("expired at {at}; its grants are revoked"),
                ),
                None => (
                    "False",
                    Reason::Expired,
                    format!("expired at {at}; {} grants still to revoke", rows.len()),
                ),
                Some(failure) => (
                    "False",
                    failure.reason,
                    format!(
                        "expired at {at}; revoking {} grants failed: {}",
                        rows.len(),
                        failure.message
                    ),
                ),
            }
        }
        _ if observe => {
            let drifted: Vec<String> = rows
                .iter()
                .filter(|row| row.state == GrantState::Drifted)
                .map(|row| format!("{} ({})", row.grantee, row.message))
                .collect();
            if !unresolved.is_empty() {
                (
                    "False",
                    Reason::GranteeNotFound,
                    format!("not found: {}", list_some(&unresolved, 5)),
                )
            } else if drifted.is_empty() && report.undeclared == 0 {
                (
                    "True",
                    Reason::Synced,
                    format!("{applied} of {declared} grants match the live state"),
                )
            } else {
                let mut message = format!(
                    "{} of {declared} grants differ from the live state",
                    drifted.len()
                );
                if !drifted.is_empty() {
                    message.push_str(&format!(": {}", list_some(&drifted, 3)));
                }
                if report.undeclared > 0 {
                    message.push_str(&format!(
                        "; {} grantees hold grants no resource declares (Authoritative would revoke them)",
                        report.undeclared
                    ));
                }
                ("False", Reason::DriftDetected, message)
            }
        }
        _ => {
            if let Some(failure) =
                failure.filter(|failure| failure.reason != Reason::GranteeNotFound)
            {
                (
                    "False",
                    failure.reason,
                    format!(
                        "{applied} of {declared} grants applied; {}",
                        failure.message
                    ),
                )
            } else if !unresolved.is_empty() {
                (
                    "False",
                    Reason::GranteeNotFound,
                    format!(
                        "{applied} of {declared} grants applied; not found on {}: {}",
                        K::VENDOR,
                        list_some(&unresolved, 5)
                    ),
                )
            } else if applied == declared && pending_revocations == 0 {
                let mut message = if declared == 0 {
                    "no grants declared".to_string()
                } else {
                    format!("{applied} of {declared} grants applied")
                };
                if watched > 0 {
                    message.push_str(&format!(
                        "; {watched} earlier writes that may still land are watched and revoked if they do"
                    ));
                }
                ("True", Reason::Synced, message)
            } else {
                (
                    "Unknown",
                    Reason::Progressing,
                    format!(
                        "{applied} of {declared} grants applied; the rest is checked again at the next sync"
                    ),
                )
            }
        }
    };

    let condition = ready(
        &previous.conditions,
        status,
        reason,
        &message,
        generation,
        now,
    );
    let next = GrantStatus {
        observed_generation: generation,
        conditions: vec![condition.clone()],
        target: Some(object.target_status(&target.status)),
        grants: rows,
        last_sync_time: Some(Time(started)),
        drift_corrections: previous.drift_corrections + report.drift_repaired,
    };

    let done = match phase {
        // The finalizer goes on this: only when a read after the writes showed
        // nothing owned is left.
        Phase::Deleting | Phase::Expired => {
            failure.is_none() && next.grants.is_empty() && writes.confirmed
        }
        _ => status == "True" || reason == Reason::DriftDetected,
    };
    let result = if done {
        Ok(())
    } else {
        Err(Failure {
            reason,
            message: message.clone(),
            retry_after: failure.and_then(|failure| failure.retry_after),
        })
    };

    let events = member_events::<K>(
        object,
        input,
        writes,
        &previous,
        &condition,
        report.drift_repaired,
    );
    (next, result, events)
}

fn member_events<K: GrantKind>(
    object: &K,
    input: &plan::Member<PermOf<K>>,
    writes: &Writes<'_, PermOf<K>>,
    previous: &GrantStatus,
    condition: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
    drift_repaired: i64,
) -> Events {
    let (plan, failures, names) = (writes.plan, writes.failures, writes.names);
    let mut events = Events::new();
    let declared: HashSet<&Key> = input
        .declarations
        .iter()
        .filter_map(|decl| match decl {
            Declaration::Resolved { key, .. } => Some(key),
            Declaration::Unresolved { .. } => None,
        })
        .collect();
    let owned: HashSet<Key> = sync::owned_rows::<K>(object, Some(&previous.grants))
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let mut granted = Vec::new();
    let mut revoked = Vec::new();
    if input.management == ManagementPolicy::Manage {
        for action in plan
            .actions
            .iter()
            .filter(|action| !failures.contains_key(&action.key))
        {
            let added = action.added();
            let removed = action.removed();
            if !added.is_empty() && declared.contains(&action.key) {
                let top: Vec<String> = plan::maximal(&action.target)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                granted.push(format!(
                    "{} {}",
                    names::shown(&action.key, names),
                    top.join("+")
                ));
            }
            if !removed.is_empty() && owned.contains(&action.key) {
                let gone: Vec<String> = plan::maximal(&removed)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                revoked.push(format!(
                    "{} {}",
                    names::shown(&action.key, names),
                    gone.join("+")
                ));
            }
        }
    }
    if !granted.is_empty() {
        events.push((
            false,
            "Granted",
            format!("granted {}", list_some(&granted, 10)),
        ));
    }
    if !revoked.is_empty() {
        events.push((
            false,
            "Revoked",
            format!("revoked {}", list_some(&revoked, 10)),
        ));
    }
    if drift_repaired > 0 {
        events.push((
            false,
            "DriftRepaired",
            format!("repaired {drift_repaired} grants changed outside the operator"),
        ));
    }
    let before = ready_of(&previous.conditions);
    let changed = before.is_none_or(|before| {
        before.reason != condition.reason || before.message != condition.message
    });
    if condition.status != "True" && changed && condition.reason != Reason::Progressing.as_str() {
        let warning = condition.reason != Reason::Expired.as_str()
            && condition.reason != Reason::DriftDetected.as_str();
        let reason = reason_str(&condition.reason);
        events.push((warning, reason, condition.message.clone()));
    }
    events
}

/// The static reason string of a condition reason (`Failed` for none of the contract's).
pub fn reason_str(reason: &str) -> &'static str {
    Reason::named(reason).map_or("Failed", Reason::as_str)
}
