//! Roles held by users and roles, what Snowflake cannot grant, and the roles
//! a user holds on the legacy API.

use super::*;

fn role_target(name: &str) -> grant_operator::api::SnowflakeTarget {
    target_securable("ROLE", name)
}

/// Roles a user holds, and the role hierarchy, on `RoleGrants`: granted with a
/// body that names the role and nothing else, united across resources, kept
/// while another resource declares them, revoked with the deletion of the last
/// one, repaired after drift; `Authoritative` on a role key leaves the
/// grantee's other roles alone.
#[tokio::test]
async fn users_and_roles_hold_roles() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::KeyPair).await;
    h.snowflake.add_database_role("SALES.WRITER");
    let jane = (GT::User, "jane");
    for (name, grantee, target) in [
        ("jane-analyst", jane, role_target("ANALYST")),
        ("jane-analyst-too", jane, role_target("analyst")),
        ("jane-loader", jane, role_target("LOADER")),
        ("analyst-loader", role("ANALYST"), role_target("LOADER")),
        (
            "analyst-reader",
            role("ANALYST"),
            target_securable("DATABASE ROLE", "SALES.READER"),
        ),
        (
            "writer-reader",
            (GT::DatabaseRole, "SALES.WRITER"),
            target_securable("database role", "sales.reader"),
        ),
    ] {
        h.put(&snowflake_grant(name, grantee, target, &["USAGE"], false));
        settle(&h, name).await.unwrap();
        assert_eq!(ready_of(&h, name).1, "Synced", "{name}");
    }
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("ROLE ANALYST", "USAGE"), ("ROLE LOADER", "USAGE")])
    );
    assert_analyst_holds(
        &h,
        &[
            ("DATABASE ROLE SALES.READER", "USAGE"),
            ("ROLE LOADER", "USAGE"),
        ],
    );
    assert_eq!(
        h.snowflake.live("DATABASE_ROLE", "SALES.WRITER"),
        held(&[("DATABASE ROLE SALES.READER", "USAGE")])
    );
    let status = h.status_of::<SnowflakeGrant>("analyst-reader");
    assert_eq!(status.grants[0].grantee, "DATABASE ROLE SALES.READER");
    assert_eq!(status.grants[0].permission, "USAGE");
    assert_eq!(
        status.target.unwrap().securable.as_deref(),
        Some("DATABASE ROLE SALES.READER")
    );
    let bodies = write_bodies(&h);
    assert!(
        bodies.contains(&(
            "POST /api/v2/users/JANE/grants".to_string(),
            serde_json::json!({"securable_type": "ROLE", "securable": {"name": "ANALYST"}})
        )),
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&(
            "POST /api/v2/roles/ANALYST/grants".to_string(),
            serde_json::json!({"securable_type": "DATABASE ROLE", "securable": {"database": "SALES", "name": "READER"}})
        )),
        "{bodies:?}"
    );
    assert_eq!(
        h.snowflake.count("POST", "/api/v2/users/JANE/grants"),
        2,
        "the two resources on ANALYST share one grant"
    );

    // Union: deleting one of two resources on a role keeps it.
    h.snowflake.clear_calls();
    delete_released(&h, "jane-analyst").await;
    assert!(writes(&h).is_empty(), "{:?}", writes(&h));
    // Deleting the last one revokes it, with the same body and no query.
    h.delete_of::<SnowflakeGrant>("jane-loader");
    h.delete_of::<SnowflakeGrant>("analyst-reader");
    settle(&h, "jane-loader").await.unwrap();
    settle(&h, "analyst-reader").await.unwrap();
    let mut bodies = write_bodies(&h);
    bodies.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        bodies,
        vec![
            (
                "POST /api/v2/roles/ANALYST/grants:revoke".to_string(),
                serde_json::json!({"securable_type": "DATABASE ROLE", "securable": {"database": "SALES", "name": "READER"}})
            ),
            (
                "POST /api/v2/users/JANE/grants:revoke".to_string(),
                serde_json::json!({"securable_type": "ROLE", "securable": {"name": "LOADER"}})
            ),
        ]
    );
    assert!(
        h.snowflake
            .calls()
            .iter()
            .all(|call| call.method == "GET" || call.query.is_empty())
    );
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("ROLE ANALYST", "USAGE")])
    );
    assert_analyst_holds(&h, &[("ROLE LOADER", "USAGE")]);

    // Drift: a role taken away by hand is granted again at the next sync.
    h.snowflake
        .revoke_direct("USER", "JANE", "ROLE", "ANALYST", "USAGE");
    h.snowflake
        .revoke_direct("ROLE", "ANALYST", "ROLE", "LOADER", "USAGE");
    h.advance(Duration::from_secs(61));
    settle(&h, "jane-analyst-too").await.unwrap();
    settle(&h, "analyst-loader").await.unwrap();
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("ROLE ANALYST", "USAGE")])
    );
    assert_analyst_holds(&h, &[("ROLE LOADER", "USAGE")]);
    assert_eq!(
        h.status_of::<SnowflakeGrant>("jane-analyst-too")
            .drift_corrections,
        1
    );
    assert_eq!(
        h.status_of::<SnowflakeGrant>("analyst-loader")
            .drift_corrections,
        1
    );

    // Authoritative on a role key is scoped to it: another role of the user stays.
    h.snowflake
        .grant_direct("USER", "JANE", "ROLE", r#""My Role""#, "USAGE", false);
    h.edit_of::<SnowflakeGrant>("jane-analyst-too", |g| {
        g.spec.policy.mode = Mode::Authoritative
    });
    settle(&h, "jane-analyst-too").await.unwrap();
    assert_eq!(ready_of(&h, "jane-analyst-too").1, "Synced");
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("ROLE \"My Role\"", "USAGE"), ("ROLE ANALYST", "USAGE")])
    );
    h.delete_of::<SnowflakeGrant>("jane-analyst-too");
    settle(&h, "jane-analyst-too").await.unwrap();
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("ROLE \"My Role\"", "USAGE")]),
        "only what the operator granted goes"
    );
}

