//! Self-tests of the Grafana emulator over real HTTP: each rule of the contract
//! the Grafana client is written against, and that the emulator is strict about
//! it (credentials, org scoping, malformed bodies, duplicates, inherited
//! entries, switched-off APIs, injected faults).

mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use support::emulator::{Reply, assert_answer, assert_ok, send};
use support::grafana::*;

const TOKEN: &str = "glsa_main_org_token";

async fn emulator() -> GrafanaEmulator {
    grant_operator::install_crypto_provider();
    let grafana = GrafanaEmulator::start().await;
    grafana.add_token(1, TOKEN);
    grafana
}

/// A request with the Main Org. token.
fn request(grafana: &GrafanaEmulator, method: &str, path: &str) -> RequestBuilder {
    grafana.anonymous(method, path).bearer_auth(TOKEN)
}

async fn get(grafana: &GrafanaEmulator, path: &str) -> Reply {
    send(request(grafana, "GET", path)).await
}

async fn post(grafana: &GrafanaEmulator, path: &str, body: Value) -> Reply {
    send(request(grafana, "POST", path).json(&body)).await
}

async fn delete(grafana: &GrafanaEmulator, path: &str) -> Reply {
    send(request(grafana, "DELETE", path)).await
}

/// A raw body sent as `application/json`.
async fn post_raw(grafana: &GrafanaEmulator, path: &str, body: &'static str) -> Reply {
    send(
        request(grafana, "POST", path)
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_answer(reply, status, &json!({"message": message}));
}

/// `(grantee, level, managed, inherited)` of every entry, in order.
fn store(grafana: &GrafanaEmulator, uid: &str) -> Vec<(Grantee, Level, bool, bool)> {
    grafana
        .permissions(uid)
        .into_iter()
        .map(|p| (p.grantee, p.permission, p.managed, p.inherited))
        .collect()
}

fn admin_inherited() -> (Grantee, Level, bool, bool) {
    (Grantee::BuiltIn("Admin".into()), Level::Admin, false, true)
}

// ---------------------------------------------------------------------------
// Auth and orgs
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Look-ups
// ---------------------------------------------------------------------------

#[tokio::test]
async fn data_sources_are_found_by_uid_and_name_and_there_is_no_by_id_route() {
    let grafana = emulator().await;
    let id = grafana.add_datasource(1, "prom-main", "Main Prometheus");
    let expected = json!({
        "id": id,
        "uid": "prom-main",
        "orgId": 1,
        "name": "Main Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prometheus.monitoring:9090",
        "readOnly": false,
    });
    for path in [
        "/api/datasources/uid/prom-main".to_string(),
        "/api/datasources/name/Main%20Prometheus".to_string(),
    ] {
        let reply = get(&grafana, &path).await;
        assert_ok(&reply);
        assert_eq!(reply.body, expected, "{path}");
    }
    // Grafana 13 serves no `GET /api/datasources/:id` (deprecated before).
    assert_error(
        &get(&grafana, &format!("/api/datasources/{id}")).await,
        404,
        "Not found",
    );
    assert!(
        grafana.add_datasource(1, "loki", "Loki") > id,
        "ids increase"
    );

    for path in [
        "/api/datasources/uid/nope",
        "/api/datasources/uid/PROM-MAIN",
        "/api/datasources/name/Main+Prometheus",
        "/api/datasources/name/main%20prometheus",
    ] {
        assert_error(&get(&grafana, path).await, 404, "Data source not found");
    }
    for path in [
        "/api/datasources/999",
        "/api/datasources/-1",
        "/api/datasources/abc",
        "/api/datasources/uid",
    ] {
        assert_error(&get(&grafana, path).await, 404, "Not found");
    }
}

#[tokio::test]
async fn user_lookup_matches_substrings_and_never_shows_emails() {
    let grafana = emulator().await;
    let jane = grafana.add_user(1, "jane", "jane.doe@example.com");
    let janet = grafana.add_user(1, "janet", "janet@example.com");
    let bob = grafana.add_user(1, "bob", "bob@jane.io");
    grafana.add_user(1, "carol", "carol@example.com");

    let reply = get(&grafana, "/api/org/users/lookup?query=JANE&limit=10").await;
    assert_ok(&reply);
    let users = reply.body.as_array().unwrap();
    let ids: Vec<i64> = users
        .iter()
        .map(|u| u["userId"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![jane, janet, bob],
        "login, email and name all match"
    );
    for user in users {
        let mut keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["avatarUrl", "login", "uid", "userId"],
            "no email: {user}"
        );
    }
    // The name (made from the email) matches too; + and %20 are spaces.
    let by_name = get(&grafana, "/api/org/users/lookup?query=jane+doe")
        .await
        .body;
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    assert_eq!(by_name[0]["login"], "jane");
    let all = get(&grafana, "/api/org/users/lookup").await.body;
    assert_eq!(
        all.as_array().unwrap().len(),
        4,
        "no query: everyone, default limit"
    );
    let one = get(&grafana, "/api/org/users/lookup?query=jane&limit=1")
        .await
        .body;
    assert_eq!(one.as_array().unwrap().len(), 1);

    for query in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1&limit=2",
        "email=jane",
        "query=%zz",
    ] {
        let reply = get(&grafana, &format!("/api/org/users/lookup?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
        assert!(reply.body["message"].is_string());
    }
}

#[tokio::test]
async fn org_users_lists_everyone_with_emails() {
    let grafana = emulator().await;
    let jane = grafana.add_user(1, "jane", "Jane.Doe@Example.com");
    let reply = get(&grafana, "/api/org/users").await;
    assert_ok(&reply);
    let users = reply.body.as_array().unwrap();
    assert_eq!(users.len(), 1);
    let user = users[0].as_object().unwrap();
    let mut keys: Vec<&String> = user.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "avatarUrl",
            "email",
            "lastSeenAt",
            "lastSeenAtAge",
            "login",
            "name",
            "orgId",
            "role",
            "uid",
            "userId"
        ]
    );
    assert_eq!(user["userId"], jane);
    assert_eq!(user["email"], "Jane.Doe@Example.com");
    assert_eq!(user["login"], "jane");
    assert_eq!(user["name"], "Jane Doe");
    assert_eq!(user["orgId"], 1);
    assert_eq!(
        get(&grafana, "/api/org/users?query=jane").await.status,
        400,
        "no parameters"
    );
}

