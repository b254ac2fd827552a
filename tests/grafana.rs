//! GrafanaGrant end to end over real HTTP: the real reconcilers against the
//! strict Grafana emulator, for both permission APIs, with the Kubernetes side
//! on an in-memory API.
//!
//! Every scenario that both APIs share runs twice (`support::each_setup!` below): once against
//! a server that only serves the AccessControl API and once against one that
//! only serves the Legacy API, with the provider on `Auto` so detection is
//! exercised every time.

mod support;

use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, GrafanaBuiltInRole, GrafanaDatasourceRef, GrafanaPermission::*,
    GrafanaPermissionsApi, GrantState, ManagementPolicy, Mode,
};
use support::grafana::{Fault, FaultKind, Grantee, Level};
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    AccessControl,
    Legacy,
}

/// A harness whose Grafana serves only `server`'s API, with a Ready provider
/// `grafana` on `Auto`.
async fn ready(server: Server) -> Harness {
    let h = Harness::new().await;
    match server {
        Server::AccessControl => h.grafana.set_apis(false, true),
        Server::Legacy => h.grafana.set_apis(true, false),
    }
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    h.reconcile_provider(NS, "grafana")
        .await
        .expect("provider becomes ready");
    h.grafana.clear_calls();
    h.kube.clear_calls();
    h
}

/// Path prefix of the permission calls of `server` on the harness's data source.
fn permissions_path(h: &Harness, server: Server) -> String {
    match server {
        Server::AccessControl => format!("/api/access-control/datasources/{DATASOURCE_UID}"),
        Server::Legacy => format!("/api/datasources/{}/permissions", h.datasource_id),
    }
}

/// Vendor writes of `server` on the harness's data source.
fn writes(h: &Harness, server: Server) -> usize {
    let path = permissions_path(h, server);
    h.grafana.count("POST", &path) + h.grafana.count("DELETE", &path)
}

fn pair(key: String, level: &str) -> (String, String) {
    (key, level.to_string())
}

async fn settle(h: &Harness, name: &str) -> Result<(), String> {
    h.settle_of::<grant_operator::api::GrafanaGrant>(name)
        .await
        .map(|_| ())
        .map_err(|error| error.reason().to_string())
}

fn ready_of(h: &Harness, name: &str) -> (String, String, String) {
    let ready = h.ready_of::<grant_operator::api::GrafanaGrant>(name);
    (ready.status, ready.reason, ready.message)
}

fn status_of(h: &Harness, name: &str) -> grant_operator::api::GrantStatus {
    h.status_of::<grant_operator::api::GrafanaGrant>(name)
}

support::each_setup!(
    [
        create_change_remove_and_delete,
        orphan_leaves_permissions_in_place,
        shared_grantee_is_lowered_then_revoked_with_the_last_resource,
        authoritative_prunes_only_managed_entries,
        observe_writes_nothing_and_reports_drift,
        drift_is_repaired_at_the_next_sync,
        unknown_names_are_reported_and_the_rest_applies,
        unknown_data_source_is_target_not_found,
        refused_credentials_are_unauthorized_and_missing_rights_forbidden,
        rate_limits_and_server_errors_converge_without_duplicates,
        steady_state_is_one_listing_per_data_source_and_no_writes,
        data_sources_by_name_and_id_are_looked_up_once,
        a_data_source_id_is_found_in_the_listing_as_grafana_13_serves_it,
        an_unreadable_permission_entry_stops_the_sync,
        resources_naming_one_data_source_differently_protect_each_other,
    ];
    access_control => (super::Server::AccessControl),
    legacy => (super::Server::Legacy),
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
    let (status, reason, message) = ready_of(&h, "ds-users");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
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
    let (status, reason, message) = ready_of(&h, "watching");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DriftDetected")
    );
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

async fn unknown_names_are_reported_and_the_rest_applies(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    // Substring matches that must never be taken for the declared names.
    h.grafana.add_user(1, "janet", "janet@example.com");
    h.grafana.add_team(1, "SRE-oncall");
    h.put(&grafana_grant(
        "ds-users",
        vec![
            user_login("jane", Query),
            user_login("jan", Query),
            user_email("anet@example.com", Query),
            team_name("SRE", Query),
        ],
    ));
    assert_eq!(settle(&h, "ds-users").await.unwrap_err(), "GranteeNotFound");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")],
        "the resolvable grant still applies"
    );
    let (status, reason, message) = ready_of(&h, "ds-users");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "GranteeNotFound")
    );
    assert!(message.contains("user:jan"), "{message}");
    let rows = status_of(&h, "ds-users").grants;
    let failed: Vec<&str> = rows
        .iter()
        .filter(|row| row.state == GrantState::Failed)
        .map(|row| row.grantee.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["user:jan", "user:anet@example.com", "team:SRE"]
    );
}

