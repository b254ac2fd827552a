//! The text of a failing run: the report (title, replay command, kills,
//! declarations and kills in time order, violations) and the evidence lines
//! a violation carries (status rows, the vendor calls that touched a grant,
//! what the status writes recorded of it, who declared it).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::check::Violation;
use crate::model::*;
use crate::world::*;

/// `state grantee permission` of each status row.
pub fn rows(object: &Value) -> String {
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

/// Transitions of `vendor` that touched `key`, as call-log lines.
pub fn calls_touching(world: &World, vendor: Vendor, key: &str, atom: Option<&str>) -> Vec<String> {
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

pub fn transition_line(world: &World, t: &Transition, key: &str) -> String {
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
pub fn declarers(
    world: &World,
    vendor: Vendor,
    key: &str,
    atom: &str,
) -> Vec<(String, bool, bool)> {
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
pub fn recorded(world: &World, vendor: Vendor, name: &str, key: &str) -> String {
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
                // writes they refuse (see `set_faults` in random.rs).
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

pub fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "(nothing)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(",")
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
