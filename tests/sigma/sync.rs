//! Sync modes and steady state: `Observe`, drift repaired and counted, one
//! listing for many resources, suspended resources.

use super::*;

#[tokio::test]
async fn observe_writes_nothing_and_reports_drift() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(jane.clone()), "usage");
    let mut grant = sigma_grant(
        "watching",
        vec![
            member("jane@example.com", Annotate),
            member("joe@example.com", Usage),
        ],
    );
    grant.spec.policy.management_policy = grant_operator::api::ManagementPolicy::Observe;
    h.put(&grant);
    h.settle("watching").await.unwrap();

    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())],
        "nothing written"
    );
    assert_eq!(h.sigma.count("POST", "/v2/connections"), 0);
    assert_eq!(h.sigma.count("DELETE", "/v2/connections"), 0);
    let ready = h.ready_condition("watching");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DriftDetected"),
        "{ready:?}"
    );
    assert!(
        ready.message.contains("2 of 2 grants differ"),
        "{}",
        ready.message
    );
    let rows = h.status("watching").grants;
    assert!(
        rows.iter().all(|row| row.state == GrantState::Drifted),
        "{rows:?}"
    );
    assert_eq!(rows[0].message, "declared annotate, live usage");

    // Deleting an observing resource revokes nothing.
    h.delete("watching");
    h.settle("watching").await.unwrap();
    assert!(h.get("watching").is_none());
    assert_eq!(h.live().len(), 1);
}

#[tokio::test]
async fn drift_is_repaired_at_the_next_sync_and_counted() {
    let (h, jane) = jane_reads().await;
    let grant_id = h.sigma.grants(CONNECTION)[0].grant_id.clone();

    // Someone removes the grant in Sigma's UI.
    h.sigma.delete_grant_directly(CONNECTION, &grant_id);
    // Not due yet: nothing happens.
    h.sigma.clear_calls();
    h.reconcile("readers").await.unwrap();
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "no vendor call before the sync interval"
    );
    assert!(h.live().is_empty());

    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    let status = h.status("readers");
    assert_eq!(status.drift_corrections, 1);
    assert!(
        h.events("readers")
            .iter()
            .any(|(_, reason, _)| reason == "DriftRepaired")
    );
    assert_eq!(
        h.metrics
            .drift_repairs
            .get_or_create(&grant_operator::metrics::KindLabels { kind: "SigmaGrant" })
            .get(),
        1
    );
}

#[tokio::test]
async fn steady_state_sync_is_one_listing_for_many_resources_and_no_writes() {
    let h = Harness::ready().await;
    for i in 0..5 {
        h.sigma.add_member(&format!("user{i}@example.com"));
    }
    for i in 0..5 {
        h.put(&sigma_grant(
            &format!("g{i}"),
            vec![member(&format!("user{i}@example.com"), Usage)],
        ));
    }
    for i in 0..5 {
        h.settle(&format!("g{i}")).await.unwrap();
    }
    assert_eq!(h.live().len(), 5);

    h.advance(Duration::from_secs(61));
    h.sigma.clear_calls();
    for i in 0..5 {
        h.settle(&format!("g{i}")).await.unwrap();
    }
    let calls: Vec<String> = h
        .sigma
        .calls()
        .into_iter()
        .map(|call| format!("{} {}", call.method, call.path))
        .collect();
    assert_eq!(
        calls,
        vec![format!("GET /v2/connections/{CONNECTION}/grants")],
        "one listing, no lookups, no writes"
    );
}

#[tokio::test]
async fn suspended_resources_make_no_vendor_calls() {
    let (h, _) = jane_reads().await;
    h.edit("readers", |spec| spec.policy.suspend = true);
    h.sigma.clear_calls();
    h.advance(Duration::from_secs(600));
    h.settle("readers").await.unwrap();
    assert_eq!(h.sigma.calls().len(), 0);
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Suspended"),
        "Ready keeps its status"
    );

    // Deleting while suspended waits (nothing is forgotten), Orphan releases it.
    h.delete("readers");
    assert!(h.settle("readers").await.is_err());
    assert!(h.get("readers").is_some());
    assert_eq!(h.ready_condition("readers").reason, "Deleting");
    assert_eq!(h.sigma.calls().len(), 0);
    h.edit("readers", |spec| spec.policy.suspend = false);
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn a_suspended_resource_keeps_its_status_when_its_provider_breaks() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "paused",
        vec![member("jane@example.com", Usage)],
    ));
    h.put(&sigma_grant(
        "active",
        vec![member("jane@example.com", Usage)],
    ));
    h.settle("paused").await.unwrap();
    h.settle("active").await.unwrap();
    h.edit("paused", |spec| spec.policy.suspend = true);
    h.settle("paused").await.unwrap();
    assert_eq!(h.ready_condition("paused").reason, "Suspended");

    // The provider goes away; the active neighbour's sync reports it, the suspended one is left alone.
    h.kube
        .delete::<grant_operator::api::GrantProvider>(Some(NS), "sigma-prod");
    h.edit("active", |spec| spec.grants[0].permission = Annotate);
    assert_eq!(
        h.settle("active").await.unwrap_err().reason(),
        "ProviderNotFound"
    );
    assert_eq!(h.ready_condition("paused").reason, "Suspended");
}
