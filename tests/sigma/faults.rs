//! Vendor faults and pacing: rate limits and server errors, outages, backoff,
//! timeouts, `Retry-After` on reads and writes, a configured rate limit.

use super::*;

#[tokio::test]
async fn rate_limits_and_server_errors_converge_without_duplicates() {
    let h = Harness::ready().await;
    for i in 0..3 {
        h.sigma.add_member(&format!("user{i}@example.com"));
    }
    fault_on_connections(
        &h,
        "POST",
        1,
        sigma::FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    );
    fault_on_connections(&h, "POST", 1, sigma::FaultKind::Status(500));
    fault_on_connections(&h, "GET", 2, sigma::FaultKind::Status(503));
    h.put(&sigma_grant(
        "readers",
        (0..3)
            .map(|i| member(&format!("user{i}@example.com"), Usage))
            .collect(),
    ));
    // A create answered 500 may have landed: it is not sent again blind. The
    // sync fails, the next one reads what is live and creates what is missing.
    assert_eq!(
        h.settle("readers").await.unwrap_err().reason(),
        "VendorUnavailable"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 3, "no duplicates: {:?}", h.live());
    assert_eq!(h.ready_condition("readers").reason, "Synced");
    // Retry-After was honoured before the retry.
    let posts: Vec<_> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/v2/connections"))
        .collect();
    assert!(posts.len() >= 3, "{posts:?}");
    assert_eq!(posts[0].status, 429);
    assert!(posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(950));
    assert!(
        h.metrics
            .vendor_call_count("sigma", "create_grants", "rate_limited")
            >= 1
    );
    assert!(
        h.metrics
            .vendor_call_count("sigma", "list_grants", "server_error")
            >= 2
    );
}

#[tokio::test]
async fn persistent_outage_is_reported_and_nothing_is_forgotten() {
    let (h, _) = jane_reads().await;
    let rows = h.status("readers").grants;

    fault_on_connections(&h, "GET", 100, sigma::FaultKind::Status(502));
    h.advance(Duration::from_secs(61));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "VendorUnavailable");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "VendorUnavailable")
    );
    assert_eq!(
        h.status("readers").grants,
        rows,
        "rows are kept while the vendor is down"
    );
    assert!(
        h.events("readers")
            .iter()
            .any(|(kind, reason, _)| kind == "Warning" && reason == "VendorUnavailable")
    );
}

