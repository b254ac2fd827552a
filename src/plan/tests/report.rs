//! The rows, drift repairs and failures a report gives after a sync.

use super::*;
use ActionKind::Revoke;

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
    let reports = report_at_epoch(&u, &planned, &after, &BTreeMap::new());
    assert_rows(
        &reports[0],
        &[
            ("m1", U, GrantState::Applied),
            ("t1", A, GrantState::Applied),
            ("member:nobody@example.com", U, GrantState::Failed),
        ],
    );
    assert_eq!(reports[0].rows[0].vendor_id.as_deref(), Some("id-m1"));
    assert!(!reports[0].rows[2].resolved);
    // The observe member declared annotate; only usage is live.
    assert_rows(&reports[1], &[("m1", A, GrantState::Drifted)]);
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
    let failures = failure_at("m1", Reason::VendorUnavailable, "Sigma answered 503");
    // The revocation of m1 failed: m1 is still live.
    let after = live(&[("m1", A), ("m2", U)]);
    let reports = report_at_epoch(&u, &planned, &after, &failures);
    assert_rows(
        &reports[0],
        &[
            ("m2", U, GrantState::Applied),
            ("m1", A, GrantState::Failed),
        ],
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
    let failures = failure_at(
        "m2",
        Reason::InvalidGrant,
        "Sigma refused the grant: unknown member",
    );
    let after = live(&[("m1", U)]);
    let reports = report_at_epoch(&u, &planned, &after, &failures);
    assert_rows(
        &reports[0],
        &[
            ("m1", U, GrantState::Applied),
            ("m2", U, GrantState::Failed),
        ],
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
    let failures = failure_at("r", Reason::InvalidGrant, "BOGUS is not available");
    let reports = report_at_epoch(&sets, &planned, &live(&[("r", p("SELECT"))]), &failures);
    assert_rows(
        &reports[0],
        &[
            ("r", p("SELECT"), GrantState::Applied),
            ("r", p("BOGUS"), GrantState::Failed),
        ],
    );
    assert_eq!(reports[0].failures[0].reason, Reason::InvalidGrant);

    let levels = unit(vec![member(&[("u", U)]), member(&[("u", A)])], &[]);
    let planned = plan(&levels);
    let failures = failure_at("u", Reason::Forbidden, "may not raise");
    let reports = report_at_epoch(&levels, &planned, &live(&[("u", U)]), &failures);
    assert_rows(&reports[0], &[("u", U, GrantState::Applied)]);
    assert!(reports[0].failures.is_empty(), "its grant is live");
    assert_rows(&reports[1], &[("u", A, GrantState::Failed)]);
}

#[test]
fn report_counts_drift_repairs() {
    // m1 was applied before, removed behind our back, and is restored.
    let u = unit(vec![holding(&[("m1", U), ("m2", U)])], &[("m2", U)]);
    let planned = plan(&u);
    let reports = report_at_epoch(&u, &planned, &applied(&u), &BTreeMap::new());
    assert_eq!(reports[0].drift_repaired, 1);

    // A first convergence is not drift.
    let first = unit(vec![member(&[("m1", U)])], &[]);
    let planned = plan(&first);
    let reports = report_at_epoch(&first, &planned, &applied(&first), &BTreeMap::new());
    assert_eq!(reports[0].drift_repaired, 0);

    // Authoritative: a grant added behind our back to a synced resource is drift.
    let pruned = unit(
        vec![holding(&[("m1", U)]).authoritative().synced()],
        &[("m1", U), ("m9", U)],
    );
    let planned = plan(&pruned);
    let reports = report_at_epoch(&pruned, &planned, &applied(&pruned), &BTreeMap::new());
    assert_eq!(reports[0].drift_repaired, 1);
}

#[test]
fn report_deleting_member_is_done_when_nothing_is_pending() {
    let u = unit(
        vec![
            member(&[("m1", A)])
                .owns(&[("m1", A), ("m2", U)])
                .phase(Phase::Deleting),
            holding(&[("m1", U)]),
        ],
        &[("m1", A), ("m2", U)],
    );
    let planned = plan(&u);
    let reports = report_at_epoch(&u, &planned, &applied(&u), &BTreeMap::new());
    assert!(reports[0].rows.is_empty(), "{:?}", reports[0].rows);
    assert_rows(&reports[1], &[("m1", U, GrantState::Applied)]);
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
    let reports = report_at_epoch(&u, &planned, &u.live, &BTreeMap::new());
    assert_rows(
        &reports[0],
        &[
            ("m1", U, GrantState::Applied),
            ("member:gone@example.com", U, GrantState::Failed),
            ("m2", U, GrantState::Pending),
        ],
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
    let reports = report_at_epoch(&u, &planned, &u.live, &BTreeMap::new());
    assert_eq!(reports[0].undeclared, 2);
    assert!(reports[0].all_applied());
}
