//! SnowflakeGrant end to end over real HTTP: the real reconcilers against the
//! strict Snowflake emulator, with the Kubernetes side on an in-memory API.
//!
//! Every scenario runs for both grants APIs (`RoleGrants`, `Legacy`) and the
//! three ways to log in (key-pair JWT, OAuth token, programmatic access token):
//! see the `support::each_setup!` call below.

mod support;

use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, GrantState, ManagementPolicy, Mode, SnowflakeGrant, SnowflakeGrantee,
    SnowflakeGranteeType as GT, SnowflakeGrantsApi, SnowflakeScopeType as Scope,
};
use support::snowflake::{Fault, FaultKind};
use support::*;

/// A harness with a Ready provider `snowflake` for `api`, logging in the `login` way.
async fn ready(api: SnowflakeGrantsApi, login: SnowflakeLogin) -> Harness {
    let h = Harness::new().await;
    h.snowflake_secret(NS, "snowflake-login", login);
    h.put(&h.snowflake_provider(NS, "snowflake", "snowflake-login", login, api));
    h.reconcile_provider(NS, "snowflake")
        .await
        .expect("provider becomes ready");
    h.snowflake.clear_calls();
    h.kube.clear_calls();
    h
}

async fn settle(h: &Harness, name: &str) -> Result<(), String> {
    h.settle_of::<SnowflakeGrant>(name)
        .await
        .map(|_| ())
        .map_err(|error| error.reason().to_string())
}

fn ready_of(h: &Harness, name: &str) -> (String, String, String) {
    let ready = h.ready_of::<SnowflakeGrant>(name);
    (ready.status, ready.reason, ready.message)
}

fn held(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        rows.iter()
            .map(|(securable, privilege)| (securable.to_string(), privilege.to_string()))
            .collect(),
    )
}

fn role(name: &str) -> (GT, &str) {
    (GT::Role, name)
}

/// The grantee listing path of the API for role `name` (as sent).
fn listing_path(api: SnowflakeGrantsApi, encoded_role: &str) -> String {
    match api {
        SnowflakeGrantsApi::RoleGrants => format!("/api/v2/roles/{encoded_role}/grants"),
        SnowflakeGrantsApi::Legacy => format!("/api/v2/grants/role/{encoded_role}"),
    }
}

fn writes(h: &Harness) -> Vec<String> {
    h.snowflake
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET")
        .map(|call| {
            if call.query.is_empty() {
                format!("{} {}", call.method, call.path)
            } else {
                format!("{} {}?{}", call.method, call.path, call.query)
            }
        })
        .collect()
}

