//! Grants on both APIs: Snowflake's identifier rules, RoleGrants granting,
//! listing and revoking with the grant option apart, the legacy API as
//! `SHOW GRANTS`, and the values the legacy paths allow.

use super::*;

#[tokio::test]
async fn identifiers_follow_snowflakes_rules() {
    let snowflake = emulator().await;
    let grant = json!({"securable_type": "SCHEMA", "securable": {"database": "sales", "name": "public"}, "privileges": ["USAGE"]});
    assert_ok(&post(&snowflake, "/api/v2/roles/analyst/grants", grant.clone()).await);
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![("SCHEMA SALES.PUBLIC".into(), "USAGE".into())]
    );
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/%22My%20Role%22/grants",
            grant.clone(),
        )
        .await,
    );
    assert_eq!(snowflake.live("ROLE", r#""My Role""#).len(), 1);
    assert_error(
        &post(&snowflake, "/api/v2/roles/%22my%20role%22/grants", grant).await,
        404,
        "does not exist",
    );
    // Quoted names in bodies keep their case.
    let mixed = json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "\"Mixed Case\"", "name": "\"Line Items\""}, "privileges": ["SELECT"]});
    assert_ok(&post(&snowflake, "/api/v2/roles/LOADER/grants", mixed).await);
    let wrong_case = json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "MIXED_CASE", "name": "\"Line Items\""}, "privileges": ["SELECT"]});
    assert_error(
        &post(&snowflake, "/api/v2/roles/LOADER/grants", wrong_case).await,
        404,
        "does not exist",
    );
    let listed = get(&snowflake, "/api/v2/roles/LOADER/grants").await;
    assert_eq!(
        listed.body[0]["securable"],
        json!({"database": "SALES", "schema": "\"Mixed Case\"", "name": "\"Line Items\""})
    );
}

#[tokio::test]
async fn role_grants_api_grants_lists_and_revokes_with_the_grant_option_apart() {
    let snowflake = emulator().await;
    let body = |option: bool| json!({"securable_type": "WAREHOUSE", "securable": {"name": "COMPUTE_WH"}, "privileges": ["USAGE", "OPERATE"], "grant_option": option});
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants", body(true)).await);
    let listed = get(&snowflake, "/api/v2/roles/ANALYST/grants?showLimit=10").await;
    assert_ok(&listed);
    assert_eq!(listed.body[0]["securable_type"], "WAREHOUSE");
    assert_eq!(listed.body[0]["grant_option"], true);
    assert_eq!(listed.body[0]["privileges"], json!(["OPERATE", "USAGE"]));
    // Granting again without the option keeps it; re-granting succeeds.
    assert_ok(&post(&snowflake, "/api/v2/roles/ANALYST/grants", body(false)).await);
    assert!(
        snowflake
            .live("ROLE", "ANALYST")
            .iter()
            .all(|(_, p)| p.ends_with("WITH GRANT OPTION"))
    );
    // The revoke defines only `mode`; `grant_option: true` in its body revokes
    // the grant option alone.
    assert_error(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants:revoke?grantOptionOnly=true",
            body(true),
        )
        .await,
        400,
        "unknown parameter",
    );
    assert_error(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants?mode=restrict",
            body(true),
        )
        .await,
        400,
        "unknown parameter",
    );
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants:revoke?mode=restrict",
            body(true),
        )
        .await,
    );
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![
            ("WAREHOUSE COMPUTE_WH".into(), "OPERATE".into()),
            ("WAREHOUSE COMPUTE_WH".into(), "USAGE".into())
        ]
    );
    // Revoking what is held, then what is absent: both succeed.
    for _ in 0..2 {
        assert_ok(
            &post(
                &snowflake,
                "/api/v2/roles/ANALYST/grants:revoke",
                body(false),
            )
            .await,
        );
        assert!(snowflake.live("ROLE", "ANALYST").is_empty());
    }

    // Strictness.
    let unknown_field = json!({"securable_type": "WAREHOUSE", "securable": {"name": "COMPUTE_WH"}, "privileges": ["USAGE"], "extra": 1});
    assert_error(
        &post(&snowflake, "/api/v2/roles/ANALYST/grants", unknown_field).await,
        400,
        "unknown field",
    );
    let bad_privilege = json!({"securable_type": "WAREHOUSE", "securable": {"name": "COMPUTE_WH"}, "privileges": ["SELECT"]});
    assert_error(
        &post(&snowflake, "/api/v2/roles/ANALYST/grants", bad_privilege).await,
        400,
        "Invalid privilege",
    );
    let missing = json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "NOPE"}, "privileges": ["SELECT"]});
    assert_error(
        &post(&snowflake, "/api/v2/roles/ANALYST/grants", missing).await,
        404,
        "does not exist",
    );
    assert_error(
        &get(&snowflake, "/api/v2/roles/NOBODY/grants").await,
        404,
        "does not exist",
    );
    assert_error(
        &get(&snowflake, "/api/v2/roles/ANALYST/grants?showLimit=0").await,
        400,
        "showLimit",
    );
}

