//! The legacy data source permissions API: switched on and off, add, list,
//! remove, and every body, grantee and duplicate it refuses.

use super::*;

#[tokio::test]
async fn legacy_permissions_start_disabled_and_switches_are_counted() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let path = format!("/api/datasources/{ds}/permissions");

    // The inherited Admin entry is there, but the legacy API does not list it.
    assert_eq!(store(&grafana, "prom"), vec![admin_inherited()]);
    let reply = get(&grafana, &path).await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"datasourceId": ds, "enabled": false, "permissions": []})
    );
    assert!(!grafana.permissions_enabled("prom"));

    assert_error(
        &post(&grafana, &path, json!({"userId": jane, "permission": 1})).await,
        400,
        "Permissions are not enabled for this data source",
    );

    let enable = format!("/api/datasources/{ds}/enable-permissions");
    let disable = format!("/api/datasources/{ds}/disable-permissions");
    let reply = post(&grafana, &enable, json!({})).await;
    assert_error(&reply, 200, "Datasource permissions enabled");
    // An empty body (any content type) is fine too; anything else is not.
    assert_error(
        &send(request(&grafana, "POST", &enable)).await,
        200,
        "Datasource permissions enabled",
    );
    assert_error(
        &post(&grafana, &enable, json!({"enabled": true})).await,
        400,
        "bad request data",
    );
    assert_error(
        &post_raw(&grafana, &enable, "not json").await,
        400,
        "bad request data",
    );
    assert_error(
        &send(request(&grafana, "POST", &enable).body("{}")).await,
        400,
        "bad request data",
    );
    assert_eq!(grafana.enable_calls("prom"), 2);
    assert!(grafana.permissions_enabled("prom"));
    assert_eq!(get(&grafana, &path).await.body["enabled"], true);
    assert_eq!(grafana.count("POST", &enable), 5, "count sees every call");

    assert_error(
        &post(&grafana, &disable, json!({})).await,
        200,
        "Datasource permissions disabled",
    );
    assert_eq!(grafana.disable_calls("prom"), 1);
    assert!(!grafana.permissions_enabled("prom"));
    assert_eq!(
        store(&grafana, "prom"),
        vec![admin_inherited()],
        "switches keep entries"
    );

    assert_error(
        &post(
            &grafana,
            "/api/datasources/999/enable-permissions",
            json!({}),
        )
        .await,
        404,
        "Data source not found",
    );
    assert_error(
        &post(&grafana, "/api/datasources/x/enable-permissions", json!({})).await,
        400,
        "id is invalid",
    );
}

