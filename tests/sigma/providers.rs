//! Providers: unknown connections, cluster provider scoping, providers of
//! another namespace or another vendor.

use super::*;

#[tokio::test]
async fn unknown_connection_is_target_not_found() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    let mut grant = jane_readers();
    grant.spec.connection_id = "no-such-connection".into();
    h.put(&grant);
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "TargetNotFound");
    assert!(
        h.ready_condition("readers")
            .message
            .contains("connection no-such-connection")
    );
}

#[tokio::test]
async fn cluster_provider_scoping_refuses_other_namespaces_without_vendor_calls() {
    use grant_operator::api::ProviderKind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    let h = Harness::new().await;
    h.namespace("platform", &[]);
    h.namespace(NS, &[("team", "analytics")]);
    h.secret(
        "platform",
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
    );
    let selector = LabelSelector {
        match_labels: Some([("grants".to_string(), "sigma".to_string())].into()),
        ..LabelSelector::default()
    };
    h.put(&h.cluster_provider("sigma", "platform", "sigma-api", selector));
    h.reconcile_cluster_provider("sigma").await.unwrap();
    h.sigma.add_member("jane@example.com");
    h.sigma.clear_calls();

    let mut grant = jane_readers();
    grant.spec.policy.provider_ref.kind = ProviderKind::ClusterGrantProvider;
    grant.spec.policy.provider_ref.name = "sigma".into();
    h.put(&grant);
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "ProviderNotAllowed");
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "nothing is sent to the vendor for a refused namespace"
    );
    assert!(h.live().is_empty());

    // Labelling the namespace admits it.
    h.namespace(NS, &[("grants", "sigma")]);
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 1);
}

#[tokio::test]
async fn a_grant_cannot_use_a_provider_of_another_namespace() {
    let h = Harness::ready().await;
    h.namespace("other", &[]);
    h.sigma.add_member("jane@example.com");
    let mut grant = jane_readers();
    grant.metadata.namespace = Some("other".into());
    h.put(&grant);
    let object = h.stored_grant("other", "readers").await;
    // First reconcile adds the finalizer, the second looks for the provider in "other".
    let _ = reconcile_through(object, h.grants.clone()).await;
    let object = h.stored_grant("other", "readers").await;
    let error = reconcile_through(object, h.grants.clone())
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "ProviderNotFound");
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn a_grant_naming_a_provider_of_another_vendor_is_provider_not_found() {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    h.put(&h.dremio_provider(NS, "dremio", "dremio-pat", false));
    h.reconcile_provider(NS, "dremio")
        .await
        .expect("the Dremio provider is ready");

    let mut grant = jane_readers();
    grant.spec.policy.provider_ref.name = "dremio".into();
    h.put(&grant);
    assert_eq!(
        h.settle("readers").await.unwrap_err().reason(),
        "ProviderNotFound"
    );
    let message = h.ready_condition("readers").message;
    assert!(message.contains("is not a sigma provider"), "{message}");
    assert!(h.sigma.calls().is_empty());
}
