//! Grants: listing users and roles with their names, a PUT replacing the whole
//! list on both bases, and every malformed PUT refused with nothing changed.

use super::*;

#[tokio::test]
async fn grants_list_users_with_names_and_roles_with_a_name() {
    let w = world().await;
    w.dremio.set_grants_directly(
        &w.table,
        vec![
            record(
                GranteeType::User,
                &w.jean,
                &["ALTER", "SELECT", "MANAGE_GRANTS"],
            ),
            record(GranteeType::Role, &w.analysts, &["SELECT"]),
        ],
    );
    let expected = json!({
        "id": w.table,
        "availablePrivileges": TABLE_PRIVILEGES,
        "grants": [
            {
                "privileges": ["ALTER", "SELECT", "MANAGE_GRANTS"],
                "granteeType": "USER",
                "id": w.jean,
                "name": "jeansmith",
                "firstName": "Jean",
                "lastName": "Smith",
                "email": "jean_smith@example.com",
            },
            {
                "privileges": ["SELECT"],
                "granteeType": "ROLE",
                "id": w.analysts,
                "name": "analysts",
            },
        ],
    });
    for base in [SOFTWARE, CLOUD] {
        let reply = get(&w.dremio, &grants_path(base, &w.table)).await;
        assert_ok(&reply);
        assert_eq!(reply.body, expected);
    }
    let reply = get(&w.dremio, &grants_path(SOFTWARE, &w.space)).await;
    assert_eq!(
        reply.body,
        json!({
            "id": w.space,
            "availablePrivileges": ["ALTER", "SELECT", "MANAGE_GRANTS"],
            "grants": [],
        })
    );
    assert_eq!(w.dremio.grant_reads(&w.table), 2);
    assert_eq!(w.dremio.grant_reads(&w.space), 1);
}

#[tokio::test]
async fn put_replaces_the_whole_list_on_both_bases() {
    let w = world().await;
    let bob = w.dremio.add_user("bob", "bob@example.com");
    w.dremio
        .set_grants_directly(&w.table, vec![record(GranteeType::User, &bob, &["ALTER"])]);

    let path = grants_path(SOFTWARE, &w.table);
    let reply = put(
        &w.dremio,
        &path,
        json!({"grants": [
            entry("ROLE", &w.analysts, &["SELECT", "INSERT"]),
            entry("USER", &w.jean, &["SELECT"]),
        ]}),
    )
    .await;
    assert_no_content(&reply);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![
            record(GranteeType::Role, &w.analysts, &["SELECT", "INSERT"]),
            record(GranteeType::User, &w.jean, &["SELECT"]),
        ],
        "bob's entry is gone: the list is replaced, in the order sent"
    );
    assert_eq!(w.dremio.puts(&w.table), 1);
    let listed = get(&w.dremio, &grants_path(CLOUD, &w.table)).await.body;
    assert_eq!(
        listed["grants"][0]["privileges"],
        json!(["SELECT", "INSERT"])
    );
    assert_eq!(listed["grants"][1]["email"], "jean_smith@example.com");

    let reply = put(
        &w.dremio,
        &grants_path(CLOUD, &w.table),
        json!({"grants": []}),
    )
    .await;
    assert_no_content(&reply);
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_eq!(w.dremio.puts(&w.table), 2);

    // A charset parameter is fine.
    let reply = send(
        request(&w.dremio, "PUT", &path)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"grants": [entry("USER", &bob, &["UPDATE"])]}).to_string()),
    )
    .await;
    assert_no_content(&reply);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &bob, &["UPDATE"])]
    );
    assert_eq!(w.dremio.puts(&w.table), 3);
    assert_eq!(w.dremio.puts("unknown"), 0);
    assert!(w.dremio.grants("unknown").is_empty());
}

