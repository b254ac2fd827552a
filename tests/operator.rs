//! The whole operator loop (`run`: watches, shared stores, controllers,
//! mappers, requeues, shutdown) against the in-memory Kubernetes API and the
//! Sigma emulator, with no hand-driven reconciles.

mod support;

use std::sync::Arc;
use std::time::Duration;

use grant_operator::api::{SigmaGrant, SigmaPermission::*};
use grant_operator::controller::Config;
use grant_operator::metrics::Metrics;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_converges_repairs_and_revokes_on_its_own() {
    let h = Harness::new().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma_prod_provider();
    let mut grant = jane_readers();
    grant.spec.policy.sync_interval = Some("1s".into());
    h.put(&grant);

    let operator = RunningOperator::start(h.kube.client(), fast_config(), Arc::new(Metrics::new()));

    eventually("provider Ready", || {
        h.provider_has_reason("sigma-prod", "Authenticated")
    })
    .await;
    eventually("grant Synced", || {
        h.has_reason::<SigmaGrant>("readers", "Synced")
    })
    .await;
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );

    // Drift is repaired by the periodic resync alone.
    let id = h.sigma.grants(CONNECTION)[0].grant_id.clone();
    h.sigma.delete_grant_directly(CONNECTION, &id);
    eventually("drift repaired", || h.live().len() == 1).await;
    eventually("drift counted", || {
        h.kube
            .get::<SigmaGrant>(Some(NS), "readers")
            .and_then(|g| g.status)
            .is_some_and(|s| s.drift_corrections >= 1)
    })
    .await;

    // A spec change is picked up from the watch.
    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    eventually("raised", || {
        h.live() == vec![(format!("member:{jane}"), "annotate".to_string())]
    })
    .await;

    // Breaking the Secret makes the provider Unauthorized (Secret watch -> provider),
    // and fixing it brings the grant back (provider watch -> grants).
    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", "wrong")],
    );
    eventually("provider Unauthorized", || {
        h.provider_has_reason("sigma-prod", "Unauthorized")
    })
    .await;
    h.sigma_api_secret();
    eventually("provider Ready again", || {
        h.provider_has_reason("sigma-prod", "Authenticated")
    })
    .await;
    eventually("grant Synced again", || {
        h.has_reason::<SigmaGrant>("readers", "Synced")
    })
    .await;

    // Deletion revokes through the finalizer.
    h.delete("readers");
    eventually("revoked and released", || {
        h.live().is_empty() && h.get("readers").is_none()
    })
    .await;

    operator
        .stop(Duration::from_secs(10))
        .await
        .expect("the operator stops on the shutdown signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_keeps_failing_backs_off_instead_of_looping() {
    let h = Harness::new().await;
    h.sigma_prod_provider();
    // The member does not exist: every sync reads the vendor and fails with GranteeNotFound.
    h.put(&sigma_grant(
        "readers",
        vec![member("nobody@example.com", Usage)],
    ));
    // Slow answers make each sync take over a second, so each one writes a new lastSyncTime.
    h.sigma.inject(fault(
        "GET",
        "/v2/members",
        1000,
        sigma::FaultKind::Delay(Duration::from_millis(1100)),
    ));

    let config = Config {
        error_backoff: Duration::from_secs(10),
        vendor_retry: fast_retries(),
        ..Config::default()
    };
    let operator = RunningOperator::start(h.kube.client(), config, Arc::new(Metrics::new()));
    eventually("GranteeNotFound reported", || {
        h.has_reason::<SigmaGrant>("readers", "GranteeNotFound")
    })
    .await;
    let first = h.sigma.count("GET", "/v2/connections");
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let listings = h.sigma.count("GET", "/v2/connections") - first;
    // The first retry is due after ~10s: its own status writes must not wake it earlier.
    assert_eq!(listings, 0, "{listings} listings while backing off");
    operator.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_right_after_the_grant_appears_still_revokes_it() {
    let h = Harness::new().await;
    h.sigma.add_member("jane@example.com");
    h.sigma_prod_provider();
    let operator = RunningOperator::start(h.kube.client(), fast_config(), Arc::new(Metrics::new()));
    for round in 0..5 {
        let name = format!("quick-{round}");
        h.put(&sigma_grant(&name, vec![member("jane@example.com", Usage)]));
        eventually("grant created at the vendor", || h.live().len() == 1).await;
        // Delete at once. (On a real API server the status holding the new grant may not have
        // reached the watch cache yet; the unit test of `caught_up` covers that case.)
        h.delete(&name);
        eventually("revoked and released", || {
            h.live().is_empty() && h.get(&name).is_none()
        })
        .await;
    }
    operator.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_grafana_grants_too() {
    use grant_operator::api::{GrafanaGrant, GrafanaPermission, GrafanaPermissionsApi};
    let h = Harness::new().await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    let mut grant = grafana_grant("sre", vec![user_login("jane", GrafanaPermission::Query)]);
    grant.spec.policy.sync_interval = Some("1s".into());
    h.put(&grant);

    let operator = RunningOperator::start(h.kube.client(), fast_config(), Arc::new(Metrics::new()));
    let synced = || h.has_reason::<GrafanaGrant>("sre", "Synced");
    eventually("GrafanaGrant Synced", synced).await;
    let expected = vec![(format!("user:{jane}"), "Query".to_string())];
    assert_eq!(h.grafana_live(DATASOURCE_UID), expected);

    // Drift repaired by the periodic resync alone.
    h.grafana
        .remove_directly(DATASOURCE_UID, &support::grafana::Grantee::User(jane));
    eventually("drift repaired", || {
        h.grafana_live(DATASOURCE_UID) == expected
    })
    .await;

    // Deletion revokes through the finalizer.
    h.delete_of::<GrafanaGrant>("sre");
    eventually("revoked and released", || {
        h.kube.get::<GrafanaGrant>(Some(NS), "sre").is_none()
            && h.grafana_live(DATASOURCE_UID).is_empty()
    })
    .await;
    operator.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_snowflake_grants_too() {
    use grant_operator::api::{SnowflakeGrant, SnowflakeGranteeType, SnowflakeGrantsApi};
    let h = Harness::new().await;
    h.put_snowflake_provider(
        "snowflake-key",
        SnowflakeLogin::KeyPair,
        SnowflakeGrantsApi::RoleGrants,
    );
    let mut grant = snowflake_grant(
        "public",
        (SnowflakeGranteeType::Role, "ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    );
    grant.spec.policy.sync_interval = Some("1s".into());
    h.put(&grant);

    let operator = RunningOperator::start(h.kube.client(), fast_config(), Arc::new(Metrics::new()));
    let synced = || h.has_reason::<SnowflakeGrant>("public", "Synced");
    eventually("SnowflakeGrant Synced", synced).await;
    let expected = vec![("SCHEMA SALES.PUBLIC".to_string(), "USAGE".to_string())];
    assert_eq!(h.snowflake.live("ROLE", "ANALYST"), expected);

    // Drift repaired by the periodic resync alone.
    h.snowflake
        .revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE");
    eventually("drift repaired", || {
        h.snowflake.live("ROLE", "ANALYST") == expected
    })
    .await;

    // Deletion revokes through the finalizer.
    h.delete_of::<SnowflakeGrant>("public");
    eventually("revoked and released", || {
        h.kube.get::<SnowflakeGrant>(Some(NS), "public").is_none()
            && h.snowflake.live("ROLE", "ANALYST").is_empty()
    })
    .await;
    operator.stop(Duration::from_secs(10)).await.unwrap();
}
