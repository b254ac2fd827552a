//! The planner: pure, no I/O.
//!
//! A *unit* is one vendor object read with one listing (a Sigma connection, a
//! Grafana data source, a Snowflake grantee, a Dremio catalog object). Every
//! grant resource on the unit is a *member*. Within a unit, grants are indexed
//! by a *key* (a Sigma grantee, a Snowflake securable, ...) and each key holds a
//! set of *permissions*.
//!
//! Levels and privilege sets are handled by one algebra: a permission's
//! [`Permission::closure`] is every permission it includes (`annotate` includes
//! `usage`; `USAGE` with grant option includes `USAGE`), and every set the
//! planner works with is closed under it. Per key:
//!
//! - `drive`: what active, managed members declare. Missing parts are granted.
//! - `keep`: what nobody may take away: `drive`, plus what Observe members
//!   declare, what suspended members hold, what members with unresolved
//!   grantees hold (removals wait until their names resolve), and what
//!   resources of other units on the same vendor object hold (`foreign`).
//! - `owned`: what managed members have applied before (read back from their
//!   status rows). Only owned permissions are ever removed in `Additive` mode.
//! - `live`: what the vendor reports (permissions we manage only; anything else
//!   never reaches the planner and is never touched).
//!
//! `add = drive - live`, `remove = (Authoritative ? live : live & owned) - keep`,
//! `target = close((live | add) - remove)`. Closing the target means a level is
//! never half-revoked: if someone else raised our `usage` grant to `annotate`,
//! removing our declaration leaves their grant in place.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display};

use k8s_openapi::jiff::Timestamp;

use crate::api::{GrantState, ManagementPolicy, Mode, Reason};

/// A permission (level or privilege) of one vendor.
pub trait Permission: Clone + Ord + Debug + Display {
    /// Every permission this one includes, itself among them.
    fn closure(&self) -> Vec<Self>;
}

/// The planner's index of grants within a unit (`member:ID`, `team:ID`, a securable, ...).
pub type Key = String;

/// Where a member stands in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Declares its grants.
    Active,
    /// `spec.suspend`: no writes on its behalf, but what it holds is kept.
    Suspended,
    /// `spec.expiresAt` passed: declares nothing, its grants are revoked.
    Expired,
    /// Being deleted with `deletionPolicy: Delete`: declares nothing, its grants are revoked.
    Deleting,
    /// Not yet holding the operator's finalizer (its own reconcile adds it first):
    /// nothing is granted on its behalf, since a deletion now would leave no one
    /// to revoke it, and nothing it declares is taken away.
    Joining,
}

impl Phase {
    /// Whether the sync reports on the member (writes its status): not for a
    /// suspended member (its own reconcile reports `Suspended`) nor a joining one
    /// (it has no status of the operator's yet).
    pub fn reported(self) -> bool {
        !matches!(self, Phase::Suspended | Phase::Joining)
    }
}

/// One declared grant, in spec order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declaration<P> {
    /// The grantee resolved to a key.
    Resolved {
        /// The key.
        key: Key,
        /// The declared permission.
        perm: P,
    },
    /// The grantee did not resolve; reported as a failed row.
    Unresolved {
        /// The name as declared, for the row (`member:jane@example.com`).
        label: String,
        /// The declared permission.
        perm: P,
        /// Why it did not resolve.
        message: String,
    },
}

/// A status row of the previous sync, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousRow<P> {
    /// Key of the row.
    pub key: Key,
    /// Permission of the row.
    pub perm: P,
    /// State of the row.
    pub state: GrantState,
    /// Whether the row carried a vendor id (evidence of a live grant).
    pub has_vendor_id: bool,
    /// Whether the row is a pending revocation (see [`REVOCATION_MARK`]).
    pub revocation: bool,
    /// Whether the row records a grant about to be written (see [`INTENT_MARK`]).
    pub intent: bool,
    /// Until when a write behind this row may still land unseen (see [`WATCH`]).
    pub until: Option<Timestamp>,
}

impl<P> PreviousRow<P> {
    /// Whether the row stands for a grant that may be live because of this resource:
    /// applied, carrying a vendor id, a pending revocation, or recorded before a write
    /// whose result was not read back yet.
    pub fn owned(&self) -> bool {
        self.state == GrantState::Applied || self.has_vendor_id || self.revocation || self.intent
    }
}

/// Rows kept only to remember a revocation that has not happened yet carry a
/// message starting with this text; that is how the next sync tells them from
/// declared rows.
pub const REVOCATION_MARK: &str = "revocation";

/// Rows written *before* a vendor write, for every grant the write is about to
/// create or raise, carry a message starting with this text (state `Pending`).
/// They make a grant owned before it can exist, so that a crash between the vendor
/// write and the status write that records its result cannot leave a live grant
/// that no status row remembers (see [`intents`]).
pub const INTENT_MARK: &str = "granting";

