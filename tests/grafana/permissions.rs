//! Permissions granted, changed and revoked, on both permission APIs: create,
//! change, remove and delete, `Orphan`, a shared grantee, `Authoritative`,
//! `Observe`, drift repair, steady state.

use super::*;

each_server!(
    create_change_remove_and_delete,
    orphan_leaves_permissions_in_place,
    shared_grantee_is_lowered_then_revoked_with_the_last_resource,
    authoritative_prunes_only_managed_entries,
    observe_writes_nothing_and_reports_drift,
    drift_is_repaired_at_the_next_sync,
    steady_state_is_one_listing_per_data_source_and_no_writes,
);

async fn create_change_remove_and_delete(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let bob = h.grafana.add_user(1, "bob", "Bob@Example.com");
    let sre = h.grafana.add_team(1, "SRE");
    h.put(&grafana_grant(
        "ds-users",
        vec![
            user_login("jane", Query),
            user_email("bob@example.com", Edit),
            team_name("SRE", Query),
        ],
    ));

    // The first reconcile only adds the finalizer.
    h.reconcile_of::<grant_operator::api::GrafanaGrant>("ds-users")
        .await
        .unwrap();
    assert!(h.grafana.calls().is_empty(), "no call before the finalizer");

    settle(&h, "ds-users").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        sorted(vec![
            pair(format!("user:{jane}"), "Query"),
            pair(format!("user:{bob}"), "Edit"),
            pair(format!("team:{sre}"), "Query"),
        ])
    );
    let message = assert_ready(&h, "ds-users", "True", "Synced");
    assert_eq!(message, "3 of 3 grants applied");
    let target = status_of(&h, "ds-users").target.unwrap();
    assert_eq!(target.datasource_uid.as_deref(), Some(DATASOURCE_UID));
    assert_eq!(target.datasource_id, Some(h.datasource_id));
    // Status rows carry the Grafana permission ids.
    let ids: Vec<String> = h
        .grafana
        .permissions(DATASOURCE_UID)
        .iter()
        .map(|entry| entry.id.to_string())
        .collect();
    let rows = status_of(&h, "ds-users").grants;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.state, GrantState::Applied, "{row:?}");
        assert!(ids.contains(row.vendor_id.as_ref().unwrap()), "{row:?}");
    }
    if server == Server::Legacy {
        assert_eq!(h.grafana.enable_calls(DATASOURCE_UID), 1);
        assert!(h.grafana.permissions_enabled(DATASOURCE_UID));
    }

    // Level change.
    h.edit_of::<grant_operator::api::GrafanaGrant>("ds-users", |grant| {
        grant.spec.permissions[0].permission = Admin;
        grant.spec.permissions[1].permission = Query;
    });
    let result = settle(&h, "ds-users").await;
    match server {
        Server::AccessControl => {
            result.unwrap();
            assert_eq!(
                h.grafana_live(DATASOURCE_UID),
                sorted(vec![
                    pair(format!("user:{jane}"), "Admin"),
                    pair(format!("user:{bob}"), "Query"),
                    pair(format!("team:{sre}"), "Query"),
                ])
            );
        }
        Server::Legacy => {
            // The Legacy API has no Admin level: refused clearly, the rest applied.
            assert_eq!(result.unwrap_err(), "InvalidGrant");
            let (_, reason, message) = ready_of(&h, "ds-users");
            assert_eq!(reason, "InvalidGrant");
            assert!(message.contains("no Admin level"), "{message}");
            assert_eq!(
                h.grafana_live(DATASOURCE_UID),
                sorted(vec![
                    pair(format!("user:{jane}"), "Query"),
                    pair(format!("user:{bob}"), "Query"),
                    pair(format!("team:{sre}"), "Query"),
                ]),
                "bob lowered by remove-then-add; jane kept at what she had"
            );
            h.edit_of::<grant_operator::api::GrafanaGrant>("ds-users", |grant| {
                grant.spec.permissions[0].permission = Edit;
            });
            settle(&h, "ds-users").await.unwrap();
            assert!(
                h.grafana_live(DATASOURCE_UID)
                    .contains(&pair(format!("user:{jane}"), "Edit"))
            );
        }
    }

    // Removal from the spec revokes.
    h.edit_of::<grant_operator::api::GrafanaGrant>("ds-users", |grant| {
        grant.spec.permissions.remove(1);
    });
    settle(&h, "ds-users").await.unwrap();
    let live = h.grafana_live(DATASOURCE_UID);
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(!live.iter().any(|(key, _)| key == &format!("user:{bob}")));
    assert!(
        h.events("ds-users")
            .iter()
            .any(|(_, reason, _)| reason == "Revoked"),
        "{:?}",
        h.events("ds-users")
    );

    // Deletion revokes the rest and releases the resource.
    h.delete_of::<grant_operator::api::GrafanaGrant>("ds-users");
    settle(&h, "ds-users").await.unwrap();
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
    assert!(
        h.get_of::<grant_operator::api::GrafanaGrant>("ds-users")
            .is_none()
    );
    // The inherited Admin entry is still there, and permissions were never disabled.
    assert!(
        h.grafana
            .permissions(DATASOURCE_UID)
            .iter()
            .any(|entry| entry.inherited)
    );
    assert_eq!(h.grafana.disable_calls(DATASOURCE_UID), 0);
    if server == Server::Legacy {
        assert_eq!(h.grafana.enable_calls(DATASOURCE_UID), 1, "enabled once");
    }
}

