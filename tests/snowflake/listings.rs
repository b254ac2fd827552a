//! Listings that cannot be trusted: capped grant, future and object listings,
//! future grants described by their securable, unreadable entries.

use super::*;

/// `future`: role `LOADER` gets `SELECT` on the future tables of database
/// `SALES`.
fn loader_future_select() -> SnowflakeGrant {
    snowflake_grant(
        "future",
        role("LOADER"),
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    )
}

/// A grantee holding more grants than Snowflake lists in one answer (showLimit
/// caps the rows at 10,000; `Link` pages cut that answer, never past it): the
/// listing may be incomplete, so the sync fails before any write, with a
/// message and the metric, and a deleted resource keeps its finalizer.
#[tokio::test]
async fn a_capped_grants_listing_fails_the_sync_before_any_write() {
    use grant_operator::vendor_api::snowflake::client::SHOW_LIMIT;
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        grant_analyst_directly(&h, "SCHEMA", "SALES.PUBLIC", "MONITOR");
        let mut grant = analyst_grant(
            "public",
            target_securable("SCHEMA", "SALES.PUBLIC"),
            &["USAGE"],
        );
        grant.spec.policy.mode = Mode::Authoritative;
        h.put(&grant);
        settle(&h, "public").await.unwrap();
        assert_analyst_holds(&h, &[("SCHEMA SALES.PUBLIC", "USAGE")]);

        // Now the role holds more grants than one answer lists, and someone
        // changes the declared securable behind the operator's back.
        h.snowflake.add_filler_grants("ROLE", "ANALYST", SHOW_LIMIT);
        h.snowflake
            .revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE");
        grant_analyst_directly(&h, "SCHEMA", "SALES.PUBLIC", "MONITOR");
        if api == SnowflakeGrantsApi::Legacy {
            // Paged, the answer still ends at the cap.
            h.snowflake.set_page_size(4_000);
        }
        let writes_before = h.snowflake.writes();
        h.advance(Duration::from_secs(61));
        assert_eq!(settle(&h, "public").await.unwrap_err(), "VendorUnavailable");
        let (status, reason, message) = ready_of(&h, "public");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "VendorUnavailable")
        );
        assert!(
            message.contains(
                "ROLE ANALYST holds more grants than Snowflake lists in one answer (10,000"
            ),
            "{api:?}: {message}"
        );
        assert_eq!(
            h.snowflake.writes(),
            writes_before,
            "{api:?}: nothing written"
        );
        assert!(
            h.metrics.incomplete_listing_count("snowflake") >= 1,
            "{api:?}"
        );
        if api == SnowflakeGrantsApi::Legacy {
            assert!(
                h.snowflake.page_reads() >= 2,
                "{api:?}: the pages were followed"
            );
        }

        // Deleting it revokes nothing and keeps the finalizer.
        h.delete_of::<SnowflakeGrant>("public");
        let _ = settle(&h, "public").await;
        assert!(
            h.get_of::<SnowflakeGrant>("public").is_some(),
            "{api:?}: kept"
        );
        assert_eq!(ready_of(&h, "public").1, "Deleting", "{api:?}");
        assert_eq!(h.snowflake.writes(), writes_before, "{api:?}");
        assert!(
            h.snowflake
                .live("ROLE", "ANALYST")
                .contains(&("SCHEMA SALES.PUBLIC".into(), "MONITOR".into()))
        );
    }
}

/// The same for the future-grants listing and for the object listing an `ALL`
/// key is read from.
#[tokio::test]
async fn capped_future_and_object_listings_fail_the_sync_too() {
    use grant_operator::vendor_api::snowflake::client::SHOW_LIMIT;
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::Pat).await;
    h.snowflake
        .add_filler_futures("ROLE", "LOADER", SHOW_LIMIT + 1);
    h.put(&loader_future_select());
    assert_unavailable(
        &h,
        "future",
        "ROLE LOADER holds more future grants than Snowflake lists in one answer (10,000",
    )
    .await;

    h.snowflake.add_tables("SALES.BIG", SHOW_LIMIT);
    h.put(&analyst_grant(
        "big",
        target_all("TABLES", Scope::Schema, "SALES.BIG"),
        &["SELECT"],
    ));
    assert_unavailable(
        &h,
        "big",
        "SCHEMA SALES.BIG holds more tables than Snowflake lists in one answer",
    )
    .await;
    assert_eq!(h.snowflake.writes(), 0);
    assert!(h.metrics.incomplete_listing_count("snowflake") >= 2);
}

