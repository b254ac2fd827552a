//! Routing, faults, the call log and robustness: unknown routes and methods,
//! injected faults, recorded calls, malformed requests, stopping on drop.

use super::*;

#[tokio::test]
async fn unknown_routes_are_not_found_and_wrong_methods_not_allowed() {
    let w = world().await;
    for path in [
        "/",
        "/api/v3",
        "/api/v3/",
        "/api/v2/catalog",
        "/api/v3/catalog/",
        "/api/v3/catalog//grants",
        "/api/v3/catalog/x/grants/y",
        "/api/v3/user",
        "/api/v3/user/by-name",
        "/api/v3/user/by-name/a/b",
        "/v0",
        "/v0/projects",
        "/v0/projects/",
        "/v1/users/",
        "/v1/users/name/a/b",
        "/v1/users/name",
        "/v0/catalog",
    ] {
        let reply = get(&w.dremio, path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(reply.body["errorMessage"].is_string(), "{path}: {reply:?}");
    }
    assert_error(&get(&w.dremio, "/api/v3/nothing").await, 404, "Not found");
    // An empty id is no object.
    let reply = get(&w.dremio, "/api/v3/user/").await;
    assert_eq!(reply.status, 404);

    for (method, path, allow) in [
        ("POST", grants_path(SOFTWARE, &w.table), "GET, PUT"),
        ("DELETE", grants_path(CLOUD, &w.table), "GET, PUT"),
        ("PUT", format!("{SOFTWARE}/catalog/{}", w.table), "GET"),
        ("POST", "/v1/users/name/jeansmith".to_string(), "GET"),
        ("PATCH", CLOUD.to_string(), "GET"),
        ("PUT", "/api/v3/catalog".to_string(), "GET"),
    ] {
        let reply = send(request(&w.dremio, method, &path).json(&json!({"grants": []}))).await;
        assert_error(&reply, 405, "Method not allowed");
        assert_eq!(reply.allow.as_deref(), Some(allow));
    }
    // Query parameters nobody asked for.
    for path in [
        format!("{}?x=1", grants_path(SOFTWARE, &w.table)),
        "/api/v3/catalog?maxChildren=1".to_string(),
        "/api/v3/user/by-name/jeansmith?filter=x".to_string(),
    ] {
        assert_error(
            &get(&w.dremio, &path).await,
            400,
            &format!(
                "unknown parameter: {}",
                path.split(['?', '=']).nth(1).unwrap()
            ),
        );
    }
    assert!(w.dremio.grants(&w.table).is_empty());
}

#[tokio::test]
async fn injected_faults_fire_before_routing_and_auth_and_leave_state_alone() {
    let w = world().await;
    let path = grants_path(CLOUD, &w.table);
    let body = json!({"grants": [entry("USER", &w.jean, &["SELECT"])]});

    w.dremio
        .inject(fault("put", "/v0/projects/", 2, FaultKind::Status(503)));
    assert_ok(&get(&w.dremio, &path).await);
    for _ in 0..2 {
        let reply = put(&w.dremio, &path, body.clone()).await;
        assert_error(&reply, 503, "injected fault: status 503");
    }
    assert!(
        w.dremio.grants(&w.table).is_empty(),
        "a fault does not touch state"
    );
    assert_eq!(w.dremio.puts(&w.table), 0);
    assert_no_content(&put(&w.dremio, &path, body.clone()).await);

    // Before routing and auth: no credentials, unknown route, any method.
    w.dremio.inject(Fault {
        method: None,
        path_prefix: "/".into(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 7,
        },
    });
    let reply = send(w.dremio.anonymous("PATCH", "/no/such/route")).await;
    assert_error(&reply, 429, "Too many requests");
    assert_eq!(reply.retry_after.as_deref(), Some("7"));
    assert_error(
        &send(w.dremio.anonymous("PATCH", "/no/such/route")).await,
        404,
        "Not found",
    );

    // A delay, then normal handling.
    w.dremio.inject(Fault {
        method: None,
        path_prefix: "/api/v3/catalog".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(300)),
    });
    let started = Instant::now();
    let reply = put(
        &w.dremio,
        &grants_path(SOFTWARE, &w.table),
        json!({"grants": []}),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_no_content(&reply);
    assert!(w.dremio.grants(&w.table).is_empty());

    // A delayed request is carried out even if the client gives up.
    w.dremio.inject(Fault {
        method: None,
        path_prefix: "/api/v3/".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(400)),
    });
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let attempt = impatient
        .put(format!(
            "{}{}",
            w.dremio.url(),
            grants_path(SOFTWARE, &w.table)
        ))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await;
    assert!(attempt.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &w.jean, &["SELECT"])]
    );
    assert_eq!(w.dremio.calls().last().unwrap().status, 204);

    // times 0 is ignored.
    w.dremio.inject(Fault {
        method: None,
        path_prefix: "/".into(),
        times: 0,
        kind: FaultKind::Status(500),
    });
    assert_ok(&get(&w.dremio, "/api/v3/catalog").await);
}