support::each_setup!(
    [
        grant_add_and_remove_privileges_then_delete,
        grant_option_on_and_off_touches_only_the_option,
        bulk_all_grants_expand_repair_new_objects_and_revoke,
        future_grants_are_read_from_their_own_listing_and_revoked,
        quoted_mixed_case_names_are_sent_with_their_quotes,
        database_roles_and_users_are_grantees,
        shared_privileges_across_two_resources,
        authoritative_prunes_only_the_resource_securable,
        observe_writes_nothing_and_reports_drift,
        drift_is_repaired_at_the_next_sync,
        accepted_requests_are_followed_to_their_result,
        unknown_role_and_securable_are_reported,
        rate_limits_and_server_errors_converge,
        steady_state_is_one_listing_per_grantee_and_no_writes,
        orphan_leaves_grants_in_place,
    ];
    role_grants_key_pair => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::KeyPair),
    role_grants_oauth => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::OAuth),
    role_grants_pat => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::Pat),
    legacy_encrypted_key_pair => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::EncryptedKeyPair),
    legacy_oauth => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::OAuth),
    legacy_pat => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::Pat),
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("SCHEMA SALES.PUBLIC", "CREATE TABLE"),
            ("SCHEMA SALES.PUBLIC", "USAGE")
        ])
    );
    h.edit_of::<SnowflakeGrant>("public", |g| {
        g.spec.privileges = vec!["CREATE TABLE".into()]
    });
    settle(&h, "public").await.unwrap();
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "CREATE TABLE")])
    );

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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("WAREHOUSE COMPUTE_WH", "OPERATE WITH GRANT OPTION"),
            ("WAREHOUSE COMPUTE_WH", "USAGE WITH GRANT OPTION")
        ])
    );
    let rows = h.status_of::<SnowflakeGrant>("wh").grants;
    assert!(
        rows.iter()
            .any(|r| r.permission == "USAGE WITH GRANT OPTION")
    );

    h.snowflake.clear_calls();
    h.edit_of::<SnowflakeGrant>("wh", |g| g.spec.with_grant_option = false);
    settle(&h, "wh").await.unwrap();
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("WAREHOUSE COMPUTE_WH", "OPERATE"),
            ("WAREHOUSE COMPUTE_WH", "USAGE")
        ])
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
    h.put_settled(&snowflake_grant(
        "tables",
        role("ANALYST"),
        target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
        &["SELECT"],
        false,
    ))
    .await;
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
            ("TABLE SALES.PUBLIC.ORDERS", "SELECT")
        ])
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
    h.put(&snowflake_grant(
        "funcs",
        role("ANALYST"),
        target_all("FUNCTIONS", Scope::Schema, "SALES.PUBLIC"),
        &["USAGE"],
        false,
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
    h.put_settled(&snowflake_grant(
        "future",
        role("ANALYST"),
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    ))
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("TABLE SALES.PUBLIC.LATER", "SELECT")])
    );

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
    h.put(&snowflake_grant(
        "readers",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.put(&snowflake_grant(
        "monitors",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
        false,
    ));
    settle(&h, "readers").await.unwrap();
    settle(&h, "monitors").await.unwrap();
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("SCHEMA SALES.PUBLIC", "MONITOR"),
            ("SCHEMA SALES.PUBLIC", "USAGE")
        ])
    );
    h.delete_of::<SnowflakeGrant>("monitors");
    settle(&h, "monitors").await.unwrap();
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")]),
        "only what no other resource declares is revoked"
    );
    settle(&h, "readers").await.unwrap();
    assert_eq!(ready_of(&h, "readers").1, "Synced");
}

async fn authoritative_prunes_only_the_resource_securable(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    h.snowflake.grant_direct(
        "ROLE",
        "ANALYST",
        "SCHEMA",
        "SALES.PUBLIC",
        "MONITOR",
        false,
    );
    h.snowflake
        .grant_direct("ROLE", "ANALYST", "DATABASE", "SALES", "USAGE", false);
    h.put_settled(&snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ))
    .await;
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST").len(),
        3,
        "Additive keeps them"
    );

    h.edit_of::<SnowflakeGrant>("public", |g| g.spec.policy.mode = Mode::Authoritative);
    settle(&h, "public").await.unwrap();
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("DATABASE SALES", "USAGE"),
            ("SCHEMA SALES.PUBLIC", "USAGE")
        ]),
        "the undeclared privilege on the resource's securable goes; other securables stay"
    );
    assert_eq!(ready_of(&h, "public").1, "Synced");
}

async fn observe_writes_nothing_and_reports_drift(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.snowflake
        .grant_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE", false);
    let mut grant = snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
        false,
    );
    grant.spec.policy.management_policy = ManagementPolicy::Observe;
    h.put(&grant);
    settle(&h, "public").await.unwrap();
    assert_eq!(h.snowflake.writes(), 0);
    let (status, reason, message) = ready_of(&h, "public");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DriftDetected")
    );
    assert!(message.contains("1 of 2 grants differ"), "{message}");
    let rows = h.status_of::<SnowflakeGrant>("public").grants;
    assert!(rows.iter().any(|r| r.state == GrantState::Drifted));
}

async fn drift_is_repaired_at_the_next_sync(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put_settled(&snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
        false,
    ))
    .await;
    h.snowflake
        .revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "MONITOR");
    h.snowflake.clear_calls();
    h.reconcile_of::<SnowflakeGrant>("public").await.unwrap();
    assert!(h.snowflake.calls().is_empty(), "not due yet");
    h.advance(Duration::from_secs(61));
    settle(&h, "public").await.unwrap();
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 2);
    assert_eq!(h.status_of::<SnowflakeGrant>("public").drift_corrections, 1);
}

async fn accepted_requests_are_followed_to_their_result(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    // The listing, the grant and the listing after it each answer 202 first.
    h.snowflake.answer_async(3, 2);
    h.put_settled(&snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ))
    .await;
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
    assert_eq!(ready_of(&h, "public").1, "Synced");
    assert_eq!(
        h.snowflake.result_polls(),
        3 * 3,
        "each result polled until done (two 202s, then 200)"
    );
    assert_eq!(h.snowflake.count("GET", "/api/v2/results/"), 9);
}

