//! SigmaGrant end to end over real HTTP: the real reconcilers against the strict
//! Sigma emulator, with the Kubernetes side on an in-memory API.

mod support;

use std::time::Duration;

use grant_operator::api::{GrantState, SigmaPermission::*};
use support::*;

/// A ready harness on which `readers` grants jane@example.com `usage`, synced;
/// with jane's member id.
async fn jane_reads() -> (Harness, String) {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;
    (h, jane)
}

#[tokio::test]
async fn create_applies_grants_with_ids_in_status_and_finalizer_first() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let finance = h.sigma.add_team("Finance");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Annotate), team("Finance", Usage)],
    ));

    // First reconcile: only the finalizer, no vendor call at all.
    h.reconcile("readers").await.unwrap();
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "no vendor call before the finalizer is in place"
    );
    let grant = h.get("readers").unwrap();
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );

    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("team:{finance}"), "usage".to_string())
        ])
    );
    let status = h.status("readers");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Synced")
    );
    assert_eq!(ready.message, "2 of 2 grants applied");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.target.unwrap().connection_id.as_deref(),
        Some(CONNECTION)
    );
    assert_eq!(status.grants.len(), 2);
    let ids: Vec<String> = h
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    for row in &status.grants {
        assert_eq!(row.state, GrantState::Applied);
        assert!(
            ids.contains(row.vendor_id.as_ref().unwrap()),
            "row {row:?} carries a live grant id"
        );
    }
    assert_eq!(status.grants[0].grantee, format!("member:{jane}"));
    assert_eq!(status.grants[0].permission, "annotate");
    // Names beside ids: the row says who it is, as the manifest wrote it.
    assert_eq!(status.grants[0].name.as_deref(), Some("jane@example.com"));
    assert_eq!(status.grants[1].name.as_deref(), Some("Finance"));
    assert!(status.last_sync_time.is_some());
    assert_eq!(status.drift_corrections, 0);
    let events = h.events("readers");
    assert!(
        events.iter().any(|(kind, reason, note)| kind == "Normal"
            && reason == "Granted"
            && note.contains(&format!("jane@example.com (member {jane}) annotate"))
            && note.contains(&format!("Finance (team {finance}) usage"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_grantee_declared_by_id_is_named_where_a_manifest_names_it_and_revocations_keep_the_name()
{
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    // Declared by id only: nothing more to say than the id.
    h.put_settled(&sigma_grant("by-id", vec![member_id(&jane, Usage)]))
        .await;
    let rows = h.status("by-id").grants;
    assert_eq!(rows[0].name, None, "{rows:?}");

    // Another resource on the object names the same member by email: every
    // row of that key shows the name.
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Annotate)],
    ))
    .await;
    h.settle("by-id").await.unwrap();
    let rows = h.status("readers").grants;
    assert_eq!(rows[0].name.as_deref(), Some("jane@example.com"));
    let rows = h.status("by-id").grants;
    assert_eq!(
        rows[0].name.as_deref(),
        Some("jane@example.com"),
        "{rows:?}"
    );

    // Declared nowhere any more: the revoke's Event names whom it was, from the
    // name its status row remembers.
    h.delete("by-id");
    h.settle("by-id").await.ok();
    h.edit("readers", |spec| spec.grants.clear());
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty(), "{:?}", h.live());
    let events = h.events("readers");
    assert!(
        events.iter().any(|(_, reason, note)| reason == "Revoked"
            && note.contains(&format!("jane@example.com (member {jane})"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn raise_and_lower_a_permission() {
    let (h, jane) = jane_reads().await;
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );

    h.edit("readers", |spec| spec.grants[0].permission = Annotate);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "annotate".to_string())]
    );
    assert_eq!(h.status("readers").observed_generation, Some(2));

    h.sigma.clear_calls();
    h.edit("readers", |spec| spec.grants[0].permission = Usage);
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    // Lowering is a revoke, then a grant.
    let writes: Vec<String> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET" && !call.path.ends_with("/auth/token"))
        .map(|call| call.method)
        .collect();
    assert_eq!(writes, vec!["DELETE", "POST"]);
    let row = &h.status("readers").grants[0];
    assert_eq!(
        (row.permission.as_str(), row.state),
        ("usage", GrantState::Applied)
    );
}

