//! The process around the controllers: the HTTP endpoints (real requests to
//! `/metrics`, `/healthz`, `/readyz`) and the leader gate on a Lease, against
//! the in-memory API server (which serves Leases) and the Sigma emulator.

mod support;

use std::sync::Arc;
use std::time::Duration;

use grant_operator::api::{SigmaGrant, SigmaPermission::*};
use grant_operator::metrics::Metrics;
use grant_operator::server::{self, Health};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use support::*;

/// A Harness with a Ready-able provider and one grant on the emulator.
async fn setup(sync_interval: Option<&str>) -> (Harness, String) {
    let h = Harness::new().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma_prod_provider();
    let mut grant = jane_readers();
    grant.spec.policy.sync_interval = sync_interval.map(str::to_string);
    h.put(&grant);
    (h, jane)
}

fn synced(h: &Harness) -> bool {
    h.has_reason::<SigmaGrant>("readers", "Synced")
}

async fn http_get(base: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{base}{path}"))
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// The value of the sample `series` (name and labels exactly as printed) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_endpoints_report_metrics_liveness_and_readiness() {
    let (h, jane) = setup(Some("1s")).await;
    let metrics = Arc::new(Metrics::new());
    let health = Health::new(metrics.clone(), false);
    let server = HttpServer::start(metrics.clone(), health.clone()).await;
    let base = server.base.clone();

    // Before the controllers run: alive, not ready.
    assert_eq!(http_get(&base, "/healthz").await.0, 200);
    let (status, _, body) = http_get(&base, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(http_get(&base, "/nothing-here").await.0, 404);

    let operator = RunningOperator::start_leading(h.kube.client(), &metrics, &health);

    eventually("grant Synced", || synced(&h)).await;
    let (status, _, body) = http_get(&base, "/readyz").await;
    assert_eq!(status, 200, "{body}");

    // Drift, repaired by the resync, is counted.
    let id = h.sigma.grants(CONNECTION)[0].grant_id.clone();
    h.sigma.delete_grant_directly(CONNECTION, &id);
    eventually("drift repaired", || {
        h.kube
            .get::<SigmaGrant>(Some(NS), "readers")
            .and_then(|g| g.status)
            .is_some_and(|s| s.drift_corrections >= 1 && s.conditions[0].reason == "Synced")
    })
    .await;
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );

    let (status, content_type, text) = http_get(&base, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, server::METRICS_CONTENT_TYPE);
    let at_least_one = [
        r#"grant_operator_reconciles_total{kind="SigmaGrant",result="success"}"#,
        r#"grant_operator_reconciles_total{kind="GrantProvider",result="success"}"#,
        r#"grant_operator_reconcile_duration_seconds_count{kind="SigmaGrant"}"#,
        r#"grant_operator_vendor_requests_total{vendor="sigma",operation="list_grants",outcome="success"}"#,
        r#"grant_operator_drift_repairs_total{kind="SigmaGrant"}"#,
        r#"grant_operator_vendor_syncs_total{kind="SigmaGrant"}"#,
    ];
    for series in at_least_one {
        let value = sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(value >= 1.0, "{series} = {value}");
    }
    let exactly = [
        (
            r#"grant_operator_grants{kind="SigmaGrant",state="Applied"}"#,
            1.0,
        ),
        (
            r#"grant_operator_resources{kind="SigmaGrant",ready="True",reason="Synced"}"#,
            1.0,
        ),
        (
            r#"grant_operator_resources{kind="GrantProvider",ready="True",reason="Authenticated"}"#,
            1.0,
        ),
        // Drift repairs do not make the resource Ready "for the first time" again.
        (
            r#"grant_operator_time_to_first_ready_seconds_count{kind="SigmaGrant"}"#,
            1.0,
        ),
        ("grant_operator_leader", 1.0),
        ("grant_operator_watches_synced", 1.0),
    ];
    for (series, expected) in exactly {
        assert_eq!(sample(&text, series), Some(expected), "{series} in\n{text}");
    }
    assert!(
        text.contains(
            r#"grant_operator_reconcile_duration_seconds_bucket{le="0.005",kind="SigmaGrant"}"#
        ) || text.contains(
            r#"grant_operator_reconcile_duration_seconds_bucket{kind="SigmaGrant",le="0.005"}"#
        ),
        "a histogram with buckets:\n{text}"
    );
    assert!(text.ends_with("# EOF\n"));

    // Stopped: no longer ready, nothing counted from caches that are gone.
    operator
        .stop(Duration::from_secs(10))
        .await
        .expect("the operator stops");
    health.set_leading(false);
    let (status, _, _) = http_get(&base, "/readyz").await;
    assert_eq!(status, 503);
    let (_, _, text) = http_get(&base, "/metrics").await;
    assert_eq!(sample(&text, "grant_operator_watches_synced"), Some(0.0));
    assert!(!text.contains("grant_operator_grants{"), "{text}");

    server.stop().await;
}