async fn unknown_role_and_securable_are_reported(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put(&snowflake_grant(
        "nobody",
        role("NOBODY"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    assert_eq!(settle(&h, "nobody").await.unwrap_err(), "GranteeNotFound");
    let (_, reason, message) = ready_of(&h, "nobody");
    assert_eq!(reason, "GranteeNotFound");
    assert!(message.contains("ROLE NOBODY"), "{message}");

    h.put(&snowflake_grant(
        "nope",
        role("ANALYST"),
        target_securable("TABLE", "SALES.PUBLIC.NOPE"),
        &["SELECT"],
        false,
    ));
    let _ = settle(&h, "nope").await;
    let (_, reason, message) = ready_of(&h, "nope");
    assert_eq!(reason, "TargetNotFound");
    assert!(message.contains("TABLE SALES.PUBLIC.NOPE"), "{message}");
}

async fn rate_limits_and_server_errors_converge(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    let write_method = match api {
        SnowflakeGrantsApi::RoleGrants => "POST",
        SnowflakeGrantsApi::Legacy => "POST",
    };
    h.snowflake.inject(Fault {
        method: Some(write_method.into()),
        path_prefix: "/api/v2/".into(),
        times: 1,
        kind: FaultKind::RateLimited {
            retry_after_secs: 1,
        },
    });
    h.snowflake.inject(Fault {
        method: Some(write_method.into()),
        path_prefix: "/api/v2/".into(),
        times: 1,
        kind: FaultKind::Status(503),
    });
    h.snowflake.inject(Fault {
        method: Some("GET".into()),
        path_prefix: listing_path(api, "ANALYST"),
        times: 2,
        kind: FaultKind::Status(504),
    });
    h.put_settled(&snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ))
    .await;
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
    let posts: Vec<_> = h
        .snowflake
        .calls()
        .into_iter()
        .filter(|call| call.method == write_method)
        .collect();
    assert_eq!(posts[0].status, 429);
    assert!(posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(950));
}

async fn steady_state_is_one_listing_per_grantee_and_no_writes(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    let grants = [
        (
            "a",
            "ANALYST",
            target_securable("SCHEMA", "SALES.PUBLIC"),
            "USAGE",
        ),
        (
            "b",
            "ANALYST",
            target_securable("DATABASE", "SALES"),
            "USAGE",
        ),
        (
            "c",
            "ANALYST",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "SELECT",
        ),
        (
            "d",
            "LOADER",
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "INSERT",
        ),
    ];
    for (name, grantee, target, privilege) in grants.clone() {
        h.put(&snowflake_grant(
            name,
            role(grantee),
            target,
            &[privilege],
            false,
        ));
    }
    for (name, ..) in &grants {
        settle(&h, name).await.unwrap();
    }
    h.snowflake.clear_calls();
    h.advance(Duration::from_secs(61));
    for (name, ..) in &grants {
        settle(&h, name).await.unwrap();
    }
    let calls: Vec<String> = h
        .snowflake
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        sorted(calls),
        vec![
            format!("GET {}", listing_path(api, "ANALYST")),
            format!("GET {}", listing_path(api, "LOADER")),
        ],
        "one listing per grantee, no writes"
    );
}

async fn orphan_leaves_grants_in_place(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    let mut grant = snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    );
    grant.spec.policy.deletion_policy = DeletionPolicy::Orphan;
    h.put(&grant);
    settle(&h, "public").await.unwrap();
    let writes = h.snowflake.writes();
    h.delete_of::<SnowflakeGrant>("public");
    settle(&h, "public").await.unwrap();
    assert!(h.get_of::<SnowflakeGrant>("public").is_none());
    assert_eq!(h.snowflake.live("ROLE", "ANALYST").len(), 1);
    assert_eq!(h.snowflake.writes(), writes, "no write");
}

// ----- authentication -----