#[tokio::test]
async fn removing_a_grant_from_the_spec_revokes_it() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.put_settled(&sigma_grant(
        "readers",
        vec![
            member("jane@example.com", Usage),
            member("joe@example.com", Usage),
        ],
    ))
    .await;
    assert_eq!(h.live().len(), 2);

    h.edit("readers", |spec| spec.grants.truncate(1));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    assert_eq!(h.status("readers").grants.len(), 1);
    assert!(
        h.events("readers")
            .iter()
            .any(|(_, reason, _)| reason == "Revoked")
    );
}

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
    let mut grant = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
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
async fn shared_grantee_survives_deletion_of_one_resource_and_is_lowered() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let joe = h.sigma.add_member("joe@example.com");
    h.put(&sigma_grant(
        "editors",
        vec![
            member("jane@example.com", Annotate),
            member("joe@example.com", Usage),
        ],
    ));
    h.put(&sigma_grant(
        "readers",
        vec![
            member("jane@example.com", Usage),
            member("joe@example.com", Usage),
        ],
    ));
    h.settle("editors").await.unwrap();
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
    // Both resources report the same live grant ids.
    assert_eq!(
        h.status("editors").grants[1].vendor_id,
        h.status("readers").grants[1].vendor_id
    );

    // Deleting the annotate declaration lowers jane to what readers still declares, keeps joe.
    h.delete("editors");
    h.settle("editors").await.unwrap();
    assert!(h.get("editors").is_none());
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "usage".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.grants.units.len(),
        1,
        "the unit stays while readers is on it"
    );
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "Synced", "{ready:?}");
    // The lowered grant got a new id; readers' status follows it.
    let ids: Vec<String> = h
        .sigma
        .grants(CONNECTION)
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    for row in h.status("readers").grants {
        assert!(ids.contains(row.vendor_id.as_ref().unwrap()));
    }

    // Deleting the last resource revokes everything.
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn authoritative_prunes_undeclared_grants_but_not_unmanaged_permissions() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let stranger = h.sigma.add_member("stranger@example.com");
    let admin = h.sigma.add_member("admin@example.com");
    h.sigma.seed_grant(
        CONNECTION,
        sigma::Grantee::Member(stranger.clone()),
        "annotate",
    );
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(admin.clone()), "admin");

    // Additive first: the stranger's grant is left alone.
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;
    assert_eq!(h.live().len(), 3);

    h.edit("readers", |spec| {
        spec.policy.mode = grant_operator::api::Mode::Authoritative
    });
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{admin}"), "admin".to_string()),
            (format!("member:{jane}"), "usage".to_string()),
        ]),
        "undeclared grant pruned; a permission the operator does not manage is never touched"
    );
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn observe_writes_nothing_and_reports_drift() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.sigma
        .seed_grant(CONNECTION, sigma::Grantee::Member(jane.clone()), "usage");
    let mut grant = sigma_grant(
        "watching",
        vec![
            member("jane@example.com", Annotate),
            member("joe@example.com", Usage),
        ],
    );
    grant.spec.policy.management_policy = grant_operator::api::ManagementPolicy::Observe;
    h.put(&grant);
    h.settle("watching").await.unwrap();

    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())],
        "nothing written"
    );
    assert_eq!(h.sigma.count("POST", "/v2/connections"), 0);
    assert_eq!(h.sigma.count("DELETE", "/v2/connections"), 0);
    let ready = h.ready_condition("watching");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DriftDetected"),
        "{ready:?}"
    );
    assert!(
        ready.message.contains("2 of 2 grants differ"),
        "{}",
        ready.message
    );
    let rows = h.status("watching").grants;
    assert!(
        rows.iter().all(|row| row.state == GrantState::Drifted),
        "{rows:?}"
    );
    assert_eq!(rows[0].message, "declared annotate, live usage");

    // Deleting an observing resource revokes nothing.
    h.delete("watching");
    h.settle("watching").await.unwrap();
    assert!(h.get("watching").is_none());
    assert_eq!(h.live().len(), 1);
}

