//! Routing, faults and robustness: data source listing, unknown routes and
//! methods, injected faults, recorded calls, direct helpers, malformed
//! requests, stopping on drop.

use super::*;

#[tokio::test]
async fn the_data_sources_of_the_org_are_listed() {
    let grafana = emulator().await;
    grafana.add_org(2, "Other");
    grafana.add_datasource(1, "prom", "Prometheus");
    grafana.add_datasource(2, "other", "Elsewhere");
    let reply = get(&grafana, "/api/datasources").await;
    assert_ok(&reply);
    let listed: Vec<&str> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["prom"], "only the org's own");
    // Each entry has the fields of Grafana's listing, the numeric id among them.
    let entry = &reply.body[0];
    for field in [
        "id",
        "uid",
        "orgId",
        "name",
        "type",
        "typeName",
        "typeLogoUrl",
        "access",
        "url",
        "user",
        "database",
        "basicAuth",
        "isDefault",
        "jsonData",
        "readOnly",
    ] {
        assert!(entry.get(field).is_some(), "{field} in {entry}");
    }
    assert!(entry["id"].as_i64().is_some_and(|id| id > 0), "{entry}");
}

#[tokio::test]
async fn unknown_routes_are_not_found_and_wrong_methods_not_allowed() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    for path in [
        "/api/nope",
        "/api/org/",
        "//api/org",
        "/api/org/users/lookup/extra",
        "/api/access-control/datasources/prom/users",
        "/api/access-control/datasources/prom/groups/1",
        "/api/health/",
        "/health",
        "/",
    ] {
        assert_error(&get(&grafana, path).await, 404, "Not found");
    }
    for (method, path, allow) in [
        ("PUT", "/api/health", "GET"),
        ("POST", "/api/org", "GET"),
        ("DELETE", "/api/datasources/uid/prom", "GET"),
        ("GET", "/api/datasources/1/enable-permissions", "POST"),
        ("DELETE", "/api/datasources/1/permissions", "GET, POST"),
        ("GET", "/api/datasources/1/permissions/2", "DELETE"),
        (
            "PUT",
            "/api/access-control/datasources/prom/users/1",
            "POST",
        ),
        ("POST", "/api/access-control/datasources/description", "GET"),
    ] {
        let reply = send(request(&grafana, method, path)).await;
        assert_error(&reply, 405, "Method not allowed");
        assert_eq!(reply.allow.as_deref(), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn injected_faults_fire_before_routing_and_auth_and_leave_state_alone() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let path = format!("/api/access-control/datasources/prom/users/{jane}");

    grafana.inject(fault(
        "post",
        "/api/access-control/",
        2,
        FaultKind::Status(503),
    ));
    assert_ok(&get(&grafana, "/api/access-control/datasources/prom").await);
    for _ in 0..2 {
        let reply = post(&grafana, &path, json!({"permission": "Query"})).await;
        assert_error(&reply, 503, "injected fault: status 503");
    }
    assert_eq!(
        store(&grafana, "prom"),
        vec![admin_inherited()],
        "a fault does not touch state"
    );
    assert_ok(&post(&grafana, &path, json!({"permission": "Query"})).await);

    // Before routing and auth: no credentials, unknown route, any method.
    grafana.inject(Fault {
        method: None,
        path_prefix: "/".into(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 7,
        },
    });
    let reply = send(grafana.anonymous("PATCH", "/no/such/route")).await;
    assert_error(&reply, 429, "Too many requests");
    assert_eq!(reply.retry_after.as_deref(), Some("7"));
    assert_error(
        &send(grafana.anonymous("PATCH", "/no/such/route")).await,
        404,
        "Not found",
    );

    grafana.inject(fault("GET", "/api/health", 1, FaultKind::Status(500)));
    assert_error(
        &get(&grafana, "/api/health").await,
        500,
        "injected fault: status 500",
    );
    assert_ok(&get(&grafana, "/api/health").await);

    // A delay, then normal handling.
    grafana.inject(Fault {
        method: None,
        path_prefix: "/api/access-control/datasources/prom".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(300)),
    });
    let started = Instant::now();
    let reply = post(&grafana, &path, json!({"permission": "Edit"})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_ok(&reply);
    assert_eq!(grafana.permissions("prom")[1].permission, Level::Edit);

    // A delayed request is carried out even if the client gives up.
    grafana.inject(Fault {
        method: None,
        path_prefix: "/api/access-control/".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(400)),
    });
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let attempt = impatient
        .post(format!("{}{path}", grafana.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"permission": ""}))
        .send()
        .await;
    assert!(attempt.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store(&grafana, "prom"), vec![admin_inherited()]);
    assert_eq!(grafana.calls().last().unwrap().status, 200);

    // times 0 is ignored.
    grafana.inject(Fault {
        method: None,
        path_prefix: "/".into(),
        times: 0,
        kind: FaultKind::Status(500),
    });
    assert_ok(&get(&grafana, "/api/health").await);
}

