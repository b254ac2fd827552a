//! Scale check of the whole loop (ignored by default; run with
//! `cargo test --release --test scale -- --ignored --nocapture`):
//! many SigmaGrants over many connections with 100 ms vendor round trips.
//! It reports time to converge and the listings of a steady-state sync.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grant_operator::controller::Config;
use grant_operator::metrics::Metrics;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale check; run explicitly"]
async fn many_grants_converge() {
    let resources: usize = env_number("SCALE_RESOURCES", 2000);
    let connections: usize = env_number("SCALE_CONNECTIONS", 100);
    // The steady-state check needs a short interval; 10,000 units with 100 ms round trips
    // cannot all resync every 20 s, so large runs use a long one and skip it.
    let interval: u64 = env_number(
        "SCALE_INTERVAL_SECS",
        if connections <= 1000 { 20 } else { 3600 },
    );
    let h = Harness::new().await;
    h.sigma_api_secret();
    let mut provider = h.sigma_provider(NS, "sigma-prod", "sigma-api");
    provider.spec.rate_limit = None; // the default limit would bound this run, as intended in production
    provider.spec.rate_limit = Some(grant_operator::api::RateLimit {
        requests_per_second: 1000.0,
        burst: Some(1000),
    });
    h.put(&provider);
    let members = slow_sigma(&h.sigma, connections);
    let started = Instant::now();
    for i in 0..resources {
        let mut grant = spread_grant(i, &members, connections);
        grant.spec.policy.sync_interval = Some(format!("{interval}s"));
        h.put(&grant);
    }
    eprintln!("created {resources} resources in {:?}", started.elapsed());

    let metrics = Arc::new(Metrics::new());
    let config = Config {
        concurrency: 64,
        vendor_retry: fast_retries(),
        ..Config::default()
    };
    let operator = RunningOperator::start(h.kube.client(), config, metrics.clone());
    let converged = h
        .wait_until_synced(resources, Duration::from_secs(600), || {})
        .await;
    let listings = metrics.vendor_call_count("sigma", "list_grants", "success");
    let posts = metrics.vendor_call_count("sigma", "create_grants", "success");
    eprintln!(
        "converged {resources} resources on {connections} connections in {converged:?}: {listings} listings, {posts} creation calls"
    );
    let grants: usize = (0..connections)
        .map(|c| h.sigma.grants(&format!("conn-{c}")).len())
        .sum();
    eprintln!("live grants: {grants}");

    // Steady state: one resync interval later, one listing per connection and no writes.
    let count = || {
        (
            metrics.vendor_call_count("sigma", "list_grants", "success"),
            metrics.vendor_call_count("sigma", "create_grants", "success"),
            metrics.vendor_call_count("sigma", "revoke_grant", "success"),
            metrics.vendor_call_count("sigma", "search_members", "success"),
        )
    };
    if interval > 60 {
        operator.stop(Duration::from_secs(30)).await.unwrap();
        return;
    }
    let before = count();
    tokio::time::sleep(Duration::from_secs(interval * 3 / 2)).await;
    let after = count();
    eprintln!(
        "one steady-state interval: {} listings for {connections} connections, {} creations, {} revocations, {} look-ups",
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2,
        after.3 - before.3
    );
    assert_eq!(
        after.0 - before.0,
        connections as u64,
        "one listing per connection"
    );
    assert_eq!(
        (after.1 - before.1, after.2 - before.2, after.3 - before.3),
        (0, 0, 0),
        "no writes or look-ups"
    );
    operator.stop(Duration::from_secs(30)).await.unwrap();
}