/// The definition's Grant may describe a future grant by the `securable` it is
/// on (`SALES.PUBLIC.<TABLE>`) rather than its `containing_scope`: such an
/// entry is read, so it is neither granted again every sync nor left behind
/// when its resource is deleted.
#[tokio::test]
async fn future_grants_described_by_their_securable_are_read() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        h.snowflake.list_futures_as_securables();
        for (name, scope, scope_name) in [
            ("in-schema", Scope::Schema, "SALES.PUBLIC"),
            ("in-database", Scope::Database, "SALES"),
        ] {
            h.put(&snowflake_grant(
                name,
                role("ANALYST"),
                target_future("VIEWS", scope, scope_name),
                &["SELECT"],
                false,
            ));
            settle(&h, name).await.unwrap();
            assert_eq!(ready_of(&h, name).1, "Synced", "{api:?} {name}");
        }
        let writes = h.snowflake.writes();
        h.advance(Duration::from_secs(61));
        settle(&h, "in-schema").await.unwrap();
        settle(&h, "in-database").await.unwrap();
        assert_eq!(
            h.snowflake.writes(),
            writes,
            "{api:?}: read as live, not granted again"
        );

        h.delete_of::<SnowflakeGrant>("in-schema");
        h.delete_of::<SnowflakeGrant>("in-database");
        settle(&h, "in-schema").await.unwrap();
        settle(&h, "in-database").await.unwrap();
        assert!(
            h.snowflake.future_live("ROLE", "ANALYST").is_empty(),
            "{api:?}: revoked on deletion"
        );
    }
}

/// An entry the client cannot read is not taken as absent: the sync fails with
/// a message quoting it, nothing is revoked, nothing is reported in sync, and a
/// deleted resource keeps its finalizer.
#[tokio::test]
async fn an_unreadable_entry_fails_the_sync_and_names_it() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        put_analyst(
            &h,
            "orders",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT"],
        )
        .await;
        h.snowflake.add_raw_row(
            "ROLE",
            "ANALYST",
            false,
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"], "grant_option": false}),
        );
        grant_analyst_directly(&h, "TABLE", "SALES.PUBLIC.ORDERS", "INSERT");
        h.edit_of::<SnowflakeGrant>("orders", |g| g.spec.policy.mode = Mode::Authoritative);
        let writes = h.snowflake.writes();
        assert_eq!(settle(&h, "orders").await.unwrap_err(), "VendorUnavailable");
        let (status, _, message) = ready_of(&h, "orders");
        assert_eq!(status, "False");
        assert!(message.contains("cannot read"), "{api:?}: {message}");
        // Each listing is read with the fields its definition gives it: the
        // Legacy one names securables as text.
        let problem = match api {
            SnowflakeGrantsApi::RoleGrants => "securable has no name",
            SnowflakeGrantsApi::Legacy => "no securable_name",
        };
        assert!(message.contains(problem), "{api:?}: {message}");
        assert!(
            message.contains(r#"{"database":"SALES","schema":"PUBLIC"}"#),
            "{api:?}: the entry is quoted: {message}"
        );
        assert_eq!(h.snowflake.writes(), writes, "{api:?}: nothing revoked");
        h.delete_of::<SnowflakeGrant>("orders");
        let _ = settle(&h, "orders").await;
        assert!(
            h.get_of::<SnowflakeGrant>("orders").is_some(),
            "{api:?}: kept"
        );
        assert_holds(
            &h,
            "ANALYST",
            &[
                ("TABLE SALES.PUBLIC.ORDERS", "INSERT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ],
            &format!("{api:?}"),
        );
    }

    // A future grant with no scope at all.
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::OAuth).await;
    h.snowflake.add_raw_row(
        "ROLE",
        "LOADER",
        true,
        serde_json::json!({"securable_type": "TABLE", "privileges": ["SELECT"], "grant_option": false}),
    );
    h.put(&loader_future_select());
    let message = assert_unavailable(
        &h,
        "future",
        "future grants listing of ROLE LOADER has an entry",
    )
    .await;
    assert!(
        message.contains("no containing_scope or securable"),
        "{message}"
    );
    assert_eq!(h.snowflake.writes(), 0);
}