#[tokio::test]
async fn drift_is_repaired_at_the_next_sync_and_counted() {
    let (h, jane) = jane_reads().await;
    let grant_id = h.sigma.grants(CONNECTION)[0].grant_id.clone();

    // Someone removes the grant in Sigma's UI.
    h.sigma.delete_grant_directly(CONNECTION, &grant_id);
    // Not due yet: nothing happens.
    h.sigma.clear_calls();
    h.reconcile("readers").await.unwrap();
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "no vendor call before the sync interval"
    );
    assert!(h.live().is_empty());

    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    let status = h.status("readers");
    assert_eq!(status.drift_corrections, 1);
    assert!(
        h.events("readers")
            .iter()
            .any(|(_, reason, _)| reason == "DriftRepaired")
    );
    assert_eq!(
        h.metrics
            .drift_repairs
            .get_or_create(&grant_operator::metrics::KindLabels { kind: "SigmaGrant" })
            .get(),
        1
    );
}

#[tokio::test]
async fn steady_state_sync_is_one_listing_for_many_resources_and_no_writes() {
    let h = Harness::ready().await;
    for i in 0..5 {
        h.sigma.add_member(&format!("user{i}@example.com"));
    }
    for i in 0..5 {
        h.put(&sigma_grant(
            &format!("g{i}"),
            vec![member(&format!("user{i}@example.com"), Usage)],
        ));
    }
    for i in 0..5 {
        h.settle(&format!("g{i}")).await.unwrap();
    }
    assert_eq!(h.live().len(), 5);

    h.advance(Duration::from_secs(61));
    h.sigma.clear_calls();
    for i in 0..5 {
        h.settle(&format!("g{i}")).await.unwrap();
    }
    let calls: Vec<String> = h
        .sigma
        .calls()
        .into_iter()
        .map(|call| format!("{} {}", call.method, call.path))
        .collect();
    assert_eq!(
        calls,
        vec![format!("GET /v2/connections/{CONNECTION}/grants")],
        "one listing, no lookups, no writes"
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_converge_without_duplicates() {
    let h = Harness::ready().await;
    for i in 0..3 {
        h.sigma.add_member(&format!("user{i}@example.com"));
    }
    h.sigma.inject(sigma::Fault {
        method: Some("POST".into()),
        path_prefix: "/v2/connections".into(),
        times: 1,
        kind: sigma::FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    h.sigma.inject(sigma::Fault {
        method: Some("POST".into()),
        path_prefix: "/v2/connections".into(),
        times: 1,
        kind: sigma::FaultKind::Status(500),
    });
    h.sigma.inject(sigma::Fault {
        method: Some("GET".into()),
        path_prefix: "/v2/connections".into(),
        times: 2,
        kind: sigma::FaultKind::Status(503),
    });
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

    h.sigma.inject(sigma::Fault {
        method: Some("GET".into()),
        path_prefix: "/v2/connections".into(),
        times: 100,
        kind: sigma::FaultKind::Status(502),
    });
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
async fn wrong_credentials_make_the_provider_unauthorized_and_grants_wait() {
    let h = Harness::new().await;
    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", "wrong")],
    );
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    let error = h.reconcile_provider(NS, "sigma-prod").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Unauthorized")
    );
    assert!(
        !ready.message.contains("wrong"),
        "never a secret in status: {}",
        ready.message
    );
    // Woken again by its own status write with nothing changed: no new login attempt.
    h.sigma.clear_calls();
    let again = h.reconcile_provider(NS, "sigma-prod").await.unwrap_err();
    assert!(
        matches!(again, grant_operator::controller::Error::Backoff { .. }),
        "{again:?}"
    );
    assert_eq!(again.reason(), "Unauthorized");
    assert_eq!(h.sigma.calls().len(), 0);

    h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    h.sigma.clear_calls();
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "ProviderNotReady");
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "ProviderNotReady");
    assert!(ready.message.contains("Unauthorized"), "{}", ready.message);
    assert_eq!(
        h.sigma.calls().len(),
        0,
        "grants do not hammer the vendor with bad credentials"
    );

    // Fixing the Secret fixes the provider, then the grant, without a restart.
    h.sigma_api_secret();
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.settle("readers").await.unwrap();
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn credentials_revoked_behind_our_back_give_unauthorized_and_a_provider_recheck() {
    let (h, _) = jane_reads().await;

    // The Secret is rotated to a value Sigma does not accept.
    h.secret(
        NS,
        "sigma-api",
        &[("client-id", CLIENT_ID), ("client-secret", "revoked")],
    );
    h.advance(Duration::from_secs(61));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert_eq!(h.ready_condition("readers").reason, "Unauthorized");
    let recheck = h
        .rechecks
        .lock()
        .await
        .try_recv()
        .expect("provider asked to check again");
    assert_eq!(recheck.name, "sigma-prod");
    assert_eq!(h.live().len(), 1, "nothing revoked on an auth failure");
}

#[tokio::test]
async fn rotated_secret_is_used_from_the_next_sync_without_restart() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;

    h.sigma.add_client("client-id-2", "client-secret-2");
    h.secret(
        NS,
        "sigma-api",
        &[
            ("client-id", "client-id-2"),
            ("client-secret", "client-secret-2"),
        ],
    );
    h.sigma.expire_all_tokens();
    h.sigma.clear_calls();
    h.edit("readers", |spec| {
        spec.grants.push(member("joe@example.com", Usage))
    });
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 2);
    let token_calls: Vec<_> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|c| c.path == "/v2/auth/token")
        .collect();
    assert_eq!(token_calls.len(), 1, "one login with the new credentials");
    assert_eq!(token_calls[0].status, 200);
}

