//! Wider grants: future grants and object listings, `ALL` on a scope, roles
//! held by users and roles, listings capped at the `SHOW` limit.

use super::*;

#[tokio::test]
async fn role_grants_future_grants_and_object_listings() {
    let snowflake = emulator().await;
    let body = json!({"securable_type": "VIEW", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"], "grant_option": false});
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/future-grants",
            body.clone(),
        )
        .await,
    );
    assert_eq!(
        snowflake.future_live("ROLE", "ANALYST"),
        vec![(
            "FUTURE VIEWS IN SCHEMA SALES.PUBLIC".into(),
            "SELECT".into()
        )]
    );
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/future-grants:revoke",
            body,
        )
        .await,
    );
    assert!(snowflake.future_live("ROLE", "ANALYST").is_empty());
    let tables = get(&snowflake, "/api/v2/databases/SALES/schemas/PUBLIC/tables").await;
    assert_eq!(
        tables.body,
        json!([{"name": "CUSTOMERS"}, {"name": "ORDERS"}])
    );
    let schemas = get(&snowflake, "/api/v2/databases/sales/schemas").await;
    assert_eq!(
        schemas.body,
        json!([{"name": "\"Mixed Case\""}, {"name": "PUBLIC"}])
    );
    assert_error(
        &get(&snowflake, "/api/v2/databases/NOPE/schemas").await,
        404,
        "does not exist",
    );
    assert_error(
        &get(&snowflake, "/api/v2/users/JANE/future-grants").await,
        404,
        "Not found",
    );
}

#[tokio::test]
async fn role_grants_on_all_objects_of_a_scope_and_their_revoke_strips_every_object() {
    let snowflake = emulator().await;
    let all = json!({"securable_type": "table", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"], "grant_option": true});
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants", all.clone()).await);
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![
            (
                "TABLE SALES.PUBLIC.CUSTOMERS".into(),
                "SELECT WITH GRANT OPTION".into()
            ),
            (
                "TABLE SALES.PUBLIC.ORDERS".into(),
                "SELECT WITH GRANT OPTION".into()
            ),
        ]
    );
    // A table granted one by one is stripped too: Snowflake's REVOKE ... ON ALL.
    snowflake.grant_direct(
        "ROLE",
        "ANALYST",
        "TABLE",
        r#"SALES."Mixed Case"."Line Items""#,
        "SELECT",
        false,
    );
    let in_database = json!({"securable_type": "TABLE", "containing_scope": {"database": "SALES"}, "privileges": ["SELECT"], "grant_option": true});
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants:revoke",
            in_database.clone(),
        )
        .await,
    );
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![
            (
                r#"TABLE SALES."Mixed Case"."Line Items""#.into(),
                "SELECT".into()
            ),
            ("TABLE SALES.PUBLIC.CUSTOMERS".into(), "SELECT".into()),
            ("TABLE SALES.PUBLIC.ORDERS".into(), "SELECT".into()),
        ],
        "grant_option: true revokes only the grant option"
    );
    let mut full = in_database.clone();
    full["grant_option"] = json!(false);
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants:revoke", full).await);
    assert!(snowflake.live("ROLE", "ANALYST").is_empty());

    let mut both = all.clone();
    both["securable"] = json!({"database": "SALES", "schema": "PUBLIC", "name": "ORDERS"});
    assert_error(
        &post(&snowflake, "/api/v2/roles/ANALYST/grants", both).await,
        400,
        "not both",
    );
    let schemas_in_schema = json!({"securable_type": "SCHEMA", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["USAGE"]});
    assert_error(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants",
            schemas_in_schema,
        )
        .await,
        400,
        "unsupported securable_type",
    );
    let no_scope = json!({"securable_type": "TABLE", "containing_scope": {"database": "NOPE"}, "privileges": ["SELECT"]});
    assert_error(
        &post(&snowflake, "/api/v2/roles/ANALYST/grants", no_scope).await,
        404,
        "does not exist",
    );
}

