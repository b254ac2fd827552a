//! Access never outlives its declaration: the holes of "crash-safe ownership,
//! fair scheduling, bounded state", each with a test.
//!
//! - cleanup decides from the resource as the API server has it, not from the
//!   (possibly stale) object its reconcile was handed;
//! - every map kept per resource, unit, alias or provider is empty once the
//!   resources and providers are gone, on every cleanup path;
//! - a unit whose vendor hangs holds no reconcile slot that other units need.
//!
//! (The write-ahead ordering itself is checked call by call in `kube_mock.rs`,
//! and under kills and faults in `tests/crash/`.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, GrafanaDatasourceRef, GrafanaGrant, GrafanaPermission, GrafanaPermissionsApi,
    GrantProvider, GrantStatus, ManagementPolicy, ProviderRef, SigmaGrant, SigmaPermission::*,
};
use grant_operator::controller::Config;
use grant_operator::controller::units::Watched;
use grant_operator::metrics::Metrics;
use support::*;

/// Every map of the Sigma controller and the shared context that is kept per
/// resource, unit, alias or provider.
fn kept(h: &Harness) -> (usize, usize, usize, usize) {
    (
        h.grants.units.len(),
        h.grants.aliases.len(),
        h.context.clients.len(),
        h.context.lanes.len(),
    )
}

/// A harness with the Sigma provider `sigma-prod` Ready and `jane` a member.
async fn sigma() -> (Harness, String) {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    (h, jane)
}

/// Settles `name` and checks it is Synced.
async fn synced(h: &Harness, name: &str) {
    h.settle(name).await.unwrap();
    assert_eq!(h.ready_condition(name).reason, "Synced");
}

#[tokio::test]
async fn cleanup_decides_from_the_resource_as_the_api_server_has_it() {
    let (h, jane) = sigma().await;
    h.put(&jane_readers());
    synced(&h, "readers").await;
    assert_eq!(h.live().len(), 1);

    // The resource is deleted while its provider is gone, so the revocation fails.
    // The object this reconcile is handed is an older copy, from before the sync
    // that granted (as a cache that has not caught up would hand it): no rows.
    h.kube.delete::<GrantProvider>(Some(NS), "sigma-prod");
    h.delete("readers");
    h.caught_up().await;
    let current = h.get("readers").expect("the finalizer holds it");
    let mut stale = current.clone();
    stale.status = Some(GrantStatus::default());
    let result = reconcile_through(
        Arc::new(Watched {
            object: Ok(Arc::new(stale)),
        }),
        h.grants.clone(),
    )
    .await;
    assert!(result.is_err(), "{result:?}");
    h.caught_up().await;
    assert!(
        h.get("readers").is_some(),
        "the finalizer stays: the API server's rows own a live grant"
    );
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
}

#[tokio::test]
async fn nothing_is_kept_after_a_deleted_resource_is_revoked() {
    let (h, _) = sigma().await;
    h.put(&jane_readers());
    synced(&h, "readers").await;
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert!(h.live().is_empty());
    assert_eq!((h.grants.units.len(), h.grants.aliases.len()), (0, 0));
}

#[tokio::test]
async fn nothing_is_kept_after_an_orphaned_resource_goes() {
    let (h, _) = sigma().await;
    let mut grant = jane_readers();
    grant.spec.policy.deletion_policy = DeletionPolicy::Orphan;
    h.put(&grant);
    synced(&h, "readers").await;
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!(h.live().len(), 1, "Orphan leaves the grant");
    assert_eq!((h.grants.units.len(), h.grants.aliases.len()), (0, 0));
}

#[tokio::test]
async fn nothing_is_kept_after_an_observing_resource_goes() {
    let (h, jane) = sigma().await;
    h.sigma.seed_grant(
        CONNECTION,
        support::sigma::Grantee::Member(jane.clone()),
        "usage",
    );
    let mut grant = jane_readers();
    grant.spec.policy.management_policy = ManagementPolicy::Observe;
    h.put(&grant);
    synced(&h, "readers").await;
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!((h.grants.units.len(), h.grants.aliases.len()), (0, 0));
}

