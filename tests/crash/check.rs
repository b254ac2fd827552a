//! The invariants every crash test checks at the end of a run (the text
//! that shows a broken one is `report.rs`).
//!
//! At the end (the operator left to converge without kills or faults):
//! - every surviving resource is Ready/Synced at its generation, and every
//!   deleted one is gone (no finalizer stuck);
//! - each vendor holds exactly the union of the surviving declarations, plus
//!   the outsider's grant as it was seeded; an extra grant is named for what
//!   it is (a deleted resource's exclusive grant, a grant removed from a
//!   spec, or one nobody declared);
//! - nothing is duplicated (two grants or entries for one grantee);
//!
//! and over the whole run, from the journal of vendor transitions:
//! - no request revoked or lowered a grant some resource declared at that
//!   moment (on Sigma and Grafana, where a grant is one level: no grant was
//!   revoked or lowered whose level was declared; on Snowflake and Dremio: no
//!   declared privilege disappeared, whether by a revoke or by a Dremio PUT of
//!   a list without it). One exception: Grafana's Legacy API has no update
//!   call and refuses a second entry for a grantee, so it changes a level by
//!   removing the entry and adding it again; a removal that the next change of
//!   that grantee undoes, with a level at least as high and within
//!   [`REPLACED_WITHIN`], is the first half of such a change, and so is the
//!   removal that begins a raise when the grantee is declared no more before
//!   the second half is made;
//! - no request changed the outsider's grant (everything is `Additive`).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::model::*;
use crate::report::{calls_touching, declarers, join, recorded, rows, transition_line};
use crate::world::*;

/// How soon a Grafana Legacy removal must be followed by the addition that
/// completes a level change (a kill between the two is followed by a restart
/// well within it).
pub const REPLACED_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    pub vendor: Option<Vendor>,
    pub what: String,
    /// Call-log lines and state that show it.
    pub lines: Vec<String>,
}

impl Violation {
    fn new(vendor: Option<Vendor>, what: impl Into<String>, lines: Vec<String>) -> Violation {
        Violation {
            vendor,
            what: what.into(),
            lines,
        }
    }

    /// A short name for summaries.
    pub fn headline(&self) -> String {
        format!(
            "[{}] {}",
            self.vendor.map(Vendor::name).unwrap_or("harness"),
            self.what
        )
    }
}

/// Every invariant, checked on the world as it is now.
pub fn check(world: &World) -> Vec<Violation> {
    world.journal.assert_single_intervals();
    let mut violations: Vec<Violation> = world
        .harness_problems
        .iter()
        .map(|problem| Violation::new(None, problem.clone(), Vec::new()))
        .collect();
    for vendor in world.options.vendors.clone() {
        resources(world, vendor, &mut violations);
        end_state(world, vendor, &mut violations);
        transitions(world, vendor, &mut violations);
    }
    violations
}

