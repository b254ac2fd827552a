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
//!
//! This module owns the planner's types and the closure of a set; `algebra`
//! computes the sets per key and the [`Plan`]; `outcome` says what a plan means
//! for each member: the intents recorded before any write ([`intents`]) and the
//! status rows and counts after it ([`report`]).

mod algebra;
mod outcome;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display};

use k8s_openapi::jiff::Timestamp;

use super::api::{GrantState, ManagementPolicy, Mode, Reason};

pub use algebra::plan;
pub use outcome::{intents, report};

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