/// Rows of writes whose outcome is unknown name, after this word, the time until
/// which the write may still land: a request the vendor holds, or one a process
/// sent just before it died, can be carried out after the next read. Until then a
/// row that shows nothing live is kept, as the resource's, so that a grant landing
/// late is still revoked when its declaration goes away (see [`Watch`]).
pub const WATCH: &str = "until";

/// Rows kept for a write of unknown outcome whose grant shows nothing live and
/// is declared no more start with this text (a kind of revocation row: revoked
/// if it lands). They do not keep a resource from `Synced`; they hold its
/// finalizer until they are settled.
pub const WATCHED_MARK: &str = "revocation if it lands";

/// The message of an intent row.
pub fn intent_message(vendor: &str) -> String {
    format!("{INTENT_MARK}: recorded before the write to {vendor}; confirmed by the next read")
}

/// How long writes of unknown outcome are watched, as of one sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// When the sync started.
    pub now: Timestamp,
    /// Until when an intent row that names no time is watched. Such a row was
    /// written before a write by an operator that did not live to read the
    /// result (a sync of this process records every result it reads), so its
    /// write, if sent, was sent before this process started leading: it is
    /// watched until the longest a vendor takes to carry out a request has passed
    /// since then.
    pub unknown_until: Timestamp,
}

impl Watch {
    /// Nothing watched beyond `now` (for planning without a history).
    pub fn at(now: Timestamp) -> Watch {
        Watch {
            now,
            unknown_until: now,
        }
    }
}

/// The time an intent or watched row names (see [`WATCH`]).
pub fn watched_until(message: &str) -> Option<Timestamp> {
    let (_, after) = message.split_once(&format!(" {WATCH} "))?;
    after.split_whitespace().next()?.parse().ok()
}

/// One grant resource of the unit.
#[derive(Clone, Debug)]
pub struct Member<P> {
    /// Phase.
    pub phase: Phase,
    /// `spec.mode`.
    pub mode: Mode,
    /// `spec.managementPolicy`.
    pub management: ManagementPolicy,
    /// Declarations (ignored unless the member is active).
    pub declarations: Vec<Declaration<P>>,
    /// Status rows of the previous sync.
    pub previous: Vec<PreviousRow<P>>,
    /// Whether the previous sync reported this member Synced at its current generation
    /// (a difference now is drift, not the first convergence).
    pub was_synced: bool,
    /// Keys `Authoritative` applies to; `None` means the whole unit.
    pub authoritative_keys: Option<Vec<Key>>,
}

/// One live grant as the vendor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveGrant<P> {
    /// Key.
    pub key: Key,
    /// Permission.
    pub perm: P,
    /// The vendor's id, if it has one.
    pub vendor_id: Option<String>,
}

/// Everything the planner needs about one unit.
#[derive(Clone, Debug)]
pub struct Unit<P> {
    /// Grant resources of this unit.
    pub members: Vec<Member<P>>,
    /// Grants held by resources of other units on the same vendor object (never removed).
    pub foreign: Vec<(Key, P)>,
    /// The live grants.
    pub live: Vec<LiveGrant<P>>,
}

/// What an action does, for events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Nothing live at the key; grant.
    Grant,
    /// Add permissions to a live grant.
    Raise,
    /// Remove some permissions of a live grant.
    Lower,
    /// Remove the grant entirely.
    Revoke,
    /// Add some and remove others (privilege sets).
    Change,
}

impl ActionKind {
    /// Lower-case name for metric labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Grant => "grant",
            ActionKind::Raise => "raise",
            ActionKind::Lower => "lower",
            ActionKind::Revoke => "revoke",
            ActionKind::Change => "change",
        }
    }
}

/// One change at one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action<P> {
    /// The key.
    pub key: Key,
    /// Live permissions (closed).
    pub live: BTreeSet<P>,
    /// Permissions after the action (closed).
    pub target: BTreeSet<P>,
    /// Ids of the live grants at the key.
    pub vendor_ids: Vec<String>,
}

impl<P: Permission> Action<P> {
    /// Permissions the action adds.
    pub fn added(&self) -> BTreeSet<P> {
        self.target.difference(&self.live).cloned().collect()
    }

    /// Permissions the action removes.
    pub fn removed(&self) -> BTreeSet<P> {
        self.live.difference(&self.target).cloned().collect()
    }

    /// The highest permissions of the target (what a level vendor sets).
    pub fn target_top(&self) -> Vec<P> {
        maximal(&self.target)
    }

