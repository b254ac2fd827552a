//! Privileges granted and revoked, on every grants API and login: adding and
//! removing privileges, the grant option, bulk `ALL` and future grants, quoted
//! names, database roles and users as grantees, privileges shared by two
//! resources, `Authoritative`.

use super::*;

each_api_and_login!(
    grant_add_and_remove_privileges_then_delete,
    grant_option_on_and_off_touches_only_the_option,
    bulk_all_grants_expand_repair_new_objects_and_revoke,
    future_grants_are_read_from_their_own_listing_and_revoked,
    quoted_mixed_case_names_are_sent_with_their_quotes,
    database_roles_and_users_are_grantees,
    shared_privileges_across_two_resources,
    authoritative_prunes_only_the_resource_securable,
);

async fn grant_add_and_remove_privileges_then_delete(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    h.put_settled(&snowflake_grant(
        "public",
        role("analyst"),
        target_securable("SCHEMA", "sales.public"),
        &["USAGE"],
        false,
    ))
    .await;
    assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "USAGE")]);
    let (status, reason, message) = ready_of(&h, "public");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    assert_eq!(message, "1 of 1 grants applied");
    let grant_status = h.status_of::<SnowflakeGrant>("public");
    let target = grant_status.target.unwrap();
    assert_eq!(target.grantee.as_deref(), Some("ROLE ANALYST"));
    assert_eq!(target.securable.as_deref(), Some("SCHEMA SALES.PUBLIC"));
    assert_eq!(grant_status.grants.len(), 1);
    assert_eq!(grant_status.grants[0].grantee, "SCHEMA SALES.PUBLIC");
    assert_eq!(grant_status.grants[0].permission, "USAGE");

    // Add a privilege, then take the first away.
    h.edit_of::<SnowflakeGrant>("public", |g| {
        g.spec.privileges = vec!["USAGE".into(), "CREATE TABLE".into()]
    });
    settle(&h, "public").await.unwrap();
    assert_analyst_holds(
        &h,
        &[
            ("SCHEMA SALES.PUBLIC", "CREATE TABLE"),
            ("SCHEMA SALES.PUBLIC", "USAGE"),
        ],
    );
    h.edit_of::<SnowflakeGrant>("public", |g| {
        g.spec.privileges = vec!["CREATE TABLE".into()]
    });
    settle(&h, "public").await.unwrap();
    assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "CREATE TABLE")]);

    h.delete_of::<SnowflakeGrant>("public");
    settle(&h, "public").await.unwrap();
    assert!(h.snowflake.live("ROLE", "ANALYST").is_empty());
    assert!(h.get_of::<SnowflakeGrant>("public").is_none());
}

async fn grant_option_on_and_off_touches_only_the_option(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    h.put_settled(&snowflake_grant(
        "wh",
        role("ANALYST"),
        target_securable("WAREHOUSE", "compute_wh"),
        &["USAGE", "OPERATE"],
        true,
    ))
    .await;
    assert_analyst_holds(
        &h,
        &[
            ("WAREHOUSE COMPUTE_WH", "OPERATE WITH GRANT OPTION"),
            ("WAREHOUSE COMPUTE_WH", "USAGE WITH GRANT OPTION"),
        ],
    );
    let rows = h.status_of::<SnowflakeGrant>("wh").grants;
    assert!(
        rows.iter()
            .any(|r| r.permission == "USAGE WITH GRANT OPTION")
    );

    h.snowflake.clear_calls();
    h.edit_of::<SnowflakeGrant>("wh", |g| g.spec.with_grant_option = false);
    settle(&h, "wh").await.unwrap();
    assert_analyst_holds(
        &h,
        &[
            ("WAREHOUSE COMPUTE_WH", "OPERATE"),
            ("WAREHOUSE COMPUTE_WH", "USAGE"),
        ],
    );
    let expected = match api {
        SnowflakeGrantsApi::RoleGrants => {
            vec!["POST /api/v2/roles/ANALYST/grants:revoke".to_string()]
        }
        SnowflakeGrantsApi::Legacy => vec![
            "DELETE /api/v2/grants/role/ANALYST/WAREHOUSE/COMPUTE_WH/privileges/OPERATE/grant-option"
                .to_string(),
            "DELETE /api/v2/grants/role/ANALYST/WAREHOUSE/COMPUTE_WH/privileges/USAGE/grant-option"
                .to_string(),
        ],
    };
    assert_eq!(writes(&h), expected, "only the grant option is revoked");
    if api == SnowflakeGrantsApi::RoleGrants {
        let body = h
            .snowflake
            .calls()
            .into_iter()
            .find(|c| c.method == "POST")
            .and_then(|c| c.body)
            .unwrap();
        assert_eq!(body["privileges"], serde_json::json!(["OPERATE", "USAGE"]));
        assert_eq!(
            body["grant_option"],
            serde_json::json!(true),
            "grant_option: true on a revoke is REVOKE GRANT OPTION FOR"
        );
    }

    // And on again: only the option is added.
    h.edit_of::<SnowflakeGrant>("wh", |g| g.spec.with_grant_option = true);
    settle(&h, "wh").await.unwrap();
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 2);
    assert!(
        h.snowflake
            .live("ROLE", "ANALYST")
            .iter()
            .all(|(_, p)| p.ends_with("WITH GRANT OPTION"))
    );
}

