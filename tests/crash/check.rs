//! The invariants every crash test checks at the end of a run, and the report
//! of a failing run.
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
//!   [`REPLACED_WITHIN`], is the first half of such a change;
//! - no request changed the outsider's grant (everything is `Additive`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::model::*;
use crate::support::NS;
use crate::world::*;
use grant_operator::api::GROUP;

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

fn stored(world: &World, vendor: Vendor) -> BTreeMap<String, Value> {
    world
        .kube
        .list_json(GROUP, vendor.plural())
        .into_iter()
        .filter(|object| object["metadata"]["namespace"] == NS)
        .map(|object| {
            (
                object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                object,
            )
        })
        .collect()
}

/// `state grantee permission` of each status row.
fn rows(object: &Value) -> String {
    let rows: Vec<String> = object["status"]["grants"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    format!(
                        "{} {} {}",
                        row["state"].as_str().unwrap_or_default(),
                        row["grantee"].as_str().unwrap_or_default(),
                        row["permission"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        "(no rows)".into()
    } else {
        rows.join("; ")
    }
}

fn resources(world: &World, vendor: Vendor, violations: &mut Vec<Violation>) {
    let stored = stored(world, vendor);
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

/// Transitions of `vendor` that touched `key`, as call-log lines.
fn calls_touching(world: &World, vendor: Vendor, key: &str, atom: Option<&str>) -> Vec<String> {
    world
        .journal
        .transitions()
        .iter()
        .filter(|t| t.vendor == vendor)
        .filter(|t| {
            let before = t.before.get(key);
            let after = t.after.get(key);
            match atom {
                Some(atom) => {
                    before.is_some_and(|s| s.contains(atom))
                        != after.is_some_and(|s| s.contains(atom))
                }
                None => before != after,
            }
        })
        .map(|t| transition_line(world, t, key))
        .collect()
}

fn transition_line(world: &World, t: &Transition, key: &str) -> String {
    let show = |atoms: &Atoms| {
        atoms
            .get(key)
            .map(|set| set.iter().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "-".into())
    };
    // A request handled well after it arrived was held by a fault: it landed late.
    let late = if t.at.duration_since(t.arrived) > std::time::Duration::from_millis(100) {
        format!(
            " [sent at {}, landed late]",
            world.journal.ms(t.arrived).trim()
        )
    } else {
        String::new()
    };
    format!(
        "{} {} -> {} ({key}: {} => {}){late}",
        world.journal.ms(t.at),
        t.request,
        t.status,
        show(&t.before),
        show(&t.after)
    )
}

/// Who declared `key`/`atom` at some point: (resource, deleted since, still declares it).
fn declarers(world: &World, vendor: Vendor, key: &str, atom: &str) -> Vec<(String, bool, bool)> {
    let mut ever: BTreeSet<String> = BTreeSet::new();
    for change in world.journal.changes() {
        if change.vendor != vendor {
            continue;
        }
        if let Some(spec) = &change.spec
            && spec_atoms(vendor, spec)
                .get(key)
                .is_some_and(|set| set.contains(atom))
        {
            ever.insert(change.name.clone());
        }
    }
    ever.into_iter()
        .map(|name| {
            let declared = world.resources.get(&(vendor, name.clone()));
            let deleted = declared.is_some_and(|d| d.deleted);
            let now = declared.is_some_and(|d| {
                !d.deleted
                    && spec_atoms(vendor, &d.spec)
                        .get(key)
                        .is_some_and(|set| set.contains(atom))
            });
            (name, deleted, now)
        })
        .collect()
}

/// What the status writes of resource `name` recorded of `key`: whether the
/// operator ever remembered the grant (a grant never recorded is lost by a
/// crash between the vendor write and the status write; one recorded was
/// forgotten later).
fn recorded(world: &World, vendor: Vendor, name: &str, key: &str) -> String {
    let suffix = format!("/{}/{name}/status", vendor.plural());
    let writes: Vec<_> = world
        .kube
        .calls()
        .into_iter()
        .filter(|call| call.method == "PATCH" && call.path.ends_with(&suffix))
        .collect();
    let mut rows: Vec<String> = Vec::new();
    for call in &writes {
        let Some(grants) = call
            .body
            .as_ref()
            .and_then(|body| body["status"]["grants"].as_array())
        else {
            continue;
        };
        for row in grants {
            let grantee = row["grantee"].as_str().unwrap_or_default();
            if world.row_label(vendor, grantee) == key {
                // The fault runs answer 504 to writes they store and 500 or 409 to
                // writes they refuse (see `set_faults` in crash.rs).
                let outcome = match call.status {
                    200 => "stored".to_string(),
                    504 => "stored, answered 504".to_string(),
                    code => format!("not stored, answered {code}"),
                };
                let line = format!(
                    "{} {} ({outcome}) [{}]",
                    row["permission"].as_str().unwrap_or_default(),
                    row["state"].as_str().unwrap_or_default(),
                    row["message"].as_str().unwrap_or_default(),
                );
                if !rows.contains(&line) {
                    rows.push(line);
                }
            }
        }
    }
    if rows.is_empty() {
        format!(
            "{name}: none of its {} status writes recorded a row for {key}",
            writes.len()
        )
    } else {
        // Every API request about the resource (status and finalizer writes,
        // reads), numbered among all the API server received, to tell which
        // operator wrote what and when the finalizer went.
        let all = world.kube.calls();
        let object = format!("/{}/{name}", vendor.plural());
        let trail: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(_, call)| call.path.ends_with(&object) || call.path.ends_with(&suffix))
            .map(|(i, call)| {
                format!(
                    "API request {i}: {} {} -> {} {}",
                    call.method,
                    if call.path.ends_with(&suffix) {
                        "status"
                    } else {
                        "object"
                    },
                    call.status,
                    call.body
                        .as_ref()
                        .map(|b| b.to_string())
                        .unwrap_or_default()
                        .chars()
                        .take(600)
                        .collect::<String>()
                )
            })
            .collect();
        format!(
            "{name}: its status writes recorded {key} as: {}\n        its API requests (of {} in all):\n          {}",
            rows.join("; "),
            all.len(),
            trail.join("\n          ")
        )
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
    let stored = stored(world, vendor);
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

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "(nothing)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(",")
    }
}

/// Whether the removal of `key` (at level `was`) by `transitions[index]` is
/// the first half of a Grafana Legacy level change (see the module docs).
fn replaced(
    transitions: &[Transition],
    index: usize,
    vendor: Vendor,
    key: &str,
    was: usize,
) -> bool {
    let removal = &transitions[index];
    let Some(next) = transitions[index + 1..]
        .iter()
        .find(|t| t.before.get(key) != t.after.get(key))
    else {
        return false;
    };
    next.at.duration_since(removal.at) <= REPLACED_WITHIN
        && top(vendor, next.after.get(key)).is_some_and(|now| now >= was)
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
                                    && replaced(&all, index, vendor, key, was))
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

/// The report of a failing run: its title, how to replay it, `notes` (such
/// as the options of a random run), its kills with the requests before each,
/// the declaration changes and kills in time order, and the violations.
pub fn report(
    title: &str,
    replay: &str,
    world: &World,
    notes: &[String],
    violations: &[Violation],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== {title}");
    let _ = writeln!(out, "replay: {replay}");
    for note in notes {
        let _ = writeln!(out, "{note}");
    }
    if world.kills.is_empty() {
        let _ = writeln!(out, "kills: none");
    }
    for kill in &world.kills {
        let _ = writeln!(
            out,
            "kill at {} (when: {}) at {}",
            kill.step.show(),
            kill.when.name(),
            world.journal.ms(kill.step.at).trim()
        );
        for step in &kill.context {
            let _ = writeln!(out, "    after {}", step.show());
        }
    }
    let mut timeline: Vec<(std::time::Instant, String)> = world
        .journal
        .changes()
        .into_iter()
        .map(|change| {
            let what = match &change.spec {
                Some(spec) => format!(
                    "declare {} {} = {}",
                    change.vendor.name(),
                    change.name,
                    show_spec(change.vendor, spec)
                ),
                None => format!("delete {} {}", change.vendor.name(), change.name),
            };
            (change.before, what)
        })
        .chain(world.kills.iter().map(|kill| {
            (
                kill.step.at,
                format!("(operator killed at {})", kill.step.show()),
            )
        }))
        .collect();
    timeline.sort_by_key(|(at, _)| *at);
    let _ = writeln!(out, "declarations and kills, in time order:");
    for (at, what) in timeline {
        let _ = writeln!(out, "  {} {what}", world.journal.ms(at));
    }
    let _ = writeln!(out, "violations ({}):", violations.len());
    for violation in violations {
        let _ = writeln!(out, "  {}", violation.headline());
        for line in &violation.lines {
            let _ = writeln!(out, "      {line}");
        }
    }
    out
}