#[tokio::test]
async fn legacy_api_grants_revokes_and_lists_as_show_grants() {
    let snowflake = emulator().await;
    let path = "/api/v2/grants/role/ANALYST/SCHEMA/SALES.PUBLIC/privileges";
    assert_ok(
        &post(
            &snowflake,
            path,
            json!({"privileges": ["USAGE", "MONITOR"], "grant_option": true}),
        )
        .await,
    );
    let listed = get(&snowflake, "/api/v2/grants/role/ANALYST").await;
    assert_ok(&listed);
    assert_eq!(listed.body[0]["securable_name"], "SALES.PUBLIC");
    assert_eq!(listed.body[0]["grantee_name"], "ANALYST");
    assert_eq!(listed.body[0]["grant_option"], true);
    assert_ok(&delete(&snowflake, &format!("{path}/USAGE/grant-option")).await);
    assert_eq!(
        snowflake.live("ROLE", "ANALYST"),
        vec![
            (
                "SCHEMA SALES.PUBLIC".into(),
                "MONITOR WITH GRANT OPTION".into()
            ),
            ("SCHEMA SALES.PUBLIC".into(), "USAGE".into())
        ]
    );
    assert_ok(&delete(&snowflake, &format!("{path}/MONITOR")).await);
    assert_ok(&delete(&snowflake, &format!("{path}/MONITOR")).await);
    assert_eq!(snowflake.live("ROLE", "ANALYST").len(), 1);

    // Bulk all: every table that exists now.
    let all = "/api/v2/grants/role/LOADER/all/tables/schema/SALES.PUBLIC/privileges";
    assert_ok(&post(&snowflake, all, json!({"privileges": ["SELECT"]})).await);
    assert_eq!(snowflake.live("ROLE", "LOADER").len(), 2);
    assert_ok(&delete(&snowflake, &format!("{all}/SELECT")).await);
    assert!(snowflake.live("ROLE", "LOADER").is_empty());

    // Future: listed apart, applied to tables created later.
    let future = "/api/v2/grants/role/LOADER/future/tables/database/SALES/privileges";
    assert_ok(&post(&snowflake, future, json!({"privileges": ["INSERT"]})).await);
    assert!(get(&snowflake, "/api/v2/grants/role/LOADER").await.body == json!([]));
    let futures = get(&snowflake, "/api/v2/roles/LOADER/future-grants").await;
    assert_eq!(
        futures.body,
        json!([{"securable_type": "TABLE", "containing_scope": {"database": "SALES"}, "privileges": ["INSERT"], "grant_option": false}])
    );
    snowflake.add_table("SALES.PUBLIC.NEW_ONE");
    assert_eq!(
        snowflake.live("ROLE", "LOADER"),
        vec![("TABLE SALES.PUBLIC.NEW_ONE".into(), "INSERT".into())]
    );
    assert_ok(&delete(&snowflake, &format!("{future}/INSERT")).await);
    assert!(snowflake.future_live("ROLE", "LOADER").is_empty());
}

#[tokio::test]
async fn legacy_paths_take_only_the_values_the_definition_allows() {
    // grant.yaml: granteeType is one of user, role, application-role,
    // database-role, share; bulkGrantType all or future; scopeType database or
    // schema; securableTypePlural lower-case ("tables"); the revokes take only
    // the deleteMode query parameter.
    let snowflake = emulator().await;
    let privileges = json!({"privileges": ["USAGE"]});
    for (path, message) in [
        (
            "/api/v2/grants/ROLE/ANALYST/SCHEMA/SALES.PUBLIC/privileges",
            "granteeType",
        ),
        (
            "/api/v2/grants/DATABASE_ROLE/SALES.READER/SCHEMA/SALES.PUBLIC/privileges",
            "granteeType",
        ),
        (
            "/api/v2/grants/database_role/SALES.READER/SCHEMA/SALES.PUBLIC/privileges",
            "granteeType",
        ),
        (
            "/api/v2/grants/role/ANALYST/all/TABLES/schema/SALES.PUBLIC/privileges",
            "securableTypePlural",
        ),
        (
            "/api/v2/grants/role/ANALYST/all/tables/SCHEMA/SALES.PUBLIC/privileges",
            "scopeType",
        ),
        (
            "/api/v2/grants/role/ANALYST/ALL/tables/schema/SALES.PUBLIC/privileges",
            "bulkGrantType",
        ),
    ] {
        assert_error(
            &post(&snowflake, path, privileges.clone()).await,
            400,
            message,
        );
    }
    assert_error(
        &get(&snowflake, "/api/v2/grants/ROLE/ANALYST").await,
        400,
        "granteeType",
    );
    assert_error(
        &delete(
            &snowflake,
            "/api/v2/grants/role/ANALYST/SCHEMA/SALES.PUBLIC/privileges/USAGE?grantOptionOnly=true",
        )
        .await,
        400,
        "unknown parameter",
    );
    assert!(snowflake.live("ROLE", "ANALYST").is_empty());
    assert!(snowflake.live("DATABASE_ROLE", "SALES.READER").is_empty());

    // The defined values work, for a database role too.
    let schema = "/api/v2/grants/database-role/SALES.READER/SCHEMA/SALES.PUBLIC/privileges";
    assert_ok(&post(&snowflake, schema, privileges.clone()).await);
    assert_ok(&get(&snowflake, "/api/v2/grants/database-role/SALES.READER").await);
    assert_ok(&delete(&snowflake, &format!("{schema}/USAGE?deleteMode=restrict")).await);
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/grants/database-role/SALES.READER/all/views/schema/SALES.PUBLIC/privileges",
            json!({"privileges": ["SELECT"]}),
        )
        .await,
    );
    assert_eq!(
        snowflake.live("DATABASE_ROLE", "SALES.READER"),
        vec![("VIEW SALES.PUBLIC.ORDERS_V".into(), "SELECT".into())]
    );
}