#[tokio::test]
async fn token_is_cached_refreshed_and_renewed_after_401() {
    let (h, _) = jane_reads().await;
    let (logins, refreshes) = h.sigma.tokens_issued();
    assert_eq!(
        (logins, refreshes),
        (1, 0),
        "the provider check's token is reused by grants"
    );

    // An access token the API refuses is dropped; the refresh token renews it.
    h.sigma.expire_all_tokens();
    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(h.sigma.tokens_issued(), (1, 1));
    assert_eq!(h.ready_condition("readers").reason, "Synced");
}

#[tokio::test]
async fn unknown_email_is_grantee_not_found_while_the_others_apply() {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    // A substring match must not be taken for the member.
    h.sigma.add_member("nobody@example.com.au");
    h.put(&sigma_grant(
        "readers",
        vec![
            member("Jane@Example.com", Usage),
            member("nobody@example.com", Usage),
            team("Nope", Usage),
        ],
    ));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "GranteeNotFound");
    assert_eq!(
        h.live(),
        vec![(format!("member:{jane}"), "usage".to_string())]
    );
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "GranteeNotFound")
    );
    assert!(
        ready.message.contains("member:nobody@example.com"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains("team:Nope"), "{}", ready.message);
    let rows = h.status("readers").grants;
    assert_eq!(rows[0].state, GrantState::Applied);
    assert_eq!(rows[1].state, GrantState::Failed);
    assert_eq!(rows[2].state, GrantState::Failed);
    assert!(
        h.events("readers")
            .iter()
            .any(|(kind, reason, _)| kind == "Warning" && reason == "GranteeNotFound")
    );

    // Once the member exists, the next retry applies it.
    h.sigma.add_member("nobody@example.com");
    h.edit("readers", |spec| spec.grants.truncate(2));
    h.settle("readers").await.unwrap();
    assert_eq!(h.live().len(), 2);
}