#[tokio::test]
async fn put_refuses_every_malformed_body_and_changes_nothing() {
    let w = world().await;
    let before = vec![record(GranteeType::User, &w.jean, &["SELECT"])];
    w.dremio.set_grants_directly(&w.table, before.clone());
    let path = grants_path(SOFTWARE, &w.table);
    let jean = w.jean.as_str();
    let role = w.analysts.as_str();

    let cases: Vec<(&str, String, String)> = vec![
        ("not JSON", "{\"grants\": [".into(), String::new()),
        ("not an object", "[]".into(), "Request body must be a JSON object".into()),
        ("empty body", String::new(), String::new()),
        (
            "unknown top-level field",
            json!({"grants": [], "owner": "x"}).to_string(),
            "Unrecognized field \"owner\"".into(),
        ),
        ("missing grants", "{}".into(), "Missing field \"grants\"".into()),
        (
            "grants not an array",
            json!({"grants": {}}).to_string(),
            "Field \"grants\" must be an array".into(),
        ),
        (
            "grants null",
            json!({"grants": null}).to_string(),
            "Field \"grants\" must be an array".into(),
        ),
        (
            "entry not an object",
            json!({"grants": ["USER"]}).to_string(),
            "grants[0] must be an object".into(),
        ),
        (
            "unknown entry field",
            json!({"grants": [{"privileges": ["SELECT"], "granteeType": "USER", "id": jean, "name": "jeansmith"}]}).to_string(),
            "Unrecognized field \"name\" in grants[0]".into(),
        ),
        (
            "missing privileges",
            json!({"grants": [{"granteeType": "USER", "id": jean}]}).to_string(),
            "Missing field \"privileges\" in grants[0]".into(),
        ),
        (
            "missing granteeType",
            json!({"grants": [{"privileges": ["SELECT"], "id": jean}]}).to_string(),
            "Missing field \"granteeType\" in grants[0]".into(),
        ),
        (
            "missing id",
            json!({"grants": [{"privileges": ["SELECT"], "granteeType": "USER"}]}).to_string(),
            "Missing field \"id\" in grants[0]".into(),
        ),
        (
            "privileges a string",
            json!({"grants": [{"privileges": "SELECT", "granteeType": "USER", "id": jean}]}).to_string(),
            "grants[0].privileges must be an array of strings".into(),
        ),
        (
            "a privilege not a string",
            json!({"grants": [{"privileges": ["SELECT", 1], "granteeType": "USER", "id": jean}]}).to_string(),
            "grants[0].privileges must be an array of strings".into(),
        ),
        (
            "granteeType not a string",
            json!({"grants": [{"privileges": ["SELECT"], "granteeType": 1, "id": jean}]}).to_string(),
            "grants[0].granteeType must be a string".into(),
        ),
        (
            "unknown granteeType",
            json!({"grants": [entry("GROUP", jean, &["SELECT"])]}).to_string(),
            "Unknown granteeType \"GROUP\" in grants[0] (expected USER or ROLE)".into(),
        ),
        (
            "granteeType in lower case",
            json!({"grants": [entry("user", jean, &["SELECT"])]}).to_string(),
            "Unknown granteeType \"user\" in grants[0] (expected USER or ROLE)".into(),
        ),
        (
            "id a number",
            json!({"grants": [{"privileges": ["SELECT"], "granteeType": "USER", "id": 7}]}).to_string(),
            "grants[0].id must be a non-empty string".into(),
        ),
        (
            "id empty",
            json!({"grants": [entry("USER", "", &["SELECT"])]}).to_string(),
            "grants[0].id must be a non-empty string".into(),
        ),
        (
            "empty privileges",
            json!({"grants": [entry("ROLE", role, &["SELECT"]), entry("USER", jean, &[])]}).to_string(),
            "grants[1].privileges must not be empty".into(),
        ),
        (
            "a duplicated privilege",
            json!({"grants": [entry("USER", jean, &["SELECT", "ALTER", "SELECT"])]}).to_string(),
            "grants[0].privileges lists SELECT more than once".into(),
        ),
        (
            "the same grantee twice",
            json!({"grants": [entry("USER", jean, &["SELECT"]), entry("ROLE", role, &["SELECT"]), entry("USER", jean, &["ALTER"])]}).to_string(),
            format!("Grantee USER {jean} appears more than once"),
        ),
        (
            "a privilege not available",
            json!({"grants": [entry("USER", jean, &["SELECT", "DROP"])]}).to_string(),
            "Privilege DROP is not available on this object (available: ALTER, INSERT, MANAGE_GRANTS, SELECT, UPDATE)".into(),
        ),
        (
            "a privilege in the wrong case",
            json!({"grants": [entry("USER", jean, &["select"])]}).to_string(),
            "Privilege select is not available on this object (available: ALTER, INSERT, MANAGE_GRANTS, SELECT, UPDATE)".into(),
        ),
        (
            "an unknown user",
            json!({"grants": [entry("USER", "1234", &["SELECT"])]}).to_string(),
            "Grantee USER 1234 not found".into(),
        ),
        (
            "a role id given as a user",
            json!({"grants": [entry("USER", role, &["SELECT"])]}).to_string(),
            format!("Grantee USER {role} not found"),
        ),
        (
            "an unknown role",
            json!({"grants": [entry("ROLE", "r-9", &["SELECT"])]}).to_string(),
            "Grantee ROLE r-9 not found".into(),
        ),
    ];
    for (what, body, message) in cases {
        let reply = put_raw(&w.dremio, &path, &body).await;
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        if message.is_empty() {
            let text = reply.body["errorMessage"].as_str().unwrap_or_default();
            assert!(
                text.starts_with("Request body is not valid JSON"),
                "{what}: {reply:?}"
            );
        } else {
            assert_error(&reply, 400, &message);
        }
        assert_eq!(w.dremio.grants(&w.table), before, "{what}: nothing changed");
    }

    // Content-Type must say JSON.
    let body = json!({"grants": []}).to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut attempt = request(&w.dremio, "PUT", &path).body(body.clone());
        if let Some(content_type) = content_type {
            attempt = attempt.header("content-type", content_type);
        }
        assert_error(
            &send(attempt).await,
            400,
            "Content-Type must be application/json",
        );
    }
    // A privilege available on the table but not on the space.
    let reply = put(
        &w.dremio,
        &grants_path(CLOUD, &w.space),
        json!({"grants": [entry("USER", jean, &["INSERT"])]}),
    )
    .await;
    assert_error(
        &reply,
        400,
        "Privilege INSERT is not available on this object (available: ALTER, SELECT, MANAGE_GRANTS)",
    );
    // Unknown object.
    let reply = put(
        &w.dremio,
        &grants_path(SOFTWARE, "nope"),
        json!({"grants": []}),
    )
    .await;
    assert_error(&reply, 404, "Could not find entity with id [nope]");

    assert_eq!(w.dremio.grants(&w.table), before);
    assert_eq!(w.dremio.puts(&w.table), 0);
    assert_eq!(w.dremio.puts(&w.space), 0);
}
