//! What a plan means for each member: the grants it is about to get (intents,
//! written before any vendor write) and, after the writes, its status rows, the
//! drift repaired and the failures.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;

use crate::api::{GrantState, ManagementPolicy, Mode};

use super::algebra::key_states;
use super::{
    Declaration, Failure, INTENT_MARK, Key, LiveGrant, Permission, Phase, Plan, REVOCATION_MARK,
    Report, Row, Unit, WATCH, WATCHED_MARK, Watch, close, maximal,
};

/// Per member, the declared `(key, permission)` pairs that `plan` is about to grant
/// or raise: what each member must record as its own (rows marked [`INTENT_MARK`])
/// before any vendor write. Every addition is declared by at least one active,
/// managed member, and each of them records it, so whichever of them is later
/// deleted or edited, the grant is remembered until no one declares it.
pub fn intents<P: Permission>(unit: &Unit<P>, plan: &Plan<P>) -> Vec<Vec<(Key, P)>> {
    let added: BTreeMap<&Key, BTreeSet<P>> = plan
        .actions
        .iter()
        .map(|action| (&action.key, action.added()))
        .filter(|(_, added)| !added.is_empty())
        .collect();
    unit.members
        .iter()
        .map(|member| {
            if !member.drives() {
                return Vec::new();
            }
            member
                .resolved()
                .filter(|(key, perm)| {
                    added
                        .get(key)
                        .is_some_and(|added| perm.closure().iter().any(|p| added.contains(p)))
                })
                .map(|(key, perm)| (key.clone(), perm.clone()))
                .collect()
        })
        .collect()
}