#[tokio::test]
async fn many_grants_go_in_batches_of_at_most_100() {
    let h = Harness::ready().await;
    h.sigma.set_page_size_cap(100);
    let ids: Vec<String> = (0..250)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    h.put_settled(&sigma_grant(
        "everyone",
        ids.iter().map(|id| member_id(id, Usage)).collect(),
    ))
    .await;
    assert_eq!(h.live().len(), 250);
    let posts: Vec<usize> = h
        .sigma
        .calls()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path.ends_with("/grants"))
        .map(|call| call.body.unwrap()["grants"].as_array().unwrap().len())
        .collect();
    assert_eq!(posts, vec![100, 100, 50]);
    // Listings followed every page (3 pages of 100 after the writes).
    assert_eq!(
        h.status("everyone")
            .grants
            .iter()
            .filter(|row| row.state == GrantState::Applied)
            .count(),
        250
    );
}

#[tokio::test]
async fn a_refused_grant_is_isolated_and_the_rest_of_its_batch_applies() {
    let h = Harness::ready().await;
    let ids: Vec<String> = (0..10)
        .map(|i| h.sigma.add_member(&format!("user{i}@example.com")))
        .collect();
    let mut grants: Vec<_> = ids.iter().map(|id| member_id(id, Usage)).collect();
    grants.insert(4, member_id("DoesNotExist", Usage));
    h.put(&sigma_grant("readers", grants));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "InvalidGrant");
    assert_eq!(h.live().len(), 10);
    let rows = h.status("readers").grants;
    assert_eq!(rows[4].state, GrantState::Failed);
    assert!(
        rows[4].message.contains("DoesNotExist"),
        "{}",
        rows[4].message
    );
    assert_eq!(
        rows.iter()
            .filter(|row| row.state == GrantState::Applied)
            .count(),
        10
    );
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
async fn unknown_connection_is_target_not_found() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    let mut grant = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
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
async fn suspended_resources_make_no_vendor_calls() {
    let (h, _) = jane_reads().await;
    h.edit("readers", |spec| spec.policy.suspend = true);
    h.sigma.clear_calls();
    h.advance(Duration::from_secs(600));
    h.settle("readers").await.unwrap();
    assert_eq!(h.sigma.calls().len(), 0);
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Suspended"),
        "Ready keeps its status"
    );

    // Deleting while suspended waits (nothing is forgotten), Orphan releases it.
    h.delete("readers");
    assert!(h.settle("readers").await.is_err());
    assert!(h.get("readers").is_some());
    assert_eq!(h.ready_condition("readers").reason, "Deleting");
    assert_eq!(h.sigma.calls().len(), 0);
    h.edit("readers", |spec| spec.policy.suspend = false);
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert!(h.live().is_empty());
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
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason(), "ProviderNotFound");
    h.delete("readers");
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
}

#[tokio::test]
async fn missing_secret_and_key_are_credentials_missing() {
    let h = Harness::new().await;
    h.put(&h.sigma_provider(NS, "sigma-prod", "sigma-api"));
    assert_eq!(
        h.reconcile_provider(NS, "sigma-prod")
            .await
            .unwrap_err()
            .reason(),
        "CredentialsMissing"
    );
    let ready = h.provider_ready(NS, "sigma-prod");
    assert_eq!(ready.reason, "CredentialsMissing");
    assert_eq!(ready.message, "Secret analytics/sigma-api not found");

    h.secret(NS, "sigma-api", &[("client-id", CLIENT_ID)]);
    assert_eq!(
        h.reconcile_provider(NS, "sigma-prod")
            .await
            .unwrap_err()
            .reason(),
        "CredentialsMissing"
    );
    assert_eq!(
        h.provider_ready(NS, "sigma-prod").message,
        "Secret analytics/sigma-api has no key \"client-secret\""
    );
    assert_eq!(h.sigma.calls().len(), 0);
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

    let mut grant = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
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
    let mut grant = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
    grant.metadata.namespace = Some("other".into());
    h.put(&grant);
    h.caught_up().await;
    let object = h
        .grants
        .store
        .get(&kube::runtime::reflector::ObjectRef::new("readers").within("other"))
        .unwrap();
    // First reconcile adds the finalizer, the second looks for the provider in "other".
    let _ = reconcile_through(object, h.grants.clone()).await;
    h.caught_up().await;
    let object = h
        .grants
        .store
        .get(&kube::runtime::reflector::ObjectRef::new("readers").within("other"))
        .unwrap();
    let error = reconcile_through(object, h.grants.clone())
        .await
        .unwrap_err();
    assert_eq!(error.reason(), "ProviderNotFound");
    assert!(h.live().is_empty());
}

