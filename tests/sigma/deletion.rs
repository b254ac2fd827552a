//! Deletion and the finalizer: revoking on delete, `Orphan`, expired
//! resources, unreachable providers, resources that never applied anything,
//! grants already gone.

use super::*;

#[tokio::test]
async fn deleting_revokes_and_releases_the_resource() {
    let (h, _) = jane_reads().await;
    assert_eq!(h.live().len(), 1);

    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty());
    assert!(h.get("readers").is_none(), "finalizer removed, object gone");
    assert!(
        h.grants.units.is_empty(),
        "the unit's state goes with its last member"
    );
}

#[tokio::test]
async fn orphan_leaves_grants_in_place() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    let mut grant = jane_readers();
    grant.spec.policy.deletion_policy = grant_operator::api::DeletionPolicy::Orphan;
    h.put(&grant);
    h.settle("readers").await.unwrap();
    h.sigma.clear_calls();

    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!(h.live().len(), 1, "orphaned grant stays");
    assert_eq!(h.sigma.count("DELETE", "/v2/"), 0);
}

#[tokio::test]
async fn an_expired_resource_revokes_its_grants() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    let mut grant = sigma_grant("temporary", vec![member("jane@example.com", Usage)]);
    grant.spec.policy.expires_at = Some(time(h.clock.now_plus(Duration::from_secs(30))));
    h.put(&grant);
    let action = h.settle("temporary").await.unwrap();
    assert_eq!(h.live().len(), 1);
    // Requeued to wake up at the expiry (Time has one-second precision), not after the full interval.
    let wait = requeue_after(&action);
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_millis(30_100),
        "{action:?}"
    );

    h.advance(Duration::from_secs(31));
    h.settle("temporary").await.unwrap();
    assert!(h.live().is_empty());
    let ready = h.ready_condition("temporary");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Expired")
    );
    assert!(h.get("temporary").is_some(), "the resource itself stays");
    assert!(h.status("temporary").grants.is_empty());
}

#[tokio::test]
async fn deletion_waits_for_an_unreachable_provider_and_orphan_releases() {
    let (h, _) = jane_reads().await;

    h.kube
        .delete::<grant_operator::api::GrantProvider>(Some(NS), "sigma-prod");
    h.delete("readers");
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "Deleting");
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "Deleting");
    assert!(ready.message.contains("not found"), "{}", ready.message);
    assert!(
        h.get("readers").is_some(),
        "the finalizer stays: the grant is still live"
    );

    h.edit("readers", |spec| {
        spec.policy.deletion_policy = grant_operator::api::DeletionPolicy::Orphan
    });
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!(h.live().len(), 1);
}

#[tokio::test]
async fn a_resource_that_never_applied_anything_deletes_without_a_provider() {
    let h = Harness::new().await;
    h.put(&jane_readers());
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "ProviderNotFound");
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
}

#[tokio::test]
async fn revoking_a_grant_that_is_already_gone_counts_as_revoked() {
    use grant_operator::vendor_api::http::{HttpClient, HttpConfig};
    use grant_operator::vendor_api::sigma::client::{Credentials, SigmaApi};
    let h = Harness::new().await;
    let http = HttpClient::new(
        grant_operator::api::VendorKind::Sigma,
        &HttpConfig {
            retry: fast_retries(),
            ..HttpConfig::default()
        },
        h.metrics.clone(),
    )
    .unwrap();
    let api = SigmaApi::new(
        http,
        &h.sigma.url(),
        Credentials {
            client_id: CLIENT_ID.to_string().into(),
            client_secret: CLIENT_SECRET.to_string().into(),
        },
    );
    api.revoke_grant(CONNECTION, "no-such-grant").await.unwrap();
    assert_eq!(h.sigma.calls().last().unwrap().status, 404);
}
