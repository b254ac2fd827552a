//! Revoking `ALL` and single objects without taking what another resource
//! keeps.

use super::*;

/// `ALL` is granted in one call (RoleGrants: `containing_scope`, as the
/// definition and snowflake.core do), and its revoke never takes what another
/// resource keeps on an object of the scope: a table declared one by one, one
/// an Observe resource declares.
#[tokio::test]
async fn revoking_all_spares_what_other_resources_keep() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        h.snowflake.add_table("SALES.PUBLIC.RETURNS");
        put_analyst(
            &h,
            "x-all",
            target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
        )
        .await;
        match api {
            SnowflakeGrantsApi::RoleGrants => assert_eq!(
                write_bodies(&h),
                vec![(
                    "POST /api/v2/roles/ANALYST/grants".to_string(),
                    serde_json::json!({
                        "securable_type": "TABLE",
                        "containing_scope": {"database": "SALES", "schema": "PUBLIC"},
                        "privileges": ["SELECT"],
                        "grant_option": false,
                    })
                )],
                "one bulk grant"
            ),
            SnowflakeGrantsApi::Legacy => assert_eq!(
                writes(&h),
                vec!["POST /api/v2/grants/role/ANALYST/all/tables/schema/SALES.PUBLIC/privileges"]
            ),
        }
        assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 3, "{api:?}");

        h.put(&analyst_grant(
            "y-orders",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT"],
        ));
        let mut observed = analyst_grant(
            "w-customers",
            target_securable("TABLE", "SALES.PUBLIC.CUSTOMERS"),
            &["SELECT"],
        );
        observed.spec.policy.management_policy = ManagementPolicy::Observe;
        h.put(&observed);
        settle(&h, "y-orders").await.unwrap();
        settle(&h, "w-customers").await.unwrap();

        h.snowflake.clear_calls();
        delete_released(&h, "x-all").await;
        assert_holds(
            &h,
            "ANALYST",
            &[
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ],
            &format!("{api:?}: only the table nobody else keeps loses SELECT"),
        );
        match api {
            SnowflakeGrantsApi::RoleGrants => assert_eq!(
                write_bodies(&h),
                vec![(
                    "POST /api/v2/roles/ANALYST/grants:revoke".to_string(),
                    serde_json::json!({
                        "securable_type": "TABLE",
                        "securable": {"database": "SALES", "schema": "PUBLIC", "name": "RETURNS"},
                        "privileges": ["SELECT"],
                        "grant_option": false,
                    })
                )]
            ),
            SnowflakeGrantsApi::Legacy => assert_eq!(
                writes(&h),
                vec![
                    "DELETE /api/v2/grants/role/ANALYST/TABLE/SALES.PUBLIC.RETURNS/privileges/SELECT"
                ]
            ),
        }

        // Nothing to repair afterwards: no grant was wrongly revoked.
        h.advance(Duration::from_secs(61));
        settle(&h, "y-orders").await.unwrap();
        settle(&h, "w-customers").await.unwrap();
        assert_eq!(writes(&h).len(), 1, "{api:?}: {:?}", writes(&h));
        assert_eq!(ready_of(&h, "y-orders").1, "Synced", "{api:?}");
        assert_eq!(ready_of(&h, "w-customers").1, "Synced", "{api:?}");
        assert_eq!(
            h.status_of::<SnowflakeGrant>("y-orders").drift_corrections,
            0
        );
    }
}

/// An `ALL` key inside another one's scope, with the grant option: deleting it
/// leaves the outer `ALL`'s privilege on every table (only its own grant option
/// goes), and the resource is released; deleting the outer one then revokes in
/// one bulk call, as nothing in its scope is kept any more.
#[tokio::test]
async fn revoking_all_spares_an_overlapping_all_and_revokes_in_bulk_when_nothing_is_kept() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::OAuth).await;
        h.put(&snowflake_grant(
            "database",
            role("LOADER"),
            target_all("TABLES", Scope::Database, "SALES"),
            &["SELECT"],
            false,
        ));
        h.put(&snowflake_grant(
            "schema",
            role("LOADER"),
            target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
            true,
        ));
        settle(&h, "database").await.unwrap();
        settle(&h, "schema").await.unwrap();
        assert_holds(
            &h,
            "LOADER",
            &[
                (r#"TABLE SALES."Mixed Case"."Line Items""#, "SELECT"),
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT WITH GRANT OPTION"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT WITH GRANT OPTION"),
            ],
            &format!("{api:?}"),
        );

        h.snowflake.clear_calls();
        delete_released(&h, "schema").await;
        assert_holds(
            &h,
            "LOADER",
            &[
                (r#"TABLE SALES."Mixed Case"."Line Items""#, "SELECT"),
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ],
            &format!("{api:?}: the database-wide SELECT stays on every table"),
        );
        settle(&h, "database").await.unwrap();
        assert_eq!(ready_of(&h, "database").1, "Synced", "{api:?}");

        h.snowflake.clear_calls();
        h.delete_of::<SnowflakeGrant>("database");
        settle(&h, "database").await.unwrap();
        assert!(h.snowflake.live("ROLE", "LOADER").is_empty(), "{api:?}");
        let expected = match api {
            SnowflakeGrantsApi::RoleGrants => "POST /api/v2/roles/LOADER/grants:revoke",
            SnowflakeGrantsApi::Legacy => {
                "DELETE /api/v2/grants/role/LOADER/all/tables/database/SALES/privileges/SELECT"
            }
        };
        assert_eq!(writes(&h), vec![expected], "{api:?}: one bulk revoke");
        if api == SnowflakeGrantsApi::RoleGrants {
            assert_eq!(
                write_bodies(&h)[0].1["containing_scope"],
                serde_json::json!({"database": "SALES"})
            );
        }
    }
}

/// The other way round: a resource naming one table is deleted while an `ALL`
/// resource covers that table. The table keeps the privilege (no revoke, no
/// window without access) and the deleted resource is released.
#[tokio::test]
async fn revoking_one_object_spares_what_an_all_resource_keeps() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        put_analyst(
            &h,
            "orders",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT", "INSERT"],
        )
        .await;
        put_analyst(
            &h,
            "all",
            target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
        )
        .await;
        h.snowflake.clear_calls();
        delete_released(&h, "orders").await;
        assert_holds(
            &h,
            "ANALYST",
            &[
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ],
            &format!("{api:?}: INSERT goes, SELECT stays for the ALL resource"),
        );
        let revoked = match api {
            SnowflakeGrantsApi::RoleGrants => "POST /api/v2/roles/ANALYST/grants:revoke",
            SnowflakeGrantsApi::Legacy => {
                "DELETE /api/v2/grants/role/ANALYST/TABLE/SALES.PUBLIC.ORDERS/privileges/INSERT"
            }
        };
        assert_eq!(writes(&h), vec![revoked], "{api:?}");
        h.advance(Duration::from_secs(61));
        settle(&h, "all").await.unwrap();
        assert_eq!(writes(&h).len(), 1, "{api:?}: nothing to repair");
        assert_eq!(h.status_of::<SnowflakeGrant>("all").drift_corrections, 0);
    }
}