#[tokio::test]
async fn pagination_is_followed_until_next_page_is_null() {
    let h = Harness::ready().await;
    h.sigma.set_page_size_cap(2);
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = h.sigma.add_member(&format!("user{i}@example.com"));
        h.sigma
            .seed_grant(CONNECTION, sigma::Grantee::Member(id.clone()), "usage");
        ids.push(id);
    }
    h.put_settled(&sigma_grant(
        "readers",
        ids.iter().map(|id| member_id(id, Usage)).collect(),
    ))
    .await;
    assert_eq!(
        h.sigma.count("GET", "/v2/connections"),
        3,
        "three pages, then nextPage is null"
    );
    assert_eq!(
        h.sigma.count("POST", "/v2/connections"),
        0,
        "everything was already live: adopted"
    );
    assert_eq!(
        h.ready_condition("readers").message,
        "5 of 5 grants applied"
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
    h.sigma.inject(sigma::Fault {
        method: Some("GET".into()),
        path_prefix: "/v2/connections".into(),
        times: 1,
        kind: sigma::FaultKind::Delay(Duration::from_millis(1500)),
    });
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;
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
    h.sigma.inject(sigma::Fault {
        method: Some("GET".into()),
        path_prefix: "/v2/connections".into(),
        times: 1,
        kind: sigma::FaultKind::RateLimited {
            retry_after_secs: 90,
        },
    });
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    h.reconcile("readers").await.unwrap(); // finalizer
    h.caught_up().await;
    let object = h
        .grants
        .store
        .get(&kube::runtime::reflector::ObjectRef::new("readers").within(NS))
        .unwrap();
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
async fn a_suspended_resource_keeps_its_status_when_its_provider_breaks() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "paused",
        vec![member("jane@example.com", Usage)],
    ));
    h.put(&sigma_grant(
        "active",
        vec![member("jane@example.com", Usage)],
    ));
    h.settle("paused").await.unwrap();
    h.settle("active").await.unwrap();
    h.edit("paused", |spec| spec.policy.suspend = true);
    h.settle("paused").await.unwrap();
    assert_eq!(h.ready_condition("paused").reason, "Suspended");

    // The provider goes away; the active neighbour's sync reports it, the suspended one is left alone.
    h.kube
        .delete::<grant_operator::api::GrantProvider>(Some(NS), "sigma-prod");
    h.edit("active", |spec| spec.grants[0].permission = Annotate);
    assert_eq!(
        h.settle("active").await.unwrap_err().reason(),
        "ProviderNotFound"
    );
    assert_eq!(h.ready_condition("paused").reason, "Suspended");
}

#[tokio::test]
async fn a_long_retry_after_on_a_write_also_wins() {
    let h = Harness::ready().await;
    h.sigma.add_member("jane@example.com");
    h.put(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ));
    h.reconcile("readers").await.unwrap(); // finalizer
    h.sigma.inject(sigma::Fault {
        method: Some("POST".into()),
        path_prefix: "/v2/connections".into(),
        times: 1,
        kind: sigma::FaultKind::RateLimited {
            retry_after_secs: 120,
        },
    });
    h.caught_up().await;
    let object = h
        .grants
        .store
        .get(&kube::runtime::reflector::ObjectRef::new("readers").within(NS))
        .unwrap();
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