async fn orphan_leaves_permissions_in_place(server: Server) {
    let h = ready(server).await;
    h.grafana.add_user(1, "jane", "jane@example.com");
    let mut grant = grafana_grant("ds-users", vec![user_login("jane", Query)]);
    grant.spec.policy.deletion_policy = DeletionPolicy::Orphan;
    h.put(&grant);
    settle(&h, "ds-users").await.unwrap();
    h.grafana.clear_calls();

    h.delete_of::<grant_operator::api::GrafanaGrant>("ds-users");
    settle(&h, "ds-users").await.unwrap();
    assert!(
        h.get_of::<grant_operator::api::GrafanaGrant>("ds-users")
            .is_none()
    );
    assert_eq!(h.grafana_live(DATASOURCE_UID).len(), 1);
    assert_eq!(writes(&h, server), 0);
}

async fn shared_grantee_is_lowered_then_revoked_with_the_last_resource(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.put(&grafana_grant("editors", vec![user_login("jane", Edit)]));
    h.put(&grafana_grant("readers", vec![user_id(jane, Query)]));
    settle(&h, "editors").await.unwrap();
    settle(&h, "readers").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Edit")],
        "the highest level wins"
    );
    assert_eq!(ready_of(&h, "readers").1, "Synced");

    h.delete_of::<grant_operator::api::GrafanaGrant>("editors");
    settle(&h, "editors").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")],
        "lowered to what the other resource still declares"
    );

    h.delete_of::<grant_operator::api::GrafanaGrant>("readers");
    settle(&h, "readers").await.unwrap();
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
}

async fn authoritative_prunes_only_managed_entries(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let stranger = h.grafana.add_user(1, "stranger", "stranger@example.com");
    let fixed = h.grafana.add_user(1, "fixed", "fixed@example.com");
    let ops = h.grafana.add_team(1, "Ops");
    h.grafana.seed_permission(
        DATASOURCE_UID,
        Grantee::User(stranger),
        Level::Edit,
        true,
        false,
    );
    h.grafana.seed_permission(
        DATASOURCE_UID,
        Grantee::Team(ops),
        Level::Query,
        true,
        false,
    );
    // Entries the operator must never change: unmanaged, and inherited.
    h.grafana.seed_permission(
        DATASOURCE_UID,
        Grantee::User(fixed),
        Level::Query,
        false,
        false,
    );
    h.grafana.seed_permission(
        DATASOURCE_UID,
        Grantee::BuiltIn("Editor".into()),
        Level::Query,
        true,
        true,
    );
    let before = h.grafana.permissions(DATASOURCE_UID).len();

    h.put_settled(&grafana_grant("ds-users", vec![user_login("jane", Query)]))
        .await;
    assert_eq!(
        h.grafana.permissions(DATASOURCE_UID).len(),
        before + 1,
        "Additive touches nothing else"
    );

    h.edit_of::<grant_operator::api::GrafanaGrant>("ds-users", |grant| {
        grant.spec.policy.mode = Mode::Authoritative;
    });
    settle(&h, "ds-users").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")],
        "undeclared managed entries pruned"
    );
    let left = h.grafana.permissions(DATASOURCE_UID);
    assert!(
        left.iter()
            .any(|entry| entry.grantee == Grantee::User(fixed) && !entry.managed),
        "unmanaged entry kept: {left:?}"
    );
    assert_eq!(
        left.iter().filter(|entry| entry.inherited).count(),
        2,
        "inherited entries kept: {left:?}"
    );
    assert_eq!(ready_of(&h, "ds-users").1, "Synced");
    assert!(
        h.grafana.calls().iter().all(|call| call.status != 400),
        "never tried to remove an entry it may not change"
    );
}

