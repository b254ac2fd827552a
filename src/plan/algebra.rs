//! The per-key set algebra of a unit (`drive`, `keep`, `owned`, `live`; see the
//! parent module) and the plan it gives.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use crate::api::{ManagementPolicy, Mode};

use super::{Action, Declaration, Key, Member, Permission, Phase, Plan, Unit, close};

/// Per-key working state.
#[derive(Clone, Debug)]
pub(super) struct KeyState<P> {
    pub(super) drive: BTreeSet<P>,
    /// Who keeps each permission (member index; `usize::MAX` for foreign holders).
    pub(super) keep: BTreeMap<P, BTreeSet<usize>>,
    pub(super) owned: BTreeSet<P>,
    pub(super) live: BTreeSet<P>,
    pub(super) vendor_ids: Vec<String>,
    pub(super) authoritative: bool,
}

impl<P> Default for KeyState<P> {
    fn default() -> Self {
        KeyState {
            drive: BTreeSet::new(),
            keep: BTreeMap::new(),
            owned: BTreeSet::new(),
            live: BTreeSet::new(),
            vendor_ids: Vec::new(),
            authoritative: false,
        }
    }
}

impl<P: Permission> KeyState<P> {
    pub(super) fn kept(&self) -> BTreeSet<P> {
        self.keep.keys().cloned().collect()
    }

    pub(super) fn kept_by_others(&self, member: usize, perm: &P) -> bool {
        self.keep
            .get(perm)
            .is_some_and(|holders| holders.iter().any(|holder| *holder != member))
    }

    fn removable(&self) -> BTreeSet<P> {
        let candidates = if self.authoritative {
            self.live.clone()
        } else {
            self.live.intersection(&self.owned).cloned().collect()
        };
        let kept = self.kept();
        candidates.difference(&kept).cloned().collect()
    }

    fn target(&self) -> BTreeSet<P> {
        let grown: BTreeSet<P> = self.live.union(&self.drive).cloned().collect();
        let remove = self.removable();
        close(grown.difference(&remove))
    }
}

impl<P: Permission> Member<P> {
    pub(super) fn drives(&self) -> bool {
        self.phase == Phase::Active && self.management == ManagementPolicy::Manage
    }

    pub(super) fn has_unresolved(&self) -> bool {
        self.declarations
            .iter()
            .any(|decl| matches!(decl, Declaration::Unresolved { .. }))
    }

    pub(super) fn resolved(&self) -> impl Iterator<Item = (&Key, &P)> {
        self.declarations.iter().filter_map(|decl| match decl {
            Declaration::Resolved { key, perm } => Some((key, perm)),
            Declaration::Unresolved { .. } => None,
        })
    }

    /// Closed permissions this member declares per key (active members only).
    pub(super) fn declared_by_key(&self) -> BTreeMap<Key, BTreeSet<P>> {
        if self.phase == Phase::Active {
            self.declared_by_key_in_any_phase()
        } else {
            BTreeMap::new()
        }
    }

    /// Closed permissions this member's declarations name per key, whatever its phase.
    fn declared_by_key_in_any_phase(&self) -> BTreeMap<Key, BTreeSet<P>> {
        let mut out: BTreeMap<Key, BTreeSet<P>> = BTreeMap::new();
        for (key, perm) in self.resolved() {
            out.entry(key.clone()).or_default().extend(perm.closure());
        }
        out
    }

    /// Closed permissions this member applied before and still answers for.
    ///
    /// Applied rows and rows with a vendor id are live grants of ours. Pending or failed
    /// rows without a vendor id are grants we never managed to apply, unless they are
    /// revocation rows or intent rows (written before a write whose result is not
    /// known yet). Observe members never own anything.
    pub(super) fn owned_by_key(&self) -> BTreeMap<Key, BTreeSet<P>> {
        let mut out: BTreeMap<Key, BTreeSet<P>> = BTreeMap::new();
        if self.management == ManagementPolicy::Observe {
            return out;
        }
        for row in &self.previous {
            if row.owned() {
                out.entry(row.key.clone())
                    .or_default()
                    .extend(row.perm.closure());
            }
        }
        out
    }
}

