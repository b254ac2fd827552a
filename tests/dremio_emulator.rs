//! Self-tests of the Dremio emulator over real HTTP: each rule of the contract
//! the Dremio client is written against, on both deployments (Software under
//! /api/v3, Cloud under /v0), and that the emulator is strict about it
//! (credentials, path escaping, every malformed PUT, Cloud's by-name look-ups,
//! another writer between a read and a write, injected faults).

mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use support::dremio::*;
use support::emulator::{Reply, assert_answer, assert_ok, send};

const TOKEN: &str = "dremio-pat-main";
const PROJECT: &str = "6a0f5b8e-2f7d-4a57-9d1c-3b2e4c5d6e7f";
const CLOUD: &str = "/v0/projects/6a0f5b8e-2f7d-4a57-9d1c-3b2e4c5d6e7f";
const SOFTWARE: &str = "/api/v3";
const TABLE_PRIVILEGES: [&str; 5] = ["ALTER", "INSERT", "MANAGE_GRANTS", "SELECT", "UPDATE"];

async fn emulator() -> DremioEmulator {
    grant_operator::install_crypto_provider();
    let dremio = DremioEmulator::start().await;
    dremio.add_token(TOKEN);
    dremio.add_project(PROJECT);
    dremio
}

/// An emulator with a space, a table in it, a user and a role.
struct World {
    dremio: DremioEmulator,
    space: String,
    table: String,
    jean: String,
    analysts: String,
}

async fn world() -> World {
    let dremio = emulator().await;
    let space = dremio.add_object(&["Sales"], &["ALTER", "SELECT", "MANAGE_GRANTS"]);
    let table = dremio.add_object(&["Sales", "eu", "orders"], &TABLE_PRIVILEGES);
    let jean = dremio.add_user("jeansmith", "jean_smith@example.com");
    let analysts = dremio.add_role("analysts");
    World {
        dremio,
        space,
        table,
        jean,
        analysts,
    }
}

/// A request with the main token.
fn request(dremio: &DremioEmulator, method: &str, path: &str) -> RequestBuilder {
    dremio.anonymous(method, path).bearer_auth(TOKEN)
}

async fn get(dremio: &DremioEmulator, path: &str) -> Reply {
    send(request(dremio, "GET", path)).await
}

async fn put(dremio: &DremioEmulator, path: &str, body: Value) -> Reply {
    send(request(dremio, "PUT", path).json(&body)).await
}