#[tokio::test]
async fn the_token_is_refreshed_shortly_before_it_expires() {
    let h = Harness::new().await;
    h.sigma.set_token_ttl(4);
    h.sigma_prod_provider();
    h.reconcile_provider(NS, "sigma-prod").await.unwrap();
    h.sigma.add_member("jane@example.com");
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;
    assert_eq!(h.sigma.tokens_issued(), (1, 0));

    // Renewed a quarter of its lifetime early (at 3 s of 4 s): never refused.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    h.advance(Duration::from_secs(61));
    h.settle("readers").await.unwrap();
    assert_eq!(
        h.sigma.tokens_issued(),
        (1, 1),
        "refreshed, not logged in again"
    );
    assert!(
        h.sigma.calls().iter().all(|call| call.status != 401),
        "no request was refused"
    );
}

#[tokio::test]
async fn a_grant_naming_a_provider_of_another_vendor_is_provider_not_found() {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    h.put(&h.dremio_provider(NS, "dremio", "dremio-pat", false));
    h.reconcile_provider(NS, "dremio")
        .await
        .expect("the Dremio provider is ready");

    let mut grant = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
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

#[tokio::test]
async fn secrets_outside_the_watched_namespaces_are_versioned_by_a_metadata_read() {
    use grant_operator::credentials::SecretReader;
    let h = Harness::new().await;
    h.namespace("platform", &[]);
    h.secret("platform", "sigma-api", &[("client-id", CLIENT_ID)]);
    // A reader whose watch sees no Secret at all (as with --namespace and a cluster provider).
    let (unwatched, _writer) = kube::runtime::reflector::store();
    let reader = SecretReader::new(h.kube.client(), unwatched);
    assert_eq!(reader.version("platform", "sigma-api"), None);
    let before = reader
        .current_version("platform", "sigma-api")
        .await
        .expect("a version");
    h.secret("platform", "sigma-api", &[("client-id", "rotated")]);
    let after = reader
        .current_version("platform", "sigma-api")
        .await
        .expect("a version");
    assert_ne!(before, after, "a rotation is seen without the watch");
    assert_eq!(reader.current_version("platform", "missing").await, None);
}

#[tokio::test]
async fn an_unreadable_resource_neither_wedges_the_watch_nor_loses_grants() {
    use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    let joe = h.sigma.add_member("joe@example.com");
    h.put_settled(&sigma_grant(
        "future",
        vec![member("joe@example.com", Usage)],
    ))
    .await;
    let mut exact = sigma_grant("exact", vec![member("jane@example.com", Usage)]);
    exact.spec.policy.mode = grant_operator::api::Mode::Authoritative;
    h.put(&exact);
    h.settle("exact").await.unwrap();
    assert_eq!(h.live().len(), 2);

    // A newer CRD lets "future" hold a value this operator cannot read.
    let resource = ApiResource::erase::<grant_operator::api::SigmaGrant>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(h.kube.client(), NS, &resource);
    api.patch(
        "future",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"mode": "SomethingNew"}})),
    )
    .await
    .unwrap();
    // A brand-new resource still syncs: the watch is not wedged.
    h.put(&sigma_grant(
        "new",
        vec![member("jane@example.com", Annotate)],
    ));
    h.settle("future").await.unwrap();
    assert!(
        h.events("future")
            .iter()
            .any(|(kind, reason, note)| kind == "Warning"
                && reason == "Unreadable"
                && note.contains("SomethingNew"))
    );

    // Its target makes no change while a member cannot be read: the Authoritative
    // neighbour must not revoke joe's grant, which "future" still holds.
    let error = h.settle("new").await.unwrap_err();
    assert_eq!(error.reason(), "InvalidSpec");
    assert!(
        h.ready_condition("new").message.contains("future"),
        "{}",
        h.ready_condition("new").message
    );
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "usage".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );

    // Readable again: everything proceeds.
    api.patch(
        "future",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"mode": "Additive"}})),
    )
    .await
    .unwrap();
    h.settle("future").await.unwrap();
    h.settle("new").await.unwrap();
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{jane}"), "annotate".to_string()),
            (format!("member:{joe}"), "usage".to_string())
        ])
    );
}