async fn unknown_data_source_is_target_not_found(server: Server) {
    let h = ready(server).await;
    h.grafana.add_user(1, "jane", "jane@example.com");
    let mut grant = grafana_grant("ds-users", vec![user_login("jane", Query)]);
    grant.spec.datasource = GrafanaDatasourceRef {
        uid: Some("does-not-exist".into()),
        name: None,
        id: None,
    };
    h.put(&grant);
    assert_eq!(settle(&h, "ds-users").await.unwrap_err(), "TargetNotFound");
    let (_, _, message) = ready_of(&h, "ds-users");
    assert!(message.contains("does-not-exist"), "{message}");
    assert_eq!(h.grafana.count("POST", "/api/"), 0);

    // A data source deleted after it was resolved: its listing 404s.
    let h = ready(server).await;
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.put_settled(&grafana_grant("other", vec![user_login("jane", Query)]))
        .await;
    h.grafana.inject(Fault {
        method: Some("GET".into()),
        path_prefix: permissions_path(&h, server),
        times: 10,
        kind: FaultKind::Status(404),
    });
    h.advance(Duration::from_secs(61));
    assert_eq!(settle(&h, "other").await.unwrap_err(), "TargetNotFound");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID).len(),
        1,
        "nothing revoked on a failed read"
    );
}

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
    assert_eq!(
        h.reconcile_provider(NS, "grafana")
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    let provider = h.provider_ready(NS, "grafana");
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
    h.grafana.inject(Fault {
        method: Some("POST".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    h.grafana.inject(Fault {
        method: Some("POST".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::Status(500),
    });
    h.grafana.inject(Fault {
        method: Some("GET".into()),
        path_prefix: path.clone(),
        times: 2,
        kind: FaultKind::Status(503),
    });
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

async fn data_sources_by_name_and_id_are_looked_up_once(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let joe = h.grafana.add_user(1, "joe", "joe@example.com");
    let mut by_name = grafana_grant("by-name", vec![user_login("jane", Query)]);
    by_name.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: Some(DATASOURCE_NAME.into()),
        id: None,
    };
    let mut by_id = grafana_grant("by-id", vec![user_login("joe", Edit)]);
    by_id.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: None,
        id: Some(h.datasource_id),
    };
    h.put(&by_name);
    h.put(&by_id);
    settle(&h, "by-name").await.unwrap();
    settle(&h, "by-id").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        sorted(vec![
            pair(format!("user:{jane}"), "Query"),
            pair(format!("user:{joe}"), "Edit"),
        ])
    );
    for name in ["by-name", "by-id"] {
        let target = status_of(&h, name).target.unwrap();
        assert_eq!(target.datasource_uid.as_deref(), Some(DATASOURCE_UID));
        assert_eq!(target.datasource_id, Some(h.datasource_id));
    }
    h.advance(Duration::from_secs(61));
    settle(&h, "by-name").await.unwrap();
    settle(&h, "by-id").await.unwrap();
    assert_eq!(
        h.grafana.count("GET", "/api/datasources/name/"),
        1,
        "resolved once, then cached"
    );
}

/// Grafana 13 serves no `GET /api/datasources/:id` (the emulator answers 404,
/// as it does): `{id: N}` is matched against the data source listing.
async fn a_data_source_id_is_found_in_the_listing_as_grafana_13_serves_it(server: Server) {
    let h = ready(server).await;
    h.grafana.add_datasource(1, "loki", "Loki");
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let mut by_id = grafana_grant("by-id", vec![user_login("jane", Query)]);
    by_id.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: None,
        id: Some(h.datasource_id),
    };
    h.put(&by_id);
    settle(&h, "by-id").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );
    let target = status_of(&h, "by-id").target.unwrap();
    assert_eq!(target.datasource_uid.as_deref(), Some(DATASOURCE_UID));
    assert_eq!(target.datasource_id, Some(h.datasource_id));
    let lookups: Vec<String> = h
        .grafana
        .calls()
        .into_iter()
        .filter(|call| call.method == "GET" && call.path.starts_with("/api/datasources"))
        .filter(|call| !call.path.ends_with("/permissions"))
        .map(|call| call.path)
        .collect();
    assert_eq!(
        lookups,
        vec!["/api/datasources".to_string()],
        "one listing, no by-id call"
    );

    // An id the listing does not show is not found; nothing is written.
    let mut unknown = grafana_grant("unknown-id", vec![user_login("jane", Edit)]);
    unknown.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: None,
        id: Some(9999),
    };
    h.put(&unknown);
    assert_eq!(settle(&h, "unknown-id").await, Err("TargetNotFound".into()));
    let (status, reason, message) = ready_of(&h, "unknown-id");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TargetNotFound")
    );
    assert!(message.contains("data source id 9999"), "{message}");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
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
    let (status, reason, message) = ready_of(&h, "ds-users");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "VendorUnavailable")
    );
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

