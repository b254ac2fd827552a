//! Look-ups: data sources by uid and name, users, org users with emails,
//! team search.

use super::*;

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