#[tokio::test]
async fn legacy_add_list_and_remove() {
    let Legacy {
        grafana,
        ds,
        jane,
        finance,
        path,
    } = legacy().await;

    assert_error(
        &post(&grafana, &path, json!({"userId": jane, "permission": 1})).await,
        200,
        "Datasource permission added",
    );
    assert_error(
        &post(&grafana, &path, json!({"permission": 2, "teamId": finance})).await,
        200,
        "Datasource permission added",
    );
    // Entries the legacy API does not show: unmanaged, inherited, built-in roles.
    grafana.seed_permission("prom", Grantee::User(jane), Level::Edit, false, false);
    grafana.seed_permission("prom", Grantee::Team(finance), Level::Query, true, true);
    grafana.seed_permission(
        "prom",
        Grantee::BuiltIn("Viewer".into()),
        Level::Query,
        true,
        false,
    );

    let reply = get(&grafana, &path).await;
    assert_ok(&reply);
    let records = grafana.permissions("prom");
    let (user_entry, team_entry) = (records[1].id, records[2].id);
    let listed = reply.body["permissions"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let user = listed[0].as_object().unwrap();
    assert_eq!(
        sorted_keys(user),
        [
            "created",
            "datasourceId",
            "id",
            "permission",
            "permissionName",
            "updated",
            "userAvatarUrl",
            "userEmail",
            "userId",
            "userLogin"
        ]
    );
    assert_eq!(
        (
            &user["id"],
            &user["datasourceId"],
            &user["userId"],
            &user["userLogin"],
            &user["userEmail"]
        ),
        (
            &json!(user_entry),
            &json!(ds),
            &json!(jane),
            &json!("jane"),
            &json!("jane@example.com")
        )
    );
    assert_eq!(
        (&user["permission"], &user["permissionName"]),
        (&json!(1), &json!("Query"))
    );
    let team = listed[1].as_object().unwrap();
    assert_eq!(
        sorted_keys(team),
        [
            "created",
            "datasourceId",
            "id",
            "permission",
            "permissionName",
            "team",
            "teamAvatarUrl",
            "teamId",
            "updated"
        ]
    );
    assert_eq!(
        (
            &team["id"],
            &team["teamId"],
            &team["team"],
            &team["permission"],
            &team["permissionName"]
        ),
        (
            &json!(team_entry),
            &json!(finance),
            &json!("Finance"),
            &json!(2),
            &json!("Edit")
        )
    );

    // Removed once; the second time it is not there.
    for (status, message) in [
        (200, "Datasource permission removed"),
        (404, "Permission not found"),
    ] {
        let reply = delete(&grafana, &format!("{path}/{user_entry}")).await;
        assert_error(&reply, status, message);
    }
    // Entries the legacy API does not list cannot be removed through it.
    for record in grafana.permissions("prom") {
        if record.id != team_entry {
            let reply = delete(&grafana, &format!("{path}/{}", record.id)).await;
            assert_error(&reply, 404, "Permission not found");
        }
    }
    let other = grafana.add_datasource(1, "loki", "Loki");
    for (target, status, message) in [
        (format!("{path}/{jane}"), 404, "Permission not found"),
        (format!("{path}/abc"), 400, "permissionId is invalid"),
        (
            format!("/api/datasources/{other}/permissions/{team_entry}"),
            404,
            "Permission not found",
        ),
        (
            format!("/api/datasources/999/permissions/{team_entry}"),
            404,
            "Data source not found",
        ),
    ] {
        assert_error(&delete(&grafana, &target).await, status, message);
    }
    assert_eq!(grafana.permissions("prom").len(), 5);
    assert!(
        grafana
            .permissions("prom")
            .iter()
            .all(|p| p.id != user_entry)
    );
}

#[tokio::test]
async fn legacy_add_rejects_every_malformed_body() {
    let Legacy {
        grafana,
        jane,
        finance,
        path,
        ..
    } = legacy().await;

    for body in [
        json!({}),
        json!({"userId": jane}),
        json!({"permission": 1}),
        json!({"userId": jane, "teamId": finance, "permission": 1}),
        json!({"userId": jane, "permission": 4}),
        json!({"userId": jane, "permission": 0}),
        json!({"userId": jane, "permission": "1"}),
        json!({"userId": jane, "permission": "Query"}),
        json!({"userId": jane, "permission": 1.0}),
        json!({"userId": jane.to_string(), "permission": 1}),
        json!({"userId": 0, "permission": 1}),
        json!({"teamId": -finance, "permission": 1}),
        json!({"userId": 1.5, "permission": 1}),
        json!({"userId": null, "permission": 1}),
        json!({"userId": jane, "permission": 1, "builtinRole": "Viewer"}),
        json!({"userId": jane, "permission": 1, "userLogin": "jane"}),
        json!([{"userId": jane, "permission": 1}]),
        json!(null),
    ] {
        assert_error(
            &post(&grafana, &path, body.clone()).await,
            400,
            "bad request data",
        );
    }
    for raw in [
        "",
        "not json",
        "{\"userId\": 1,",
        "{\"userId\": 1} trailing",
    ] {
        assert_error(
            &post_raw(&grafana, &path, raw).await,
            400,
            "bad request data",
        );
    }
    // A good body without a JSON Content-Type.
    let good = format!("{{\"userId\": {jane}, \"permission\": 1}}");
    let reply = send(request(&grafana, "POST", &path).body(good.clone())).await;
    assert_error(&reply, 400, "bad request data");
    let reply = send(
        request(&grafana, "POST", &path)
            .header("content-type", "text/plain")
            .body(good.clone()),
    )
    .await;
    assert_error(&reply, 400, "bad request data");
    assert_eq!(
        store(&grafana, "prom"),
        vec![admin_inherited()],
        "nothing was added"
    );

    // The same body as JSON (with a charset) is accepted.
    let reply = send(
        request(&grafana, "POST", &path)
            .header("content-type", "application/json; charset=utf-8")
            .body(good),
    )
    .await;
    assert_ok(&reply);
}

#[tokio::test]
async fn legacy_add_refuses_unknown_grantees_and_duplicates() {
    let Legacy {
        grafana,
        jane,
        finance,
        path,
        ..
    } = legacy().await;

    // Ids are one sequence: a team id is never a user id, and the reverse.
    let user_not_found = "Failed to add permission: user not found";
    let team_not_found = "Failed to add permission: team not found";
    for (body, message) in [
        (json!({"userId": 999, "permission": 1}), user_not_found),
        (json!({"userId": finance, "permission": 1}), user_not_found),
        (json!({"teamId": 999, "permission": 1}), team_not_found),
        (json!({"teamId": jane, "permission": 1}), team_not_found),
    ] {
        assert_error(&post(&grafana, &path, body).await, 400, message);
    }

    let duplicate = "Permission for user/team already exists";
    assert_ok(&post(&grafana, &path, json!({"userId": jane, "permission": 1})).await);
    for permission in [1, 2] {
        let body = json!({"userId": jane, "permission": permission});
        assert_error(&post(&grafana, &path, body).await, 400, duplicate);
    }
    // A team's Admin entry set through the other API blocks it too, and is listed as 4.
    let reply = post(
        &grafana,
        &format!("/api/access-control/datasources/prom/teams/{finance}"),
        json!({"permission": "Admin"}),
    )
    .await;
    assert_ok(&reply);
    assert_error(
        &post(&grafana, &path, json!({"teamId": finance, "permission": 2})).await,
        400,
        duplicate,
    );
    let listed = get(&grafana, &path).await.body;
    assert_eq!(listed["permissions"][1]["permission"], 4);
    assert_eq!(listed["permissions"][1]["permissionName"], "Admin");

    // An unmanaged entry is no duplicate: the managed one is added beside it.
    let bob = grafana.add_user(1, "bob", "bob@example.com");
    grafana.seed_permission("prom", Grantee::User(bob), Level::Edit, false, false);
    assert_ok(&post(&grafana, &path, json!({"userId": bob, "permission": 1})).await);
    let bobs: Vec<(Level, bool)> = grafana
        .permissions("prom")
        .into_iter()
        .filter(|p| p.grantee == Grantee::User(bob))
        .map(|p| (p.permission, p.managed))
        .collect();
    assert_eq!(bobs, vec![(Level::Edit, false), (Level::Query, true)]);
}

/// The keys of a JSON object, sorted.
fn sorted_keys(object: &serde_json::Map<String, serde_json::Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    keys
}
