//! How requests are spelled and read: a grantee spelled two ways, ownership,
//! requests that keep running, paged listings, `ALL` scopes, the legacy paths.

use super::*;

#[tokio::test]
async fn a_grantee_spelled_two_ways_is_one_unit() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::OAuth).await;
    h.put(&analyst_grant(
        "upper",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
    ));
    h.put(&snowflake_grant(
        "quoted",
        role(r#""ANALYST""#),
        target_securable("schema", "sales.public"),
        &["MONITOR"],
        false,
    ));
    assert_eq!(
        h.get_of::<SnowflakeGrant>("quoted").unwrap().spec.grantee,
        SnowflakeGrantee {
            type_: GT::Role,
            name: r#""ANALYST""#.into()
        }
    );
    settle(&h, "upper").await.unwrap();
    settle(&h, "quoted").await.unwrap();
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 2);
    h.delete_of::<SnowflakeGrant>("quoted");
    settle(&h, "quoted").await.unwrap();
    assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "USAGE")]);
}

#[tokio::test]
async fn ownership_is_refused_and_never_revoked() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::Pat).await;
    h.put(&analyst_grant(
        "own",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["OWNERSHIP", "USAGE"],
    ));
    let _ = settle(&h, "own").await;
    let (_, reason, message) = ready_of(&h, "own");
    assert_eq!(reason, "InvalidGrant");
    assert!(message.contains("OWNERSHIP is transferred"), "{message}");
    assert_eq!(h.snowflake.writes(), 0, "nothing sent for the key");
}

#[tokio::test]
async fn a_request_that_keeps_running_is_given_up_after_the_bound() {
    use grant_operator::api::VendorKind;
    use grant_operator::vendor_api::Vendor;
    use grant_operator::vendor_api::http::{HttpClient, HttpConfig};
    use grant_operator::vendor_api::snowflake::SnowflakeClient;
    use grant_operator::vendor_api::snowflake::auth::Auth;
    use grant_operator::vendor_api::snowflake::client::{PollPolicy, SnowflakeApi};
    grant_operator::install_crypto_provider();
    let snowflake = support::snowflake::SnowflakeEmulator::start().await;
    seed_snowflake(&snowflake);
    snowflake.answer_async(1, 1000);
    let http = HttpClient::new(
        VendorKind::Snowflake,
        &HttpConfig::default(),
        std::sync::Arc::new(grant_operator::metrics::Metrics::new()),
    )
    .unwrap();
    let api = SnowflakeApi::new(
        http,
        &snowflake.url(),
        Auth::ProgrammaticAccessToken(SNOWFLAKE_PAT.into()),
        SnowflakeGrantsApi::RoleGrants,
    )
    .with_poll(PollPolicy {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
        total: Duration::from_millis(300),
    });
    let started = std::time::Instant::now();
    let error = SnowflakeClient::new(api).check().await.unwrap_err();
    assert_eq!(error.reason().as_str(), "VendorUnavailable");
    assert!(error.to_string().contains("still running"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let polls = snowflake.result_polls();
    assert!((3..=30).contains(&polls), "backoff between polls: {polls}");
    // Outside a harness: its requests are checked against Snowflake's definitions here.
    support::conformance::assert_conform(
        &support::conformance::scenario(),
        &[],
        &snowflake.journal(),
    );
}

#[tokio::test]
async fn long_listings_are_read_page_by_page() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::OAuth).await;
        for (type_, name, privilege) in [
            ("DATABASE", "SALES", "USAGE"),
            ("SCHEMA", "SALES.PUBLIC", "MONITOR"),
            ("TABLE", "SALES.PUBLIC.CUSTOMERS", "INSERT"),
        ] {
            h.snowflake
                .grant_direct("ROLE", "ANALYST", type_, name, privilege, false);
        }
        h.snowflake.set_page_size(1);
        let mut grant = analyst_grant(
            "tables",
            target_all("TABLES", Scope::Database, "SALES"),
            &["SELECT"],
        );
        grant.spec.policy.mode = Mode::Authoritative;
        h.put(&grant);
        settle(&h, "tables").await.unwrap();
        assert_eq!(ready_of(&h, "tables").1, "Synced", "{api:?}");
        let live = h.snowflake.live("ROLE", "ANALYST");
        for table in [
            r#"TABLE SALES."Mixed Case"."Line Items""#,
            "TABLE SALES.PUBLIC.CUSTOMERS",
            "TABLE SALES.PUBLIC.ORDERS",
        ] {
            assert!(
                live.contains(&(table.to_string(), "SELECT".to_string())),
                "{api:?}: {table} in {live:?}"
            );
        }
        assert!(
            live.contains(&("DATABASE SALES".into(), "USAGE".into())),
            "other securables kept: {live:?}"
        );
        assert!(h.snowflake.page_reads() > 3, "{}", h.snowflake.page_reads());
        // Steady state: every page read again, nothing written.
        let writes = h.snowflake.writes();
        h.advance(Duration::from_secs(61));
        settle(&h, "tables").await.unwrap();
        assert_eq!(h.snowflake.writes(), writes, "{api:?}");
    }
}

