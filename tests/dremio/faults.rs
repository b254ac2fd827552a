//! Faults: unreadable grant entries, refused credentials and missing rights,
//! rate limits and server errors, a write that got no answer.

use super::*;

each_deployment!(
    an_unreadable_grant_entry_stops_the_sync,
    refused_credentials_are_unauthorized_and_missing_rights_forbidden,
    rate_limits_and_server_errors_converge,
    a_write_that_got_no_answer_is_never_overtaken,
);

/// Unknown is not absent: a grant entry the client cannot read (here of a
/// grantee type it does not know) stops the sync with a message naming it;
/// nothing is written, and a deleted resource keeps its finalizer.
async fn an_unreadable_grant_entry_stops_the_sync(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.add_role("analysts");
    h.put_settled(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ))
    .await;
    let puts = h.dremio.puts(&h.dremio_object);

    h.dremio.inject_raw_grant(
        &h.dremio_object,
        serde_json::json!({"privileges": ["SELECT"], "granteeType": "GROUP", "id": "g-unreadable", "name": "everyone"}),
    );
    h.edit_of::<DremioGrant>("zips", |grant| {
        grant.spec.grants.push(dremio_role("analysts", &["SELECT"]));
        grant.spec.policy.mode = Mode::Authoritative;
    });
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "VendorUnavailable");
    let message = assert_ready(&h, "zips", "False", "VendorUnavailable");
    assert!(message.contains("cannot read an entry"), "{message}");
    assert!(
        message.contains("\"GROUP\" is not USER or ROLE"),
        "{message}"
    );
    assert!(message.contains("g-unreadable"), "{message}");
    assert_eq!(h.dremio.puts(&h.dremio_object), puts, "nothing written");

    h.delete_of::<DremioGrant>("zips");
    assert!(settle(&h, "zips").await.is_err());
    let grant = h.get_of::<DremioGrant>("zips").expect("the resource stays");
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );
    assert_eq!(ready_of(&h, "zips").1, "Deleting");
    assert_eq!(h.dremio.puts(&h.dremio_object), puts, "nothing revoked");
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );

    // Once the entry can be read, the deletion completes (after the failed
    // sync's own backoff, 10 ms in tests, on real time).
    h.dremio.clear_raw_grants(&h.dremio_object);
    h.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle(&h, "zips").await.unwrap();
    assert!(h.get_of::<DremioGrant>("zips").is_none());
    assert!(h.dremio_live(&h.dremio_object).is_empty());
}

async fn refused_credentials_are_unauthorized_and_missing_rights_forbidden(deployment: Deployment) {
    let h = ready(deployment).await;
    h.dremio.add_user("jeansmith", "jean@example.com");
    h.dremio.set_read_only(DREMIO_TOKEN);
    h.put(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "Forbidden");
    assert!(h.dremio_live(&h.dremio_object).is_empty());

    h.dremio.revoke_token(DREMIO_TOKEN);
    h.advance(Duration::from_secs(61));
    // The failed sync's own backoff runs on real time: 10 ms in tests, and a
    // refusal (Forbidden) starts three doublings along, at most 80 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(settle(&h, "zips").await.unwrap_err(), "Unauthorized");
    assert_eq!(h.provider_refusal(NS, "dremio").await, "Unauthorized");
    assert!(
        !h.provider_ready(NS, "dremio")
            .message
            .contains(DREMIO_TOKEN)
    );
}

async fn rate_limits_and_server_errors_converge(deployment: Deployment) {
    let h = ready(deployment).await;
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let path = grants_path(&h, deployment);
    h.dremio.inject(fault(
        "PUT",
        &path,
        1,
        FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    ));
    h.dremio
        .inject(fault("PUT", &path, 1, FaultKind::Status(502)));
    h.dremio
        .inject(fault("GET", &path, 2, FaultKind::Status(503)));
    h.put(&dremio_grant(
        "zips",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    // A 429 is waited out and sent again; a 502 on the whole-list write is not
    // repeated blind (it may have landed): the sync fails, and the grant stays
    // recorded as the resource's until a read settles it.
    assert_eq!(settle(&h, "zips").await, Err("VendorUnavailable".into()));
    let row = &h.status_of::<DremioGrant>("zips").grants[0];
    assert_eq!(row.state, GrantState::Pending);
    assert!(row.message.starts_with("granting"), "{}", row.message);
    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&h, "zips").await.unwrap();
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        vec![live(format!("user:{jean}"), &["SELECT"])]
    );
    let puts: Vec<_> = h
        .dremio
        .calls()
        .into_iter()
        .filter(|call| call.method == "PUT")
        .collect();
    assert_eq!(
        puts.iter().map(|call| call.status).collect::<Vec<_>>(),
        [429, 502, 204]
    );
    assert!(puts[1].at.duration_since(puts[0].at) >= Duration::from_millis(950));
}

/// A whole-list write whose answer never came may land later. Until it can no
/// longer land, no newer write goes to the object: a newer list written first
/// would be replaced by the late one, dropping what was declared since.
async fn a_write_that_got_no_answer_is_never_overtaken(deployment: Deployment) {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    let mut provider =
        h.dremio_provider(NS, "dremio", "dremio-pat", deployment == Deployment::Cloud);
    provider.spec.request_timeout_seconds = Some(1);
    h.put(&provider);
    h.reconcile_provider(NS, "dremio").await.unwrap();
    let jean = h.dremio.add_user("jeansmith", "jean@example.com");
    let analysts = h.dremio.add_role("analysts");
    let path = grants_path(&h, deployment);
    // The first write is answered after the client gave up (1 s), and lands then.
    h.dremio.inject(fault(
        "PUT",
        &path,
        1,
        FaultKind::Delay(Duration::from_millis(1500)),
    ));
    h.put(&dremio_grant(
        "jean",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    // (Not repeated blind: the sync fails, its grant recorded as an intent.)
    let first = settle(&h, "jean").await;

    // Another resource declares a grant on the same object meanwhile.
    h.put(&dremio_grant(
        "analysts",
        vec![dremio_role("analysts", &["SELECT"])],
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while settle(&h, "analysts").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "analysts converges");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whatever landed late, the newer declaration is live, and stays live.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let live_now = h.dremio_live(&h.dremio_object);
    assert!(
        live_now.contains(&live(format!("role:{analysts}"), &["SELECT"])),
        "a late write dropped a declared grant: {live_now:?}"
    );
    assert_eq!(first, Err("VendorUnavailable".into()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while settle(&h, "jean").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "jean converges");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.dremio_live(&h.dremio_object),
        sorted(vec![
            live(format!("user:{jean}"), &["SELECT"]),
            live(format!("role:{analysts}"), &["SELECT"]),
        ])
    );
}
