//! The access-control permissions API: the description, listing every
//! entry, setting, changing and removing managed entries, and what it refuses.

use super::*;

/// An entry as the access-control API lists it: `id`, `roleName`, whether it
/// is (managed, inherited), its (permission, actions), never a service
/// account, and the grantee's own `fields`.
fn access_control_entry(
    id: i64,
    role_name: &str,
    (managed, inherited): (bool, bool),
    (permission, actions): (&str, &Value),
    fields: Value,
) -> Value {
    let mut entry = json!({
        "id": id,
        "roleName": role_name,
        "isManaged": managed,
        "isInherited": inherited,
        "isServiceAccount": false,
        "actions": actions,
        "permission": permission,
    });
    if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), fields) {
        entry.extend(fields);
    }
    entry
}

#[tokio::test]
async fn access_control_describes_itself_and_lists_every_entry() {
    let grafana = emulator().await;
    let reply = get(&grafana, "/api/access-control/datasources/description").await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({
            "assignments": {"users": true, "serviceAccounts": true, "teams": true, "builtInRoles": true},
            "permissions": ["Query", "Edit", "Admin"],
        })
    );

    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    let inherited = grafana.permissions("prom")[0].id;
    let user_entry = grafana.seed_permission("prom", Grantee::User(jane), Level::Edit, true, false);
    let team_entry =
        grafana.seed_permission("prom", Grantee::Team(finance), Level::Query, false, false);
    let viewer_entry = grafana.seed_permission(
        "prom",
        Grantee::BuiltIn("Viewer".into()),
        Level::Query,
        true,
        false,
    );

    let reply = get(&grafana, "/api/access-control/datasources/prom").await;
    assert_ok(&reply);
    let entries = reply.body.as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let admin = &entries[0];
    assert_eq!(
        *admin,
        access_control_entry(
            inherited,
            "basic:admin",
            (false, true),
            ("Admin", &admin["actions"]),
            json!({"builtInRole": "Admin"}),
        )
    );
    assert!(
        admin["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("datasources.permissions:write"))
    );

    let user = &entries[1];
    let avatar = user["userAvatarUrl"].as_str().unwrap();
    assert!(avatar.starts_with("/avatar/"), "{avatar}");
    assert_eq!(
        *user,
        access_control_entry(
            user_entry,
            &format!("managed:users:{jane}:permissions"),
            (true, false),
            ("Edit", &user["actions"]),
            json!({"userId": jane, "userLogin": "jane", "userAvatarUrl": avatar}),
        )
    );
    assert!(
        user["actions"]
            .as_array()
            .unwrap()
            .contains(&json!("datasources:query"))
    );

    let team = &entries[2];
    assert_eq!(team["id"], team_entry);
    assert_eq!(team["roleName"], "fixed:datasources:reader");
    assert_eq!(
        (&team["isManaged"], &team["isInherited"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(
        (&team["teamId"], &team["team"]),
        (&json!(finance), &json!("Finance"))
    );
    assert!(team.get("userId").is_none() && team.get("builtInRole").is_none());
    assert!(team["teamAvatarUrl"].is_string());
    assert_eq!(team["permission"], "Query");

    let viewer = &entries[3];
    assert_eq!(viewer["id"], viewer_entry);
    assert_eq!(viewer["roleName"], "managed:builtins:viewer:permissions");
    assert_eq!(viewer["builtInRole"], "Viewer");
    assert!(viewer.get("teamId").is_none() && viewer.get("userId").is_none());

    assert_error(
        &get(&grafana, "/api/access-control/datasources/nope").await,
        404,
        "Data source not found",
    );
}

#[tokio::test]
async fn access_control_sets_changes_and_removes_managed_entries() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    let user_path = format!("/api/access-control/datasources/prom/users/{jane}");
    let updated = "Permission updated";

    assert_error(
        &post(&grafana, &user_path, json!({"permission": "Query"})).await,
        200,
        updated,
    );
    let created = grafana.permissions("prom")[1].clone();
    assert_eq!(
        created,
        PermissionRecord {
            id: created.id,
            grantee: Grantee::User(jane),
            permission: Level::Query,
            managed: true,
            inherited: false,
        }
    );
    // A change keeps the id; the same level again is a no-op.
    assert_error(
        &post(&grafana, &user_path, json!({"permission": "Edit"})).await,
        200,
        updated,
    );
    assert_error(
        &post(&grafana, &user_path, json!({"permission": "Edit"})).await,
        200,
        updated,
    );
    let changed = grafana.permissions("prom");
    assert_eq!(changed.len(), 2);
    assert_eq!(
        (changed[1].id, changed[1].permission),
        (created.id, Level::Edit)
    );

    assert_ok(
        &post(
            &grafana,
            &format!("/api/access-control/datasources/prom/teams/{finance}"),
            json!({"permission": "Admin"}),
        )
        .await,
    );
    assert_ok(
        &post(
            &grafana,
            "/api/access-control/datasources/prom/builtInRoles/Editor",
            json!({"permission": "Query"}),
        )
        .await,
    );
    assert_eq!(
        store(&grafana, "prom"),
        vec![
            admin_inherited(),
            (Grantee::User(jane), Level::Edit, true, false),
            (Grantee::Team(finance), Level::Admin, true, false),
            (Grantee::BuiltIn("Editor".into()), Level::Query, true, false),
        ]
    );

    // "" removes; removing what is not there is a no-op.
    assert_error(
        &post(&grafana, &user_path, json!({"permission": ""})).await,
        200,
        updated,
    );
    assert_error(
        &post(&grafana, &user_path, json!({"permission": ""})).await,
        200,
        updated,
    );
    assert_ok(
        &post(
            &grafana,
            "/api/access-control/datasources/prom/builtInRoles/Editor",
            json!({"permission": ""}),
        )
        .await,
    );
    assert_ok(
        &post(
            &grafana,
            "/api/access-control/datasources/prom/builtInRoles/Viewer",
            json!({"permission": ""}),
        )
        .await,
    );
    assert_eq!(
        store(&grafana, "prom"),
        vec![
            admin_inherited(),
            (Grantee::Team(finance), Level::Admin, true, false)
        ]
    );
    // Setting again after a removal creates a new entry.
    assert_ok(&post(&grafana, &user_path, json!({"permission": "Query"})).await);
    assert!(grafana.permissions("prom")[2].id > created.id);
}

#[tokio::test]
async fn access_control_refuses_to_remove_inherited_or_unmanaged_entries() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.seed_permission("prom", Grantee::User(jane), Level::Query, false, false);
    grafana.seed_permission("prom", Grantee::Team(finance), Level::Edit, true, true);
    let before = store(&grafana, "prom");
    let refused = "cannot remove inherited or unmanaged permission";

    for path in [
        "/api/access-control/datasources/prom/builtInRoles/Admin".to_string(),
        format!("/api/access-control/datasources/prom/users/{jane}"),
        format!("/api/access-control/datasources/prom/teams/{finance}"),
    ] {
        assert_error(
            &post(&grafana, &path, json!({"permission": ""})).await,
            400,
            refused,
        );
    }
    assert_eq!(store(&grafana, "prom"), before);

    // A managed entry beside an unmanaged one: "" removes only the managed one.
    let user_path = format!("/api/access-control/datasources/prom/users/{jane}");
    assert_ok(&post(&grafana, &user_path, json!({"permission": "Admin"})).await);
    assert_eq!(grafana.permissions("prom").len(), before.len() + 1);
    assert_ok(&post(&grafana, &user_path, json!({"permission": ""})).await);
    assert_eq!(store(&grafana, "prom"), before);
    assert_error(
        &post(&grafana, &user_path, json!({"permission": ""})).await,
        400,
        refused,
    );
}

#[tokio::test]
async fn access_control_rejects_bad_requests() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    let user_path = format!("/api/access-control/datasources/prom/users/{jane}");

    for body in [
        json!({}),
        json!({"permission": "query"}),
        json!({"permission": "View"}),
        json!({"permission": " Query"}),
        json!({"permission": 1}),
        json!({"permission": null}),
        json!({"permission": ["Query"]}),
        json!({"permission": "Query", "userId": jane}),
        json!({"level": "Query"}),
        json!(["Query"]),
        json!("Query"),
    ] {
        assert_error(
            &post(&grafana, &user_path, body.clone()).await,
            400,
            "bad request data",
        );
    }
    for raw in ["", "permission=Query", "{\"permission\": \"Query\""] {
        assert_error(
            &post_raw(&grafana, &user_path, raw).await,
            400,
            "bad request data",
        );
    }
    let reply =
        send(request(&grafana, "POST", &user_path).body("{\"permission\": \"Query\"}")).await;
    assert_error(&reply, 400, "bad request data");

    for role in ["viewer", "Owner", "None", "Grafana%20Admin"] {
        let path = format!("/api/access-control/datasources/prom/builtInRoles/{role}");
        let reply = post(&grafana, &path, json!({"permission": "Query"})).await;
        assert_eq!(reply.status, 400, "{role}: {reply:?}");
    }
    for (path, message) in [
        (
            "/api/access-control/datasources/prom/users/jane",
            "user id is invalid",
        ),
        (
            "/api/access-control/datasources/prom/teams/x1",
            "team id is invalid",
        ),
        (
            "/api/access-control/datasources/prom/users/999",
            "user not found",
        ),
        (
            "/api/access-control/datasources/prom/teams/999",
            "team not found",
        ),
    ] {
        assert_error(
            &post(&grafana, path, json!({"permission": "Query"})).await,
            400,
            message,
        );
    }
    let crossed = format!("/api/access-control/datasources/prom/teams/{jane}");
    assert_error(
        &post(&grafana, &crossed, json!({"permission": "Query"})).await,
        400,
        "team not found",
    );
    let crossed = format!("/api/access-control/datasources/prom/users/{finance}");
    assert_error(
        &post(&grafana, &crossed, json!({"permission": ""})).await,
        400,
        "user not found",
    );
    let unknown = format!("/api/access-control/datasources/nope/users/{jane}");
    assert_error(
        &post(&grafana, &unknown, json!({"permission": "Query"})).await,
        404,
        "Data source not found",
    );
    // Service accounts are not part of the contract.
    let reply = post(
        &grafana,
        "/api/access-control/datasources/prom/serviceAccounts/1",
        json!({"permission": "Query"}),
    )
    .await;
    assert_error(&reply, 404, "Not found");
    assert_eq!(store(&grafana, "prom"), vec![admin_inherited()]);
}