async fn bulk_all_grants_expand_repair_new_objects_and_revoke(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    put_analyst(
        &h,
        "tables",
        target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
        &["SELECT"],
    )
    .await;
    assert_analyst_holds(
        &h,
        &[
            ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
            ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
        ],
    );
    assert_eq!(ready_of(&h, "tables").1, "Synced");
    let tables_status = h.status_of::<SnowflakeGrant>("tables");
    assert_eq!(
        tables_status.grants[0].grantee,
        "ALL TABLES IN SCHEMA SALES.PUBLIC"
    );
    assert_eq!(
        tables_status.target.unwrap().securable.as_deref(),
        Some("ALL TABLES IN SCHEMA SALES.PUBLIC"),
        "each resource shows its own securable"
    );

    // A new table is drift: the bulk grant is issued again at the next sync.
    h.snowflake.add_table("SALES.PUBLIC.RETURNS");
    h.advance(Duration::from_secs(61));
    settle(&h, "tables").await.unwrap();
    assert!(
        h.snowflake
            .live("ROLE", "ANALYST")
            .contains(&("TABLE SALES.PUBLIC.RETURNS".into(), "SELECT".into()))
    );
    assert_eq!(h.status_of::<SnowflakeGrant>("tables").drift_corrections, 1);

    h.delete_of::<SnowflakeGrant>("tables");
    settle(&h, "tables").await.unwrap();
    assert!(h.snowflake.live("ROLE", "ANALYST").is_empty());
    if api == SnowflakeGrantsApi::Legacy {
        assert!(
            writes(&h).iter().any(|w| w
                == "DELETE /api/v2/grants/role/ANALYST/all/tables/schema/SALES.PUBLIC/privileges/SELECT"),
            "{:?}",
            writes(&h)
        );
    }

    // `all` on a type the operator cannot read back is refused clearly.
    h.put(&analyst_grant(
        "funcs",
        target_all("FUNCTIONS", Scope::Schema, "SALES.PUBLIC"),
        &["USAGE"],
    ));
    let _ = settle(&h, "funcs").await;
    let (_, reason, message) = ready_of(&h, "funcs");
    assert_eq!(reason, "InvalidGrant");
    assert!(message.contains("supports TABLES and VIEWS"), "{message}");
}

async fn future_grants_are_read_from_their_own_listing_and_revoked(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    put_analyst(
        &h,
        "future",
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
    )
    .await;
    assert_eq!(
        h.snowflake.future_live("ROLE", "ANALYST"),
        held(&[("FUTURE TABLES IN DATABASE SALES", "SELECT")])
    );
    assert!(
        h.snowflake.live("ROLE", "ANALYST").is_empty(),
        "existing tables untouched"
    );
    assert_eq!(ready_of(&h, "future").1, "Synced");
    assert!(
        h.snowflake
            .count("GET", "/api/v2/roles/ANALYST/future-grants")
            >= 1
    );

    // A table created later gets it (the vendor's doing).
    h.snowflake.add_table("SALES.PUBLIC.LATER");
    assert_analyst_holds(&h, &[("TABLE SALES.PUBLIC.LATER", "SELECT")]);

    h.delete_of::<SnowflakeGrant>("future");
    settle(&h, "future").await.unwrap();
    assert!(h.snowflake.future_live("ROLE", "ANALYST").is_empty());
}