fn resources(world: &World, vendor: Vendor, violations: &mut Vec<Violation>) {
    let stored = world.stored(vendor);
    for ((v, name), declared) in &world.resources {
        if *v != vendor {
            continue;
        }
        let object = stored.get(name);
        if declared.deleted {
            if let Some(object) = object {
                violations.push(Violation::new(
                    Some(vendor),
                    format!("finalizer stuck: {name} was deleted and is still there"),
                    vec![
                        format!("finalizers: {}", object["metadata"]["finalizers"]),
                        format!("Ready: {}", ready_summary(object)),
                        format!("rows: {}", rows(object)),
                    ],
                ));
            }
            continue;
        }
        let Some(object) = object else {
            violations.push(Violation::new(
                Some(vendor),
                format!("{name} is gone though it was never deleted"),
                Vec::new(),
            ));
            continue;
        };
        let generation = object["metadata"]["generation"].as_i64();
        let ready = object["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
        let synced = ready.is_some_and(|ready| {
            ready["status"] == "True"
                && ready["reason"] == "Synced"
                && ready["observedGeneration"].as_i64() == generation
        }) && object["status"]["observedGeneration"].as_i64() == generation;
        if !synced {
            violations.push(Violation::new(
                Some(vendor),
                format!(
                    "{name} is not Ready/Synced at generation {}",
                    generation.unwrap_or_default()
                ),
                vec![
                    format!("Ready: {}", ready_summary(object)),
                    format!(
                        "status.observedGeneration: {}",
                        object["status"]["observedGeneration"]
                    ),
                    format!("rows: {}", rows(object)),
                ],
            ));
        }
    }
}

fn end_state(world: &World, vendor: Vendor, violations: &mut Vec<Violation>) {
    let live = world.live(vendor);
    for duplicate in &live.duplicates {
        violations.push(Violation::new(
            Some(vendor),
            format!("duplicated: {duplicate}"),
            Vec::new(),
        ));
    }
    let expected = world.expected(vendor);
    let stored = world.stored(vendor);
    let (outsider_key, _) = outsider(vendor);
    let empty = BTreeSet::new();
    let keys: BTreeSet<&String> = live.atoms.keys().chain(expected.keys()).collect();
    for key in keys {
        let held = live.atoms.get(key).unwrap_or(&empty);
        let wanted = expected.get(key).unwrap_or(&empty);
        if key == outsider_key {
            if held != wanted {
                violations.push(Violation::new(
                    Some(vendor),
                    format!(
                        "the grant nobody declares ({key}) changed: {} instead of {}",
                        join(held),
                        join(wanted)
                    ),
                    calls_touching(world, vendor, key, None),
                ));
            }
            continue;
        }
        for atom in held.difference(wanted) {
            let who = declarers(world, vendor, key, atom);
            let deleted: Vec<&str> = who
                .iter()
                .filter(|(_, deleted, _)| *deleted)
                .map(|(n, _, _)| n.as_str())
                .collect();
            let removed: Vec<&str> = who
                .iter()
                .filter(|(_, deleted, now)| !deleted && !now)
                .map(|(n, _, _)| n.as_str())
                .collect();
            let what = if !deleted.is_empty() {
                format!(
                    "exclusive grant of deleted {} is live: {key} {atom}",
                    deleted.join(", ")
                )
            } else if !removed.is_empty() {
                format!(
                    "grant removed from the spec of {} is live: {key} {atom}",
                    removed.join(", ")
                )
            } else {
                format!("grant nobody declared is live: {key} {atom}")
            };
            let mut lines = vec![format!(
                "vendor holds {}; declarations are {}",
                show(&live.atoms),
                show(&expected)
            )];
            for name in &removed {
                if let Some(object) = stored.get(*name) {
                    lines.push(format!(
                        "{name}: Ready {}; rows: {}",
                        ready_summary(object),
                        rows(object)
                    ));
                }
            }
            for name in deleted.iter().chain(&removed) {
                lines.push(recorded(world, vendor, name, key));
            }
            lines.push("vendor calls that granted or revoked it:".into());
            lines.extend(calls_touching(world, vendor, key, Some(atom)));
            violations.push(Violation::new(Some(vendor), what, lines));
        }
        for atom in wanted.difference(held) {
            let mut lines = vec![format!(
                "vendor holds {}; declarations are {}",
                show(&live.atoms),
                show(&expected)
            )];
            lines.push("vendor calls that granted or revoked it:".into());
            lines.extend(calls_touching(world, vendor, key, Some(atom)));
            violations.push(Violation::new(
                Some(vendor),
                format!("declared grant is not live: {key} {atom}"),
                lines,
            ));
        }
    }
}

/// Whether the removal of `key` (at level `was`) by `transitions[index]` is
/// the first half of a Grafana Legacy level change (see the module docs): the
/// entry comes back at `was` or higher within [`REPLACED_WITHIN`], or the
/// change was a raise whose second half stopped being wanted, the key being
/// declared no more, before that (a kill between the two halves, and the
/// resource deleted while the operator was down).
fn replaced(
    world: &World,
    transitions: &[Transition],
    index: usize,
    vendor: Vendor,
    key: &str,
    was: usize,
) -> bool {
    let removal = &transitions[index];
    let next = transitions[index + 1..]
        .iter()
        .find(|t| t.before.get(key) != t.after.get(key));
    let within = |at: Instant| at.duration_since(removal.at) <= REPLACED_WITHIN;
    if let Some(next) = next
        && within(next.at)
        && top(vendor, next.after.get(key)).is_some_and(|now| now >= was)
    {
        return true;
    }
    let declared = |at: Instant| top(vendor, world.journal.declared_at(vendor, at).get(key));
    let until = next.map(|next| next.at);
    declared(removal.at).is_some_and(|wanted| wanted > was)
        && world.journal.changes().iter().any(|change| {
            change.vendor == vendor
                && change.after > removal.at
                && within(change.after)
                && until.is_none_or(|until| change.after <= until)
                && declared(change.after).is_none()
        })
}

fn transitions(world: &World, vendor: Vendor, violations: &mut Vec<Violation>) {
    let (outsider_key, _) = outsider(vendor);
    let empty = BTreeSet::new();
    let legacy = vendor == Vendor::Grafana
        && world.options.grafana_api == grant_operator::api::GrafanaPermissionsApi::Legacy;
    let all: Vec<Transition> = world
        .journal
        .transitions()
        .into_iter()
        .filter(|t| t.vendor == vendor)
        .collect();
    for (index, t) in all.iter().enumerate() {
        let declared = world.journal.declared_at(vendor, t.at);
        let keys: BTreeSet<&String> = t.before.keys().chain(t.after.keys()).collect();
        for key in keys {
            let before = t.before.get(key).unwrap_or(&empty);
            let after = t.after.get(key).unwrap_or(&empty);
            if before == after {
                continue;
            }
            if key == outsider_key {
                violations.push(Violation::new(
                    Some(vendor),
                    format!("a request changed the grant nobody declares ({key})"),
                    vec![transition_line(world, t, key)],
                ));
                continue;
            }
            let wanted = declared.get(key).unwrap_or(&empty);
            let wrong: Vec<String> = match vendor.ladder() {
                Some(ladder) => {
                    let was = top(vendor, Some(before));
                    let now = top(vendor, Some(after));
                    match was {
                        Some(was) if now.is_none_or(|now| now < was) => {
                            let level = ladder[was];
                            if wanted.contains(level)
                                && !(legacy
                                    && now.is_none()
                                    && replaced(world, &all, index, vendor, key, was))
                            {
                                vec![level.to_string()]
                            } else {
                                Vec::new()
                            }
                        }
                        _ => Vec::new(),
                    }
                }
                None => before
                    .difference(after)
                    .filter(|atom| wanted.contains(*atom))
                    .cloned()
                    .collect(),
            };
            if wrong.is_empty() {
                continue;
            }
            let verb = if after.is_empty() {
                "revoked"
            } else {
                "lowered"
            };
            let declarers: Vec<String> = world
                .journal
                .declared_by_at(vendor, t.at)
                .into_iter()
                .filter(|(_, atoms)| {
                    atoms
                        .get(key)
                        .is_some_and(|set| wrong.iter().any(|atom| set.contains(atom)))
                })
                .map(|(name, _)| name)
                .collect();
            violations.push(Violation::new(
                Some(vendor),
                format!(
                    "a request {verb} {key} {} while it was declared",
                    wrong.join(",")
                ),
                vec![
                    transition_line(world, t, key),
                    format!(
                        "declared at that moment: {key}={} (by {})",
                        join(wanted),
                        declarers.join(", ")
                    ),
                    format!(
                        "request arrived at {}, handled at {}",
                        world.journal.ms(t.arrived),
                        world.journal.ms(t.at)
                    ),
                ],
            ));
        }
    }
}
