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