async fn quoted_mixed_case_names_are_sent_with_their_quotes(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    h.put_settled(&snowflake_grant(
        "mixed",
        role(r#""My Role""#),
        target_securable("TABLE", r#"sales."Mixed Case"."Line Items""#),
        &["SELECT"],
        false,
    ))
    .await;
    assert_eq!(
        h.snowflake.live("ROLE", r#""My Role""#),
        held(&[(r#"TABLE SALES."Mixed Case"."Line Items""#, "SELECT")])
    );
    assert!(h.snowflake.live("ROLE", "MY_ROLE").is_empty());
    assert_eq!(ready_of(&h, "mixed").1, "Synced");
    assert!(
        h.snowflake
            .count("GET", &listing_path(api, "%22My%20Role%22"))
            >= 1,
        "{:?}",
        h.snowflake
            .calls()
            .iter()
            .map(|c| &c.path)
            .collect::<Vec<_>>()
    );
    // A quoted name differs from the unquoted one of other case.
    h.put(&snowflake_grant(
        "lower",
        role(r#""my role""#),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    assert_eq!(settle(&h, "lower").await.unwrap_err(), "GranteeNotFound");
}

async fn database_roles_and_users_are_grantees(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put(&snowflake_grant(
        "reader",
        (GT::DatabaseRole, "sales.reader"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    // A user holds roles, not privileges.
    h.put(&snowflake_grant(
        "jane",
        (GT::User, "jane"),
        target_securable("ROLE", "analyst"),
        &["USAGE"],
        false,
    ));
    settle(&h, "reader").await.unwrap();
    assert_eq!(
        h.snowflake.live("DATABASE_ROLE", "SALES.READER"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
    match api {
        SnowflakeGrantsApi::RoleGrants => {
            settle(&h, "jane").await.unwrap();
            assert_eq!(
                h.snowflake.live("USER", "JANE"),
                held(&[("ROLE ANALYST", "USAGE")])
            );
            assert_eq!(ready_of(&h, "jane").1, "Synced");
            assert!(
                h.snowflake.count(
                    "POST",
                    "/api/v2/databases/SALES/database-roles/READER/grants"
                ) >= 1
            );
            assert_eq!(h.snowflake.count("POST", "/api/v2/users/JANE/grants"), 1);
        }
        SnowflakeGrantsApi::Legacy => {
            // The Legacy paths grant privileges on securables: no GRANT ROLE.
            let _ = settle(&h, "jane").await;
            let (status, reason, message) = ready_of(&h, "jane");
            assert_eq!(
                (status.as_str(), reason.as_str()),
                ("False", "InvalidGrant")
            );
            assert!(message.contains("Legacy grants API"), "{message}");
            assert!(message.contains("RoleGrants"), "{message}");
            assert!(h.snowflake.live("USER", "JANE").is_empty());
            assert!(h.snowflake.count("GET", "/api/v2/grants/user/JANE") >= 1);
        }
    }
}

async fn shared_privileges_across_two_resources(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put(&analyst_grant(
        "readers",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
    ));
    h.put(&analyst_grant(
        "monitors",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
    ));
    settle(&h, "readers").await.unwrap();
    settle(&h, "monitors").await.unwrap();
    assert_analyst_holds(
        &h,
        &[
            ("SCHEMA SALES.PUBLIC", "MONITOR"),
            ("SCHEMA SALES.PUBLIC", "USAGE"),
        ],
    );
    h.delete_of::<SnowflakeGrant>("monitors");
    settle(&h, "monitors").await.unwrap();
    assert_holds(
        &h,
        "ANALYST",
        &[("SCHEMA SALES.PUBLIC", "USAGE")],
        "only what no other resource declares is revoked",
    );
    settle(&h, "readers").await.unwrap();
    assert_eq!(ready_of(&h, "readers").1, "Synced");
}

async fn authoritative_prunes_only_the_resource_securable(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    grant_analyst_directly(&h, "SCHEMA", "SALES.PUBLIC", "MONITOR");
    grant_analyst_directly(&h, "DATABASE", "SALES", "USAGE");
    put_public_usage(&h).await;
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST").len(),
        3,
        "Additive keeps them"
    );

    h.edit_of::<SnowflakeGrant>("public", |g| g.spec.policy.mode = Mode::Authoritative);
    settle(&h, "public").await.unwrap();
    assert_holds(
        &h,
        "ANALYST",
        &[
            ("DATABASE SALES", "USAGE"),
            ("SCHEMA SALES.PUBLIC", "USAGE"),
        ],
        "the undeclared privilege on the resource's securable goes; other securables stay",
    );
    assert_eq!(ready_of(&h, "public").1, "Synced");
}
