//! Self-tests of the Dremio emulator over real HTTP: each rule of the contract
//! the Dremio client is written against, on both deployments (Software under
//! /api/v3, Cloud under /v0), and that the emulator is strict about it
//! (credentials, path escaping, every malformed PUT, Cloud's by-name look-ups,
//! another writer between a read and a write, injected faults).

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use support::dremio::*;
use support::emulator::{Reply, assert_answer, assert_ok, send};
use support::fault;

const TOKEN: &str = "dremio-pat-main";
const PROJECT: &str = "6a0f5b8e-2f7d-4a57-9d1c-3b2e4c5d6e7f";
const CLOUD: &str = "/v0/projects/6a0f5b8e-2f7d-4a57-9d1c-3b2e4c5d6e7f";
const SOFTWARE: &str = "/api/v3";
const TABLE_PRIVILEGES: [&str; 5] = ["ALTER", "INSERT", "MANAGE_GRANTS", "SELECT", "UPDATE"];

async fn emulator() -> DremioEmulator {
    grant_operator::install_crypto_provider();
    let dremio = DremioEmulator::start().await;
    dremio.add_token(TOKEN);
    dremio.add_project(PROJECT);
    dremio
}

/// An emulator with a space, a table in it, a user and a role.
struct World {
    dremio: DremioEmulator,
    space: String,
    table: String,
    jean: String,
    analysts: String,
}

async fn world() -> World {
    let dremio = emulator().await;
    let space = dremio.add_object(&["Sales"], &["ALTER", "SELECT", "MANAGE_GRANTS"]);
    let table = dremio.add_object(&["Sales", "eu", "orders"], &TABLE_PRIVILEGES);
    let jean = dremio.add_user("jeansmith", "jean_smith@example.com");
    let analysts = dremio.add_role("analysts");
    World {
        dremio,
        space,
        table,
        jean,
        analysts,
    }
}

/// A request with the main token.
fn request(dremio: &DremioEmulator, method: &str, path: &str) -> RequestBuilder {
    dremio.anonymous(method, path).bearer_auth(TOKEN)
}

async fn get(dremio: &DremioEmulator, path: &str) -> Reply {
    send(request(dremio, "GET", path)).await
}

async fn put(dremio: &DremioEmulator, path: &str, body: Value) -> Reply {
    send(request(dremio, "PUT", path).json(&body)).await
}

/// A raw body sent as `application/json`.
async fn put_raw(dremio: &DremioEmulator, path: &str, body: &str) -> Reply {
    send(
        request(dremio, "PUT", path)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

#[track_caller]
fn assert_no_content(reply: &Reply) {
    assert_eq!(reply.status, 204, "{reply:?}");
    assert_eq!(reply.body, Value::Null, "{reply:?}");
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_answer(
        reply,
        status,
        &json!({"errorMessage": message, "moreInfo": ""}),
    );
}

/// An entry of a PUT body.
fn entry(grantee_type: &str, id: &str, privileges: &[&str]) -> Value {
    json!({"privileges": privileges, "granteeType": grantee_type, "id": id})
}

fn record(grantee_type: GranteeType, id: &str, privileges: &[&str]) -> GrantRecord {
    GrantRecord {
        grantee_type,
        id: id.to_string(),
        privileges: privileges.iter().map(|p| p.to_string()).collect(),
    }
}

fn grants_path(base: &str, object: &str) -> String {
    format!("{base}/catalog/{object}/grants")
}

mod auth;
mod catalog;
mod grants;
mod interference;
mod principals;
mod robustness;