#[tokio::test]
async fn the_provider_is_ready_after_a_real_call_and_says_who_it_is() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::KeyPair).await;
    let condition = h.provider_ready(NS, "snowflake");
    assert_eq!(condition.status, "True");
    assert!(
        condition
            .message
            .contains("MYORG-MYACCOUNT.GRANT_OPERATOR.SHA256:"),
        "{}",
        condition.message
    );
    let h = Harness::new().await;
    h.snowflake_secret(NS, "login", SnowflakeLogin::Pat);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake",
        "login",
        SnowflakeLogin::Pat,
        SnowflakeGrantsApi::Legacy,
    ));
    h.reconcile_provider(NS, "snowflake").await.unwrap();
    let calls = h.snowflake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/v2/roles");
    assert_eq!(calls[0].query, "showLimit=1");
    assert_eq!(
        calls[0].header("x-snowflake-authorization-token-type"),
        Some("PROGRAMMATIC_ACCESS_TOKEN")
    );
}

#[tokio::test]
async fn an_expired_jwt_is_unauthorized() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::KeyPair).await;
    // The emulator's clock runs two hours ahead: the cached JWT has expired for it.
    h.snowflake.shift_clock(2 * 3600);
    h.put(&snowflake_grant(
        "public",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    assert_eq!(settle(&h, "public").await.unwrap_err(), "Unauthorized");
    let (_, _, message) = ready_of(&h, "public");
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_unauthorized() {
    let h = Harness::new().await;
    h.secret(NS, "login", &[("private-key", SNOWFLAKE_OTHER_KEY)]);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake",
        "login",
        SnowflakeLogin::KeyPair,
        SnowflakeGrantsApi::RoleGrants,
    ));
    let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert!(
        h.provider_ready(NS, "snowflake")
            .message
            .contains("fingerprint"),
        "{}",
        h.provider_ready(NS, "snowflake").message
    );
}

#[tokio::test]
async fn unusable_keys_are_credentials_problems_explained_without_the_key() {
    for (name, data, hint) in [
        (
            "pkcs1",
            vec![("private-key", SNOWFLAKE_PKCS1_KEY)],
            "openssl pkcs8 -topk8",
        ),
        (
            "wrong-passphrase",
            vec![
                ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
                ("passphrase", "not-the-passphrase"),
            ],
            "wrong passphrase",
        ),
        ("garbage", vec![("private-key", "hello")], "not a PEM text"),
    ] {
        let h = Harness::new().await;
        h.secret(NS, "login", &data);
        let login = if data.len() == 2 {
            SnowflakeLogin::EncryptedKeyPair
        } else {
            SnowflakeLogin::KeyPair
        };
        h.put(&h.snowflake_provider(
            NS,
            "snowflake",
            "login",
            login,
            SnowflakeGrantsApi::RoleGrants,
        ));
        let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
        assert_eq!(error.reason(), "CredentialsMissing", "{name}");
        let message = h.provider_ready(NS, "snowflake").message;
        assert!(message.contains(hint), "{name}: {message}");
        for line in SNOWFLAKE_KEY
            .lines()
            .chain(SNOWFLAKE_PKCS1_KEY.lines())
            .skip(1)
            .take(3)
        {
            assert!(
                !message.contains(line),
                "{name}: key material in the message"
            );
        }
        assert!(h.snowflake.calls().is_empty(), "{name}: nothing sent");
    }
}

#[tokio::test]
async fn an_unknown_token_is_unauthorized() {
    let h = Harness::new().await;
    h.secret(NS, "login", &[("token", "not-a-token")]);
    h.put(&h.snowflake_provider(
        NS,
        "snowflake",
        "login",
        SnowflakeLogin::OAuth,
        SnowflakeGrantsApi::RoleGrants,
    ));
    let error = h.reconcile_provider(NS, "snowflake").await.unwrap_err();
    assert_eq!(error.reason(), "Unauthorized");
    assert!(
        !h.provider_ready(NS, "snowflake")
            .message
            .contains("not-a-token")
    );
}

