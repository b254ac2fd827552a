//! Syncing, on every grants API and login: `Observe`, drift repair, accepted
//! (202) requests followed to their result, unknown roles and securables, rate
//! limits and server errors, steady state, `Orphan`.

use super::*;

each_api_and_login!(
    observe_writes_nothing_and_reports_drift,
    drift_is_repaired_at_the_next_sync,
    accepted_requests_are_followed_to_their_result,
    unknown_role_and_securable_are_reported,
    rate_limits_and_server_errors_converge,
    steady_state_is_one_listing_per_grantee_and_no_writes,
    orphan_leaves_grants_in_place,
);

async fn observe_writes_nothing_and_reports_drift(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    grant_analyst_directly(&h, "SCHEMA", "SALES.PUBLIC", "USAGE");
    let mut grant = analyst_grant(
        "public",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
    );
    grant.spec.policy.management_policy = ManagementPolicy::Observe;
    h.put(&grant);
    settle(&h, "public").await.unwrap();
    assert_eq!(h.snowflake.writes(), 0);
    let (status, reason, message) = ready_of(&h, "public");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DriftDetected")
    );
    assert!(message.contains("1 of 2 grants differ"), "{message}");
    let rows = h.status_of::<SnowflakeGrant>("public").grants;
    assert!(rows.iter().any(|r| r.state == GrantState::Drifted));
}

async fn drift_is_repaired_at_the_next_sync(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    put_analyst(
        &h,
        "public",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
    )
    .await;
    h.snowflake
        .revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "MONITOR");
    h.snowflake.clear_calls();
    h.reconcile_of::<SnowflakeGrant>("public").await.unwrap();
    assert!(h.snowflake.calls().is_empty(), "not due yet");
    h.advance(Duration::from_secs(61));
    settle(&h, "public").await.unwrap();
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 2);
    assert_eq!(h.status_of::<SnowflakeGrant>("public").drift_corrections, 1);
}

async fn accepted_requests_are_followed_to_their_result(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    // The listing, the grant and the listing after it each answer 202 first.
    h.snowflake.answer_async(3, 2);
    put_public_usage(&h).await;
    assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "USAGE")]);
    assert_eq!(ready_of(&h, "public").1, "Synced");
    assert_eq!(
        h.snowflake.result_polls(),
        3 * 3,
        "each result polled until done (two 202s, then 200)"
    );
    assert_eq!(h.snowflake.count("GET", "/api/v2/results/"), 9);
}

async fn unknown_role_and_securable_are_reported(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put(&snowflake_grant(
        "nobody",
        role("NOBODY"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    assert_eq!(settle(&h, "nobody").await.unwrap_err(), "GranteeNotFound");
    let (_, reason, message) = ready_of(&h, "nobody");
    assert_eq!(reason, "GranteeNotFound");
    assert!(message.contains("ROLE NOBODY"), "{message}");

    h.put(&analyst_grant(
        "nope",
        target_securable("TABLE", "SALES.PUBLIC.NOPE"),
        &["SELECT"],
    ));
    let _ = settle(&h, "nope").await;
    let (_, reason, message) = ready_of(&h, "nope");
    assert_eq!(reason, "TargetNotFound");
    assert!(message.contains("TABLE SALES.PUBLIC.NOPE"), "{message}");
}

async fn rate_limits_and_server_errors_converge(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    let write_method = match api {
        SnowflakeGrantsApi::RoleGrants => "POST",
        SnowflakeGrantsApi::Legacy => "POST",
    };
    h.snowflake.inject(Fault {
        method: Some(write_method.into()),
        path_prefix: "/api/v2/".into(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    h.snowflake.inject(Fault {
        method: Some(write_method.into()),
        path_prefix: "/api/v2/".into(),
        times: 1,
        kind: FaultKind::Status(503),
    });
    h.snowflake.inject(fault(
        "GET",
        &listing_path(api, "ANALYST"),
        2,
        FaultKind::Status(504),
    ));
    put_public_usage(&h).await;
    assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "USAGE")]);
    let posts: Vec<_> = h
        .snowflake
        .calls()
        .into_iter()
        .filter(|call| call.method == write_method)
        .collect();
    assert_eq!(posts[0].status, 429);
    assert!(posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(950));
}

async fn steady_state_is_one_listing_per_grantee_and_no_writes(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    let grants = [
        (
            "a",
            "ANALYST",
            target_securable("SCHEMA", "SALES.PUBLIC"),
            "USAGE",
        ),
        (
            "b",
            "ANALYST",
            target_securable("DATABASE", "SALES"),
            "USAGE",
        ),
        (
            "c",
            "ANALYST",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "SELECT",
        ),
        (
            "d",
            "LOADER",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "INSERT",
        ),
    ];
    for (name, grantee, target, privilege) in grants.clone() {
        h.put(&snowflake_grant(
            name,
            role(grantee),
            target,
            &[privilege],
            false,
        ));
    }
    for (name, ..) in &grants {
        settle(&h, name).await.unwrap();
    }
    h.snowflake.clear_calls();
    h.advance(Duration::from_secs(61));
    for (name, ..) in &grants {
        settle(&h, name).await.unwrap();
    }
    let calls: Vec<String> = h
        .snowflake
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        sorted(calls),
        vec![
            format!("GET {}", listing_path(api, "ANALYST")),
            format!("GET {}", listing_path(api, "LOADER")),
        ],
        "one listing per grantee, no writes"
    );
}

async fn orphan_leaves_grants_in_place(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    let mut grant = analyst_grant(
        "public",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
    );
    grant.spec.policy.deletion_policy = DeletionPolicy::Orphan;
    h.put(&grant);
    settle(&h, "public").await.unwrap();
    let writes = h.snowflake.writes();
    delete_released(&h, "public").await;
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 1);
    assert_eq!(h.snowflake.writes(), writes, "no write");
}