/// A raw body sent as `application/json`.
async fn put_raw(dremio: &DremioEmulator, path: &str, body: &str) -> Reply {
    send(
        request(dremio, "PUT", path)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

#[track_caller]
fn assert_no_content(reply: &Reply) {
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.body, Value::Null, "{reply:?}");
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_answer(
        reply,
        status,
        &json!({"errorMessage": message, "moreInfo": ""}),
    );
}

/// An entry of a PUT body.
fn entry(grantee_type: &str, id: &str, privileges: &[&str]) -> Value {
    json!({"privileges": privileges, "granteeType": grantee_type, "id": id})
}

fn record(grantee_type: GranteeType, id: &str, privileges: &[&str]) -> GrantRecord {
    GrantRecord {
        grantee_type,
        id: id.to_string(),
        privileges: privileges.iter().map(|p| p.to_string()).collect(),
    }
}

fn grants_path(base: &str, object: &str) -> String {
    format!("{base}/catalog/{object}/grants")
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_unknown_and_malformed_credentials_are_unauthorized() {
    let w = world().await;
    let dremio = &w.dremio;
    for path in [
        "/api/v3/catalog".to_string(),
        CLOUD.to_string(),
        grants_path(SOFTWARE, &w.table),
        grants_path(CLOUD, &w.table),
        "/v1/users/name/jeansmith".to_string(),
        "/api/v3/user/by-name/jeansmith".to_string(),
    ] {
        let unauthorized = [
            dremio.anonymous("GET", &path),
            dremio.anonymous("GET", &path).bearer_auth("not-a-token"),
            dremio
                .anonymous("GET", &path)
                .header("authorization", TOKEN),
            dremio
                .anonymous("GET", &path)
                .header("authorization", format!("_dremio{TOKEN}")),
            dremio.anonymous("GET", &path).basic_auth(TOKEN, Some("")),
            dremio
                .anonymous("GET", &path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("authorization", format!("Bearer {TOKEN}")),
        ];
        for attempt in unauthorized {
            assert_error(&send(attempt).await, 401, "Unauthorized");
        }
        assert_ok(&get(dremio, &path).await);
        // The scheme is case-insensitive.
        let lower = dremio
            .anonymous("GET", &path)
            .header("authorization", format!("bearer {TOKEN}"));
        assert_ok(&send(lower).await);
    }
    // Auth comes before the project check: nothing is learned without a token.
    assert_error(
        &send(dremio.anonymous("GET", "/v0/projects/unknown")).await,
        401,
        "Unauthorized",
    );
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized_from_then_on() {
    let dremio = emulator().await;
    dremio.add_token("second");
    assert_ok(&get(&dremio, "/api/v3/catalog").await);
    dremio.revoke_token(TOKEN);
    assert_error(&get(&dremio, "/api/v3/catalog").await, 401, "Unauthorized");
    assert_error(&get(&dremio, CLOUD).await, 401, "Unauthorized");
    let other = dremio
        .anonymous("GET", "/api/v3/catalog")
        .bearer_auth("second");
    assert_ok(&send(other).await);

    let unknown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dremio.revoke_token("never-added")
    }));
    assert!(unknown.is_err(), "revoking an unknown token is a test bug");
}

#[tokio::test]
async fn a_read_only_token_reads_but_cannot_put_grants() {
    let w = world().await;
    w.dremio.set_read_only(TOKEN);
    for base in [SOFTWARE, CLOUD] {
        assert_ok(&get(&w.dremio, &grants_path(base, &w.table)).await);
        assert_ok(&get(&w.dremio, &format!("{base}/catalog/{}", w.table)).await);
        let reply = put(
            &w.dremio,
            &grants_path(base, &w.table),
            json!({"grants": [entry("USER", &w.jean, &["SELECT"])]}),
        )
        .await;
        assert_error(&reply, 403, "User does not have MANAGE GRANTS privilege");
        // An unknown object is still not found.
        let reply = put(&w.dremio, &grants_path(base, "nope"), json!({"grants": []})).await;
        assert_error(&reply, 404, "Could not find entity with id [nope]");
    }
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_eq!(w.dremio.puts(&w.table), 0);
    assert_ok(&get(&w.dremio, "/api/v3/user/by-name/jeansmith").await);
}

// ---------------------------------------------------------------------------
// Probes, projects and catalog
// ---------------------------------------------------------------------------

#[tokio::test]
async fn probes_answer_the_catalog_root_and_the_project() {
    let w = world().await;
    let reply = get(&w.dremio, "/api/v3/catalog").await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"data": [{
            "id": w.space,
            "path": ["Sales"],
            "type": "CONTAINER",
            "containerType": "SPACE",
        }]}),
        "only top-level containers"
    );
    assert_eq!(
        get(&w.dremio, &format!("{CLOUD}/catalog")).await.body,
        reply.body
    );

    let reply = get(&w.dremio, CLOUD).await;
    assert_ok(&reply);
    assert_eq!(reply.body, json!({"id": PROJECT, "name": PROJECT}));

    for path in [
        "/v0/projects/0000".to_string(),
        format!("/v0/projects/0000/catalog/{}", w.table),
        format!("/v0/projects/0000/catalog/{}/grants", w.table),
        "/v0/projects/0000/catalog/by-path/Sales".to_string(),
    ] {
        assert_error(&get(&w.dremio, &path).await, 404, "Project not found");
    }
    assert_error(
        &put(
            &w.dremio,
            "/v0/projects/0000/catalog/x/grants",
            json!({"grants": []}),
        )
        .await,
        404,
        "Project not found",
    );
    w.dremio.add_project("0000");
    assert_ok(&get(&w.dremio, "/v0/projects/0000").await);
    assert_ok(&get(&w.dremio, &format!("/v0/projects/0000/catalog/{}", w.table)).await);
}