/// Reports, per member, the rows and drift of a sync: `plan` was made from
/// `unit.live`, `live_after` was read after applying it, and `failures` holds
/// the actions that failed, by key.
pub fn report<P: Permission>(
    unit: &Unit<P>,
    plan: &Plan<P>,
    live_after: &[LiveGrant<P>],
    failures: &BTreeMap<Key, Failure>,
    watch: Watch,
) -> Vec<Report<P>> {
    let now = watch.now;
    let keys = key_states(unit);
    let before = closed_by_key(&unit.live);
    let after = closed_by_key(live_after);
    let empty = BTreeSet::new();
    let scheduled: BTreeMap<&Key, BTreeSet<P>> = plan
        .actions
        .iter()
        .map(|action| (&action.key, action.removed()))
        .collect();

    unit.members
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let mut out = Report::default();
            if !member.phase.reported() {
                return out;
            }
            let observe = member.management == ManagementPolicy::Observe;
            let previously_applied: BTreeSet<(&Key, &P)> = member
                .previous
                .iter()
                .filter(|row| row.state == GrantState::Applied && !row.revocation)
                .map(|row| (&row.key, &row.perm))
                .collect();
            let mut failed_keys: BTreeSet<Key> = BTreeSet::new();
            // Writes of this member that may still land: (key, permission) -> until.
            let watched: BTreeMap<(&Key, &P), Timestamp> = member
                .previous
                .iter()
                .filter_map(|row| {
                    let until = match (row.until, row.intent) {
                        (Some(until), _) => until,
                        (None, true) => watch.unknown_until,
                        (None, false) => return None,
                    };
                    (until > now).then_some(((&row.key, &row.perm), until))
                })
                .collect();

            if member.phase == Phase::Active {
                for decl in &member.declarations {
                    match decl {
                        Declaration::Unresolved {
                            label,
                            perm,
                            message,
                        } => out.rows.push(Row {
                            grantee: label.clone(),
                            resolved: false,
                            perm: perm.clone(),
                            vendor_id: None,
                            state: GrantState::Failed,
                            message: message.clone(),
                        }),
                        Declaration::Resolved { key, perm } => {
                            let live = after.get(key).unwrap_or(&empty);
                            let covered = live.contains(perm);
                            let failure = failures.get(key);
                            let (state, message) = if observe {
                                if covered {
                                    (GrantState::Applied, String::new())
                                } else {
                                    (GrantState::Drifted, drift_message(perm, live))
                                }
                            } else if let Some(failure) = failure
                                && !covered
                            {
                                // A failed write at the key does not fail a grant that is live
                                // anyway (only part of a set failed, or a raise above it).
                                failed_keys.insert(key.clone());
                                (GrantState::Failed, failure.message.clone())
                            } else if covered {
                                (GrantState::Applied, String::new())
                            } else if let Some(until) = watched.get(&(key, perm)) {
                                // Recorded before a write that may still land: still ours.
                                (
                                    GrantState::Pending,
                                    format!(
                                        "{INTENT_MARK}: not live yet; a write sent earlier may still land, so it counts as this resource's {WATCH} {until}"
                                    ),
                                )
                            } else {
                                (
                                    GrantState::Pending,
                                    "not live yet; checked again at the next sync".to_string(),
                                )
                            };
                            let was_covered = before.get(key).is_some_and(|set| set.contains(perm));
                            if !observe
                                && covered
                                && !was_covered
                                && previously_applied.contains(&(key, perm))
                            {
                                out.drift_repaired += 1;
                            }
                            out.rows.push(Row {
                                grantee: key.clone(),
                                resolved: true,
                                perm: perm.clone(),
                                vendor_id: vendor_id_for(live_after, key, perm),
                                state,
                                message,
                            });
                        }
                    }
                }
            }

            // Grants this member owned and no longer declares: remember those whose
            // revocation was planned and has not happened, or that wait for its
            // unresolved names.
            if !observe {
                let declared = member.declared_by_key();
                let frozen = member.phase == Phase::Active && member.has_unresolved();
                for (key, owned) in member.owned_by_key() {
                    let declared_here = declared.get(&key).unwrap_or(&empty);
                    let live = after.get(&key).unwrap_or(&empty);
                    let state = keys.get(&key);
                    let removal = scheduled.get(&key).unwrap_or(&empty);
                    let pending: BTreeSet<P> = owned
                        .iter()
                        .filter(|perm| !declared_here.contains(*perm) && live.contains(*perm))
                        .filter(|perm| {
                            let kept_elsewhere =
                                state.is_some_and(|state| state.kept_by_others(index, perm));
                            removal.contains(*perm) || (frozen && !kept_elsewhere)
                        })
                        .cloned()
                        .collect();
                    // Not live, but a write of it may still land: watched, so that it
                    // is revoked if it does.
                    for (row_key, perm) in watched.keys() {
                        if *row_key == &key
                            && !declared_here.contains(*perm)
                            && !live.contains(*perm)
                            && let Some(until) = watched.get(&(row_key, perm))
                        {
                            out.rows.push(Row {
                                grantee: key.clone(),
                                resolved: true,
                                perm: (*perm).clone(),
                                vendor_id: None,
                                state: GrantState::Pending,
                                message: format!(
                                    "{WATCHED_MARK}: a write sent earlier may still be carried out; watched {WATCH} {until}"
                                ),
                            });
                        }
                    }
                    for perm in maximal(&close(&pending)) {
                        let (row_state, message) = match failures.get(&key) {
                            Some(failure) => {
                                failed_keys.insert(key.clone());
                                (
                                    GrantState::Failed,
                                    format!("{REVOCATION_MARK} failed: {}", failure.message),
                                )
                            }
                            None if frozen && !removal.contains(&perm) => (
                                GrantState::Pending,
                                format!(
                                    "{REVOCATION_MARK} held back until every grantee of this resource resolves"
                                ),
                            ),
                            None => (
                                GrantState::Pending,
                                format!("{REVOCATION_MARK} pending; retried at the next sync"),
                            ),
                        };
                        out.rows.push(Row {
                            grantee: key.clone(),
                            resolved: true,
                            vendor_id: vendor_id_for(live_after, &key, &perm),
                            perm,
                            state: row_state,
                            message,
                        });
                    }
                }
            }

            // Authoritative members: grants in scope no resource declares.
            if member.phase == Phase::Active && member.mode == Mode::Authoritative {
                let in_scope = |key: &Key| {
                    member
                        .authoritative_keys
                        .as_ref()
                        .is_none_or(|keys| keys.contains(key))
                };
                if observe {
                    out.undeclared = keys
                        .iter()
                        .filter(|(key, _)| in_scope(key))
                        .filter(|(_, state)| {
                            let kept = state.kept();
                            state.live.iter().any(|perm| !kept.contains(perm))
                        })
                        .count();
                } else if member.was_synced {
                    out.drift_repaired += plan
                        .actions
                        .iter()
                        .filter(|action| in_scope(&action.key) && !failures.contains_key(&action.key))
                        .filter(|action| {
                            let state = keys.get(&action.key);
                            action.removed().iter().any(|perm| {
                                state.is_some_and(|state| !state.owned.contains(perm))
                            })
                        })
                        .count() as i64;
                }
            }

            out.failures = failed_keys
                .into_iter()
                .filter_map(|key| failures.get(&key).cloned())
                .collect();
            out
        })
        .collect()
}

fn closed_by_key<P: Permission>(live: &[LiveGrant<P>]) -> BTreeMap<Key, BTreeSet<P>> {
    let mut out: BTreeMap<Key, BTreeSet<P>> = BTreeMap::new();
    for grant in live {
        out.entry(grant.key.clone())
            .or_default()
            .extend(grant.perm.closure());
    }
    out
}

/// The id of the live grant at `key` that includes `perm` (the highest such grant).
fn vendor_id_for<P: Permission>(live: &[LiveGrant<P>], key: &Key, perm: &P) -> Option<String> {
    live.iter()
        .filter(|grant| &grant.key == key && grant.perm.closure().contains(perm))
        .max_by(|a, b| a.perm.cmp(&b.perm))
        .and_then(|grant| grant.vendor_id.clone())
}

fn drift_message<P: Permission>(declared: &P, live: &BTreeSet<P>) -> String {
    let top = maximal(live);
    if top.is_empty() {
        format!("declared {declared}, not granted on the vendor")
    } else {
        let live: Vec<String> = top.iter().map(ToString::to_string).collect();
        format!("declared {declared}, live {}", live.join(", "))
    }
}
