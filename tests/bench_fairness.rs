//! Fair scheduling benchmark (ignored by default; run with
//! `cargo test --release --test bench_fairness -- --ignored --nocapture`):
//! resources on a healthy provider converge as fast when another provider's
//! vendor hangs (every grant call times out) as when it is absent.
//!
//! Two Sigma accounts (two emulators), each with its own provider. The healthy
//! one answers every call after 100 ms; once the other is Ready, every call on its
//! connections hangs past the request timeout. The same run is made without the
//! hanging provider, and both convergence times are printed.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grant_operator::api::{SigmaGrant, SigmaPermission::*};
use grant_operator::controller::Config;
use grant_operator::metrics::Metrics;
use support::sigma::SigmaEmulator;
use support::*;

/// Seconds until the healthy resources are all Synced.
async fn converge(resources: usize, hanging: usize) -> Duration {
    let connections = (resources / 10).max(1);
    let h = Harness::new().await;
    h.sigma_api_secret();
    let mut healthy = h.sigma_provider(NS, "healthy", "sigma-api");
    healthy.spec.request_timeout_seconds = Some(5);
    h.put(&healthy);
    let members = slow_sigma(&h.sigma, connections);

    // The other account, whose vendor will hang.
    let slow = SigmaEmulator::start().await;
    slow.add_client(CLIENT_ID, CLIENT_SECRET);
    let slow_members: Vec<String> = (0..50)
        .map(|i| slow.add_member(&format!("user{i}@example.com")))
        .collect();
    let mut other = sigma_provider(NS, "hanging", &slow.url(), "sigma-api");
    other.spec.request_timeout_seconds = Some(5);
    if hanging > 0 {
        h.put(&other);
    }
    let hanging_connections = (hanging / 10).max(1);
    for c in 0..hanging_connections {
        slow.add_connection(&format!("slow-{c}"));
    }

    let config = Config {
        concurrency: 64,
        vendor_retry: fast_retries(),
        ..Config::default()
    };
    let operator = RunningOperator::start(h.kube.client(), config, Arc::new(Metrics::new()));
    if hanging > 0 {
        // Ready first, then every grant call hangs past the timeout.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !h
            .kube
            .get::<grant_operator::api::GrantProvider>(Some(NS), "hanging")
            .and_then(|provider| provider.status)
            .is_some_and(|status| status.conditions.iter().any(|c| c.status == "True"))
        {
            assert!(
                Instant::now() < deadline,
                "the hanging provider became Ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slow.inject(sigma::Fault {
            method: None,
            path_prefix: "/v2/connections".into(),
            times: usize::MAX,
            kind: sigma::FaultKind::Delay(Duration::from_secs(3600)),
        });
        for i in 0..hanging {
            let mut grant = sigma_grant(
                &format!("slow-{i}"),
                vec![member_id(&slow_members[i % slow_members.len()], Usage)],
            );
            grant.spec.connection_id = format!("slow-{}", i % hanging_connections);
            grant.spec.policy.provider_ref.name = "hanging".into();
            h.put(&grant);
        }
        // Let the hanging syncs start and take what they take.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let started = Instant::now();
    for i in 0..resources {
        let mut grant = spread_grant(i, &members, connections);
        grant.spec.policy.provider_ref.name = "healthy".into();
        h.put(&grant);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let synced =
            h.kube
                .list_json("grantoperator.dev", "sigmagrants")
                .into_iter()
                .filter(|grant| {
                    grant["metadata"]["name"]
                        .as_str()
                        .is_some_and(|name| name.starts_with('g'))
                })
                .filter_map(|grant| serde_json::from_value::<SigmaGrant>(grant).ok())
                .filter(|grant| {
                    grant.status.as_ref().is_some_and(|status| {
                        status.conditions.iter().any(|c| c.reason == "Synced")
                    })
                })
                .count();
        if synced == resources {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{synced} of {resources} converged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let _ = operator.stop(Duration::from_secs(5)).await;
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn a_hanging_vendor_does_not_slow_a_healthy_one() {
    let resources: usize = env_number("FAIR_RESOURCES", 1000);
    let hanging: usize = env_number("FAIR_HANGING", 1000);
    let alone = converge(resources, 0).await;
    eprintln!("{resources} resources on a healthy provider, alone: converged in {alone:?}");
    let beside = converge(resources, hanging).await;
    eprintln!(
        "{resources} resources on a healthy provider, beside {hanging} on a provider whose vendor hangs: converged in {beside:?}"
    );
}