pub(super) fn key_states<P: Permission>(unit: &Unit<P>) -> BTreeMap<Key, KeyState<P>> {
    let mut keys: BTreeMap<Key, KeyState<P>> = BTreeMap::new();
    let unit_authoritative = unit.members.iter().any(|member| {
        member.drives() && member.mode == Mode::Authoritative && member.authoritative_keys.is_none()
    });

    for (index, member) in unit.members.iter().enumerate() {
        let owned = member.owned_by_key();
        match (member.phase, member.management) {
            (Phase::Active, ManagementPolicy::Manage) => {
                for (key, perms) in member.declared_by_key() {
                    let state = keys.entry(key).or_default();
                    state.drive.extend(perms.iter().cloned());
                    for perm in perms {
                        state.keep.entry(perm).or_default().insert(index);
                    }
                }
                let frozen = member.has_unresolved();
                for (key, perms) in owned {
                    let state = keys.entry(key).or_default();
                    state.owned.extend(perms.iter().cloned());
                    if frozen {
                        for perm in perms {
                            state.keep.entry(perm).or_default().insert(index);
                        }
                    }
                }
                if member.mode == Mode::Authoritative {
                    for key in member.authoritative_keys.iter().flatten() {
                        keys.entry(key.clone()).or_default().authoritative = true;
                    }
                }
            }
            (Phase::Active, ManagementPolicy::Observe) => {
                for (key, perms) in member.declared_by_key() {
                    let state = keys.entry(key).or_default();
                    for perm in perms {
                        state.keep.entry(perm).or_default().insert(index);
                    }
                }
            }
            (Phase::Joining, _) => {
                for (key, perms) in member.declared_by_key_in_any_phase() {
                    let state = keys.entry(key).or_default();
                    for perm in perms {
                        state.keep.entry(perm).or_default().insert(index);
                    }
                }
            }
            (Phase::Suspended, _) => {
                for (key, perms) in owned {
                    let state = keys.entry(key).or_default();
                    for perm in perms {
                        state.keep.entry(perm).or_default().insert(index);
                    }
                }
            }
            (Phase::Expired | Phase::Deleting, ManagementPolicy::Manage) => {
                for (key, perms) in owned {
                    keys.entry(key).or_default().owned.extend(perms);
                }
            }
            (Phase::Expired | Phase::Deleting, ManagementPolicy::Observe) => {}
        }
    }

    for (key, perm) in &unit.foreign {
        let state = keys.entry(key.clone()).or_default();
        for perm in perm.closure() {
            state.keep.entry(perm).or_default().insert(usize::MAX);
        }
    }

    for grant in &unit.live {
        let state = keys.entry(grant.key.clone()).or_default();
        state.live.extend(grant.perm.closure());
        if let Some(id) = &grant.vendor_id
            && !state.vendor_ids.contains(id)
        {
            state.vendor_ids.push(id.clone());
        }
    }

    if unit_authoritative {
        for state in keys.values_mut() {
            state.authoritative = true;
        }
    }
    keys
}

/// Plans the changes that make the unit's live grants match its members.
pub fn plan<P: Permission>(unit: &Unit<P>) -> Plan<P> {
    let keys = key_states(unit);
    let mut plan = Plan {
        actions: Vec::new(),
        unmanaged: 0,
        kept: BTreeMap::new(),
    };
    for (key, state) in &keys {
        let kept = state.kept();
        if !kept.is_empty() {
            plan.kept.insert(key.clone(), kept);
        }
        let target = state.target();
        if target != state.live {
            plan.actions.push(Action {
                key: key.clone(),
                live: state.live.clone(),
                target,
                vendor_ids: state.vendor_ids.clone(),
            });
        } else if !state.live.is_empty() && state.keep.is_empty() && state.owned.is_empty() {
            plan.unmanaged += 1;
        }
    }
    plan
}