#[tokio::test]
async fn all_schemas_in_a_database_and_all_views_in_a_schema() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        h.put(&snowflake_grant(
            "schemas",
            role("LOADER"),
            target_all("SCHEMAS", Scope::Database, "SALES"),
            &["USAGE"],
            false,
        ));
        h.put(&snowflake_grant(
            "views",
            role("LOADER"),
            target_all("VIEWS", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
            true,
        ));
        settle(&h, "schemas").await.unwrap();
        settle(&h, "views").await.unwrap();
        assert_holds(
            &h,
            "LOADER",
            &[
                (r#"SCHEMA SALES."Mixed Case""#, "USAGE"),
                ("SCHEMA SALES.PUBLIC", "USAGE"),
                ("VIEW SALES.PUBLIC.ORDERS_V", "SELECT WITH GRANT OPTION"),
            ],
            &format!("{api:?}"),
        );
        assert_eq!(ready_of(&h, "schemas").1, "Synced", "{api:?}");
        assert_eq!(ready_of(&h, "views").1, "Synced", "{api:?}");
        h.delete_of::<SnowflakeGrant>("schemas");
        h.delete_of::<SnowflakeGrant>("views");
        settle(&h, "schemas").await.unwrap();
        settle(&h, "views").await.unwrap();
        assert!(h.snowflake.live("ROLE", "LOADER").is_empty(), "{api:?}");
    }
}

/// grant.yaml's enums: `granteeType` `role` / `database-role` / `user`,
/// `bulkGrantType` `all` / `future`, `scopeType` `database` / `schema`, the
/// plural securable type lower-case (`tables`) and the singular one as its
/// examples write it (`SCHEMA`).
#[tokio::test]
async fn legacy_paths_carry_the_values_the_definition_allows() {
    let h = ready(SnowflakeGrantsApi::Legacy, SnowflakeLogin::Pat).await;
    let reader = (GT::DatabaseRole, "sales.reader");
    h.put(&snowflake_grant(
        "schema",
        reader,
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.put(&snowflake_grant(
        "future",
        reader,
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    ));
    for name in ["schema", "future"] {
        settle(&h, name).await.unwrap();
        assert_eq!(ready_of(&h, name).1, "Synced", "{name}");
    }
    assert_eq!(
        sorted(writes(&h)),
        vec![
            "POST /api/v2/grants/database-role/SALES.READER/SCHEMA/SALES.PUBLIC/privileges",
            "POST /api/v2/grants/database-role/SALES.READER/future/tables/database/SALES/privileges",
        ]
    );
    assert!(
        h.snowflake
            .count("GET", "/api/v2/grants/database-role/SALES.READER")
            >= 1
    );
    h.snowflake.clear_calls();
    h.delete_of::<SnowflakeGrant>("schema");
    h.delete_of::<SnowflakeGrant>("future");
    settle(&h, "schema").await.unwrap();
    settle(&h, "future").await.unwrap();
    assert_eq!(
        sorted(writes(&h)),
        vec![
            "DELETE /api/v2/grants/database-role/SALES.READER/SCHEMA/SALES.PUBLIC/privileges/USAGE",
            "DELETE /api/v2/grants/database-role/SALES.READER/future/tables/database/SALES/privileges/SELECT",
        ]
    );
    assert!(h.snowflake.live("DATABASE_ROLE", "SALES.READER").is_empty());
    assert!(
        h.snowflake
            .future_live("DATABASE_ROLE", "SALES.READER")
            .is_empty()
    );
}
