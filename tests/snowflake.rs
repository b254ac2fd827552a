//! SnowflakeGrant end to end over real HTTP: the real reconcilers against the
//! strict Snowflake emulator, with the Kubernetes side on an in-memory API.
//!
//! Every scenario runs for both grants APIs (`RoleGrants`, `Legacy`) and the
//! three ways to log in (key-pair JWT, OAuth token, programmatic access token):
//! see `every_api_and_login!`.

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
        SnowflakeGrantsApi::Legacy => format!("/api/v2/grants/ROLE/{encoded_role}"),
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

macro_rules! every_api_and_login {
    ($($name:ident),* $(,)?) => {
        mod role_grants_key_pair {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::KeyPair).await
            })*
        }
        mod role_grants_oauth {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::OAuth).await
            })*
        }
        mod role_grants_pat {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::Pat).await
            })*
        }
        mod legacy_encrypted_key_pair {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::EncryptedKeyPair).await
            })*
        }
        mod legacy_oauth {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::OAuth).await
            })*
        }
        mod legacy_pat {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::Pat).await
            })*
        }
    };
}

every_api_and_login!(
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
);

async fn grant_add_and_remove_privileges_then_delete(
    api: SnowflakeGrantsApi,
    login: SnowflakeLogin,
) {
    let h = ready(api, login).await;
    h.put(&snowflake_grant(
        "public",
        role("analyst"),
        on_securable("SCHEMA", "sales.public"),
        &["USAGE"],
        false,
    ));
    settle(&h, "public").await.unwrap();
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
    h.put(&snowflake_grant(
        "wh",
        role("ANALYST"),
        on_securable("WAREHOUSE", "compute_wh"),
        &["USAGE", "OPERATE"],
        true,
    ));
    settle(&h, "wh").await.unwrap();
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
        SnowflakeGrantsApi::RoleGrants => vec![
            "POST /api/v2/roles/ANALYST/grants:revoke?grantOptionOnly=true".to_string(),
        ],
        SnowflakeGrantsApi::Legacy => vec![
            "DELETE /api/v2/grants/ROLE/ANALYST/WAREHOUSE/COMPUTE_WH/privileges/OPERATE/grant-option"
                .to_string(),
            "DELETE /api/v2/grants/ROLE/ANALYST/WAREHOUSE/COMPUTE_WH/privileges/USAGE/grant-option"
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
    h.put(&snowflake_grant(
        "tables",
        role("ANALYST"),
        on_all("TABLES", Scope::Schema, "SALES.PUBLIC"),
        &["SELECT"],
        false,
    ));
    settle(&h, "tables").await.unwrap();
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
                == "DELETE /api/v2/grants/ROLE/ANALYST/all/TABLES/SCHEMA/SALES.PUBLIC/privileges/SELECT"),
            "{:?}",
            writes(&h)
        );
    }

    // `all` on a type the operator cannot read back is refused clearly.
    h.put(&snowflake_grant(
        "funcs",
        role("ANALYST"),
        on_all("FUNCTIONS", Scope::Schema, "SALES.PUBLIC"),
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
    h.put(&snowflake_grant(
        "future",
        role("ANALYST"),
        on_future("TABLES", Scope::Database, "SALES"),
        &["SELECT"],
        false,
    ));
    settle(&h, "future").await.unwrap();
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
    h.put(&snowflake_grant(
        "mixed",
        role(r#""My Role""#),
        on_securable("TABLE", r#"sales."Mixed Case"."Line Items""#),
        &["SELECT"],
        false,
    ));
    settle(&h, "mixed").await.unwrap();
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.put(&snowflake_grant(
        "jane",
        (GT::User, "jane"),
        on_securable("VIEW", "SALES.PUBLIC.ORDERS_V"),
        &["SELECT"],
        false,
    ));
    settle(&h, "reader").await.unwrap();
    settle(&h, "jane").await.unwrap();
    assert_eq!(
        h.snowflake.live("DATABASE_ROLE", "SALES.READER"),
        held(&[("SCHEMA SALES.PUBLIC", "USAGE")])
    );
    assert_eq!(
        h.snowflake.live("USER", "JANE"),
        held(&[("VIEW SALES.PUBLIC.ORDERS_V", "SELECT")])
    );
    if api == SnowflakeGrantsApi::RoleGrants {
        assert!(
            h.snowflake.count(
                "POST",
                "/api/v2/databases/SALES/database-roles/READER/grants"
            ) >= 1
        );
    }
}

async fn shared_privileges_across_two_resources(api: SnowflakeGrantsApi, login: SnowflakeLogin) {
    let h = ready(api, login).await;
    h.put(&snowflake_grant(
        "readers",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.put(&snowflake_grant(
        "monitors",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
    h.put(&snowflake_grant(
        "public",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    settle(&h, "public").await.unwrap();
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
    h.put(&snowflake_grant(
        "public",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE", "MONITOR"],
        false,
    ));
    settle(&h, "public").await.unwrap();
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
    h.put(&snowflake_grant(
        "public",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    settle(&h, "public").await.unwrap();
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
        on_securable("TABLE", "SALES.PUBLIC.NOPE"),
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
    h.put(&snowflake_grant(
        "public",
        role("ANALYST"),
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    settle(&h, "public").await.unwrap();
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
            on_securable("SCHEMA", "SALES.PUBLIC"),
            "USAGE",
        ),
        ("b", "ANALYST", on_securable("DATABASE", "SALES"), "USAGE"),
        (
            "c",
            "ANALYST",
            on_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "SELECT",
        ),
        (
            "d",
            "LOADER",
            on_securable("TABLE", "SALES.PUBLIC.ORDERS"),
            "INSERT",
        ),
    ];
    for (name, grantee, on, privilege) in grants.clone() {
        h.put(&snowflake_grant(
            name,
            role(grantee),
            on,
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.put(&snowflake_grant(
        "quoted",
        role(r#""ANALYST""#),
        on_securable("schema", "sales.public"),
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
        on_securable("SCHEMA", "SALES.PUBLIC"),
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
    use grant_operator::vendor::Vendor;
    use grant_operator::vendor::http::{HttpClient, HttpConfig};
    use grant_operator::vendor::snowflake::SnowflakeClient;
    use grant_operator::vendor::snowflake::auth::Auth;
    use grant_operator::vendor::snowflake::client::{PollPolicy, SnowflakeApi};
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
            on_all("TABLES", Scope::Database, "SALES"),
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
            on_all("SCHEMAS", Scope::Database, "SALES"),
            &["USAGE"],
            false,
        ));
        h.put(&snowflake_grant(
            "views",
            role("LOADER"),
            on_all("VIEWS", Scope::Schema, "SALES.PUBLIC"),
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
