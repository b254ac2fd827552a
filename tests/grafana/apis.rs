//! What only one permission API does (built-in roles, legacy switching on),
//! and how a provider picks its API, organisation and credentials.

use super::*;

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
    let ready = provider_unauthorized(&h).await;
    assert_eq!(ready.reason, "Unauthorized");
    assert!(!ready.message.contains("s3cret-pass"));
}

#[tokio::test]
async fn a_missing_token_key_is_credentials_missing_without_vendor_calls() {
    let h = Harness::new().await;
    h.secret(NS, "grafana-sa", &[("not-token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    assert_eq!(
        h.provider_refusal(NS, "grafana").await,
        "CredentialsMissing"
    );
    assert!(h.grafana.calls().is_empty());
}
