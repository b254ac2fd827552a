//! SigmaGrant end to end over real HTTP: the real reconcilers against the strict
//! Sigma emulator, with the Kubernetes side on an in-memory API.

mod support;

use std::time::Duration;

use grant_operator::api::{GrantState, SigmaPermission::*};
use support::*;

#[tokio::test]
async fn create_applies_grants_with_ids_in_status_and_finalizer_first() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let finance = h.sigma.add_team("Finance");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Annotate), team("Finance", Usage)],
    ));

    // First reconcile: only the finalizer, no vendor call at all.
    h.reconcile("readers").await.unwrap();
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "no vendor call before the finalizer is in place"
    );
    let grant = h.get("readers").unwrap();
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );

    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("team:{finance}"), "usage".to_string())
        ]
    );
    let status = h.status("readers");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Synced")
    );
    assert_eq!(ready.message, "2 of 2 grants applied");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.target.unwrap().connection_id.as_deref(),
        Some(CONNECTION)
    );
    assert_eq!(status.grants.len(), 2);
    let ids: Vec<String> = h
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    for row in &status.grants {
        assert_eq!(row.state, GrantState::Applied);
        assert!(
            ids.contains(row.vendor_id.as_ref().unwrap()),
            "row {row:?} carries a live grant id"
        );
    }
    assert_eq!(status.grants[0].grantee, format!("member:{jane}"));
    assert_eq!(status.grants[0].permission, "annotate");
    assert!(status.last_sync_time.is_some());
    assert_eq!(status.drift_corrections, 0);
    let events = h.events("readers");
    assert!(
        events
            .iter()
            .any(|(kind, reason, _)| kind == "Normal" && reason == "Granted"),
        "{events:?}"
    );
}

#[tokio::test]
async fn raise_and_lower_a_permission() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );

    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "annotate".to_string())]
    );
    assert_eq!(h.status("readers").observed_generation, Some(2));

    h.sigma.clear_calls();
    h.edit("readers", |spec| spec.grants[0].permission = Usage);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    // Lowering is a revoke, then a grant.
    let writes: Vec<String> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET" && !call.path.ends_with("/auth/token"))
        .map(|call| call.method)
        .collect();
    assert_eq!(writes, vec!["DELETE", "POST"]);
    let row = &h.status("readers").grants[0];
    assert_eq!(
        (row.permission.as_str(), row.state),
        ("usage", GrantState::Applied)
    );
}

#[tokio::test]
async fn removing_a_grant_from_the_spec_revokes_it() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.put(&sigma_grant(
        "readers",
        vec![
            member("jane@example.com", Usage),
            member("joe@example.com", Usage),
        ],
    ));
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 2);

    h.edit("readers", |spec| spec.grants.truncate(1));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    assert_eq!(h.status("readers").grants.len(), 1);
    assert!(
        h.events("readers")
            .iter()
            .any(|(_, reason, _)| reason == "Revoked")
    );
}

#[tokio::test]
async fn deleting_revokes_and_releases_the_resource() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 1);

    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty());
    assert!(h.get("readers").is_none(), "finalizer removed, object gone");
    let _ = Duration::ZERO;
}