#[tokio::test]
async fn users_hold_roles_only_and_roles_hold_roles() {
    let snowflake = emulator().await;
    snowflake.add_database_role("SALES.WRITER");
    snowflake.add_database_role("OTHER.READER");
    let analyst = json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}});
    assert_ok(&post(&snowflake, "/api/v2/users/JANE/grants", analyst.clone()).await);
    // user.yaml's Grant: "Only ROLE is supported", no grant_option; no query.
    for (body, message) in [
        (
            json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}, "grant_option": false}),
            "unknown field grant_option",
        ),
        (
            json!({"securable_type": "VIEW", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "ORDERS_V"}, "privileges": ["SELECT"]}),
            "only ROLE is supported",
        ),
        (
            json!({"securable_type": "DATABASE ROLE", "securable": {"database": "SALES", "name": "READER"}}),
            "only ROLE is supported",
        ),
        (
            json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}, "privileges": ["MONITOR"]}),
            "granted whole",
        ),
        (
            json!({"securable_type": "ROLE", "containing_scope": {"database": "SALES"}}),
            "by name",
        ),
        (
            json!({"securable_type": "ROLE", "securable": {"name": "NOBODY"}}),
            "does not exist",
        ),
    ] {
        let reply = post(&snowflake, "/api/v2/users/JANE/grants", body).await;
        assert!(reply.status == 400 || reply.status == 404, "{reply:?}");
        assert_error(&reply, reply.status, message);
    }
    assert_error(
        &post(
            &snowflake,
            "/api/v2/users/JANE/grants:revoke?mode=restrict",
            analyst.clone(),
        )
        .await,
        400,
        "unknown parameter",
    );
    // A user's listing shows the role, without privileges or grant option.
    let listed = get(&snowflake, "/api/v2/users/JANE/grants").await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body[0]["securable_type"], "ROLE");
    assert_eq!(listed.body[0]["securable"], json!({"name": "ANALYST"}));
    assert!(listed.body[0].get("privileges").is_none());
    assert!(listed.body[0].get("grant_option").is_none());
    let legacy = get(&snowflake, "/api/v2/grants/user/JANE").await;
    assert_eq!(legacy.body[0]["securable_name"], "ANALYST");
    assert_eq!(
        snowflake.live("USER", "JANE"),
        vec![("ROLE ANALYST".into(), "USAGE".into())]
    );
    assert_ok(&post(&snowflake, "/api/v2/users/JANE/grants:revoke", analyst).await);
    assert!(snowflake.live("USER", "JANE").is_empty());

    // Role hierarchy: a role or a database role to a role, a database role to
    // a database role of its own database; listed as SHOW GRANTS shows them.
    let reader = json!({"securable_type": "database role", "securable": {"database": "SALES", "name": "READER"}});
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants", reader.clone()).await);
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants", json!({"securable_type": "ROLE", "securable": {"name": "LOADER"}, "privileges": ["USAGE"]})).await);
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/databases/SALES/database-roles/WRITER/grants",
            reader.clone(),
        )
        .await,
    );
    let listed = get(&snowflake, "/api/v2/roles/ANALYST/grants").await;
    assert_eq!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (
                row["securable_type"].clone(),
                row["securable"].clone(),
                row["privileges"].clone(),
                row["grant_option"].clone()
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                json!("DATABASE_ROLE"),
                json!({"database": "SALES", "name": "READER"}),
                json!(["USAGE"]),
                json!(false)
            ),
            (
                json!("ROLE"),
                json!({"name": "LOADER"}),
                json!(["USAGE"]),
                json!(false)
            ),
        ]
    );
    for (path, body, message) in [
        (
            "/api/v2/databases/SALES/database-roles/WRITER/grants",
            json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}}),
            "account role cannot be granted to a database role",
        ),
        (
            "/api/v2/databases/SALES/database-roles/WRITER/grants",
            json!({"securable_type": "DATABASE ROLE", "securable": {"database": "OTHER", "name": "READER"}}),
            "same database",
        ),
        (
            "/api/v2/roles/ANALYST/grants",
            json!({"securable_type": "ROLE", "securable": {"name": "LOADER"}, "grant_option": true}),
            "grant option",
        ),
        (
            "/api/v2/roles/ANALYST/grants",
            json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}}),
            "itself",
        ),
        (
            "/api/v2/grants/role/ANALYST/ROLE/LOADER/privileges",
            json!({"privileges": ["USAGE"]}),
            "GRANT ROLE",
        ),
        (
            "/api/v2/grants/user/JANE/SCHEMA/SALES.PUBLIC/privileges",
            json!({"privileges": ["USAGE"]}),
            "cannot be granted to a user",
        ),
    ] {
        assert_error(&post(&snowflake, path, body).await, 400, message);
    }
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants:revoke", reader).await);
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![("ROLE LOADER".into(), "USAGE".into())]
    );
}

#[tokio::test]
async fn listings_are_capped_at_show_limit_and_can_describe_futures_by_securable() {
    let snowflake = emulator().await;
    snowflake.add_filler_grants("ROLE", "ANALYST", 10_001);
    let all = get(&snowflake, "/api/v2/roles/ANALYST/grants").await;
    assert_eq!(
        all.body.as_array().map(Vec::len),
        Some(10_000),
        "showLimit's maximum"
    );
    let few = get(&snowflake, "/api/v2/grants/role/ANALYST?showLimit=5").await;
    assert_eq!(few.body.as_array().map(Vec::len), Some(5));
    snowflake.set_page_size(4_000);
    let first = get(&snowflake, "/api/v2/roles/ANALYST/grants").await;
    assert_eq!(first.body.as_array().map(Vec::len), Some(4_000));
    let mut pages = 1;
    let mut rows = 4_000;
    let mut link = first.link.clone();
    while let Some(header) = link {
        let next = header
            .split(';')
            .next()
            .unwrap()
            .trim_matches(|c| c == '<' || c == '>' || c == ' ')
            .to_string();
        let page = get(&snowflake, &next).await;
        rows += page.body.as_array().map(Vec::len).unwrap_or_default();
        pages += 1;
        link = page.link.clone();
    }
    assert_eq!((pages, rows), (3, 10_000), "pages end at the cap");

    let future = json!({"securable_type": "TABLE", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"]});
    assert_ok(&post(&snowflake, "/api/v2/roles/LOADER/future-grants", future).await);
    snowflake.list_futures_as_securables();
    let listed = get(&snowflake, "/api/v2/roles/LOADER/future-grants").await;
    assert_eq!(
        listed.body,
        json!([{"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "<TABLE>"}, "privileges": ["SELECT"], "grant_option": false}])
    );
    snowflake.add_raw_row("ROLE", "LOADER", true, json!({"securable_type": "TABLE"}));
    let listed = get(&snowflake, "/api/v2/roles/LOADER/future-grants").await;
    assert_eq!(listed.body[1], json!({"securable_type": "TABLE"}));
}
