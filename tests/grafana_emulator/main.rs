//! Self-tests of the Grafana emulator over real HTTP: each rule of the contract
//! the Grafana client is written against, and that the emulator is strict about
//! it (credentials, org scoping, malformed bodies, duplicates, inherited
//! entries, switched-off APIs, injected faults).

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use support::emulator::{Reply, assert_answer, assert_ok, send};
use support::fault;
use support::grafana::*;

const TOKEN: &str = "glsa_main_org_token";

async fn emulator() -> GrafanaEmulator {
    grant_operator::install_crypto_provider();
    let grafana = GrafanaEmulator::start().await;
    grafana.add_token(1, TOKEN);
    grafana
}

/// An emulator with data source `prom` (its legacy permissions switched on),
/// user `jane` and team `Finance` in the Main Org., and the legacy permissions
/// path of `prom`.
struct Legacy {
    grafana: GrafanaEmulator,
    ds: i64,
    jane: i64,
    finance: i64,
    path: String,
}

async fn legacy() -> Legacy {
    let grafana = emulator().await;
    let ds = grafana.add_datasource(1, "prom", "Prometheus");
    let jane = grafana.add_user(1, "jane", "jane@example.com");
    let finance = grafana.add_team(1, "Finance");
    grafana.set_permissions_enabled("prom", true);
    let path = format!("/api/datasources/{ds}/permissions");
    Legacy {
        grafana,
        ds,
        jane,
        finance,
        path,
    }
}

/// A request with the Main Org. token.
fn request(grafana: &GrafanaEmulator, method: &str, path: &str) -> RequestBuilder {
    grafana.anonymous(method, path).bearer_auth(TOKEN)
}

async fn get(grafana: &GrafanaEmulator, path: &str) -> Reply {
    send(request(grafana, "GET", path)).await
}

async fn post(grafana: &GrafanaEmulator, path: &str, body: Value) -> Reply {
    send(request(grafana, "POST", path).json(&body)).await
}

async fn delete(grafana: &GrafanaEmulator, path: &str) -> Reply {
    send(request(grafana, "DELETE", path)).await
}

/// A raw body sent as `application/json`.
async fn post_raw(grafana: &GrafanaEmulator, path: &str, body: &'static str) -> Reply {
    send(
        request(grafana, "POST", path)
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[track_caller]
fn assert_error(reply: &Reply, status: u16, message: &str) {
    assert_answer(reply, status, &json!({"message": message}));
}

/// `(grantee, level, managed, inherited)` of every entry, in order.
fn store(grafana: &GrafanaEmulator, uid: &str) -> Vec<(Grantee, Level, bool, bool)> {
    grafana
        .permissions(uid)
        .into_iter()
        .map(|p| (p.grantee, p.permission, p.managed, p.inherited))
        .collect()
}

fn admin_inherited() -> (Grantee, Level, bool, bool) {
    (Grantee::BuiltIn("Admin".into()), Level::Admin, false, true)
}

mod access_control;
mod auth;
mod both_apis;
mod legacy;
mod lookups;
mod robustness;
