//! The plan's rules: levels, privilege sets, grant options, what is kept, unmanaged grants.

use super::*;
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
            unit: unit(vec![holding(&[("m1", U)])], &[("m1", U)]),
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
                    holding(&[("m1", U)]).phase(Phase::Deleting),
                    holding(&[("m2", U)]),
                ],
                &[("m1", U), ("m2", U)],
            ),
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "deletion keeps what another resource declares",
            unit: unit(
                vec![
                    holding(&[("m1", U)]).phase(Phase::Deleting),
                    holding(&[("m1", U)]),
                ],
                &[("m1", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "deletion lowers to what the others still declare",
            unit: unit(
                vec![
                    holding(&[("m1", A)]).phase(Phase::Deleting),
                    holding(&[("m1", U)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "deletion of the lower declaration keeps the higher level",
            unit: unit(
                vec![
                    holding(&[("m1", U)]).phase(Phase::Deleting),
                    holding(&[("m1", A)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![],
        },
        Case {
            name: "expiry revokes like deletion",
            unit: unit(
                vec![holding(&[("m1", U)]).phase(Phase::Expired)],
                &[("m1", U)],
            ),
            expect: vec![("m1", Revoke, vec![])],
        },
        Case {
            name: "expiry keeps what another resource declares",
            unit: unit(
                vec![
                    holding(&[("m1", A)]).phase(Phase::Expired),
                    holding(&[("m1", U)]),
                ],
                &[("m1", A)],
            ),
            expect: vec![("m1", Lower, vec![U])],
        },
        Case {
            name: "additive leaves grants nobody declares",
            unit: unit(vec![holding(&[("m1", U)])], &[("m1", U), ("m9", A)]),
            expect: vec![],
        },
        Case {
            name: "authoritative revokes grants nobody declares",
            unit: unit(
                vec![holding(&[("m1", U)]).authoritative()],
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
            unit: unit(vec![holding(&[("m1", U)])], &[("m1", A)]),
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
                    holding(&[("m1", U)])
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
                vec![holding(&[("m1", U)]).phase(Phase::Suspended)],
                &[("m1", U)],
            ),
            expect: vec![],
        },
        Case {
            name: "deleting observe member revokes nothing",
            unit: unit(
                vec![holding(&[("m1", U)]).observe().phase(Phase::Deleting)],
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
                    holding(&[("m1", U)]).authoritative(),
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
            holding(&[("r1", p("SELECT"))]),
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

#[test]
fn maximal_and_close() {
    let set = close(&[A]);
    assert_eq!(set, BTreeSet::from([U, A]));
    assert_eq!(maximal(&set), vec![A]);
    let set = close(&[with_grant("USAGE"), p("SELECT")]);
    assert_eq!(maximal(&set), vec![p("SELECT"), with_grant("USAGE")]);
}