fn holder(h: &Harness) -> Option<String> {
    h.kube
        .get::<Lease>(Some(OPERATOR_NS), LEASE)
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity)
}

fn live_permission(h: &Harness) -> Vec<String> {
    h.live().into_iter().map(|(_, level)| level).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_runs_the_controllers_and_a_standby_takes_over() {
    let (h, _) = setup(None).await;
    let a = ElectedOperator::start(h.kube.client(), fast_config(), "replica-a");
    eventually("a leads", || a.health.leading()).await;
    eventually("grant Synced by a", || synced(&h)).await;
    assert_eq!(holder(&h).as_deref(), Some("replica-a"));
    eventually("a ready", || a.health.readiness().is_ok()).await;

    let b = ElectedOperator::start(h.kube.client(), fast_config(), "replica-b");
    eventually("b stands by, ready", || b.health.readiness().is_ok()).await;
    // Longer than the lease: a keeps renewing, and b never starts its controllers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.health.leading());
    assert!(!b.health.leading());
    assert_eq!(b.metrics.leader.get(), 0);
    assert_eq!(b.metrics.watches_synced.get(), 0);
    assert_eq!(holder(&h).as_deref(), Some("replica-a"));

    // a shuts down: it releases the lease, and b takes over at once and reconciles.
    a.stop(Duration::from_secs(10)).await.unwrap();
    assert_ne!(holder(&h).as_deref(), Some("replica-a"));
    eventually("b leads", || b.health.leading()).await;
    eventually("b synced", || b.health.synced()).await;
    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    eventually("raised by b", || live_permission(&h) == ["annotate"]).await;
    b.stop(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_stops_the_controllers_until_it_is_taken_again() {
    let (h, _) = setup(None).await;
    let a = ElectedOperator::start(h.kube.client(), fast_config(), "replica-a");
    eventually("grant Synced", || synced(&h)).await;
    assert_eq!(live_permission(&h), ["usage"]);

    // Someone else holds the lease now, for an hour.
    let now = Timestamp::now();
    h.kube.put(&Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            namespace: Some(OPERATOR_NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("intruder".into()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(3600),
            lease_transitions: Some(5),
            ..LeaseSpec::default()
        }),
    });
    eventually("a steps down", || !a.health.leading()).await;
    assert_eq!(a.metrics.leader.get(), 0);
    assert_eq!(a.metrics.watches_synced.get(), 0);

    // Not leading: a change is not acted on.
    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        live_permission(&h),
        ["usage"],
        "no vendor write without the lease"
    );

    // The lease is free again: a takes it and catches up.
    h.kube.put(&Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.into()),
            namespace: Some(OPERATOR_NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec::default()),
    });
    eventually("a leads again", || a.health.leading()).await;
    eventually("raised after taking the lease again", || {
        live_permission(&h) == ["annotate"]
    })
    .await;
    a.stop(Duration::from_secs(10)).await.unwrap();
}