async fn observe_writes_nothing_and_reports_drift(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.grafana.add_user(1, "joe", "joe@example.com");
    h.grafana
        .set_permissions_enabled(DATASOURCE_UID, server == Server::AccessControl);
    h.grafana.seed_permission(
        DATASOURCE_UID,
        Grantee::User(jane),
        Level::Query,
        true,
        false,
    );
    let mut grant = grafana_grant(
        "watching",
        vec![user_login("jane", Edit), user_login("joe", Query)],
    );
    grant.spec.policy.management_policy = ManagementPolicy::Observe;
    h.put(&grant);
    settle(&h, "watching").await.unwrap();

    assert_eq!(writes(&h, server), 0);
    assert_eq!(
        h.grafana.count("POST", "/api/datasources"),
        0,
        "not even enabled"
    );
    let message = assert_ready(&h, "watching", "False", "DriftDetected");
    assert!(message.contains("2 of 2 grants differ"), "{message}");
    let rows = status_of(&h, "watching").grants;
    assert!(
        rows.iter().all(|row| row.state == GrantState::Drifted),
        "{rows:?}"
    );
    assert_eq!(rows[0].message, "declared Edit, live Query");

    h.delete_of::<grant_operator::api::GrafanaGrant>("watching");
    settle(&h, "watching").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID).len(),
        1,
        "observing revokes nothing"
    );
}

async fn drift_is_repaired_at_the_next_sync(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let sre = h.grafana.add_team(1, "SRE");
    h.put_settled(&grafana_grant(
        "ds-users",
        vec![user_login("jane", Edit), team_name("SRE", Query)],
    ))
    .await;

    // Changed and removed behind the operator's back.
    h.grafana
        .set_level_directly(DATASOURCE_UID, &Grantee::User(jane), Level::Query);
    h.grafana
        .remove_directly(DATASOURCE_UID, &Grantee::Team(sre));
    h.grafana.clear_calls();
    h.reconcile_of::<grant_operator::api::GrafanaGrant>("ds-users")
        .await
        .unwrap();
    assert!(h.grafana.calls().is_empty(), "not due yet");

    h.advance(Duration::from_secs(61));
    settle(&h, "ds-users").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        sorted(vec![
            pair(format!("user:{jane}"), "Edit"),
            pair(format!("team:{sre}"), "Query"),
        ])
    );
    assert_eq!(
        status_of(&h, "ds-users").drift_corrections,
        2,
        "one per grant repaired"
    );
    assert!(
        h.events("ds-users")
            .iter()
            .any(|(_, reason, _)| reason == "DriftRepaired")
    );
}

async fn steady_state_is_one_listing_per_data_source_and_no_writes(server: Server) {
    let h = ready(server).await;
    for i in 0..5 {
        h.grafana
            .add_user(1, &format!("user{i}"), &format!("user{i}@example.com"));
    }
    for i in 0..5 {
        h.put(&grafana_grant(
            &format!("g{i}"),
            vec![user_login(&format!("user{i}"), Query)],
        ));
    }
    for i in 0..5 {
        settle(&h, &format!("g{i}")).await.unwrap();
    }
    assert_eq!(h.grafana_live(DATASOURCE_UID).len(), 5);

    h.grafana.clear_calls();
    h.advance(Duration::from_secs(61));
    for i in 0..5 {
        settle(&h, &format!("g{i}")).await.unwrap();
    }
    let path = permissions_path(&h, server);
    assert_eq!(
        h.grafana.count("GET", &path),
        1,
        "one listing for five resources: {:?}",
        h.grafana.calls()
    );
    assert_eq!(writes(&h, server), 0);
    assert_eq!(
        h.grafana.calls().len(),
        1,
        "names, data source and API are cached: {:?}",
        h.grafana.calls()
    );
}