#[tokio::test]
async fn catalog_objects_are_found_by_id_on_both_bases() {
    let w = world().await;
    for base in [SOFTWARE, CLOUD] {
        let reply = get(&w.dremio, &format!("{base}/catalog/{}", w.table)).await;
        assert_ok(&reply);
        let tag = reply.body["tag"].as_str().expect("a tag").to_string();
        assert!(!tag.is_empty());
        assert_eq!(
            reply.body,
            json!({
                "entityType": "dataset",
                "id": w.table,
                "path": ["Sales", "eu", "orders"],
                "tag": tag,
            })
        );
        let reply = get(&w.dremio, &format!("{base}/catalog/{}", w.space)).await;
        assert_eq!(reply.body["entityType"], "space");
        assert_eq!(reply.body["path"], json!(["Sales"]));

        let unknown = "8d2b1f4c-0000-4000-8000-000000000000";
        assert_error(
            &get(&w.dremio, &format!("{base}/catalog/{unknown}")).await,
            404,
            &format!("Could not find entity with id [{unknown}]"),
        );
        assert_error(
            &get(&w.dremio, &grants_path(base, unknown)).await,
            404,
            &format!("Could not find entity with id [{unknown}]"),
        );
    }
    let id = w.table.as_str();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4, "UUID-shaped: {id}");
}

#[tokio::test]
async fn by_path_decodes_each_part_and_matches_exactly() {
    let w = world().await;
    let odd = w
        .dremio
        .add_object(&["My Space", "a/b", "100% c+d"], &["SELECT"]);
    for base in [SOFTWARE, CLOUD] {
        let by_path = |rest: &str| format!("{base}/catalog/by-path/{rest}");
        let reply = get(&w.dremio, &by_path("Sales/eu/orders")).await;
        assert_ok(&reply);
        assert_eq!(reply.body["id"], json!(w.table));
        assert_eq!(reply.body["entityType"], "dataset");
        assert_eq!(
            get(&w.dremio, &by_path("Sales")).await.body["id"],
            json!(w.space)
        );
        assert_eq!(
            get(&w.dremio, &by_path("%53ales/eu/orders")).await.body["id"],
            json!(w.table),
            "any part may be escaped"
        );

        let reply = get(&w.dremio, &by_path("My%20Space/a%2Fb/100%25%20c%2Bd")).await;
        assert_ok(&reply);
        assert_eq!(reply.body["id"], json!(odd));
        assert_eq!(reply.body["path"], json!(["My Space", "a/b", "100% c+d"]));
        // A `/` that is not escaped separates parts; `+` is not a space.
        assert_error(
            &get(&w.dremio, &by_path("My%20Space/a/b/100%25%20c%2Bd")).await,
            404,
            "Could not find entity with path [My Space, a, b, 100% c+d]",
        );
        assert_error(
            &get(&w.dremio, &by_path("My+Space/a%2Fb/100%25%20c%2Bd")).await,
            404,
            "Could not find entity with path [My+Space, a/b, 100% c+d]",
        );

        for (rest, shown) in [
            ("sales/eu/orders", "sales, eu, orders"),
            ("Sales/EU/orders", "Sales, EU, orders"),
            ("Sales/eu", "Sales, eu"),
            ("Sales/eu/orders/more", "Sales, eu, orders, more"),
            ("Sales%2Feu/orders", "Sales/eu, orders"),
        ] {
            assert_error(
                &get(&w.dremio, &by_path(rest)).await,
                404,
                &format!("Could not find entity with path [{shown}]"),
            );
        }

        for rest in ["", "Sales//orders", "Sales/eu/", "/Sales", "Sales/%20/x/%"] {
            let reply = get(&w.dremio, &by_path(rest)).await;
            assert_eq!(reply.status, 400, "{rest}: {reply:?}");
            assert!(reply.body["errorMessage"].is_string(), "{reply:?}");
        }
        assert_error(
            &get(&w.dremio, &format!("{base}/catalog/by-path")).await,
            400,
            "Catalog path must not have empty parts",
        );
        assert_error(
            &get(&w.dremio, &by_path("Sales/%zz")).await,
            400,
            "Malformed percent-encoding in path",
        );
        assert_error(
            &get(&w.dremio, &by_path("Sales/%ff")).await,
            400,
            "Malformed percent-encoding in path",
        );
    }
}

