//! Memory of the real `grant-operator` binary with many grant resources
//! (ignored by default; run with
//! `cargo test --release --test bench_memory -- --ignored --nocapture`).
//!
//! The in-memory Kubernetes API is served over HTTP from this test process and
//! the operator runs as its own process, so its resident memory is measured
//! alone.

mod support;

use std::time::Duration;

use grant_operator::api::SigmaPermission::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn resident_memory_with_many_grants() {
    let resources: usize = env_number("SCALE_RESOURCES", 10_000);
    let connections: usize = env_number("SCALE_CONNECTIONS", 1000);
    let per_resource: usize = env_number("SCALE_GRANTS", 2);
    let h = Harness::new().await;

    let kubeconfig = serve_kube_over_http(&h.kube).await;
    h.sigma_prod_provider();
    for c in 0..connections {
        h.sigma.add_connection(&format!("conn-{c}"));
    }
    let members: Vec<String> = (0..200)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    for i in 0..resources {
        let grants = (0..per_resource)
            .map(|g| {
                member_id(
                    &members[(i * 7 + g * 13) % members.len()],
                    if g % 2 == 0 { Usage } else { Annotate },
                )
            })
            .collect();
        let mut grant = sigma_grant(&format!("g{i}"), grants);
        grant.spec.connection_id = format!("conn-{}", i % connections);
        grant.spec.policy.sync_interval = Some("1h".into());
        h.put(&grant);
    }

    // BENCH_WRAPPER runs the operator under a profiler, e.g. "valgrind --tool=massif".
    let operator = spawn_operator(&kubeconfig, &["--concurrency", "64", "--log-level", "warn"]);
    let pid = operator.id();
    let mut peak = 0;
    let converged = h
        .wait_until_synced(resources, Duration::from_secs(900), || {
            peak = peak.max(proc_status_kib(pid, "VmRSS:"));
        })
        .await;
    // BENCH_SETTLE_SECS: how long to let it settle (idle API connections close after 90 s).
    let settle: u64 = env_number("BENCH_SETTLE_SECS", 5);
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let settled = proc_status_kib(pid, "VmRSS:");
    let high_water = proc_status_kib(pid, "VmHWM:");
    eprintln!(
        "{resources} resources ({per_resource} grants each) on {connections} connections: converged in {converged:?}; \
         resident {} MiB after settling, peak {} MiB (high-water mark {} MiB)",
        settled / 1024,
        peak / 1024,
        high_water / 1024
    );
    // SIGTERM: the operator shuts down gracefully (and a profiler can write its report).
    stop_operator(operator).await;
    let _ = std::fs::remove_file(&kubeconfig);
}
