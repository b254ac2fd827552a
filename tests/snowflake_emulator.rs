//! Self-tests of the Snowflake emulator over real HTTP: each rule of the
//! contract the Snowflake client is written against, and that the emulator is
//! strict about it (JWT signature, claims and lifetime; token types; identifier
//! rules; both grant APIs; bulk all and future grants; the grant option; 202
//! result handles; error bodies; injected faults).

mod support;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use support::emulator::{Reply, assert_ok, send};
use support::snowflake::*;
use support::{
    SNOWFLAKE_ACCOUNT, SNOWFLAKE_KEY, SNOWFLAKE_OAUTH, SNOWFLAKE_OTHER_KEY, SNOWFLAKE_PAT,
    SNOWFLAKE_PUBLIC_KEY, SNOWFLAKE_USER, seed_snowflake,
};

async fn emulator() -> SnowflakeEmulator {
    grant_operator::install_crypto_provider();
    let snowflake = SnowflakeEmulator::start().await;
    seed_snowflake(&snowflake);
    snowflake
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn subject() -> String {
    format!(
        "{}.{}",
        SNOWFLAKE_ACCOUNT.to_ascii_uppercase(),
        SNOWFLAKE_USER.to_ascii_uppercase()
    )
}

/// A JWT signed with `key`, with these claims.
fn jwt(key: &str, iss: &str, sub: &str, iat: i64, exp: i64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"iss": iss, "sub": sub, "iat": iat, "exp": exp}),
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn good_jwt() -> String {
    let fp = fingerprint(SNOWFLAKE_PUBLIC_KEY);
    jwt(
        SNOWFLAKE_KEY,
        &format!("{}.SHA256:{fp}", subject()),
        &subject(),
        now(),
        now() + 3600,
    )
}

fn with(request: RequestBuilder, token: &str, kind: &str) -> RequestBuilder {
    request
        .bearer_auth(token)
        .header("X-Snowflake-Authorization-Token-Type", kind)
        .header("Accept", "application/json")
}

fn pat(snowflake: &SnowflakeEmulator, method: &str, path: &str) -> RequestBuilder {
    with(
        snowflake.anonymous(method, path),
        SNOWFLAKE_PAT,
        "PROGRAMMATIC_ACCESS_TOKEN",
    )
}

async fn get(snowflake: &SnowflakeEmulator, path: &str) -> Reply {
    send(pat(snowflake, "GET", path)).await
}

async fn post(snowflake: &SnowflakeEmulator, path: &str, body: Value) -> Reply {
    send(pat(snowflake, "POST", path).json(&body)).await
}

async fn delete(snowflake: &SnowflakeEmulator, path: &str) -> Reply {
    send(pat(snowflake, "DELETE", path)).await
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, containing: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(containing), "{reply:?}");
    assert!(reply.body["code"].is_string(), "{reply:?}");
    assert!(reply.body["request_id"].is_string(), "{reply:?}");
}

#[test]
fn the_fingerprint_is_the_one_openssl_computes() {
    let expected = include_str!("fixtures/snowflake/test_key.fingerprint");
    assert_eq!(fingerprint(SNOWFLAKE_PUBLIC_KEY), expected.trim());
}

