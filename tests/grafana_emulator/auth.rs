//! Credentials and orgs: health without credentials, missing and malformed
//! credentials, the org header, revoked and read-only principals, objects of
//! another org.

use super::*;

#[tokio::test]
async fn health_answers_without_credentials() {
    let grafana = emulator().await;
    let reply = send(grafana.anonymous("GET", "/api/health")).await;
    assert_ok(&reply);
    assert_eq!(reply.body, json!({"database": "ok", "version": "10.2.3"}));
}

#[tokio::test]
async fn missing_unknown_and_malformed_credentials_are_unauthorized() {
    let grafana = emulator().await;
    grafana.add_basic_user("admin", "secret", &[1]);
    let attempts = [
        grafana.anonymous("GET", "/api/org"),
        grafana
            .anonymous("GET", "/api/org")
            .bearer_auth("glsa_unknown"),
        grafana
            .anonymous("GET", "/api/org")
            .basic_auth("admin", Some("wrong")),
        grafana
            .anonymous("GET", "/api/org")
            .basic_auth("nobody", Some("secret")),
        grafana
            .anonymous("GET", "/api/org")
            .header("authorization", "Bearer"),
        grafana
            .anonymous("GET", "/api/org")
            .header("authorization", "Basic !!!not-base64"),
        grafana
            .anonymous("GET", "/api/org")
            .header("authorization", format!("Token {TOKEN}")),
        grafana.anonymous("GET", "/api/org").header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        ),
        // Two Authorization headers, even if one is valid.
        request(&grafana, "GET", "/api/org").header("authorization", "Bearer other"),
        // Every API route needs credentials, not just /api/org.
        grafana.anonymous("GET", "/api/access-control/datasources/description"),
        grafana.anonymous("POST", "/api/datasources/1/enable-permissions"),
    ];
    for attempt in attempts {
        assert_error(&send(attempt).await, 401, "Unauthorized");
    }

    let reply = send(
        grafana
            .anonymous("GET", "/api/org")
            .basic_auth("admin", Some("secret")),
    )
    .await;
    assert_ok(&reply);
    assert_eq!(reply.body, json!({"id": 1, "name": "Main Org."}));
}

#[tokio::test]
async fn org_header_picks_an_org_of_the_principal_and_nothing_else() {
    let grafana = emulator().await;
    grafana.add_org(2, "Second");
    grafana.add_org(3, "Third");
    grafana.add_token(2, "glsa_second");
    grafana.add_basic_user("admin", "secret", &[2, 1]);
    let basic = |org: Option<&str>| {
        let request = grafana
            .anonymous("GET", "/api/org")
            .basic_auth("admin", Some("secret"));
        match org {
            Some(org) => request.header("X-Grafana-Org-Id", org),
            None => request,
        }
    };

    // Defaults: the token's org, the basic user's first org.
    assert_eq!(get(&grafana, "/api/org").await.body["id"], 1);
    let second = send(
        grafana
            .anonymous("GET", "/api/org")
            .bearer_auth("glsa_second"),
    )
    .await;
    assert_eq!(second.body, json!({"id": 2, "name": "Second"}));
    assert_eq!(send(basic(None)).await.body["id"], 2);

    // A basic user may pick any of its orgs, and only those.
    assert_eq!(
        send(basic(Some("1"))).await.body,
        json!({"id": 1, "name": "Main Org."})
    );
    assert_eq!(send(basic(Some("2"))).await.body["id"], 2);
    assert_eq!(send(basic(Some("3"))).await.status, 401);
    assert_eq!(send(basic(Some("99"))).await.status, 401);

    // A token is bound to its org.
    let token = |org: &str| request(&grafana, "GET", "/api/org").header("X-Grafana-Org-Id", org);
    assert_ok(&send(token("1")).await);
    assert_eq!(send(token("2")).await.status, 401);

    // Not a positive integer: 400.
    for bad in [
        "abc",
        "0",
        "-1",
        "",
        "1 2",
        "1.0",
        "+1",
        "99999999999999999999",
    ] {
        let reply = send(token(bad)).await;
        assert_eq!(reply.status, 400, "org header {bad:?}: {reply:?}");
        assert!(reply.body["message"].is_string(), "{reply:?}");
        assert_eq!(
            send(basic(Some(bad))).await.status,
            400,
            "org header {bad:?}"
        );
    }
    let twice = request(&grafana, "GET", "/api/org")
        .header("X-Grafana-Org-Id", "1")
        .header("X-Grafana-Org-Id", "1");
    assert_eq!(send(twice).await.status, 400);
}

#[tokio::test]
async fn revoked_credentials_are_unauthorized_from_then_on() {
    let grafana = emulator().await;
    grafana.add_basic_user("admin", "secret", &[1]);
    assert_ok(&get(&grafana, "/api/org").await);
    grafana.revoke_credentials(TOKEN);
    assert_error(&get(&grafana, "/api/org").await, 401, "Unauthorized");
    let basic = || {
        grafana
            .anonymous("GET", "/api/org")
            .basic_auth("admin", Some("secret"))
    };
    assert_ok(&send(basic()).await);
    grafana.revoke_credentials("admin");
    assert_error(&send(basic()).await, 401, "Unauthorized");
}

