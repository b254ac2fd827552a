//! `grant-operator access` as a user runs it: the real binary, on manifests in a
//! folder (or the in-memory API server served over HTTP, for `--from-cluster`),
//! against the strict emulators of every vendor. Checks every state for every
//! vendor, the scope flags, the three formats (the CSV and JSON parsed), the
//! exit codes, that each vendor object is read with one listing, and that no
//! Secret value is ever printed.

#[path = "../support/mod.rs"]
mod support;

use std::path::PathBuf;

use grant_operator::api::{
    GrafanaPermission, GrantProvider, SigmaPermission, SnowflakeGranteeType,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use support::binary::*;
use support::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "grant-operator-access-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn no_secret_in(run: &Run) {
    for secret in [CLIENT_SECRET, GRAFANA_TOKEN, DREMIO_TOKEN, SNOWFLAKE_PAT] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a Secret value was printed"
        );
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Far in the future: a resource that expires then is `expiring`.
const LATER: &str = "2099-01-01T00:00:00Z";
/// In the past: a resource that expired then declares nothing.
const EARLIER: &str = "2020-01-01T00:00:00Z";

/// The four providers, their Secrets (Grafana's token left out: it comes from
/// `--secret ...=env:`), as the objects of a manifest.
fn providers(h: &Harness) -> Vec<GrantProvider> {
    manifest_providers(h, "snowflake-pat", SnowflakeLogin::Pat)
}

fn secrets() -> Vec<Secret> {
    vec![
        secret(
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        ),
        secret("dremio-pat", &[("token", DREMIO_TOKEN)]),
        secret("snowflake-pat", &[("token", SNOWFLAKE_PAT)]),
    ]
}

const GRAFANA_SECRET: &str = "analytics/grafana-sa/token=env:GRAFANA_TOKEN_FROM_ENV";

/// `grant-operator access` over the manifests in `dir`, with the Grafana token's
/// Secret, and `args`.
async fn access(dir: &str, args: &[&str]) -> Run {
    cli(&[&["access", "-f", dir, "--secret", GRAFANA_SECRET], args].concat()).await
}

/// The rows of a JSON report.
fn rows_of(report: &Value) -> Vec<Value> {
    report["rows"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(
    rows: &'a [Value],
    vendor: &str,
    target: &str,
    grantee: &str,
    permission: &str,
) -> &'a Value {
    rows.iter()
        .find(|row| {
            row["vendor"] == vendor
                && row["target"]["id"] == target
                && (row["grantee"]["id"] == grantee
                    || (row["grantee"]["id"].is_null() && row["grantee"]["name"] == grantee))
                && row["permission"] == permission
        })
        .unwrap_or_else(|| {
            panic!(
                "no row {vendor} {target} {grantee} {permission} in {:#}",
                Value::from(rows.to_vec())
            )
        })
}

fn check(row: &Value, state: &str, resources: &[&str]) {
    assert_eq!(row["state"], state, "{row:#}");
    let expected: Vec<String> = resources.iter().map(|r| format!("{NS}/{r}")).collect();
    assert_eq!(row["resources"], json!(expected), "{row:#}");
}

mod cluster;
mod fixture;
mod formats;
mod lookups;
mod states;
use fixture::*;
