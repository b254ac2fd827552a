//! Names resolved, on both permission APIs: unknown users, teams and data
//! sources, data sources by name and by id (as Grafana 13 lists them), a full
//! listing, one data source named two ways.

use super::*;

each_server!(
    unknown_names_are_reported_and_the_rest_applies,
    unknown_data_source_is_target_not_found,
    data_sources_by_name_and_id_are_looked_up_once,
    a_data_source_id_is_found_in_the_listing_as_grafana_13_serves_it,
    resources_naming_one_data_source_differently_protect_each_other,
);

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
    let message = assert_ready(&h, "ds-users", "False", "GranteeNotFound");
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
    h.grafana.inject(fault(
        "GET",
        &permissions_path(&h, server),
        10,
        FaultKind::Status(404),
    ));
    h.advance(Duration::from_secs(61));
    assert_eq!(settle(&h, "other").await.unwrap_err(), "TargetNotFound");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID).len(),
        1,
        "nothing revoked on a failed read"
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
    by_id.spec.datasource = datasource_by_id(h.datasource_id);
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
    by_id.spec.datasource = datasource_by_id(h.datasource_id);
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
    unknown.spec.datasource = datasource_by_id(9999);
    h.put(&unknown);
    assert_eq!(settle(&h, "unknown-id").await, Err("TargetNotFound".into()));
    let message = assert_ready(&h, "unknown-id", "False", "TargetNotFound");
    assert!(message.contains("data source id 9999"), "{message}");
    assert_eq!(
        h.grafana_live(DATASOURCE_UID),
        vec![pair(format!("user:{jane}"), "Query")]
    );
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
    by_id.spec.datasource = datasource_by_id(h.datasource_id);
    h.put(&by_id);
    assert_eq!(settle(&h, "by-id").await, Err("VendorUnavailable".into()));
    let message = assert_ready(&h, "by-id", "False", "VendorUnavailable");
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