// ---------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Users and roles
// ---------------------------------------------------------------------------

#[tokio::test]
async fn software_finds_users_and_roles_by_exact_name_and_by_id() {
    let w = world().await;
    let spaced = w.dremio.add_user("Jane Doe/EU", "jane.doe@example.com");
    let role = w.dremio.add_role("Data Team");

    let reply = get(&w.dremio, "/api/v3/user/by-name/jeansmith").await;
    assert_ok(&reply);
    let jean = json!({
        "id": w.jean,
        "name": "jeansmith",
        "firstName": "Jean",
        "lastName": "Smith",
        "email": "jean_smith@example.com",
    });
    assert_eq!(reply.body, jean);
    assert_eq!(
        get(&w.dremio, &format!("/api/v3/user/{}", w.jean))
            .await
            .body,
        jean
    );
    let reply = get(&w.dremio, "/api/v3/user/by-name/Jane%20Doe%2FEU").await;
    assert_eq!(reply.body["id"], json!(spaced));
    assert_eq!(
        (&reply.body["firstName"], &reply.body["lastName"]),
        (&json!("Jane"), &json!("Doe"))
    );

    let analysts = json!({"id": w.analysts, "name": "analysts", "type": "INTERNAL"});
    assert_eq!(
        get(&w.dremio, "/api/v3/role/by-name/analysts").await.body,
        analysts
    );
    assert_eq!(
        get(&w.dremio, &format!("/api/v3/role/{}", w.analysts))
            .await
            .body,
        analysts
    );
    assert_eq!(
        get(&w.dremio, "/api/v3/role/by-name/Data%20Team")
            .await
            .body["id"],
        json!(role)
    );

    for path in [
        "/api/v3/user/by-name/JeanSmith",
        "/api/v3/user/by-name/jean",
        "/api/v3/user/by-name/Jane+Doe%2FEU",
        "/api/v3/user/by-name/analysts",
    ] {
        let reply = get(&w.dremio, path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(
            reply.body["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("User "))
        );
    }
    assert_error(
        &get(&w.dremio, "/api/v3/user/by-name/nobody").await,
        404,
        "User nobody not found",
    );
    assert_error(
        &get(&w.dremio, "/api/v3/role/by-name/Analysts").await,
        404,
        "Role Analysts not found",
    );
    assert_error(
        &get(&w.dremio, &format!("/api/v3/user/{}", w.analysts)).await,
        404,
        &format!("User {} not found", w.analysts),
    );
    assert_error(
        &get(&w.dremio, &format!("/api/v3/role/{}", w.jean)).await,
        404,
        &format!("Role {} not found", w.jean),
    );
    assert_error(
        &get(&w.dremio, "/api/v3/user/by-name/%e9").await,
        400,
        "Malformed percent-encoding in path",
    );
}

#[tokio::test]
async fn cloud_finds_users_and_roles_by_name_and_id_at_organisation_level() {
    let w = world().await;
    let team = w.dremio.add_role("Data Team");
    let quoted = w
        .dremio
        .add_user("o'brien@example.com", "o'brien@example.com");

    // As Dremio's CLI asks: `/v1/users/name/{name}`, the name one path segment.
    let reply = get(&w.dremio, "/v1/users/name/jeansmith").await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({
            "id": w.jean,
            "name": "jeansmith",
            "firstName": "Jean",
            "lastName": "Smith",
            "identityType": "REGULAR_USER",
            "active": true,
        })
    );
    assert_eq!(
        get(&w.dremio, "/v1/roles/name/Data%20Team").await.body,
        json!({"id": team, "name": "Data Team", "type": "INTERNAL", "description": ""})
    );
    assert_eq!(
        get(&w.dremio, "/v1/users/name/o%27brien%40example.com")
            .await
            .body["id"],
        json!(quoted)
    );
    // Exact names only.
    for (path, message) in [
        ("/v1/users/name/JeanSmith", "User JeanSmith not found"),
        ("/v1/users/name/jean", "User jean not found"),
        ("/v1/roles/name/data%20team", "Role data team not found"),
        ("/v1/roles/name/jeansmith", "Role jeansmith not found"),
    ] {
        assert_error(&get(&w.dremio, path).await, 404, message);
    }

    assert_eq!(
        get(&w.dremio, &format!("/v1/users/{}", w.jean)).await.body["name"],
        "jeansmith"
    );
    assert_eq!(
        get(&w.dremio, &format!("/v1/roles/{}", w.analysts))
            .await
            .body["name"],
        "analysts"
    );
    assert_error(
        &get(&w.dremio, "/v1/users/nope").await,
        404,
        "User nope not found",
    );
    assert_error(
        &get(&w.dremio, &format!("/v1/roles/{}", w.jean)).await,
        404,
        &format!("Role {} not found", w.jean),
    );
    // Software's look-ups are not Cloud's, and the other way round.
    for path in [
        "/v1/users/by-name/jeansmith",
        "/v0/users/name/jeansmith",
        "/api/v3/users/name/jeansmith",
        "/v1/user/by-name/jeansmith",
    ] {
        assert_error(&get(&w.dremio, path).await, 404, "Not found");
    }
}

/// The old form (a filtered organisation listing) is not served: the operator
/// looks up by name, as Dremio's CLI does.
#[tokio::test]
async fn cloud_serves_no_filtered_user_or_role_listing() {
    let w = world().await;
    for kind in ["users", "roles"] {
        let reply = send(
            request(&w.dremio, "GET", &format!("/v0/{kind}"))
                .query(&[("filter", "name == 'jeansmith'"), ("maxResults", "100")]),
        )
        .await;
        assert_error(&reply, 404, "Not found");
        assert_error(
            &get(&w.dremio, &format!("/v0/{kind}/{}", w.jean)).await,
            404,
            "Not found",
        );
    }
    // Look-ups take no query parameters.
    assert_eq!(
        get(&w.dremio, "/v1/users/name/jeansmith?filter=x")
            .await
            .status,
        400
    );
}

// ---------------------------------------------------------------------------
// Another writer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn interference_fires_once_after_the_given_read() {
    let w = world().await;
    let bob = w.dremio.add_user("bob", "bob@example.com");
    let path = grants_path(SOFTWARE, &w.table);
    w.dremio.set_grants_directly(
        &w.table,
        vec![
            record(GranteeType::User, &w.jean, &["SELECT"]),
            record(GranteeType::Role, &w.analysts, &["SELECT"]),
        ],
    );
    // Reads of another object do not count.
    w.dremio
        .interfere_after_reads(&w.table, 2, record(GranteeType::User, &w.jean, &["ALTER"]));
    get(&w.dremio, &grants_path(SOFTWARE, &w.space)).await;
    get(&w.dremio, &format!("{SOFTWARE}/catalog/{}", w.table)).await;

    let first = get(&w.dremio, &path).await;
    assert_eq!(first.body["grants"][0]["privileges"], json!(["SELECT"]));
    assert_eq!(w.dremio.grants(&w.table)[0].privileges, ["SELECT"]);

    // The second read (through Cloud: one store) is answered unchanged, then
    // the other writer replaces jean's entry in place.
    let second = get(&w.dremio, &grants_path(CLOUD, &w.table)).await;
    assert_eq!(second.body["grants"][0]["privileges"], json!(["SELECT"]));
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![
            record(GranteeType::User, &w.jean, &["ALTER"]),
            record(GranteeType::Role, &w.analysts, &["SELECT"]),
        ]
    );
    assert_eq!(w.dremio.puts(&w.table), 0, "not a PUT of ours");

    // Our write overwrites it; it never fires again.
    let reply = put(
        &w.dremio,
        &path,
        json!({"grants": [entry("USER", &w.jean, &["SELECT"])]}),
    )
    .await;
    assert_no_content(&reply);
    for _ in 0..3 {
        get(&w.dremio, &path).await;
    }
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &w.jean, &["SELECT"])]
    );

    // A new grantee is appended.
    w.dremio
        .interfere_after_reads(&w.table, 1, record(GranteeType::User, &bob, &["UPDATE"]));
    let reply = get(&w.dremio, &path).await;
    assert_eq!(reply.body["grants"].as_array().unwrap().len(), 1);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![
            record(GranteeType::User, &w.jean, &["SELECT"]),
            record(GranteeType::User, &bob, &["UPDATE"]),
        ]
    );

    // No privileges: the grantee's entry is removed. 0 reads: at once.
    w.dremio
        .interfere_after_reads(&w.table, 0, record(GranteeType::User, &w.jean, &[]));
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::User, &bob, &["UPDATE"])]
    );
}