/// Grafana's listing stops at 5000 data sources: an id it does not show may
/// still exist, so it is not reported as absent.
#[tokio::test]
async fn an_id_beyond_a_full_data_source_listing_is_not_taken_for_absent() {
    let h = ready(Server::AccessControl).await;
    // The listing is by name: these come before "Prometheus" and fill it.
    for n in 0..support::grafana::DATASOURCE_LIMIT {
        h.grafana
            .add_datasource(1, &format!("ds-{n:05}"), &format!("ds-{n:05}"));
    }
    h.grafana.add_user(1, "jane", "jane@example.com");
    let mut by_id = grafana_grant("by-id", vec![user_login("jane", Query)]);
    by_id.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: None,
        id: Some(h.datasource_id),
    };
    h.put(&by_id);
    assert_eq!(settle(&h, "by-id").await, Err("VendorUnavailable".into()));
    let (status, reason, message) = ready_of(&h, "by-id");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "VendorUnavailable")
    );
    assert!(message.contains("refer to it by uid"), "{message}");
    assert_eq!(h.grafana.count("POST", "/api/access-control/"), 0);
}

async fn resources_naming_one_data_source_differently_protect_each_other(server: Server) {
    let h = ready(server).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    let joe = h.grafana.add_user(1, "joe", "joe@example.com");
    let mut by_uid = grafana_grant("by-uid", vec![user_login("jane", Query)]);
    by_uid.spec.policy.mode = Mode::Authoritative;
    let mut by_name = grafana_grant(
        "by-name",
        vec![user_login("joe", Edit), user_login("jane", Edit)],
    );
    by_name.spec.datasource = GrafanaDatasourceRef {
        uid: None,
        name: Some(DATASOURCE_NAME.into()),
        id: None,
    };
    h.put(&by_uid);
    settle(&h, "by-uid").await.unwrap();
    h.put(&by_name);
    settle(&h, "by-name").await.unwrap();
    let both = sorted(vec![
        pair(format!("user:{jane}"), "Edit"),
        pair(format!("user:{joe}"), "Edit"),
    ]);
    assert_eq!(h.grafana_live(DATASOURCE_UID), both);

    // The Authoritative resource syncs again: what the other spelling holds stays.
    h.advance(Duration::from_secs(61));
    settle(&h, "by-uid").await.unwrap();
    assert_eq!(h.grafana_live(DATASOURCE_UID), both);
    assert_eq!(ready_of(&h, "by-uid").1, "Synced");

    // Deleting the other one revokes only what the first does not hold.
    h.delete_of::<grant_operator::api::GrafanaGrant>("by-name");
    settle(&h, "by-name").await.unwrap();
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );
}

// ----- AccessControl only -----

#[tokio::test]
async fn built_in_roles_are_granted_with_access_control() {
    let h = ready(Server::AccessControl).await;
    h.put_settled(&grafana_grant(
        "roles",
        vec![built_in(GrafanaBuiltInRole::Viewer, Query)],
    ))
    .await;
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair("role:Viewer".into(), "Query")]
    );
    h.delete_of::<grant_operator::api::GrafanaGrant>("roles");
    settle(&h, "roles").await.unwrap();
    assert!(h.grafana_live(DATASOURCE_UID).is_empty());
    assert!(
        h.grafana
            .permissions(DATASOURCE_UID)
            .iter()
            .any(|entry| entry.grantee == Grantee::BuiltIn("Admin".into()) && entry.inherited),
        "the inherited Admin entry stays"
    );
}

// ----- Legacy only -----

#[tokio::test]
async fn legacy_refuses_built_in_roles_clearly_and_applies_the_rest() {
    let h = ready(Server::Legacy).await;
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.put(&grafana_grant(
        "roles",
        vec![
            built_in(GrafanaBuiltInRole::Viewer, Query),
            user_login("jane", Query),
        ],
    ));
    assert_eq!(settle(&h, "roles").await.unwrap_err(), "InvalidGrant");
    let (_, reason, message) = ready_of(&h, "roles");
    assert_eq!(reason, "InvalidGrant");
    assert!(message.contains("AccessControl"), "{message}");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );
}

