//! Both permissions APIs: one store behind them, and a switched-off API not
//! found on every route.

use super::*;

#[tokio::test]
async fn both_apis_share_one_store() {
    let Legacy {
        grafana,
        jane,
        finance,
        path: legacy,
        ..
    } = legacy().await;

    assert_ok(&post(&grafana, &legacy, json!({"userId": jane, "permission": 2})).await);
    let entries = get(&grafana, "/api/access-control/datasources/prom")
        .await
        .body;
    assert_eq!(
        entries[1]["roleName"],
        format!("managed:users:{jane}:permissions")
    );
    assert_eq!(
        (&entries[1]["isManaged"], &entries[1]["permission"]),
        (&json!(true), &json!("Edit"))
    );

    let team_path = format!("/api/access-control/datasources/prom/teams/{finance}");
    assert_ok(&post(&grafana, &team_path, json!({"permission": "Query"})).await);
    let listed = get(&grafana, &legacy).await.body;
    let team_entry = listed["permissions"][1]["id"].as_i64().unwrap();
    assert_eq!(listed["permissions"][1]["teamId"], finance);

    // What one API created, the other changes and removes.
    let user_path = format!("/api/access-control/datasources/prom/users/{jane}");
    assert_ok(&post(&grafana, &user_path, json!({"permission": ""})).await);
    assert_ok(&delete(&grafana, &format!("{legacy}/{team_entry}")).await);
    assert_eq!(store(&grafana, "prom"), vec![admin_inherited()]);
}

#[tokio::test]
async fn a_switched_off_api_is_not_found_on_every_route() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    grafana.set_permissions_enabled("prom", true);
    let legacy_routes = [
        ("GET", format!("/api/datasources/{ds}/permissions")),
        ("POST", format!("/api/datasources/{ds}/permissions")),
        ("DELETE", format!("/api/datasources/{ds}/permissions/1")),
        ("POST", format!("/api/datasources/{ds}/enable-permissions")),
        ("POST", format!("/api/datasources/{ds}/disable-permissions")),
        ("PUT", format!("/api/datasources/{ds}/permissions")),
        ("GET", format!("/api/datasources/{ds}/enable-permissions")),
    ];
    let access_control_routes = [
        (
            "GET",
            "/api/access-control/datasources/description".to_string(),
        ),
        ("GET", "/api/access-control/datasources/prom".to_string()),
        (
            "POST",
            format!("/api/access-control/datasources/prom/users/{jane}"),
        ),
        (
            "POST",
            "/api/access-control/datasources/prom/builtInRoles/Viewer".to_string(),
        ),
        ("DELETE", "/api/access-control/datasources/prom".to_string()),
    ];
    let common = [
        "/api/org",
        "/api/datasources/uid/prom",
        "/api/org/users",
        "/api/teams/search",
    ];

    grafana.set_apis(false, true);
    for (method, path) in &legacy_routes {
        let reply =
            send(request(&grafana, method, path).json(&json!({"userId": jane, "permission": 1})))
                .await;
        assert_error(&reply, 404, "Not found");
        // Before authentication, as for an unknown route.
        assert_error(
            &send(grafana.anonymous(method, path)).await,
            404,
            "Not found",
        );
    }
    assert_ok(&get(&grafana, "/api/access-control/datasources/description").await);
    assert_ok(
        &post(
            &grafana,
            &format!("/api/access-control/datasources/prom/users/{jane}"),
            json!({"permission": "Query"}),
        )
        .await,
    );
    for path in common {
        assert_ok(&get(&grafana, path).await);
    }

    grafana.set_apis(true, false);
    for (method, path) in &access_control_routes {
        let reply = send(request(&grafana, method, path).json(&json!({"permission": ""}))).await;
        assert_error(&reply, 404, "Not found");
    }
    let listed = get(&grafana, &format!("/api/datasources/{ds}/permissions")).await;
    assert_ok(&listed);
    assert_eq!(
        listed.body["permissions"][0]["userId"], jane,
        "the store outlives the switch"
    );
    for path in common {
        assert_ok(&get(&grafana, path).await);
    }

    grafana.set_apis(false, false);
    assert_error(
        &get(&grafana, "/api/access-control/datasources/description").await,
        404,
        "Not found",
    );
    assert_error(
        &get(&grafana, &format!("/api/datasources/{ds}/permissions")).await,
        404,
        "Not found",
    );
    grafana.set_apis(true, true);
    assert_ok(&get(&grafana, "/api/access-control/datasources/description").await);
    assert_ok(&get(&grafana, &format!("/api/datasources/{ds}/permissions")).await);
}
