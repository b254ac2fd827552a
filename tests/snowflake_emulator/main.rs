//! Self-tests of the Snowflake emulator over real HTTP: each rule of the
//! contract the Snowflake client is written against, and that the emulator is
//! strict about it (JWT signature, claims and lifetime; token types; identifier
//! rules; both grant APIs; bulk all and future grants; the grant option; 202
//! result handles; error bodies; injected faults).

#[path = "../support/mod.rs"]
mod support;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use support::emulator::{Reply, assert_ok, send};
use support::snowflake::*;
use support::{
    SNOWFLAKE_ACCOUNT, SNOWFLAKE_KEY, SNOWFLAKE_OAUTH, SNOWFLAKE_OTHER_KEY, SNOWFLAKE_PAT,
    SNOWFLAKE_PUBLIC_KEY, SNOWFLAKE_USER, fault, seed_snowflake,
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

mod answers;
mod auth;
mod grants;
mod scopes;