#[tokio::test]
async fn calls_are_recorded_with_status_body_and_headers() {
    let w = world().await;
    let path = grants_path(SOFTWARE, &w.table);
    let body = json!({"grants": [entry("ROLE", &w.analysts, &["SELECT"])]});
    assert_no_content(
        &send(
            request(&w.dremio, "PUT", &path)
                .header("X-Request-Source", "self-test")
                .json(&body),
        )
        .await,
    );
    assert_eq!(
        send(request(&w.dremio, "GET", "/v1/users/name/x").query(&[("q", "a b")]))
            .await
            .status,
        400
    );
    assert_eq!(
        send(w.dremio.anonymous("GET", "/api/v3/catalog"))
            .await
            .status,
        401
    );

    let calls = w.dremio.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (
            calls[0].method.as_str(),
            calls[0].path.as_str(),
            calls[0].status
        ),
        ("PUT", path.as_str(), 204)
    );
    assert_eq!(calls[0].body, Some(body));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(calls[0].authorization.as_deref(), Some(bearer.as_str()));
    assert_eq!(calls[0].header("authorization"), Some(bearer.as_str()));
    assert_eq!(calls[0].header("x-request-source"), Some("self-test"));
    assert_eq!(calls[0].header("X-REQUEST-SOURCE"), Some("self-test"));
    assert_eq!(calls[0].header("content-type"), Some("application/json"));
    assert_eq!(calls[1].query, "q=a+b");
    assert_eq!(
        (calls[1].body.clone(), calls[1].header("x-request-source")),
        (None, None)
    );
    assert_eq!(
        (calls[2].status, calls[2].authorization.clone()),
        (401, None)
    );
    assert!(calls[0].at <= calls[2].at);

    assert_eq!(w.dremio.count("put", "/api/v3/catalog/"), 1);
    assert_eq!(w.dremio.count("GET", "/"), 2);
    assert_eq!(w.dremio.count("GET", "/v1/"), 1);
    w.dremio.clear_calls();
    assert!(w.dremio.calls().is_empty());
    assert_eq!(w.dremio.count("GET", "/"), 0);
}

#[tokio::test]
async fn no_request_breaks_the_emulator() {
    let w = world().await;
    let path = grants_path(SOFTWARE, &w.table);

    let huge = "x".repeat(2 * 1024 * 1024);
    let reply = put_raw(&w.dremio, &path, &huge).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert!(reply.body["errorMessage"].is_string());

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for body in [
        "\u{0}".to_string(),
        deep,
        "{\"grants\": [{\"privileges\": [\"SELECT\"], \"granteeType\": \"USER\", \"id\": 1e400}]}"
            .to_string(),
        "{\"grants\": 99999999999999999999999999}".to_string(),
        "\"\\ud800\"".to_string(),
    ] {
        let reply = put_raw(&w.dremio, &path, &body).await;
        assert_eq!(reply.status, 400, "{reply:?}");
    }
    for raw in [
        "/api/v3/catalog/%",
        "/api/v3/catalog/%zz/grants",
        "/api/v3/role/%ff",
        "/v0/projects/%/catalog",
        "/v1/users/%c3%28",
        "/v1/roles/name/%",
    ] {
        let reply = get(&w.dremio, raw).await;
        assert_error(&reply, 400, "Malformed percent-encoding in path");
    }
    for query in ["%", "filter=%zz", "maxResults=%ff", "&&&", "=", "pageToken"] {
        let reply = get(&w.dremio, &format!("/v1/users/name/jeansmith?{query}")).await;
        assert!([200, 400].contains(&reply.status), "{query}: {reply:?}");
    }
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_ok(&get(&w.dremio, "/api/v3/catalog").await);
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let dremio = emulator().await;
    let url = format!("{}/api/v3/catalog", dremio.url());
    let reply = Client::new()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    drop(dremio);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(client.get(&url).send().await.is_err());
}