#[tokio::test]
async fn read_only_principals_read_but_every_permission_write_is_forbidden() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    grafana.set_permissions_enabled("prom", true);
    let entry = grafana.seed_permission("prom", Grantee::User(jane), Level::Query, true, false);
    grafana.add_basic_user("viewer", "secret", &[1]);
    grafana.set_read_only(TOKEN);
    grafana.set_read_only("viewer");
    let forbidden = "You'll need additional permissions to perform this action. \
                     Permissions needed: datasources.permissions:write";
    let before = store(&grafana, "prom");

    for (method, path, body) in [
        (
            "POST",
            format!("/api/datasources/{ds}/permissions"),
            json!({"userId": jane, "permission": 2}),
        ),
        (
            "DELETE",
            format!("/api/datasources/{ds}/permissions/{entry}"),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/datasources/{ds}/enable-permissions"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/datasources/{ds}/disable-permissions"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/access-control/datasources/prom/users/{jane}"),
            json!({"permission": "Edit"}),
        ),
        (
            "POST",
            "/api/access-control/datasources/prom/teams/1".to_string(),
            json!({"permission": "Edit"}),
        ),
        (
            "POST",
            "/api/access-control/datasources/prom/builtInRoles/Viewer".to_string(),
            json!({"permission": ""}),
        ),
    ] {
        let with_body = |request: RequestBuilder| {
            if body.is_null() {
                request
            } else {
                request.json(&body)
            }
        };
        let token = send(with_body(request(&grafana, method, &path))).await;
        assert_error(&token, 403, forbidden);
        let basic = grafana
            .anonymous(method, &path)
            .basic_auth("viewer", Some("secret"));
        assert_error(&send(with_body(basic)).await, 403, forbidden);
    }
    assert_eq!(store(&grafana, "prom"), before);
    assert!(grafana.permissions_enabled("prom"));
    assert_eq!(grafana.enable_calls("prom"), 0);
    assert_eq!(grafana.disable_calls("prom"), 0);

    // Reads still work.
    assert_ok(&get(&grafana, &format!("/api/datasources/{ds}/permissions")).await);
    assert_ok(&get(&grafana, "/api/access-control/datasources/prom").await);
    assert_ok(&get(&grafana, "/api/access-control/datasources/description").await);
}

#[tokio::test]
async fn objects_of_another_org_are_not_found() {
    let grafana = emulator().await;
    grafana.add_org(2, "Second");
    grafana.add_token(2, "glsa_second");
    let other = grafana.add_datasource(2, "loki", "Loki");
    grafana.add_datasource(1, "prom", "Prometheus");
    grafana.set_permissions_enabled("prom", true);
    let outsider = grafana.add_user(2, "olga", "olga@example.com");
    let outsiders = grafana.add_team(2, "Outsiders");
    let both = grafana.add_user(1, "bob", "bob@example.com");
    assert_eq!(
        grafana.add_user(2, "bob", "bob@example.com"),
        both,
        "same login, same user"
    );

    for path in [
        "/api/datasources/uid/loki".to_string(),
        "/api/datasources/name/Loki".to_string(),
        format!("/api/datasources/{other}/permissions"),
        "/api/access-control/datasources/loki".to_string(),
    ] {
        assert_error(&get(&grafana, &path).await, 404, "Data source not found");
    }
    assert_error(
        &post(
            &grafana,
            &format!("/api/datasources/{other}/enable-permissions"),
            json!({}),
        )
        .await,
        404,
        "Data source not found",
    );
    assert_error(
        &post(
            &grafana,
            "/api/access-control/datasources/loki/builtInRoles/Viewer",
            json!({"permission": "Query"}),
        )
        .await,
        404,
        "Data source not found",
    );

    // Users and teams of the other org are invisible and cannot be granted.
    let logins: Vec<Value> = get(&grafana, "/api/org/users/lookup?query=o")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].clone())
        .collect();
    assert_eq!(logins, vec![json!("bob")]);
    let listed = get(&grafana, "/api/org/users").await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["orgId"], 1);
    let teams = get(&grafana, "/api/teams/search?query=").await.body;
    assert_eq!(teams["totalCount"], 0);
    assert_error(
        &post(
            &grafana,
            &format!("/api/access-control/datasources/prom/users/{outsider}"),
            json!({"permission": "Query"}),
        )
        .await,
        400,
        "user not found",
    );
    assert_error(
        &post(
            &grafana,
            &format!("/api/access-control/datasources/prom/teams/{outsiders}"),
            json!({"permission": "Query"}),
        )
        .await,
        400,
        "team not found",
    );
    let ds = grafana.add_datasource(1, "tempo", "Tempo");
    grafana.set_permissions_enabled("tempo", true);
    assert_error(
        &post(
            &grafana,
            &format!("/api/datasources/{ds}/permissions"),
            json!({"userId": outsider, "permission": 1}),
        )
        .await,
        400,
        "Failed to add permission: user not found",
    );
    // A user of both orgs can be granted in each.
    let reply = post(
        &grafana,
        &format!("/api/access-control/datasources/prom/users/{both}"),
        json!({"permission": "Query"}),
    )
    .await;
    assert_ok(&reply);

    // From the other org, everything is the other way round.
    let second = |path: &str| grafana.anonymous("GET", path).bearer_auth("glsa_second");
    assert_ok(&send(second("/api/datasources/uid/loki")).await);
    assert_eq!(send(second("/api/datasources/uid/prom")).await.status, 404);
    assert_eq!(
        send(second("/api/teams/search?name=outsiders")).await.body["totalCount"],
        1
    );
}
