//! The journal: every declaration change (with the instants before and after
//! it was written) and, through the emulators' observers, every request that
//! changed a vendor's grants, with the grants before and after it; and what
//! the resources declared at any instant, from it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::model::*;
use crate::support::emulator::{Call, Stage};

use super::Live;

/// A declaration change: a resource created, edited (`spec`), or deleted (`None`).
#[derive(Clone, Debug)]
pub struct Change {
    /// Just before it was written: atoms it removes are gone from here on.
    pub before: Instant,
    /// Just after: atoms it adds are declared from here on.
    pub after: Instant,
    pub vendor: Vendor,
    pub name: String,
    pub spec: Option<Spec>,
}

/// A request that changed a vendor's grants.
#[derive(Clone, Debug)]
pub struct Transition {
    /// When the vendor started handling it.
    pub at: Instant,
    pub arrived: Instant,
    pub vendor: Vendor,
    pub request: String,
    pub status: u16,
    pub before: Atoms,
    pub after: Atoms,
}

/// What a vendor holds: atoms, and keys held by more than one grant.

#[derive(Default)]
struct JournalState {
    changes: Vec<Change>,
    transitions: Vec<Transition>,
    before: HashMap<Vendor, (Instant, Live)>,
}

/// Declaration changes and vendor transitions.
pub struct Journal {
    pub started: Instant,
    state: Mutex<JournalState>,
}

/// A request as one line: method, path, query and body (shortened).
pub fn describe(call: &Call) -> String {
    let mut line = format!("{} {}", call.method, call.path);
    if !call.query.is_empty() {
        line.push('?');
        line.push_str(&call.query);
    }
    if let Some(body) = &call.body {
        let mut body = body.to_string();
        if body.len() > 400 {
            body.truncate(400);
            body.push_str("...");
        }
        line.push(' ');
        line.push_str(&body);
    }
    line
}

impl Journal {
    pub(super) fn new() -> Journal {
        Journal {
            started: Instant::now(),
            state: Mutex::new(JournalState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JournalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the world started, for printing.
    pub fn ms(&self, at: Instant) -> String {
        format!(
            "{:>6}ms",
            at.saturating_duration_since(self.started).as_millis()
        )
    }

    pub(super) fn observed(&self, vendor: Vendor, call: &Call, stage: Stage, live: Live) {
        let mut st = self.lock();
        match stage {
            Stage::Before => {
                st.before.insert(vendor, (Instant::now(), live));
            }
            Stage::After { status } => {
                let Some((at, before)) = st.before.remove(&vendor) else {
                    return;
                };
                if before.atoms != live.atoms {
                    st.transitions.push(Transition {
                        at,
                        arrived: call.at,
                        vendor,
                        request: describe(call),
                        status,
                        before: before.atoms,
                        after: live.atoms,
                    });
                }
            }
        }
    }

    pub fn record(&self, change: Change) {
        self.lock().changes.push(change);
    }

    pub fn changes(&self) -> Vec<Change> {
        self.lock().changes.clone()
    }

    pub fn transitions(&self) -> Vec<Transition> {
        self.lock().transitions.clone()
    }

    /// What the resources of `vendor` declared at `t` (outsiders not included).
    pub fn declared_at(&self, vendor: Vendor, t: Instant) -> Atoms {
        let mut union = Atoms::new();
        for atoms in self.declared_by_at(vendor, t).values() {
            unite(&mut union, atoms);
        }
        union
    }

    /// What each resource of `vendor` declared at `t`. During a write (between
    /// `before` and `after`) only what both the old and the new spec declare
    /// counts.
    pub fn declared_by_at(&self, vendor: Vendor, t: Instant) -> BTreeMap<String, Atoms> {
        let changes = self.changes();
        let mut per_resource: BTreeMap<String, Atoms> = BTreeMap::new();
        for change in changes.iter().filter(|c| c.vendor == vendor) {
            if t < change.before {
                break;
            }
            let new = change
                .spec
                .as_ref()
                .map(|spec| spec_atoms(vendor, spec))
                .unwrap_or_default();
            if t >= change.after {
                per_resource.insert(change.name.clone(), new);
            } else {
                let old = per_resource.remove(&change.name).unwrap_or_default();
                let mut both = Atoms::new();
                for (key, set) in old {
                    let kept: BTreeSet<String> = set
                        .intersection(new.get(&key).unwrap_or(&BTreeSet::new()))
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        both.insert(key, kept);
                    }
                }
                per_resource.insert(change.name.clone(), both);
            }
        }
        per_resource
    }

    /// Panics unless every atom of every vendor entered the union of the
    /// declarations at most once and left it at most once: the check of
    /// revokes relies on it (an atom declared again after it was revoked
    /// could be revoked by a sync that started before, which is no fault).
    pub fn assert_single_intervals(&self) {
        let changes = self.changes();
        for vendor in Vendor::ALL {
            let mut specs: BTreeMap<String, Atoms> = BTreeMap::new();
            let mut union = Atoms::new();
            let mut retired: BTreeSet<(String, String)> = BTreeSet::new();
            for change in changes.iter().filter(|c| c.vendor == vendor) {
                match &change.spec {
                    Some(spec) => specs.insert(change.name.clone(), spec_atoms(vendor, spec)),
                    None => specs.remove(&change.name),
                };
                let mut next = Atoms::new();
                for atoms in specs.values() {
                    unite(&mut next, atoms);
                }
                for (key, set) in &next {
                    for atom in set {
                        assert!(
                            !retired.contains(&(key.clone(), atom.clone())),
                            "test bug: {} {key} {atom} declared again after it left the declarations",
                            vendor.name()
                        );
                    }
                }
                for (key, set) in &union {
                    for atom in set {
                        if !next.get(key).is_some_and(|s| s.contains(atom)) {
                            retired.insert((key.clone(), atom.clone()));
                        }
                    }
                }
                union = next;
            }
        }
    }
}