#[tokio::test]
async fn nothing_is_kept_after_a_suspended_resource_goes() {
    let (h, _) = sigma().await;
    // Suspended before it ever applied anything: released at once.
    let mut idle = sigma_grant("idle", vec![member("jane@example.com", Usage)]);
    idle.spec.policy.suspend = true;
    h.put(&idle);
    h.settle("idle").await.unwrap();
    // Suspended while holding a grant: deletion waits until it is resumed.
    h.put(&sigma_grant(
        "holding",
        vec![member("jane@example.com", Annotate)],
    ));
    synced(&h, "holding").await;
    h.edit("holding", |spec| spec.policy.suspend = true);
    h.settle("holding").await.unwrap();
    h.delete("idle");
    h.delete("holding");
    h.settle("idle").await.unwrap();
    assert!(h.get("idle").is_none());
    assert_eq!(h.settle("holding").await.unwrap_err().reason(), "Deleting");
    assert!(h.get("holding").is_some());
    h.edit("holding", |spec| spec.policy.suspend = false);
    h.settle("holding").await.unwrap();
    assert!(h.get("holding").is_none());
    assert!(h.live().is_empty());
    assert_eq!((h.grants.units.len(), h.grants.aliases.len()), (0, 0));
}

#[tokio::test]
async fn nothing_is_kept_after_a_failing_resource_goes() {
    // No provider at all: every sync fails; the resource never applied anything.
    let h = Harness::new().await;
    h.put(&jane_readers());
    assert_eq!(
        h.settle("readers").await.unwrap_err().reason(),
        "ProviderNotFound"
    );
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!((h.grants.units.len(), h.grants.aliases.len()), (0, 0));
}

#[tokio::test]
async fn a_changed_provider_ref_leaves_no_unit_behind() {
    let (h, _) = sigma().await;
    h.put(&h.sigma_provider(NS, "sigma-other", "sigma-api"));
    h.reconcile_provider(NS, "sigma-other").await.unwrap();
    h.put(&jane_readers());
    synced(&h, "readers").await;
    assert_eq!(h.grants.units.len(), 1);
    h.edit("readers", |spec| {
        spec.policy.provider_ref = ProviderRef {
            kind: Default::default(),
            name: "sigma-other".into(),
        }
    });
    synced(&h, "readers").await;
    assert_eq!(
        h.grants.units.len(),
        1,
        "only the unit of the provider in use is kept"
    );
}

#[tokio::test]
async fn a_deleted_provider_takes_its_client_and_lane_with_it() {
    let (h, _) = sigma().await;
    h.put(&jane_readers());
    synced(&h, "readers").await;
    assert_eq!(kept(&h).2, 1, "one client");
    assert_eq!(kept(&h).3, 1, "one lane");
    h.delete("readers");
    h.settle("readers").await.unwrap();
    h.kube.delete::<GrantProvider>(Some(NS), "sigma-prod");
    h.caught_up().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while kept(&h) != (0, 0, 0, 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kept(&h), (0, 0, 0, 0), "units, aliases, clients, lanes");
}

#[tokio::test]
async fn aliases_of_a_data_source_are_forgotten_with_their_resources() {
    let h = Harness::new().await;
    h.grafana.set_apis(false, true);
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    h.reconcile_provider(NS, "grafana").await.unwrap();
    // One resource names the data source by uid, another by name: aliases.
    h.put(&grafana_grant(
        "by-uid",
        vec![user_login("jane", GrafanaPermission::Query)],
    ));
    let mut by_name = grafana_grant(
        "by-name",
        vec![user_login("jane", GrafanaPermission::Query)],
    );
    by_name.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: Some(DATASOURCE_NAME.into()),
        id: None,
    };
    h.put(&by_name);
    for name in ["by-uid", "by-name"] {
        h.settle_of::<GrafanaGrant>(name).await.unwrap();
    }
    assert!(!h.grafana_grants.aliases.is_empty());
    for name in ["by-uid", "by-name"] {
        h.delete_of::<GrafanaGrant>(name);
        h.settle_of::<GrafanaGrant>(name).await.unwrap();
    }
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
    assert_eq!(
        (h.grafana_grants.units.len(), h.grafana_grants.aliases.len()),
        (0, 0)
    );
}

