//! Table-driven tests of every rule of the contract, on levels (Sigma and
//! Grafana style), privilege sets (Dremio style) and grant options (Snowflake).

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

use ActionKind::{Change, Grant, Lower, Raise, Revoke};

#[test]
fn level_rules() {
    struct Case {
        name: &'static str,
        unit: Unit<L>,
        expect: Vec<(&'static str, ActionKind, Vec<L>)>,
    }
    let cases = vec![
        Case {
            name: "declared and absent: grant",
            unit: unit(vec![member(&[("m1", U)])], &[]),
            expect: vec![("m1", Grant, vec![U])],
        },
        Case {
            name: "already live: nothing to do",
            unit: unit(vec![member(&[("m1", U)]).owns(&[("m1", U)])], &[("m1", U)]),
            expect: vec![],
        },
        Case {
            name: "union of resources",
            unit: unit(vec![member(&[("m1", U)]), member(&[("t1", A)])], &[]),
            expect: vec![("m1", Grant, vec![U]), ("t1", Grant, vec![A])],
        },
        Case {
            name: "highest level wins",
            unit: unit(vec![member(&[("m1", U)]), member(&[("m1", A)])], &[]),
            expect: vec![("m1", Grant, vec![A])],
        },
        Case {
            name: "same grantee twice in one resource: highest wins",
            unit: unit(vec![member(&[("m1", A), ("m1", U)])], &[]),
            expect: vec![("m1", Grant, vec![A])],
        },
        Case {
            name: "raise",
            unit: unit(vec![member(&[("m1", A)]).owns(&[("m1", U)])], &[("m1", U)]),
            expect: vec![("m1", Raise, vec![A])],
        },
        Case {
            name: "lower a level this resource set",
            unit: unit(vec![member(&[("m1", U)]).owns(&[("m1", A)])], &[("m1", A)]),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "removed from the spec: revoked",
            unit: unit(vec![member(&[]).owns(&[("m1", U)])], &[("m1", U)]),
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "removed from the spec but already gone: nothing",
            unit: unit(vec![member(&[]).owns(&[("m1", U)])], &[]),
            expect: vec![],
        },
        Case {
            name: "deletion revokes what no one else declares",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .phase(Phase::Deleting),
                    member(&[("m2", U)]).owns(&[("m2", U)]),
                ],
                &[("m1", U), ("m2", U)],
            ),
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "deletion keeps what another resource declares",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .phase(Phase::Deleting),
                    member(&[("m1", U)]).owns(&[("m1", U)]),
                ],
                &[("m1", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "deletion lowers to what the others still declare",
            unit: unit(
                vec![
                    member(&[("m1", A)])
                        .owns(&[("m1", A)])
                        .phase(Phase::Deleting),
                    member(&[("m1", U)]).owns(&[("m1", U)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "deletion of the lower declaration keeps the higher level",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .phase(Phase::Deleting),
                    member(&[("m1", A)]).owns(&[("m1", A)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![],
        },
        Case {
            name: "expiry revokes like deletion",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .phase(Phase::Expired),
                ],
                &[("m1", U)],
            ),
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "expiry keeps what another resource declares",
            unit: unit(
                vec![
                    member(&[("m1", A)])
                        .owns(&[("m1", A)])
                        .phase(Phase::Expired),
                    member(&[("m1", U)]).owns(&[("m1", U)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "additive leaves grants nobody declares",
            unit: unit(
                vec![member(&[("m1", U)]).owns(&[("m1", U)])],
                &[("m1", U), ("m9", A)],
            ),
            expect: vec![],
        },
        Case {
            name: "authoritative revokes grants nobody declares",
            unit: unit(
                vec![member(&[("m1", U)]).owns(&[("m1", U)]).authoritative()],
                &[("m1", U), ("m9", A)],
            ),
            expect: vec![("m9", Revoke, vec![])],
        },
        Case {
            name: "authoritative on one member makes the union exact",
            unit: unit(
                vec![member(&[("m1", U)]).authoritative(), member(&[("m2", U)])],
                &[("m1", U), ("m2", U), ("m3", U)],
            ),
            expect: vec![("m3", Revoke, vec![])],
        },
        Case {
            name: "authoritative lowers a level nobody declares",
            unit: unit(vec![member(&[("m1", U)]).authoritative()], &[("m1", A)]),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "additive leaves a level someone else raised",
            unit: unit(vec![member(&[("m1", U)]).owns(&[("m1", U)])], &[("m1", A)]),
            expect: vec![],
        },
        Case {
            name: "additive adopts a grant that already exists",
            unit: unit(vec![member(&[("m1", U)])], &[("m1", U)]),
            expect: vec![],
        },
        Case {
            name: "removal leaves in place a grant someone else raised above ours",
            unit: unit(vec![member(&[]).owns(&[("m1", U)])], &[("m1", A)]),
            expect: vec![],
        },
        Case {
            name: "observe never writes",
            unit: unit(
                vec![
                    member(&[("m1", A)])
                        .owns(&[("m2", U)])
                        .observe()
                        .authoritative(),
                ],
                &[("m2", U), ("m9", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "observe declarations are not revoked by an authoritative neighbour",
            unit: unit(
                vec![
                    member(&[("m1", U)]).authoritative(),
                    member(&[("m2", U)]).observe(),
                ],
                &[("m1", U), ("m2", U), ("m3", U)],
            ),
            expect: vec![("m3", Revoke, vec![])],
        },
        Case {
            name: "observe declarations are not granted",
            unit: unit(
                vec![member(&[("m1", U)]), member(&[("m2", U)]).observe()],
                &[],
            ),
            expect: vec![("m1", Grant, vec![U])],
        },
        Case {
            name: "suspended: its grants are kept, its missing ones not granted",
            unit: unit(
                vec![
                    member(&[("m1", U)]).authoritative(),
                    member(&[("m2", U), ("m3", U)])
                        .owns(&[("m2", U)])
                        .phase(Phase::Suspended),
                ],
                &[("m1", U), ("m2", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "suspended authoritative does not prune",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .authoritative()
                        .phase(Phase::Suspended),
                ],
                &[("m1", U), ("m9", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "suspended deletion waits: nothing revoked",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .phase(Phase::Suspended),
                ],
                &[("m1", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "deleting observe member revokes nothing",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U)])
                        .observe()
                        .phase(Phase::Deleting),
                ],
                &[("m1", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "unresolved grantee holds back removals of the resource",
            unit: unit(
                vec![
                    member(&[("m1", U)])
                        .owns(&[("m1", U), ("m2", U)])
                        .unresolved("member:gone@example.com", U),
                ],
                &[("m1", U), ("m2", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "unresolved grantee does not stop the other grants",
            unit: unit(
                vec![member(&[("m1", U)]).unresolved("member:gone@example.com", U)],
                &[],
            ),
            expect: vec![("m1", Grant, vec![U])],
        },
        Case {
            name: "a grant that never applied is not ours to revoke",
            unit: Unit {
                members: vec![Member {
                    previous: vec![PreviousRow {
                        key: "m1".into(),
                        perm: A,
                        state: GrantState::Failed,
                        has_vendor_id: false,
                        revocation: false,
                        intent: false,
                        until: None,
                    }],
                    ..member(&[])
                }],
                foreign: Vec::new(),
                live: live(&[("m1", A)]),
            },
            expect: vec![],
        },
        Case {
            name: "a failed raise keeps the grant ours (vendor id)",
            unit: Unit {
                members: vec![Member {
                    previous: vec![PreviousRow {
                        key: "m1".into(),
                        perm: A,
                        state: GrantState::Failed,
                        has_vendor_id: true,
                        revocation: false,
                        intent: false,
                        until: None,
                    }],
                    ..member(&[])
                }],
                foreign: Vec::new(),
                live: live(&[("m1", U)]),
            },
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "a pending revocation row is retried",
            unit: Unit {
                members: vec![Member {
                    previous: vec![PreviousRow {
                        key: "m1".into(),
                        perm: A,
                        state: GrantState::Failed,
                        has_vendor_id: false,
                        revocation: true,
                        intent: false,
                        until: None,
                    }],
                    ..member(&[("m1", U)])
                }],
                foreign: Vec::new(),
                live: live(&[("m1", A)]),
            },
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "grants held through another provider are never revoked",
            unit: Unit {
                members: vec![member(&[]).owns(&[("m1", U)]).phase(Phase::Deleting)],
                foreign: vec![("m1".into(), U)],
                live: live(&[("m1", U)]),
            },
            expect: vec![],
        },
        Case {
            name: "authoritative spares grants held through another provider",
            unit: Unit {
                members: vec![member(&[("m1", U)]).authoritative()],
                foreign: vec![("m2".into(), A)],
                live: live(&[("m1", U), ("m2", A), ("m3", U)]),
            },
            expect: vec![("m3", Revoke, vec![])],
        },
        Case {
            name: "combination: delete one, observe one, authoritative third",
            unit: unit(
                vec![
                    member(&[("m1", A)])
                        .owns(&[("m1", A), ("m4", U)])
                        .phase(Phase::Deleting),
                    member(&[("m1", U)]).owns(&[("m1", U)]).authoritative(),
                    member(&[("m2", U)]).observe(),
                ],
                &[("m1", A), ("m2", U), ("m3", U), ("m4", U)],
            ),
            expect: vec![
                ("m1", Lower, vec![U]),
                ("m3", Revoke, vec![]),
                ("m4", Revoke, vec![]),
            ],
        },
    ];
    for case in cases {
        let got = summary(&case.unit);
        let expect: Vec<(String, ActionKind, Vec<L>)> = case
            .expect
            .into_iter()
            .map(|(key, kind, top)| (key.to_string(), kind, top))
            .collect();
        assert_eq!(got, expect, "case: {}", case.name);
        // Applying a plan converges: planning again changes nothing more.
        let converged = Unit {
            live: applied(&case.unit),
            ..case.unit.clone()
        };
        assert_eq!(
            summary(&converged),
            vec![],
            "case did not converge: {}",
            case.name
        );
    }
}

#[test]
fn privilege_set_rules() {
    // Dremio style: per grantee a set of privileges.
    let changed = unit(
        vec![
            member(&[("u1", p("SELECT")), ("u1", p("INSERT"))])
                .owns(&[("u1", p("SELECT")), ("u1", p("ALTER"))]),
        ],
        &[
            ("u1", p("SELECT")),
            ("u1", p("ALTER")),
            ("u1", p("MANAGE_GRANTS")),
        ],
    );
    let planned = plan(&changed);
    assert_eq!(planned.actions.len(), 1);
    let action = &planned.actions[0];
    assert_eq!(action.kind(), Change);
    assert_eq!(action.added(), BTreeSet::from([p("INSERT")]));
    // MANAGE_GRANTS was never ours: Additive leaves it.
    assert_eq!(action.removed(), BTreeSet::from([p("ALTER")]));

    // Union of two resources, then deleting one removes only its own privilege.
    let shared = unit(
        vec![
            member(&[("r1", p("SELECT"))])
                .owns(&[("r1", p("SELECT")), ("r1", p("ALTER"))])
                .phase(Phase::Deleting),
            member(&[("r1", p("SELECT"))]).owns(&[("r1", p("SELECT"))]),
        ],
        &[("r1", p("SELECT")), ("r1", p("ALTER"))],
    );
    let planned = plan(&shared);
    assert_eq!(planned.actions.len(), 1);
    assert_eq!(planned.actions[0].kind(), Lower);
    assert_eq!(planned.actions[0].removed(), BTreeSet::from([p("ALTER")]));

    // Authoritative: every privilege nobody declares goes.
    let exact = unit(
        vec![member(&[("r1", p("SELECT"))]).authoritative()],
        &[("r1", p("SELECT")), ("r1", p("ALTER")), ("r2", p("SELECT"))],
    );
    let summary = summary(&exact);
    assert_eq!(
        summary,
        vec![
            ("r1".to_string(), Lower, vec![p("SELECT")]),
            ("r2".to_string(), Revoke, vec![])
        ]
    );
}

#[test]
fn grant_option_rules() {
    // Turning the grant option off revokes only the grant option.
    let off = unit(
        vec![member(&[("SCHEMA S", p("USAGE"))]).owns(&[("SCHEMA S", with_grant("USAGE"))])],
        &[("SCHEMA S", with_grant("USAGE"))],
    );
    let planned = plan(&off);
    assert_eq!(planned.actions.len(), 1);
    assert_eq!(planned.actions[0].kind(), Lower);
    assert_eq!(
        planned.actions[0].removed(),
        BTreeSet::from([with_grant("USAGE")])
    );
    assert_eq!(planned.actions[0].target, BTreeSet::from([p("USAGE")]));

    // Turning it on adds only the grant option.
    let on = unit(
        vec![member(&[("SCHEMA S", with_grant("USAGE"))]).owns(&[("SCHEMA S", p("USAGE"))])],
        &[("SCHEMA S", p("USAGE"))],
    );
    let planned = plan(&on);
    assert_eq!(planned.actions[0].kind(), Raise);
    assert_eq!(
        planned.actions[0].added(),
        BTreeSet::from([with_grant("USAGE")])
    );

    // Authoritative scoped to the resource's own securable leaves others alone.
    let scoped = unit(
        vec![
            member(&[("SCHEMA S", p("USAGE"))])
                .authoritative()
                .scoped(&["SCHEMA S"]),
        ],
        &[
            ("SCHEMA S", p("USAGE")),
            ("SCHEMA S", p("CREATE TABLE")),
            ("SCHEMA T", p("USAGE")),
        ],
    );
    assert_eq!(
        summary(&scoped),
        vec![("SCHEMA S".to_string(), Lower, vec![p("USAGE")])]
    );
}

#[test]
fn the_plan_says_what_is_kept_at_every_key() {
    // X is deleted; Y declares a table one by one; an Observe member and a
    // suspended one keep theirs; another provider's resource holds one.
    let mut kept = unit(
        vec![
            member(&[])
                .owns(&[("ALL TABLES", p("SELECT"))])
                .phase(Phase::Deleting),
            member(&[("TABLE T1", p("SELECT"))]),
            member(&[("TABLE T2", with_grant("SELECT"))]).observe(),
            member(&[])
                .owns(&[("TABLE T3", p("INSERT"))])
                .phase(Phase::Suspended),
        ],
        &[
            ("ALL TABLES", p("SELECT")),
            ("TABLE T1", p("SELECT")),
            ("TABLE T4", p("SELECT")),
        ],
    );
    kept.foreign = vec![("TABLE T5".to_string(), p("SELECT"))];
    let planned = plan(&kept);
    assert_eq!(
        summary(&kept),
        vec![("ALL TABLES".to_string(), Revoke, vec![])]
    );
    assert_eq!(
        planned.kept,
        BTreeMap::from([
            ("TABLE T1".to_string(), BTreeSet::from([p("SELECT")])),
            (
                "TABLE T2".to_string(),
                BTreeSet::from([p("SELECT"), with_grant("SELECT")])
            ),
            ("TABLE T3".to_string(), BTreeSet::from([p("INSERT")])),
            ("TABLE T5".to_string(), BTreeSet::from([p("SELECT")])),
        ]),
        "keys nobody keeps (the deleted ALL, the unmanaged T4) are absent"
    );
}

#[test]
fn unmanaged_grants_are_counted() {
    let planned = plan(&unit(
        vec![member(&[("m1", U)])],
        &[("m1", U), ("m8", U), ("m9", A)],
    ));
    assert!(planned.actions.is_empty());
    assert_eq!(planned.unmanaged, 2);
}

fn rows<Q: Permission>(report: &Report<Q>) -> Vec<(String, Q, GrantState)> {
    report
        .rows
        .iter()
        .map(|row| (row.grantee.clone(), row.perm.clone(), row.state))
        .collect()
}

#[test]
fn report_rows_after_a_successful_sync() {
    let u = unit(
        vec![
            member(&[("m1", U), ("t1", A)]).unresolved("member:nobody@example.com", U),
            member(&[("m1", A)]).observe(),
        ],
        &[],
    );
    let planned = plan(&u);
    let after = applied(&u);
    let reports = report(
        &u,
        &planned,
        &after,
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("m1".to_string(), U, GrantState::Applied),
            ("t1".to_string(), A, GrantState::Applied),
            (
                "member:nobody@example.com".to_string(),
                U,
                GrantState::Failed
            ),
        ]
    );
    assert_eq!(reports[0].rows[0].vendor_id.as_deref(), Some("id-m1"));
    assert!(!reports[0].rows[2].resolved);
    // The observe member declared annotate; only usage is live.
    assert_eq!(
        rows(&reports[1]),
        vec![("m1".to_string(), A, GrantState::Drifted)]
    );
    assert_eq!(reports[1].rows[0].message, "declared annotate, live usage");
    assert_eq!(reports[0].drift_repaired, 0);
}

#[test]
fn report_failures_keep_memory_of_revocations() {
    let u = unit(
        vec![member(&[("m2", U)]).owns(&[("m1", A), ("m2", U)])],
        &[("m1", A)],
    );
    let planned = plan(&u);
    assert_eq!(planned.actions.len(), 2);
    let failures = BTreeMap::from([(
        "m1".to_string(),
        Failure {
            reason: Reason::VendorUnavailable,
            message: "Sigma answered 503".into(),
            retry_after: None,
        },
    )]);
    // The revocation of m1 failed: m1 is still live.
    let after = live(&[("m1", A), ("m2", U)]);
    let reports = report(
        &u,
        &planned,
        &after,
        &failures,
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("m2".to_string(), U, GrantState::Applied),
            ("m1".to_string(), A, GrantState::Failed),
        ]
    );
    assert!(reports[0].rows[1].message.starts_with(REVOCATION_MARK));
    assert_eq!(reports[0].failures.len(), 1);

    // Read back at the next sync, the revocation row is still ours and retried.
    let next = Unit {
        members: vec![Member {
            previous: reports[0]
                .rows
                .iter()
                .map(|row| PreviousRow {
                    key: row.grantee.clone(),
                    perm: row.perm,
                    state: row.state,
                    has_vendor_id: row.vendor_id.is_some(),
                    revocation: row.message.starts_with(REVOCATION_MARK),
                    intent: false,
                    until: None,
                })
                .collect(),
            ..member(&[("m2", U)])
        }],
        foreign: Vec::new(),
        live: after,
    };
    assert_eq!(summary(&next), vec![("m1".to_string(), Revoke, vec![])]);
}

#[test]
fn report_declared_row_fails_with_the_vendor_message() {
    let u = unit(vec![member(&[("m1", U), ("m2", U)])], &[]);
    let planned = plan(&u);
    let failures = BTreeMap::from([(
        "m2".to_string(),
        Failure {
            reason: Reason::InvalidGrant,
            message: "Sigma refused the grant: unknown member".into(),
            retry_after: None,
        },
    )]);
    let after = live(&[("m1", U)]);
    let reports = report(
        &u,
        &planned,
        &after,
        &failures,
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("m1".to_string(), U, GrantState::Applied),
            ("m2".to_string(), U, GrantState::Failed),
        ]
    );
    assert_eq!(
        reports[0].rows[1].message,
        "Sigma refused the grant: unknown member"
    );
    assert_eq!(reports[0].failures[0].reason, Reason::InvalidGrant);
}

#[test]
fn report_a_failure_at_a_key_fails_only_the_rows_not_live() {
    // One privilege of a set refused, the other applied; and a raise that failed
    // while another member's lower level is live.
    let sets = unit(vec![member(&[("r", p("SELECT")), ("r", p("BOGUS"))])], &[]);
    let planned = plan(&sets);
    let failures = BTreeMap::from([(
        "r".to_string(),
        Failure {
            reason: Reason::InvalidGrant,
            message: "BOGUS is not available".into(),
            retry_after: None,
        },
    )]);
    let reports = report(
        &sets,
        &planned,
        &live(&[("r", p("SELECT"))]),
        &failures,
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("r".to_string(), p("SELECT"), GrantState::Applied),
            ("r".to_string(), p("BOGUS"), GrantState::Failed),
        ]
    );
    assert_eq!(reports[0].failures[0].reason, Reason::InvalidGrant);

    let levels = unit(vec![member(&[("u", U)]), member(&[("u", A)])], &[]);
    let planned = plan(&levels);
    let failures = BTreeMap::from([(
        "u".to_string(),
        Failure {
            reason: Reason::Forbidden,
            message: "may not raise".into(),
            retry_after: None,
        },
    )]);
    let reports = report(
        &levels,
        &planned,
        &live(&[("u", U)]),
        &failures,
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![("u".to_string(), U, GrantState::Applied)]
    );
    assert!(reports[0].failures.is_empty(), "its grant is live");
    assert_eq!(
        rows(&reports[1]),
        vec![("u".to_string(), A, GrantState::Failed)]
    );
}

#[test]
fn report_counts_drift_repairs() {
    // m1 was applied before, removed behind our back, and is restored.
    let u = unit(
        vec![member(&[("m1", U), ("m2", U)]).owns(&[("m1", U), ("m2", U)])],
        &[("m2", U)],
    );
    let planned = plan(&u);
    let reports = report(
        &u,
        &planned,
        &applied(&u),
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(reports[0].drift_repaired, 1);

    // A first convergence is not drift.
    let first = unit(vec![member(&[("m1", U)])], &[]);
    let planned = plan(&first);
    let reports = report(
        &first,
        &planned,
        &applied(&first),
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(reports[0].drift_repaired, 0);

    // Authoritative: a grant added behind our back to a synced resource is drift.
    let pruned = unit(
        vec![
            member(&[("m1", U)])
                .owns(&[("m1", U)])
                .authoritative()
                .synced(),
        ],
        &[("m1", U), ("m9", U)],
    );
    let planned = plan(&pruned);
    let reports = report(
        &pruned,
        &planned,
        &applied(&pruned),
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(reports[0].drift_repaired, 1);
}

#[test]
fn report_deleting_member_is_done_when_nothing_is_pending() {
    let u = unit(
        vec![
            member(&[("m1", A)])
                .owns(&[("m1", A), ("m2", U)])
                .phase(Phase::Deleting),
            member(&[("m1", U)]).owns(&[("m1", U)]),
        ],
        &[("m1", A), ("m2", U)],
    );
    let planned = plan(&u);
    let reports = report(
        &u,
        &planned,
        &applied(&u),
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert!(reports[0].rows.is_empty(), "{:?}", reports[0].rows);
    assert_eq!(
        rows(&reports[1]),
        vec![("m1".to_string(), U, GrantState::Applied)]
    );
}

#[test]
fn report_held_back_revocations_are_remembered() {
    let u = unit(
        vec![
            member(&[("m1", U)])
                .owns(&[("m1", U), ("m2", U)])
                .unresolved("member:gone@example.com", U),
        ],
        &[("m1", U), ("m2", U)],
    );
    let planned = plan(&u);
    assert!(planned.actions.is_empty());
    let reports = report(
        &u,
        &planned,
        &u.live,
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("m1".to_string(), U, GrantState::Applied),
            ("member:gone@example.com".to_string(), U, GrantState::Failed),
            ("m2".to_string(), U, GrantState::Pending),
        ]
    );
    assert!(reports[0].rows[2].message.contains("held back"));
}

#[test]
fn report_observe_authoritative_counts_undeclared() {
    let u = unit(
        vec![member(&[("m1", U)]).observe().authoritative()],
        &[("m1", U), ("m8", U), ("m9", A)],
    );
    let planned = plan(&u);
    let reports = report(
        &u,
        &planned,
        &u.live,
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert_eq!(reports[0].undeclared, 2);
    assert!(reports[0].all_applied());
}

#[test]
fn maximal_and_close() {
    let set = close(&[A]);
    assert_eq!(set, BTreeSet::from([U, A]));
    assert_eq!(maximal(&set), vec![A]);
    let set = close(&[with_grant("USAGE"), p("SELECT")]);
    assert_eq!(maximal(&set), vec![p("SELECT"), with_grant("USAGE")]);
}

/// The member recorded these grants before a write that may land until `until`.
fn intending<Q: Permission>(
    mut member: Member<Q>,
    rows: &[(&str, Q)],
    until: Timestamp,
) -> Member<Q> {
    member
        .previous
        .extend(rows.iter().map(|(key, perm)| PreviousRow {
            key: key.to_string(),
            perm: perm.clone(),
            state: GrantState::Pending,
            has_vendor_id: false,
            revocation: false,
            intent: true,
            until: Some(until),
        }));
    member
}

#[test]
fn intents_name_what_each_declaring_member_is_about_to_get() {
    let u = unit(
        vec![
            member(&[("m1", A)]),
            member(&[("m1", U), ("m2", U)]),
            member(&[("m2", U)]).observe(),
            member(&[("m3", U)]).phase(Phase::Suspended),
        ],
        &[("m2", U)],
    );
    let planned = plan(&u);
    assert_eq!(
        intents(&u, &planned),
        vec![
            vec![("m1".to_string(), A)],
            vec![("m1".to_string(), U)],
            vec![],
            vec![]
        ],
        "m2 is live already; observers and suspended members record nothing"
    );
}

#[test]
fn a_write_that_may_still_land_is_watched_until_then() {
    let now = Timestamp::from_second(1_000).unwrap();
    let later = Timestamp::from_second(2_000).unwrap();
    // Recorded before a write of m1 (declared no more) and m2 (declared), neither
    // seen live: both stay the member's until the write can no longer land.
    let u = unit(
        vec![intending(
            member(&[("m2", U)]),
            &[("m1", U), ("m2", U)],
            later,
        )],
        &[],
    );
    let planned = plan(&u);
    assert!(
        planned.actions.iter().all(|action| action.key == "m2"),
        "nothing live to revoke: {:?}",
        planned.actions
    );
    let reports = report(&u, &planned, &u.live, &BTreeMap::new(), Watch::at(now));
    assert_eq!(
        rows(&reports[0]),
        vec![
            ("m2".to_string(), U, GrantState::Pending),
            ("m1".to_string(), U, GrantState::Pending),
        ]
    );
    assert!(reports[0].rows[0].message.starts_with(INTENT_MARK));
    assert!(reports[0].rows[1].message.starts_with(REVOCATION_MARK));
    assert_eq!(watched_until(&reports[0].rows[1].message), Some(later));

    // Once it can no longer land, a row that shows nothing live is dropped.
    let reports = report(&u, &planned, &u.live, &BTreeMap::new(), Watch::at(later));
    assert_eq!(
        rows(&reports[0]),
        vec![("m2".to_string(), U, GrantState::Pending)]
    );
    assert!(!reports[0].rows[0].message.starts_with(INTENT_MARK));

    // It landed late: it is the member's, and revoked as undeclared.
    let u = unit(
        vec![intending(member(&[]), &[("m1", U)], later)],
        &[("m1", U)],
    );
    let planned = plan(&u);
    assert_eq!(
        planned
            .actions
            .iter()
            .map(|a| (a.key.as_str(), a.kind()))
            .collect::<Vec<_>>(),
        vec![("m1", Revoke)]
    );
}

#[test]
fn watched_times_are_read_back_from_messages() {
    let at = Timestamp::from_second(1_700_000_000).unwrap();
    let watched = format!(
        "{WATCHED_MARK}: a write sent earlier may still be carried out; watched {WATCH} {at}"
    );
    assert_eq!(watched_until(&watched), Some(at));
    assert_eq!(watched_until(&intent_message("sigma")), None);
    assert_eq!(
        watched_until("not live yet; checked again at the next sync"),
        None
    );
}

#[test]
fn a_joining_member_gets_nothing_and_loses_nothing() {
    // m1 is live (held by nobody else, owned by the deleting member); the joining
    // member declares m1 and m2: m1 is kept, m2 not granted.
    let u = unit(
        vec![
            member(&[("m1", U), ("m2", A)]).phase(Phase::Joining),
            member(&[]).owns(&[("m1", U)]).phase(Phase::Deleting),
        ],
        &[("m1", U)],
    );
    let planned = plan(&u);
    assert!(planned.actions.is_empty(), "{:?}", planned.actions);
    let reports = report(
        &u,
        &planned,
        &u.live,
        &BTreeMap::new(),
        Watch::at(Timestamp::UNIX_EPOCH),
    );
    assert!(reports[0].rows.is_empty(), "no status is written for it");
    assert_eq!(intents(&u, &planned), vec![vec![], vec![]]);
}