    /// Grant, raise, lower, revoke or change.
    pub fn kind(&self) -> ActionKind {
        let (added, removed) = (self.added(), self.removed());
        if self.live.is_empty() {
            ActionKind::Grant
        } else if self.target.is_empty() {
            ActionKind::Revoke
        } else if removed.is_empty() {
            ActionKind::Raise
        } else if added.is_empty() {
            ActionKind::Lower
        } else {
            ActionKind::Change
        }
    }
}

/// The result of planning one unit.
#[derive(Clone, Debug, Default)]
pub struct Plan<P> {
    /// The changes to make, ordered by key.
    pub actions: Vec<Action<P>>,
    /// Live keys no member declares and that are left alone (not Authoritative).
    pub unmanaged: usize,
    /// What nobody may take away, per key (closed; keys with nothing kept are
    /// absent). A vendor whose one write can reach other keys (Snowflake's
    /// revoke on `ALL` objects of a scope strips every object in it) uses it
    /// to spare what they keep.
    pub kept: BTreeMap<Key, BTreeSet<P>>,
}

/// Why an action failed, for the rows and conditions of the members it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The contract reason.
    pub reason: Reason,
    /// A readable message (no secrets).
    pub message: String,
    /// How long the vendor asked to wait, if it did.
    pub retry_after: Option<std::time::Duration>,
}

/// One status row, before the vendor formats grantee and permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row<P> {
    /// The key, or the declared name when it did not resolve.
    pub grantee: String,
    /// Whether `grantee` is a resolved key.
    pub resolved: bool,
    /// Permission.
    pub perm: P,
    /// The vendor id of the live grant holding this permission.
    pub vendor_id: Option<String>,
    /// Applied, Pending, Failed or Drifted.
    pub state: GrantState,
    /// Why the row is not Applied.
    pub message: String,
}

/// What one member reports after a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<P> {
    /// Status rows: declared grants in spec order, then pending revocations.
    pub rows: Vec<Row<P>>,
    /// Grants repaired after drifting.
    pub drift_repaired: i64,
    /// Observe + Authoritative: live grants in scope that no resource declares.
    pub undeclared: usize,
    /// Failed actions that concern this member.
    pub failures: Vec<Failure>,
}

impl<P> Default for Report<P> {
    fn default() -> Self {
        Report {
            rows: Vec::new(),
            drift_repaired: 0,
            undeclared: 0,
            failures: Vec::new(),
        }
    }
}

impl<P> Report<P> {
    /// Whether every row is Applied and nothing is pending.
    pub fn all_applied(&self) -> bool {
        self.rows.iter().all(|row| row.state == GrantState::Applied)
    }
}

/// Closes a set of permissions under [`Permission::closure`].
pub fn close<'a, P: Permission + 'a>(perms: impl IntoIterator<Item = &'a P>) -> BTreeSet<P> {
    perms.into_iter().flat_map(|perm| perm.closure()).collect()
}

/// The permissions of a closed set that no other member of it includes.
pub fn maximal<P: Permission>(set: &BTreeSet<P>) -> Vec<P> {
    set.iter()
        .filter(|perm| {
            !set.iter()
                .any(|other| other != *perm && other.closure().contains(perm))
        })
        .cloned()
        .collect()
}

/// Per-key working state.
#[derive(Clone, Debug)]
struct KeyState<P> {
    drive: BTreeSet<P>,
    /// Who keeps each permission (member index; `usize::MAX` for foreign holders).
    keep: BTreeMap<P, BTreeSet<usize>>,
    owned: BTreeSet<P>,
    live: BTreeSet<P>,
    vendor_ids: Vec<String>,
    authoritative: bool,
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
    fn kept(&self) -> BTreeSet<P> {
        self.keep.keys().cloned().collect()
    }

    fn kept_by_others(&self, member: usize, perm: &P) -> bool {
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
    fn drives(&self) -> bool {
        self.phase == Phase::Active && self.management == ManagementPolicy::Manage
    }

    fn has_unresolved(&self) -> bool {
        self.declarations
            .iter()
            .any(|decl| matches!(decl, Declaration::Unresolved { .. }))
    }

    fn resolved(&self) -> impl Iterator<Item = (&Key, &P)> {
        self.declarations.iter().filter_map(|decl| match decl {
            Declaration::Resolved { key, perm } => Some((key, perm)),
            Declaration::Unresolved { .. } => None,
        })
    }

    /// Closed permissions this member declares per key (active members only).
    fn declared_by_key(&self) -> BTreeMap<Key, BTreeSet<P>> {
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
    fn owned_by_key(&self) -> BTreeMap<Key, BTreeSet<P>> {
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

fn key_states<P: Permission>(unit: &Unit<P>) -> BTreeMap<Key, KeyState<P>> {
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

#[cfg(test)]
mod tests;