#[tokio::test]
async fn key_pair_jwts_are_verified_for_signature_claims_and_lifetime() {
    let snowflake = emulator().await;
    let fp = fingerprint(SNOWFLAKE_PUBLIC_KEY);
    let iss = format!("{}.SHA256:{fp}", subject());
    let call = |token: String| {
        let request = with(
            snowflake.anonymous("GET", "/api/v2/roles?showLimit=1"),
            &token,
            "KEYPAIR_JWT",
        );
        send(request)
    };
    let ok = call(good_jwt()).await;
    assert_ok(&ok);
    assert_eq!(ok.body.as_array().map(Vec::len), Some(1), "showLimit=1");

    let cases = [
        (
            "another key",
            jwt(SNOWFLAKE_OTHER_KEY, &iss, &subject(), now(), now() + 3600),
            "signature",
        ),
        (
            "wrong fingerprint",
            jwt(
                SNOWFLAKE_KEY,
                &format!("{}.SHA256:AAAA", subject()),
                &subject(),
                now(),
                now() + 3600,
            ),
            "fingerprint",
        ),
        (
            "expired",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now() - 7200, now() - 3600),
            "expired",
        ),
        (
            "issued in the future",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now() + 600, now() + 3000),
            "future",
        ),
        (
            "too long",
            jwt(SNOWFLAKE_KEY, &iss, &subject(), now(), now() + 7200),
            "one hour",
        ),
        (
            "other user",
            jwt(
                SNOWFLAKE_KEY,
                &format!("MYORG-MYACCOUNT.SOMEONE.SHA256:{fp}"),
                "MYORG-MYACCOUNT.SOMEONE",
                now(),
                now() + 3600,
            ),
            "unknown user",
        ),
        ("garbage", "not.a.jwt".to_string(), "invalid"),
    ];
    for (what, token, message) in cases {
        let reply = call(token).await;
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{what}: {reply:?}"
        );
        assert_eq!(reply.body["code"], "390144", "{what}");
    }

    // The emulator's clock can move: a valid JWT expires for it.
    snowflake.shift_clock(3 * 3600);
    assert_error(&call(good_jwt()).await, 401, "expired");
}

#[tokio::test]
async fn tokens_need_their_own_token_type() {
    let snowflake = emulator().await;
    let call = |token: &str, kind: &str| {
        send(with(
            snowflake.anonymous("GET", "/api/v2/roles"),
            token,
            kind,
        ))
    };
    assert_ok(&call(SNOWFLAKE_OAUTH, "OAUTH").await);
    assert_ok(&call(SNOWFLAKE_PAT, "PROGRAMMATIC_ACCESS_TOKEN").await);
    assert_error(
        &call(SNOWFLAKE_OAUTH, "PROGRAMMATIC_ACCESS_TOKEN").await,
        401,
        "type",
    );
    assert_error(&call(SNOWFLAKE_PAT, "KEYPAIR_JWT").await, 401, "invalid");
    assert_error(&call("unknown", "OAUTH").await, 401, "Invalid");
    let no_type = send(
        snowflake
            .anonymous("GET", "/api/v2/roles")
            .bearer_auth(SNOWFLAKE_OAUTH),
    )
    .await;
    assert_error(&no_type, 401, "Token-Type");
}

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
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants:revoke",
            body(false),
        )
        .await,
    );
    assert!(snowflake.live("ROLE", "ANALYST").is_empty());
    // Revoking what is absent succeeds.
    assert_ok(
        &post(
            &snowflake,
            "/api/v2/roles/ANALYST/grants:revoke",
            body(false),
        )
        .await,
    );

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

#[tokio::test]
async fn accepted_answers_complete_after_some_polls() {
    let snowflake = emulator().await;
    snowflake.answer_async(1, 2);
    let reply = get(&snowflake, "/api/v2/roles").await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["code"], "392604");
    let handle = reply.body["resultHandler"].as_str().unwrap().to_string();
    let result = format!("/api/v2/results/{handle}");
    assert_eq!(get(&snowflake, &result).await.status, 202);
    assert_eq!(get(&snowflake, &result).await.status, 202);
    let done = get(&snowflake, &result).await;
    assert_ok(&done);
    assert_eq!(done.body.as_array().map(Vec::len), Some(3), "the roles");
    assert_error(
        &get(&snowflake, &result).await,
        404,
        "unknown result handle",
    );
    assert_eq!(snowflake.result_polls(), 4);
}

#[tokio::test]
async fn injected_faults_answer_with_the_error_body() {
    let snowflake = emulator().await;
    snowflake.inject(Fault {
        method: Some("GET".into()),
        path_prefix: "/api/v2/roles".into(),
        times: 1,
        kind: FaultKind::Status(503),
    });
    let reply = get(&snowflake, "/api/v2/roles").await;
    assert_eq!(reply.status, 503);
    assert!(reply.body["request_id"].is_string());
    assert_ok(&get(&snowflake, "/api/v2/roles").await);
    let payload = good_jwt();
    // A JWT's parts are base64url JSON (sanity check of the helper).
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], subject());
}