#[tokio::test]
async fn legacy_permissions_are_enabled_only_when_something_is_granted() {
    let h = ready(Server::Legacy).await;
    h.grafana.add_user(1, "jane", "jane@example.com");
    // Nothing to grant: permissions stay disabled.
    h.put_settled(&grafana_grant("empty", vec![])).await;
    assert!(!h.grafana.permissions_enabled(DATASOURCE_UID));
    assert_eq!(h.grafana.enable_calls(DATASOURCE_UID), 0);

    h.put_settled(&grafana_grant("ds-users", vec![user_login("jane", Query)]))
        .await;
    assert!(h.grafana.permissions_enabled(DATASOURCE_UID));
    assert_eq!(h.grafana.enable_calls(DATASOURCE_UID), 1);
    h.advance(Duration::from_secs(61));
    settle(&h, "ds-users").await.unwrap();
    assert_eq!(h.grafana.enable_calls(DATASOURCE_UID), 1, "only once");
}

// ----- providers -----

#[tokio::test]
async fn auto_detects_the_api_once_per_provider() {
    for (legacy, access_control, expected) in [
        (true, true, "AccessControl"),
        (false, true, "AccessControl"),
        (true, false, "Legacy"),
    ] {
        let h = Harness::new().await;
        h.grafana.set_apis(legacy, access_control);
        h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
        h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
        h.reconcile_provider(NS, "grafana").await.unwrap();
        let ready = h.provider_ready(NS, "grafana");
        assert_eq!(ready.reason, "Authenticated");
        assert!(
            ready
                .message
                .contains(&format!("{expected} permissions API (detected)")),
            "{}",
            ready.message
        );
        h.grafana.add_user(1, "jane", "jane@example.com");
        h.put_settled(&grafana_grant("ds-users", vec![user_login("jane", Query)]))
            .await;
        h.advance(Duration::from_secs(61));
        settle(&h, "ds-users").await.unwrap();
        assert_eq!(
            h.grafana
                .count("GET", "/api/access-control/datasources/description"),
            1,
            "detected once"
        );
    }
}

#[tokio::test]
async fn a_configured_api_is_used_without_detection() {
    let h = Harness::new().await;
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Legacy));
    h.reconcile_provider(NS, "grafana").await.unwrap();
    assert!(
        h.provider_ready(NS, "grafana")
            .message
            .contains("Legacy permissions API (configured)")
    );
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.put_settled(&grafana_grant("ds-users", vec![user_login("jane", Query)]))
        .await;
    assert_eq!(
        h.grafana
            .count("GET", "/api/access-control/datasources/description"),
        0
    );
    assert!(
        h.grafana
            .count("GET", &permissions_path(&h, Server::Legacy))
            >= 1
    );
}

#[tokio::test]
async fn basic_auth_and_the_org_header_pick_the_organisation() {
    let h = Harness::new().await;
    h.grafana.add_org(2, "Other Org");
    h.grafana.add_basic_user("operator", "s3cret-pass", &[2, 1]);
    h.secret(
        NS,
        "grafana-basic",
        &[("username", "operator"), ("password", "s3cret-pass")],
    );
    let mut provider =
        h.grafana_provider(NS, "grafana", "grafana-basic", GrafanaPermissionsApi::Auto);
    if let Some(grafana) = provider.spec.grafana.as_mut() {
        grafana.token = None;
        grafana.basic_auth = Some(grant_operator::api::BasicAuth {
            username: secret_value("grafana-basic", "username"),
            password: secret_value("grafana-basic", "password"),
        });
    }
    h.put(&provider);
    h.reconcile_provider(NS, "grafana").await.unwrap();
    assert!(
        h.provider_ready(NS, "grafana")
            .message
            .contains("\"Main Org.\" (id 1)"),
        "{}",
        h.provider_ready(NS, "grafana").message
    );
    let jane = h.grafana.add_user(1, "jane", "jane@example.com");
    h.put_settled(&grafana_grant(
        "ds-users",
        vec![user_email("jane@example.com", Query)],
    ))
    .await;
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );
    assert!(
        h.grafana
            .calls()
            .iter()
            .all(|call| call.path == "/api/health" || call.header("x-grafana-org-id") == Some("1")),
        "every call names the organisation"
    );

    // An organisation the user does not belong to is refused.
    if let Some(grafana) = provider.spec.grafana.as_mut() {
        grafana.org_id = Some(3);
    }
    h.put(&provider);
    assert_eq!(
        h.reconcile_provider(NS, "grafana")
            .await
            .unwrap_err()
            .reason(),
        "Unauthorized"
    );
    let ready = h.provider_ready(NS, "grafana");
    assert_eq!(ready.reason, "Unauthorized");
    assert!(!ready.message.contains("s3cret-pass"));
}

#[tokio::test]
async fn a_missing_token_key_is_credentials_missing_without_vendor_calls() {
    let h = Harness::new().await;
    h.secret(NS, "grafana-sa", &[("not-token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    assert_eq!(
        h.reconcile_provider(NS, "grafana")
            .await
            .unwrap_err()
            .reason(),
        "CredentialsMissing"
    );
    assert!(h.grafana.calls().is_empty());
}
