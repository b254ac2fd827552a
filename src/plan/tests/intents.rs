//! Intents before a write, writes that may still land, and joining members.

use super::*;
use ActionKind::Revoke;

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
    assert_rows(
        &reports[0],
        &[
            ("m2", U, GrantState::Pending),
            ("m1", U, GrantState::Pending),
        ],
    );
    assert!(reports[0].rows[0].message.starts_with(INTENT_MARK));
    assert!(reports[0].rows[1].message.starts_with(REVOCATION_MARK));
    assert_eq!(watched_until(&reports[0].rows[1].message), Some(later));

    // Once it can no longer land, a row that shows nothing live is dropped.
    let reports = report(&u, &planned, &u.live, &BTreeMap::new(), Watch::at(later));
    assert_rows(&reports[0], &[("m2", U, GrantState::Pending)]);
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
    let reports = report_at_epoch(&u, &planned, &u.live, &BTreeMap::new());
    assert!(reports[0].rows.is_empty(), "no status is written for it");
    assert_eq!(intents(&u, &planned), vec![vec![], vec![]]);
}