#[tokio::test]
async fn team_search_by_exact_name_or_substring_with_pages() {
    let grafana = emulator().await;
    let finance = grafana.add_team(1, "Finance");
    let finance_ops = grafana.add_team(1, "Finance Ops");
    let ops = grafana.add_team(1, "Ops");

    let reply = get(&grafana, "/api/teams/search?name=finance").await;
    assert_ok(&reply);
    assert_eq!(reply.body["totalCount"], 1);
    assert_eq!(reply.body["page"], 1);
    assert_eq!(reply.body["perPage"], 1000);
    let team = &reply.body["teams"][0];
    let uid = team["uid"].as_str().unwrap().to_string();
    assert_eq!(
        *team,
        json!({"id": finance, "uid": uid, "orgId": 1, "name": "Finance", "email": "", "memberCount": 0})
    );

    let ids = |body: &Value| -> Vec<i64> {
        body["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    let by_query = get(&grafana, "/api/teams/search?query=OPS").await.body;
    assert_eq!(ids(&by_query), vec![finance_ops, ops]);
    assert_eq!(
        ids(&get(&grafana, "/api/teams/search?name=Fin").await.body),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&get(&grafana, "/api/teams/search?name=Finance%20Ops")
            .await
            .body),
        vec![finance_ops]
    );

    let page = get(&grafana, "/api/teams/search?query=&perpage=2&page=2")
        .await
        .body;
    assert_eq!(ids(&page), vec![ops]);
    assert_eq!(page["totalCount"], 3);
    assert_eq!(
        (page["page"].clone(), page["perPage"].clone()),
        (json!(2), json!(2))
    );
    let beyond = get(&grafana, "/api/teams/search?perpage=2&page=5")
        .await
        .body;
    assert_eq!(ids(&beyond), Vec::<i64>::new());

    for query in [
        "page=0",
        "page=x",
        "perpage=0",
        "perpage=-2",
        "page=",
        "name=a&name=b",
        "sort=name",
    ] {
        let reply = get(&grafana, &format!("/api/teams/search?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
    }
}

// ---------------------------------------------------------------------------
// Legacy permissions API
// ---------------------------------------------------------------------------

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
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.set_permissions_enabled("prom", true);
    let path = format!("/api/datasources/{ds}/permissions");

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
    let mut user_keys: Vec<&String> = user.keys().collect();
    user_keys.sort();
    assert_eq!(
        user_keys,
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
    let mut team_keys: Vec<&String> = team.keys().collect();
    team_keys.sort();
    assert_eq!(
        team_keys,
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

    assert_error(
        &delete(&grafana, &format!("{path}/{user_entry}")).await,
        200,
        "Datasource permission removed",
    );
    assert_error(
        &delete(&grafana, &format!("{path}/{user_entry}")).await,
        404,
        "Permission not found",
    );
    // Entries the legacy API does not list cannot be removed through it.
    for record in grafana.permissions("prom") {
        if record.id != team_entry {
            let reply = delete(&grafana, &format!("{path}/{}", record.id)).await;
            assert_error(&reply, 404, "Permission not found");
        }
    }
    assert_error(
        &delete(&grafana, &format!("{path}/{jane}")).await,
        404,
        "Permission not found",
    );
    assert_error(
        &delete(&grafana, &format!("{path}/abc")).await,
        400,
        "permissionId is invalid",
    );
    let other = grafana.add_datasource(1, "loki", "Loki");
    let reply = delete(
        &grafana,
        &format!("/api/datasources/{other}/permissions/{team_entry}"),
    )
    .await;
    assert_error(&reply, 404, "Permission not found");
    assert_error(
        &delete(
            &grafana,
            &format!("/api/datasources/999/permissions/{team_entry}"),
        )
        .await,
        404,
        "Data source not found",
    );
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
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.set_permissions_enabled("prom", true);
    let path = format!("/api/datasources/{ds}/permissions");

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
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.set_permissions_enabled("prom", true);
    let path = format!("/api/datasources/{ds}/permissions");

    // Ids are one sequence: a team id is never a user id, and the reverse.
    let user_not_found = "Failed to add permission: user not found";
    let team_not_found = "Failed to add permission: team not found";
    assert_error(
        &post(&grafana, &path, json!({"userId": 999, "permission": 1})).await,
        400,
        user_not_found,
    );
    assert_error(
        &post(&grafana, &path, json!({"userId": finance, "permission": 1})).await,
        400,
        user_not_found,
    );
    assert_error(
        &post(&grafana, &path, json!({"teamId": 999, "permission": 1})).await,
        400,
        team_not_found,
    );
    assert_error(
        &post(&grafana, &path, json!({"teamId": jane, "permission": 1})).await,
        400,
        team_not_found,
    );

    let duplicate = "Permission for user/team already exists";
    assert_ok(&post(&grafana, &path, json!({"userId": jane, "permission": 1})).await);
    assert_error(
        &post(&grafana, &path, json!({"userId": jane, "permission": 1})).await,
        400,
        duplicate,
    );
    assert_error(
        &post(&grafana, &path, json!({"userId": jane, "permission": 2})).await,
        400,
        duplicate,
    );
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

// ---------------------------------------------------------------------------
// Access-control permissions API
// ---------------------------------------------------------------------------

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
        json!({
            "id": inherited,
            "roleName": "basic:admin",
            "isManaged": false,
            "isInherited": true,
            "isServiceAccount": false,
            "builtInRole": "Admin",
            "actions": admin["actions"].clone(),
            "permission": "Admin",
        })
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
        json!({
            "id": user_entry,
            "roleName": format!("managed:users:{jane}:permissions"),
            "isManaged": true,
            "isInherited": false,
            "isServiceAccount": false,
            "userId": jane,
            "userLogin": "jane",
            "userAvatarUrl": avatar,
            "actions": user["actions"].clone(),
            "permission": "Edit",
        })
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

// ---------------------------------------------------------------------------
// Both APIs
// ---------------------------------------------------------------------------

#[tokio::test]
async fn both_apis_share_one_store() {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.set_permissions_enabled("prom", true);
    let legacy = format!("/api/datasources/{ds}/permissions");

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

// ---------------------------------------------------------------------------
// Routing, faults and robustness
// ---------------------------------------------------------------------------

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

    grafana.inject(Fault {
        method: Some("post".into()),
        path_prefix: "/api/access-control/".into(),
        times: 2,
        kind: FaultKind::Status(503),
    });
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

    grafana.inject(Fault {
        method: Some("GET".into()),
        path_prefix: "/api/health".into(),
        times: 1,
        kind: FaultKind::Status(500),
    });
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