/// Anything but a role for a user, a role granted with other privileges or
/// the grant option, an account role for a database role: refused before any
/// write, with the reason (admission refuses these too; this is the operator's
/// own check, for resources admitted before the rule existed).
#[tokio::test]
async fn what_snowflake_cannot_grant_is_refused_with_the_reason() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        for (name, grantee, target, privileges, option, message) in [
            (
                "jane-view",
                (GT::User, "JANE"),
                target_securable("VIEW", "SALES.PUBLIC.ORDERS_V"),
                vec!["SELECT"],
                false,
                "Snowflake grants roles, not privileges, to users",
            ),
            (
                "jane-future",
                (GT::User, "JANE"),
                target_future("TABLES", Scope::Database, "SALES"),
                vec!["SELECT"],
                false,
                "Snowflake grants roles, not privileges, to users",
            ),
            (
                "role-monitor",
                role("ANALYST"),
                role_target("LOADER"),
                vec!["USAGE", "MONITOR"],
                false,
                "a role is granted whole",
            ),
            (
                "role-option",
                role("ANALYST"),
                role_target("LOADER"),
                vec!["USAGE"],
                true,
                "a role is granted whole",
            ),
            (
                "reader-account-role",
                (GT::DatabaseRole, "SALES.READER"),
                role_target("ANALYST"),
                vec!["USAGE"],
                false,
                "an account role cannot be granted to a database role",
            ),
        ] {
            h.put(&snowflake_grant(name, grantee, target, &privileges, option));
            let _ = settle(&h, name).await;
            let (status, reason, text) = ready_of(&h, name);
            assert_eq!(
                (status.as_str(), reason.as_str()),
                ("False", "InvalidGrant"),
                "{api:?} {name}"
            );
            assert!(text.contains(message), "{api:?} {name}: {text}");
        }
        assert_eq!(h.snowflake.writes(), 0, "{api:?}: nothing written");
    }
}

/// The Legacy API cannot grant a role, but it reads the roles a user holds
/// (`GET /api/v2/grants/user/{name}`): an `Observe` resource reports them.
#[tokio::test]
async fn legacy_reads_the_roles_a_user_holds() {
    let h = ready(SnowflakeGrantsApi::Legacy, SnowflakeLogin::OAuth).await;
    h.snowflake
        .grant_direct("USER", "JANE", "ROLE", "ANALYST", "USAGE", false);
    h.snowflake.grant_direct(
        "ROLE",
        "ANALYST",
        "DATABASE ROLE",
        "SALES.READER",
        "USAGE",
        false,
    );
    for (name, grantee, target) in [
        ("jane", (GT::User, "JANE"), role_target("ANALYST")),
        (
            "analyst",
            role("ANALYST"),
            target_securable("DATABASE ROLE", "SALES.READER"),
        ),
    ] {
        let mut grant = snowflake_grant(name, grantee, target, &["USAGE"], false);
        grant.spec.policy.management_policy = ManagementPolicy::Observe;
        h.put(&grant);
        settle(&h, name).await.unwrap();
        let (status, reason, _) = ready_of(&h, name);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "Synced"),
            "{name}"
        );
    }
    assert_eq!(h.snowflake.writes(), 0);
}
