//! Table-driven tests of every rule of the contract, on levels (Sigma and
//! Grafana style), privilege sets (Dremio style) and grant options (Snowflake).
//! This module holds the permissions and builders the tests share; `rules` the
//! plan's rules, `report` the rows and counts after a sync, `intents` the
//! intents and watched writes.

mod intents;
mod report;
mod rules;

use super::*;
use k8s_openapi::jiff::Timestamp;
use std::fmt;

/// A level permission: `Annotate` includes `Usage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum L {
    Usage,
    Annotate,
}
use L::{Annotate as A, Usage as U};

impl fmt::Display for L {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            U => "usage",
            A => "annotate",
        })
    }
}

impl Permission for L {
    fn closure(&self) -> Vec<Self> {
        match self {
            U => vec![U],
            A => vec![A, U],
        }
    }
}

/// A privilege with an optional grant option (which includes the privilege).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct P(&'static str, bool);

impl fmt::Display for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(f, "{}+grant", self.0)
        } else {
            f.write_str(self.0)
        }
    }
}

impl Permission for P {
    fn closure(&self) -> Vec<Self> {
        if self.1 {
            vec![self.clone(), P(self.0, false)]
        } else {
            vec![self.clone()]
        }
    }
}

fn p(name: &'static str) -> P {
    P(name, false)
}

fn with_grant(name: &'static str) -> P {
    P(name, true)
}

fn member<Q: Permission>(decls: &[(&str, Q)]) -> Member<Q> {
    Member {
        phase: Phase::Active,
        mode: Mode::Additive,
        management: ManagementPolicy::Manage,
        declarations: decls
            .iter()
            .map(|(key, perm)| Declaration::Resolved {
                key: key.to_string(),
                perm: perm.clone(),
            })
            .collect(),
        previous: Vec::new(),
        was_synced: false,
        authoritative_keys: None,
    }
}

impl<Q: Permission> Member<Q> {
    /// The member applied these grants before (status rows `Applied`).
    fn owns(mut self, rows: &[(&str, Q)]) -> Self {
        self.previous = rows
            .iter()
            .map(|(key, perm)| PreviousRow {
                key: key.to_string(),
                perm: perm.clone(),
                state: GrantState::Applied,
                has_vendor_id: true,
                revocation: false,
                intent: false,
                until: None,
            })
            .collect();
        self
    }
    fn authoritative(mut self) -> Self {
        self.mode = Mode::Authoritative;
        self
    }
    fn scoped(mut self, keys: &[&str]) -> Self {
        self.authoritative_keys = Some(keys.iter().map(ToString::to_string).collect());
        self
    }
    fn observe(mut self) -> Self {
        self.management = ManagementPolicy::Observe;
        self
    }
    fn phase(mut self, phase: Phase) -> Self {
        self.phase = phase;
        self
    }
    fn synced(mut self) -> Self {
        self.was_synced = true;
        self
    }
    fn unresolved(mut self, label: &str, perm: Q) -> Self {
        self.declarations.push(Declaration::Unresolved {
            label: label.to_string(),
            perm,
            message: format!("{label} not found"),
        });
        self
    }
}

fn live<Q: Permission>(grants: &[(&str, Q)]) -> Vec<LiveGrant<Q>> {
    grants
        .iter()
        .map(|(key, perm)| LiveGrant {
            key: key.to_string(),
            perm: perm.clone(),
            vendor_id: Some(format!("id-{key}")),
        })
        .collect()
}

fn unit<Q: Permission>(members: Vec<Member<Q>>, live_grants: &[(&str, Q)]) -> Unit<Q> {
    Unit {
        members,
        foreign: Vec::new(),
        live: live(live_grants),
    }
}

/// `(key, kind, target's top permissions)` of every planned action.
fn summary<Q: Permission>(unit: &Unit<Q>) -> Vec<(String, ActionKind, Vec<Q>)> {
    plan(unit)
        .actions
        .into_iter()
        .map(|action| {
            let kind = action.kind();
            (action.key.clone(), kind, action.target_top())
        })
        .collect()
}

/// The live grants after applying every action of the plan successfully.
fn applied<Q: Permission>(unit: &Unit<Q>) -> Vec<LiveGrant<Q>> {
    let planned = plan(unit);
    let mut by_key: BTreeMap<Key, BTreeSet<Q>> = BTreeMap::new();
    for grant in &unit.live {
        by_key
            .entry(grant.key.clone())
            .or_default()
            .extend(grant.perm.closure());
    }
    for action in &planned.actions {
        by_key.insert(action.key.clone(), action.target.clone());
    }
    by_key
        .into_iter()
        .flat_map(|(key, set)| {
            maximal(&set).into_iter().map(move |perm| LiveGrant {
                key: key.clone(),
                perm,
                vendor_id: Some(format!("id-{key}")),
            })
        })
        .collect()
}

/// The reports of a sync at the epoch, `after` live and `failures` failed.
fn report_at_epoch<Q: Permission>(
    unit: &Unit<Q>,
    planned: &Plan<Q>,
    after: &[LiveGrant<Q>],
    failures: &BTreeMap<Key, Failure>,
) -> Vec<Report<Q>> {
    report(
        unit,
        planned,
        after,
        failures,
        Watch::at(Timestamp::UNIX_EPOCH),
    )
}

/// The one failure of a sync, at `key`.
fn failure_at(key: &str, reason: Reason, message: &str) -> BTreeMap<Key, Failure> {
    BTreeMap::from([(
        key.to_string(),
        Failure {
            reason,
            message: message.into(),
            retry_after: None,
        },
    )])
}

/// A member that declares `decls` and applied them before.
fn holding<Q: Permission>(decls: &[(&str, Q)]) -> Member<Q> {
    member(decls).owns(decls)
}

/// Asserts the `(grantee, permission, state)` of every row of `report`.
#[track_caller]
fn assert_rows<Q: Permission + fmt::Debug>(report: &Report<Q>, expect: &[(&str, Q, GrantState)]) {
    let rows: Vec<(String, Q, GrantState)> = report
        .rows
        .iter()
        .map(|row| (row.grantee.clone(), row.perm.clone(), row.state))
        .collect();
    let expect: Vec<(String, Q, GrantState)> = expect
        .iter()
        .map(|(grantee, perm, state)| (grantee.to_string(), perm.clone(), *state))
        .collect();
    assert_eq!(rows, expect);
}
