//! Faults, on both permission APIs: refused credentials and missing rights,
//! rate limits and server errors, unreadable permission entries.

use super::*;

each_server!(
    refused_credentials_are_unauthorized_and_missing_rights_forbidden,
    rate_limits_and_server_errors_converge_without_duplicates,
    an_unreadable_permission_entry_stops_the_sync,
);

async fn refused_credentials_are_unauthorized_and_missing_rights_forbidden(server: Server) {
    let h = ready(server).await;
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.grafana.set_read_only(GRAFANA_TOKEN);
    h.put(&grafana_grant("ds-users", vec![user_login("jane", Query)]));
    assert_eq!(settle(&h, "ds-users").await.unwrap_err(), "Forbidden");
    let (status, reason, _) = ready_of(&h, "ds-users");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Forbidden"));
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());

    h.grafana.revoke_credentials(GRAFANA_TOKEN);
    h.advance(Duration::from_secs(61));
    // The failed sync's own backoff runs on real time: 10 ms in tests, and a
    // refusal (Forbidden) starts three doublings along, at most 80 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(settle(&h, "ds-users").await.unwrap_err(), "Unauthorized");
    assert!(
        h.events("ds-users")
            .iter()
            .any(|(kind, reason, _)| kind == "Warning" && reason == "Unauthorized"),
        "{:?}",
        h.events("ds-users")
    );
    // The provider finds out too.
    let provider = provider_unauthorized(&h).await;
    assert!(!provider.message.contains(GRAFANA_TOKEN));
}

async fn rate_limits_and_server_errors_converge_without_duplicates(server: Server) {
    let h = ready(server).await;
    let users: Vec<i64> = (0..3)
        .map(|i| {
            h.grafana
                .add_user(1, &format!("user{i}"), &format!("user{i}@example.com"))
        })
        .collect();
    let path = permissions_path(&h, server);
    h.grafana.inject(fault(
        "POST",
        &path,
        1,
        FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    ));
    h.grafana
        .inject(fault("POST", &path, 1, FaultKind::Status(500)));
    h.grafana
        .inject(fault("GET", &path, 2, FaultKind::Status(503)));
    h.put(&grafana_grant(
        "ds-users",
        (0..3)
            .map(|i| user_login(&format!("user{i}"), Query))
            .collect(),
    ));
    if server == Server::Legacy {
        // Legacy's add creates an entry: after a 500 it may have landed, so it is
        // not sent again blind; the next sync reads and adds what is missing.
        assert_eq!(
            settle(&h, "ds-users").await,
            Err("VendorUnavailable".into())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settle(&h, "ds-users").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        sorted(
            users
                .iter()
                .map(|id| pair(format!("user:{id}"), "Query"))
                .collect()
        )
    );
    assert_eq!(ready_of(&h, "ds-users").1, "Synced");
    let posts: Vec<_> = h
        .grafana
        .calls()
        .into_iter()
        .filter(|call| call.method == "POST" && call.path.starts_with(&path))
        .collect();
    // The refused write is sent again only once Retry-After has passed.
    let refused = posts
        .iter()
        .find(|call| call.status == 429)
        .expect("a write was rate limited");
    let again = posts
        .iter()
        .find(|call| call.at > refused.at && call.path == refused.path && call.body == refused.body)
        .expect("the refused write was retried");
    assert!(
        again.at.duration_since(refused.at) >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert!(
        posts.iter().all(|call| call.status != 400),
        "no duplicate was ever posted: {posts:?}"
    );
}

/// Unknown is not absent: a managed permission entry the client cannot read
/// stops the sync with a message naming it; nothing is written, and a deleted
/// resource keeps its finalizer. Entries of fixed or basic roles are known and
/// left alone.
async fn an_unreadable_permission_entry_stops_the_sync(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.grafana.add_user(1, "joe", "joe@example.com");
    let legacy = server == Server::Legacy;
    if !legacy {
        h.grafana.inject_raw_entry(
            DATASOURCE_UID,
            false,
            serde_json::json!({
                "id": 98, "roleName": "fixed:datasources:reader", "isManaged": false,
                "isInherited": false, "isServiceAccount": false, "builtInRole": "Viewer",
                "actions": ["datasources:query"], "permission": "Query",
            }),
        );
    }
    h.put_settled(&grafana_grant("ds-users", vec![user_login("jane", Query)]))
        .await;
    assert_eq!(ready_of(&h, "ds-users").1, "Synced");

    let unreadable = if legacy {
        serde_json::json!({
            "id": 99, "datasourceId": h.datasource_id, "permission": 1,
            "permissionName": "Query", "created": "2024-01-01T00:00:00Z",
            "updated": "2024-01-01T00:00:00Z",
        })
    } else {
        serde_json::json!({
            "id": 99, "roleName": "managed:users:99:permissions", "isManaged": true,
            "isInherited": false, "isServiceAccount": false,
            "actions": ["datasources:query"], "permission": "Query",
        })
    };
    h.grafana
        .inject_raw_entry(DATASOURCE_UID, legacy, unreadable);
    h.grafana.clear_calls();
    h.edit_of::<grant_operator::api::GrafanaGrant>("ds-users", |grant| {
        grant.spec.permissions.push(user_login("joe", Edit));
        grant.spec.policy.mode = Mode::Authoritative;
    });
    assert_eq!(
        settle(&h, "ds-users").await,
        Err("VendorUnavailable".into())
    );
    let message = assert_ready(&h, "ds-users", "False", "VendorUnavailable");
    assert!(message.contains("cannot read an entry"), "{message}");
    assert!(message.contains("\"id\":99"), "{message}");
    assert!(message.contains("names no user"), "{message}");
    assert_eq!(writes(&h, server), 0, "nothing written");

    h.delete_of::<grant_operator::api::GrafanaGrant>("ds-users");
    assert!(settle(&h, "ds-users").await.is_err());
    let grant = h
        .get_of::<grant_operator::api::GrafanaGrant>("ds-users")
        .expect("the resource stays");
    assert_eq!(
        grant.metadata.finalizers,
        Some(vec!["grantoperator.dev/revoke".to_string()])
    );
    assert_eq!(ready_of(&h, "ds-users").1, "Deleting");
    assert_eq!(writes(&h, server), 0, "nothing revoked");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );

    // Once the entry can be read, the deletion completes (after the failed
    // sync's own backoff, 10 ms in tests, on real time).
    h.grafana.clear_raw_entries(DATASOURCE_UID);
    h.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle(&h, "ds-users").await.unwrap();
    assert!(
        h.get_of::<grant_operator::api::GrafanaGrant>("ds-users")
            .is_none()
    );
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
}
