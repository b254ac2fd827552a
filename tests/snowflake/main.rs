//! SnowflakeGrant end to end over real HTTP: the real reconcilers against the
//! strict Snowflake emulator, with the Kubernetes side on an in-memory API.
//!
//! Every scenario runs for both grants APIs (`RoleGrants`, `Legacy`) and the
//! three ways to log in (key-pair JWT, OAuth token, programmatic access token):
//! see `each_api_and_login!` below.

#[path = "../support/mod.rs"]
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
    h.put_snowflake_provider("snowflake-login", login, api);
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

/// `name`: role `ANALYST` gets `privileges` on `target`, without the grant
/// option.
fn analyst_grant(
    name: &str,
    target: grant_operator::api::SnowflakeTarget,
    privileges: &[&str],
) -> SnowflakeGrant {
    snowflake_grant(name, role("ANALYST"), target, privileges, false)
}

/// Puts [`analyst_grant`] and waits until it has settled.
async fn put_analyst(
    h: &Harness,
    name: &str,
    target: grant_operator::api::SnowflakeTarget,
    privileges: &[&str],
) {
    h.put_settled(&analyst_grant(name, target, privileges))
        .await;
}

/// Puts `public` (role `ANALYST` gets `USAGE` on schema `SALES.PUBLIC`), the
/// resource most scenarios start from, and waits until it has settled.
async fn put_public_usage(h: &Harness) {
    put_analyst(
        h,
        "public",
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
    )
    .await;
}

/// Grants role `ANALYST` `privilege` on `securable` behind the operator's back
/// (without the grant option).
fn grant_analyst_directly(h: &Harness, type_: &str, securable: &str, privilege: &str) {
    h.snowflake
        .grant_direct("ROLE", "ANALYST", type_, securable, privilege, false);
}

/// Deletes `name`, waits for its sync and checks the resource is released.
async fn delete_released(h: &Harness, name: &str) {
    h.delete_of::<SnowflakeGrant>(name);
    settle(h, name).await.unwrap();
    assert!(
        h.get_of::<SnowflakeGrant>(name).is_none(),
        "{name}: released"
    );
}

/// The role `ANALYST` holds exactly `rows` (securable, privilege) live.
#[track_caller]
fn assert_analyst_holds(h: &Harness, rows: &[(&str, &str)]) {
    assert_eq!(h.snowflake.live("ROLE", "ANALYST"), held(rows));
}

/// The role `role` holds exactly `rows` (securable, privilege) live, or says
/// `why` not.
#[track_caller]
fn assert_holds(h: &Harness, role: &str, rows: &[(&str, &str)], why: &str) {
    assert_eq!(h.snowflake.live("ROLE", role), held(rows), "{why}");
}

/// The sync of `name` fails as `VendorUnavailable` with a message containing
/// `containing`; returns the message.
async fn assert_unavailable(h: &Harness, name: &str, containing: &str) -> String {
    assert_eq!(settle(h, name).await.unwrap_err(), "VendorUnavailable");
    let (_, _, message) = ready_of(h, name);
    assert!(message.contains(containing), "{message}");
    message
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

/// Runs each named scenario once per grants API and login, as
/// `<module>::<setup>::<name>` (see `support::each_setup!`).
macro_rules! each_api_and_login {
    ($($name:ident),* $(,)?) => {
        crate::support::each_setup!(
            [$($name),*];
        role_grants_key_pair => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::KeyPair),
        role_grants_oauth => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::OAuth),
        role_grants_pat => (super::SnowflakeGrantsApi::RoleGrants, super::SnowflakeLogin::Pat),
        legacy_encrypted_key_pair => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::EncryptedKeyPair),
        legacy_oauth => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::OAuth),
        legacy_pat => (super::SnowflakeGrantsApi::Legacy, super::SnowflakeLogin::Pat),
        );
    };
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

mod auth;
mod listings;
mod privileges;
mod requests;
mod revoke_all;
mod roles;
mod sync;