/// Unknown is not absent: a grant entry the client cannot read stops the sync
/// with a message naming it; nothing is written, and a deleted resource keeps
/// its finalizer until the entry can be read.
async fn an_unreadable_grant_entry_stops_the_sync(entry: serde_json::Value, why: &str) {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.sigma.add_member("joe@example.com");
    // Levels Sigma defines but the operator does not manage are known: counted, not fatal.
    let admin = h.sigma.add_member("admin@example.com");
    h.sigma.seed_grant(
        CONNECTION,
        sigma::Grantee::Member(admin.clone()),
        "writeback",
    );
    h.put_settled(&sigma_grant(
        "readers",
        vec![member("jane@example.com", Usage)],
    ))
    .await;
    assert_eq!(h.ready_condition("readers").reason, "Synced");

    h.sigma.inject_raw_grant(CONNECTION, entry);
    h.sigma.clear_calls();
    h.edit("readers", |spec| {
        spec.grants.push(member("joe@example.com", Annotate));
        spec.policy.mode = grant_operator::api::Mode::Authoritative;
    });
    let error = h.settle("readers").await.unwrap_err();
    assert_eq!(error.reason().to_string(), "VendorUnavailable");
    let ready = h.ready_condition("readers");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "VendorUnavailable")
    );
    assert!(
        ready.message.contains("cannot read an entry"),
        "{}",
        ready.message
    );
    assert!(ready.message.contains(why), "{}", ready.message);
    assert!(ready.message.contains("g-unreadable"), "{}", ready.message);
    assert_eq!(
        h.sigma.count("POST", "/v2/connections"),
        0,
        "nothing granted"
    );
    assert_eq!(
        h.sigma.count("DELETE", "/v2/connections"),
        0,
        "nothing revoked"
    );

    h.delete("readers");
    assert!(h.settle("readers").await.is_err());
    let grant = h.get("readers").expect("the resource stays");
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );
    let ready = h.ready_condition("readers");
    assert_eq!(ready.reason, "Deleting");
    assert!(ready.message.contains(why), "{}", ready.message);
    assert_eq!(h.sigma.count("DELETE", "/v2/connections"), 0);
    assert_eq!(
        h.live(),
        sorted(vec![
            (format!("member:{admin}"), "writeback".to_string()),
            (format!("member:{jane}"), "usage".to_string()),
        ])
    );

    // Once the entry can be read, the deletion completes (after the failed
    // sync's own backoff, 10 ms in tests, on real time).
    h.sigma.clear_raw_grants(CONNECTION);
    h.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.settle("readers").await.unwrap();
    assert!(h.get("readers").is_none());
    assert_eq!(
        h.live(),
        vec![(format!("member:{admin}"), "writeback".to_string())]
    );
}

#[tokio::test]
async fn a_grant_entry_without_a_grantee_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "organizationId": "o", "inodeId": CONNECTION,
            "memberId": null, "teamId": null, "permission": "usage",
        }),
        "names no member and no team",
    )
    .await;
}

#[tokio::test]
async fn a_grant_entry_with_a_permission_sigma_does_not_define_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "organizationId": "o", "inodeId": CONNECTION,
            "memberId": "m-someone", "teamId": null, "permission": "superuser",
        }),
        "\"superuser\" is not one Sigma's API defines",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_grant_entry_stops_the_sync() {
    an_unreadable_grant_entry_stops_the_sync(
        serde_json::json!({
            "grantId": "g-unreadable", "memberId": "m-someone", "teamId": null,
            "permission": 3,
        }),
        "invalid type",
    )
    .await;
}