#[tokio::test]
async fn a_failing_resource_waits_out_its_backoff_instead_of_resyncing_on_its_own_status_events() {
    let h = Harness::with_config(grant_operator::controller::Config {
        error_backoff: Duration::from_secs(30),
        vendor_retry: fast_retries(),
        ..grant_operator::controller::Config::default()
    })
    .await;
    h.sigma_prod_provider();
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.put(&sigma_grant(
        "readers",
        vec![member("nobody@example.com", Usage)],
    ));
    h.reconcile("readers").await.unwrap(); // finalizer
    assert_eq!(
        h.reconcile("readers").await.unwrap_err().reason(),
        "GranteeNotFound"
    );
    h.sigma.clear_calls();

    // The status write above wakes the resource again at once (its own watch event).
    // Nothing changed and its backoff has not run out: no new sync.
    let error = h.reconcile("readers").await.unwrap_err();
    assert_eq!(error.reason(), "GranteeNotFound");
    assert!(
        matches!(error, grant_operator::controller::Error::Backoff { .. }),
        "{error:?}"
    );
    assert_eq!(h.sigma.calls().len(), 0, "no vendor call while backing off");
    // Waking up early is not a new failure: the retry stays where the first one put it
    // (a new failure would double the first wait: 30 s, three doublings along for a
    // grantee that does not exist, which waiting alone does not fix).
    let first_wait =
        Duration::from_secs(30) * 2u32.pow(grant_operator::controller::PERMANENT_HEAD_START);
    let object = h
        .grants
        .store
        .get(&kube::runtime::reflector::ObjectRef::new("readers").within(NS))
        .unwrap();
    let action = grant_operator::controller::grant::error_policy(object, &error, h.grants.clone());
    assert!(requeue_after(&action) <= first_wait, "{action:?}");

    // A change to the resource is picked up at once, backoff or not.
    h.sigma.add_member("nobody@example.com");
    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    h.settle("readers").await.unwrap();
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let h = Harness::new().await;
    h.sigma_api_secret();
    let mut provider = h.sigma_provider(NS, "sigma-prod", "sigma-api");
    provider.spec.request_timeout_seconds = Some(1);
    h.put(&provider);
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.sigma.add_member("jane@example.com");
    fault_on_connections(
        &h,
        "GET",
        1,
        sigma::FaultKind::Delay(Duration::from_millis(1500)),
    );
    h.put_settled(&jane_readers()).await;
    assert_eq!(h.live().len(), 1);
    assert_eq!(
        h.metrics
            .vendor_call_count("sigma", "list_grants", "timeout"),
        1
    );
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_controller_and_wins() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    fault_on_connections(
        &h,
        "GET",
        1,
        sigma::FaultKind::RateLimited {
            retry_after_secs: 90,
        },
    );
    h.put(&jane_readers());
    h.reconcile("readers").await.unwrap(); // finalizer
    let object = h.stored_grant(NS, "readers").await;
    let error = reconcile_through(object.clone(), h.grants.clone())
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "RateLimited");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(90)));
    let action = grant_operator::controller::grant::error_policy(object, &error, h.grants.clone());
    assert_eq!(
        requeue_after(&action),
        Duration::from_secs(90),
        "Retry-After wins over the backoff"
    );
    assert_eq!(h.ready_condition("readers").reason, "RateLimited");
    assert_eq!(
        h.sigma.count("GET", "/v2/connections"),
        1,
        "no retry inside the call for a long wait"
    );
}

#[tokio::test]
async fn a_configured_rate_limit_paces_requests_and_none_is_the_default() {
    use grant_operator::vendor_api::http::{HttpClient, HttpConfig, RateLimitConfig, Repeat};
    let h = Harness::new().await;
    let url = format!("{}/v2/members", h.sigma.url());
    let timed = |rate_limit: Option<RateLimitConfig>| {
        let client = HttpClient::new(
            grant_operator::api::VendorKind::Sigma,
            &HttpConfig {
                rate_limit,
                retry: fast_retries(),
                ..HttpConfig::default()
            },
            h.metrics.clone(),
        )
        .unwrap();
        let url = url.clone();
        async move {
            let started = std::time::Instant::now();
            for _ in 0..6 {
                // A token the emulator does not know: a quick 401, which is all
                // this test needs (and a request as Sigma's definition shapes it).
                let _ = client
                    .send("probe", Repeat::Read, |http| {
                        http.get(&url).bearer_auth("not-a-token")
                    })
                    .await;
            }
            started.elapsed()
        }
    };
    let limited = timed(Some(RateLimitConfig {
        requests_per_second: 5.0,
        burst: 1,
    }))
    .await;
    assert!(
        limited >= Duration::from_millis(950),
        "6 requests at 5/s took {limited:?}"
    );
    let unlimited = timed(None).await;
    assert!(
        unlimited < Duration::from_millis(500),
        "no limit by default: {unlimited:?}"
    );
}

#[tokio::test]
async fn a_long_retry_after_on_a_write_also_wins() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&jane_readers());
    h.reconcile("readers").await.unwrap(); // finalizer
    fault_on_connections(
        &h,
        "POST",
        1,
        sigma::FaultKind::RateLimited {
            retry_after_secs: 120,
        },
    );
    let object = h.stored_grant(NS, "readers").await;
    let started = std::time::Instant::now();
    let error = reconcile_through(object.clone(), h.grants.clone())
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "RateLimited");
    // The sync gave up at once instead of sleeping out the vendor's two minutes.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let action = grant_operator::controller::grant::error_policy(object, &error, h.grants.clone());
    assert_eq!(requeue_after(&action), Duration::from_secs(120));
}