#[tokio::test]
async fn a_grantee_spelled_two_ways_is_one_unit() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::OAuth).await;
    h.put(&snowflake_grant(
        "upper",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
}

#[tokio::test]
async fn ownership_is_refused_and_never_revoked() {
    let h = ready(SnowflakeGrantsApi::RoleGrants, SnowflakeLogin::Pat).await;
    h.put(&snowflake_grant(
        "own",
        role("ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["OWNERSHIP", "USAGE"],
        false,
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
        let mut grant = snowflake_grant(
            "tables",
            role("ANALYST"),
            target_all("TABLES", Scope::Database, "SALES"),
            &["SELECT"],
            false,
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
        assert_eq!(
            h.snowflake.live("ROLE", "LOADER"),
            held(&[
                (r#"SCHEMA SALES."Mixed Case""#, "USAGE"),
                ("SCHEMA SALES.PUBLIC", "USAGE"),
                ("VIEW SALES.PUBLIC.ORDERS_V", "SELECT WITH GRANT OPTION"),
            ]),
            "{api:?}"
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

/// The body of every write the emulator recorded since the last `clear_calls`.
fn write_bodies(h: &Harness) -> Vec<(String, serde_json::Value)> {
    h.snowflake
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET")
        .map(|call| {
            (
                format!("{} {}", call.method, call.path),
                call.body.unwrap_or_default(),
            )
        })
        .collect()
}

/// `ALL` is granted in one call (RoleGrants: `containing_scope`, as the
/// definition and snowflake.core do), and its revoke never takes what another
/// resource keeps on an object of the scope: a table declared one by one, one
/// an Observe resource declares.
#[tokio::test]
async fn revoking_all_spares_what_other_resources_keep() {
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        h.snowflake.add_table("SALES.PUBLIC.RETURNS");
        h.put_settled(&snowflake_grant(
            "x-all",
            role("ANALYST"),
            target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
            false,
        ))
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

        h.put(&snowflake_grant(
            "y-orders",
            role("ANALYST"),
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT"],
            false,
        ));
        let mut observed = snowflake_grant(
            "w-customers",
            role("ANALYST"),
            target_securable("TABLE", "SALES.PUBLIC.CUSTOMERS"),
            &["SELECT"],
            false,
        );
        observed.spec.policy.management_policy = ManagementPolicy::Observe;
        h.put(&observed);
        settle(&h, "y-orders").await.unwrap();
        settle(&h, "w-customers").await.unwrap();

        h.snowflake.clear_calls();
        h.delete_of::<SnowflakeGrant>("x-all");
        settle(&h, "x-all").await.unwrap();
        assert!(
            h.get_of::<SnowflakeGrant>("x-all").is_none(),
            "{api:?}: released"
        );
        assert_eq!(
            h.snowflake.live("ROLE", "ANALYST"),
            held(&[
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ]),
            "{api:?}: only the table nobody else keeps loses SELECT"
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
        assert_eq!(
            h.snowflake.live("ROLE", "LOADER"),
            held(&[
                (r#"TABLE SALES."Mixed Case"."Line Items""#, "SELECT"),
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT WITH GRANT OPTION"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT WITH GRANT OPTION"),
            ]),
            "{api:?}"
        );

        h.snowflake.clear_calls();
        h.delete_of::<SnowflakeGrant>("schema");
        settle(&h, "schema").await.unwrap();
        assert!(
            h.get_of::<SnowflakeGrant>("schema").is_none(),
            "{api:?}: released"
        );
        assert_eq!(
            h.snowflake.live("ROLE", "LOADER"),
            held(&[
                (r#"TABLE SALES."Mixed Case"."Line Items""#, "SELECT"),
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ]),
            "{api:?}: the database-wide SELECT stays on every table"
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
        h.put_settled(&snowflake_grant(
            "orders",
            role("ANALYST"),
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT", "INSERT"],
            false,
        ))
        .await;
        h.put_settled(&snowflake_grant(
            "all",
            role("ANALYST"),
            target_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
            &["SELECT"],
            false,
        ))
        .await;
        h.snowflake.clear_calls();
        h.delete_of::<SnowflakeGrant>("orders");
        settle(&h, "orders").await.unwrap();
        assert!(
            h.get_of::<SnowflakeGrant>("orders").is_none(),
            "{api:?}: released"
        );
        assert_eq!(
            h.snowflake.live("ROLE", "ANALYST"),
            held(&[
                ("TABLE SALES.PUBLIC.CUSTOMERS", "SELECT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ]),
            "{api:?}: INSERT goes, SELECT stays for the ALL resource"
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[
            ("DATABASE ROLE SALES.READER", "USAGE"),
            ("ROLE LOADER", "USAGE")
        ])
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
    h.delete_of::<SnowflakeGrant>("jane-analyst");
    settle(&h, "jane-analyst").await.unwrap();
    assert!(h.get_of::<SnowflakeGrant>("jane-analyst").is_none());
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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("ROLE LOADER", "USAGE")])
    );

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
    assert_eq!(
        h.snowflake.live("ROLE", "ANALYST"),
        held(&[("ROLE LOADER", "USAGE")])
    );
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

/// A grantee holding more grants than Snowflake lists in one answer (showLimit
/// caps the rows at 10,000; `Link` pages cut that answer, never past it): the
/// listing may be incomplete, so the sync fails before any write, with a
/// message and the metric, and a deleted resource keeps its finalizer.
#[tokio::test]
async fn a_capped_grants_listing_fails_the_sync_before_any_write() {
    use grant_operator::vendor_api::snowflake::client::SHOW_LIMIT;
    for api in [SnowflakeGrantsApi::RoleGrants, SnowflakeGrantsApi::Legacy] {
        let h = ready(api, SnowflakeLogin::Pat).await;
        h.snowflake.grant_direct(
            "ROLE",
            "ANALYST",
            "SCHEMA",
            "SALES.PUBLIC",
            "MONITOR",
            false,
        );
        let mut grant = snowflake_grant(
            "public",
            role("ANALYST"),
            target_securable("SCHEMA", "SALES.PUBLIC"),
            &["USAGE"],
            false,
        );
        grant.spec.policy.mode = Mode::Authoritative;
        h.put(&grant);
        settle(&h, "public").await.unwrap();
        assert_eq!(
            h.snowflake.live("ROLE", "ANALYST"),
            held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
        );

        // Now the role holds more grants than one answer lists, and someone
        // changes the declared securable behind the operator's back.
        h.snowflake.add_filler_grants("ROLE", "ANALYST", SHOW_LIMIT);
        h.snowflake
            .revoke_direct("ROLE", "ANALYST", "SCHEMA", "SALES.PUBLIC", "USAGE");
        h.snowflake.grant_direct(
            "ROLE",
            "ANALYST",
            "SCHEMA",
            "SALES.PUBLIC",
            "MONITOR",
            false,
        );
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
    h.put(&snowflake_grant(
        "future",
        role("LOADER"),
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    ));
    assert_eq!(settle(&h, "future").await.unwrap_err(), "VendorUnavailable");
    let (_, _, message) = ready_of(&h, "future");
    assert!(
        message.contains(
            "ROLE LOADER holds more future grants than Snowflake lists in one answer (10,000"
        ),
        "{message}"
    );

    h.snowflake.add_tables("SALES.BIG", SHOW_LIMIT);
    h.put(&snowflake_grant(
        "big",
        role("ANALYST"),
        target_all("TABLES", Scope::Schema, "SALES.BIG"),
        &["SELECT"],
        false,
    ));
    assert_eq!(settle(&h, "big").await.unwrap_err(), "VendorUnavailable");
    let (_, _, message) = ready_of(&h, "big");
    assert!(
        message.contains("SCHEMA SALES.BIG holds more tables than Snowflake lists in one answer"),
        "{message}"
    );
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
        h.put_settled(&snowflake_grant(
            "orders",
            role("ANALYST"),
            target_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            &["SELECT"],
            false,
        ))
        .await;
        h.snowflake.add_raw_row(
            "ROLE",
            "ANALYST",
            false,
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"], "grant_option": false}),
        );
        h.snowflake.grant_direct(
            "ROLE",
            "ANALYST",
            "TABLE",
            "SALES.PUBLIC.ORDERS",
            "INSERT",
            false,
        );
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
        assert_eq!(
            h.snowflake.live("ROLE", "ANALYST"),
            held(&[
                ("TABLE SALES.PUBLIC.ORDERS", "INSERT"),
                ("TABLE SALES.PUBLIC.ORDERS", "SELECT"),
            ]),
            "{api:?}"
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
    h.put(&snowflake_grant(
        "future",
        role("LOADER"),
        target_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    ));
    assert_eq!(settle(&h, "future").await.unwrap_err(), "VendorUnavailable");
    let (_, _, message) = ready_of(&h, "future");
    assert!(
        message.contains("future grants listing of ROLE LOADER has an entry"),
        "{message}"
    );
    assert!(
        message.contains("no containing_scope or securable"),
        "{message}"
    );
    assert_eq!(h.snowflake.writes(), 0);
}