#[tokio::test]
async fn a_resource_deleted_without_a_sync_leaves_nothing_behind() {
    // Deleted without the finalizer (never reconciled): the watch's delete event
    // is what tells the controller.
    let (h, _) = sigma().await;
    h.put(&jane_readers());
    synced(&h, "readers").await;
    assert_eq!(h.grants.units.len(), 1);
    let mut released = h.get("readers").unwrap();
    released.metadata.finalizers = None;
    h.put(&released);
    h.delete("readers");
    h.caught_up().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !h.grants.units.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.grants.units.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_vendor_holds_no_reconcile_slot_others_need() {
    let h = Harness::new().await;
    h.sigma_api_secret();
    h.sigma.add_member("jane@example.com");
    // Two providers on the same Sigma account; every call on the first one's
    // connection hangs for a minute.
    let hanging = "c-hanging";
    h.sigma.add_connection(hanging);
    h.sigma.inject(support::sigma::Fault {
        method: None,
        path_prefix: format!("/v2/connections/{hanging}"),
        times: 1000,
        kind: support::sigma::FaultKind::Delay(Duration::from_secs(60)),
    });
    let mut slow = h.sigma_provider(NS, "sigma-slow", "sigma-api");
    slow.spec.request_timeout_seconds = Some(60);
    h.put(&slow);
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    for index in 0..3 {
        let mut grant = sigma_grant(
            &format!("slow-{index}"),
            vec![member("jane@example.com", Usage)],
        );
        grant.spec.connection_id = hanging.into();
        grant.spec.policy.provider_ref.name = "sigma-slow".into();
        h.put(&grant);
    }
    h.caught_up().await;

    // One reconcile at a time: the hanging syncs must not hold it.
    let config = Config {
        concurrency: 1,
        ..fast_config()
    };
    let operator = RunningOperator::start(h.kube.client(), config, Arc::new(Metrics::new()));
    let ready = |name: &str| {
        h.kube
            .get::<GrantProvider>(Some(NS), name)
            .and_then(|provider| provider.status)
            .is_some_and(|status| status.conditions.iter().any(|c| c.status == "True"))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(ready("sigma-slow") && ready("sigma-prod")) {
        assert!(tokio::time::Instant::now() < deadline, "providers Ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The slow resources are now stuck in their vendor calls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.put(&sigma_grant(
        "fast",
        vec![member("jane@example.com", Usage)],
    ));
    let synced = || h.has_reason::<SigmaGrant>("fast", "Synced");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !synced() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a resource on a healthy provider converges while another provider's vendor hangs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.sigma.calls().iter().any(|call| call
            .path
            .starts_with(&format!("/v2/connections/{hanging}"))
            && call.status == 0),
        "the slow provider's calls are still hanging"
    );
    operator.stop(Duration::from_secs(5)).await.ok();
}

#[tokio::test]
async fn a_reconcile_that_reports_a_condition_never_writes_older_rows_back() {
    let (h, jane) = sigma().await;
    h.put(&jane_readers());
    synced(&h, "readers").await;
    // Suspended: its reconcile only reports the condition. Handed a copy from
    // before the first sync (no status at all), it must not write that copy's
    // (missing) rows back: they are the only memory of the live grant.
    h.edit("readers", |spec| spec.policy.suspend = true);
    h.caught_up().await;
    let mut stale = h.get("readers").unwrap();
    stale.status = None;
    let _ = grant_operator::controller::grant::reconcile(
        Arc::new(Watched {
            object: Ok(Arc::new(stale)),
        }),
        h.grants.clone(),
    )
    .await;
    h.settle("readers").await.unwrap();
    assert_eq!(h.ready_condition("readers").reason, "Suspended");
    let rows = h.status("readers").grants;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].grantee, format!("member:{jane}"));
    // So deleting it later still revokes.
    h.delete("readers");
    h.edit("readers", |spec| spec.policy.suspend = false);
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn nothing_is_granted_for_a_resource_before_it_holds_the_finalizer() {
    let (h, jane) = sigma().await;
    let bob = h.sigma.add_member("bob@example.com");
    h.put(&sigma_grant(
        "first",
        vec![member("jane@example.com", Usage)],
    ));
    synced(&h, "first").await;
    // "second" is on the same connection but its own reconcile has not run: no
    // finalizer yet. A sync for "first" must not grant what "second" declares (if
    // "second" were deleted now, nothing would revoke it), nor take it away.
    h.put(&sigma_grant(
        "second",
        vec![member("bob@example.com", Annotate)],
    ));
    h.edit("first", |spec| {
        spec.grants = vec![
            member("jane@example.com", Usage),
            member("bob@example.com", Usage),
        ]
    });
    synced(&h, "first").await;
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{bob}"), "usage".to_string()),
            (format!("member:{jane}"), "usage".to_string()),
        ]),
        "bob holds what \"first\" declares, not \"second\"'s annotate"
    );
    assert!(h.get("second").unwrap().status.is_none());
    // Deleted before its reconcile ever ran: nothing of it was granted.
    h.delete("second");
    h.caught_up().await;
    assert!(h.get("second").is_none());
    h.edit("first", |spec| {
        spec.grants = vec![member("jane@example.com", Usage)]
    });
    synced(&h, "first").await;
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
}