#[tokio::test]
async fn only_answered_reads_count_towards_interference() {
    let w = world().await;
    let path = grants_path(SOFTWARE, &w.table);
    w.dremio.interfere_after_reads(
        &w.table,
        1,
        record(GranteeType::Role, &w.analysts, &["SELECT"]),
    );
    w.dremio.inject(Fault {
        method: Some("GET".into()),
        path_prefix: path.clone(),
        times: 1,
        kind: FaultKind::Status(503),
    });
    assert_eq!(get(&w.dremio, &path).await.status, 503);
    assert_eq!(send(w.dremio.anonymous("GET", &path)).await.status, 401);
    assert_eq!(
        get(
            &w.dremio,
            &format!("/v0/projects/other/catalog/{}/grants", w.table)
        )
        .await
        .status,
        404
    );
    assert!(w.dremio.grants(&w.table).is_empty());
    assert_eq!(w.dremio.grant_reads(&w.table), 0);

    assert_ok(&get(&w.dremio, &path).await);
    assert_eq!(w.dremio.grant_reads(&w.table), 1);
    assert_eq!(
        w.dremio.grants(&w.table),
        vec![record(GranteeType::Role, &w.analysts, &["SELECT"])]
    );
}

#[tokio::test]
async fn direct_helpers_refuse_what_a_put_would_refuse() {
    let w = world().await;
    let attempts: Vec<Box<dyn Fn() + '_>> = vec![
        Box::new(|| w.dremio.set_grants_directly("nope", vec![])),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![record(GranteeType::User, &w.jean, &["DROP"])],
            )
        }),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![record(GranteeType::Role, "unknown", &["SELECT"])],
            )
        }),
        Box::new(|| {
            w.dremio.set_grants_directly(
                &w.table,
                vec![
                    record(GranteeType::User, &w.jean, &["SELECT"]),
                    record(GranteeType::User, &w.jean, &["ALTER"]),
                ],
            )
        }),
        Box::new(|| {
            w.dremio
                .interfere_after_reads(&w.table, 1, record(GranteeType::User, "x", &["SELECT"]))
        }),
        Box::new(|| {
            w.dremio.interfere_after_reads(
                "nope",
                1,
                record(GranteeType::User, &w.jean, &["SELECT"]),
            )
        }),
        Box::new(|| {
            w.dremio.add_object(&["Sales", "eu", "orders"], &["SELECT"]);
        }),
        Box::new(|| {
            w.dremio.add_object(&["Sales", ""], &["SELECT"]);
        }),
        Box::new(|| {
            w.dremio.add_user("jeansmith", "other@example.com");
        }),
        Box::new(|| {
            w.dremio.add_role("analysts");
        }),
        Box::new(|| w.dremio.set_read_only("never-added")),
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(attempt));
        assert!(outcome.is_err(), "attempt {i} is a test bug");
    }
    assert!(w.dremio.grants(&w.table).is_empty());
    // The emulator still works after those panics.
    assert_ok(&get(&w.dremio, &grants_path(SOFTWARE, &w.table)).await);
}

// ---------------------------------------------------------------------------
// Routing, faults, call log, robustness
// ---------------------------------------------------------------------------

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

    w.dremio.inject(Fault {
        method: Some("put".into()),
        path_prefix: "/v0/projects/".into(),
        times: 2,
        kind: FaultKind::Status(503),
    });
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