#[tokio::test]
async fn calls_are_recorded_with_status_body_auth_and_org_header() {
    let grafana = emulator().await;
    grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let path = format!("/api/access-control/datasources/prom/users/{jane}");

    let reply = send(
        request(&grafana, "POST", &path)
            .header("X-Grafana-Org-Id", "1")
            .json(&json!({"permission": "Query"})),
    )
    .await;
    assert_ok(&reply);
    assert_eq!(
        get(&grafana, "/api/org/users/lookup?query=jane&limit=5")
            .await
            .status,
        200
    );
    assert_eq!(send(grafana.anonymous("GET", "/api/org")).await.status, 401);

    let calls = grafana.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("POST", path.as_str())
    );
    assert_eq!(calls[0].status, 200);
    assert_eq!(calls[0].body, Some(json!({"permission": "Query"})));
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(calls[0].header("X-Grafana-Org-Id"), Some("1"));
    assert_eq!(calls[1].query, "query=jane&limit=5");
    assert_eq!(
        (calls[1].body.clone(), calls[1].header("x-grafana-org-id")),
        (None, None)
    );
    assert_eq!(
        (calls[2].status, calls[2].authorization.clone()),
        (401, None)
    );
    assert!(calls[0].at <= calls[2].at);

    assert_eq!(grafana.count("post", "/api/access-control/"), 1);
    assert_eq!(grafana.count("GET", "/api/org"), 2);
    assert_eq!(grafana.count("DELETE", "/"), 0);
    grafana.clear_calls();
    assert!(grafana.calls().is_empty());
    assert_eq!(grafana.count("GET", "/"), 0);
}

#[tokio::test]
async fn direct_helpers_change_the_store_behind_the_clients_back() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    let entry = grafana.seed_permission("prom", Grantee::User(jane), Level::Query, true, false);
    grafana.seed_permission("prom", Grantee::Team(finance), Level::Query, true, false);

    grafana.set_level_directly("prom", &Grantee::User(jane), Level::Admin);
    let listed = get(&grafana, &format!("/api/datasources/{ds}/permissions"))
        .await
        .body;
    assert_eq!(
        (
            &listed["permissions"][0]["id"],
            &listed["permissions"][0]["permission"]
        ),
        (&json!(entry), &json!(4))
    );
    grafana.remove_directly("prom", &Grantee::Team(finance));
    let entries = get(&grafana, "/api/access-control/datasources/prom")
        .await
        .body;
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[1]["permission"], "Admin");

    assert!(grafana.permissions("nope").is_empty());
    assert!(!grafana.permissions_enabled("nope"));
    assert_eq!(grafana.enable_calls("nope"), 0);
    grafana.set_permissions_enabled("prom", true);
    assert_eq!(
        get(&grafana, &format!("/api/datasources/{ds}/permissions"))
            .await
            .body["enabled"],
        true
    );

    // A second managed entry for one grantee is a test bug.
    let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        grafana.seed_permission("prom", Grantee::User(jane), Level::Edit, true, false)
    }));
    assert!(twice.is_err());
}

#[tokio::test]
async fn no_request_breaks_the_emulator() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    grafana.set_permissions_enabled("prom", true);
    let path = format!("/api/datasources/{ds}/permissions");

    let huge = "x".repeat(2 * 1024 * 1024);
    let reply = send(
        request(&grafana, "POST", &path)
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.body["message"].is_string());

    for raw in [
        "/api/datasources/uid/%zz",
        "/api/datasources/name/%ff",
        "/api/access-control/datasources/%",
    ] {
        assert_error(&get(&grafana, raw).await, 404, "Not found");
    }
    for body in [
        "\u{0}",
        "{\"userId\": 99999999999999999999999, \"permission\": 1}",
        "{\"userId\": 1e400, \"permission\": 1}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ] {
        assert_error(
            &post_raw(&grafana, &path, body).await,
            400,
            "bad request data",
        );
    }
    assert_error(
        &delete(&grafana, &format!("{path}/99999999999999999999")).await,
        400,
        "permissionId is invalid",
    );
    assert_error(
        &get(
            &grafana,
            "/api/datasources/99999999999999999999/permissions",
        )
        .await,
        400,
        "id is invalid",
    );
    assert_eq!(
        get(
            &grafana,
            "/api/teams/search?perpage=9223372036854775807&page=9223372036854775807"
        )
        .await
        .status,
        200
    );
    assert_eq!(
        get(&grafana, "/api/org/users/lookup?limit=9223372036854775807")
            .await
            .status,
        200
    );
    assert_ok(&get(&grafana, "/api/health").await);
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let grafana = emulator().await;
    let url = format!("{}/api/health", grafana.url());
    assert_eq!(Client::new().get(&url).send().await.unwrap().status(), 200);
    drop(grafana);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(client.get(&url).send().await.is_err());
}
