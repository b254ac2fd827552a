//! GrafanaGrant end to end over real HTTP: the real reconcilers against the
//! strict Grafana emulator, for both permission APIs, with the Kubernetes side
//! on an in-memory API.
//!
//! Every scenario that both APIs share runs twice (`each_server!` below): once against
//! a server that only serves the AccessControl API and once against one that
//! only serves the Legacy API, with the provider on `Auto` so detection is
//! exercised every time.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, GrafanaBuiltInRole, GrafanaDatasourceRef, GrafanaPermission::*,
    GrafanaPermissionsApi, GrantState, ManagementPolicy, Mode,
};
use support::grafana::{FaultKind, Grantee, Level};
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    AccessControl,
    Legacy,
}

/// A harness whose Grafana serves only `server`'s API, with a Ready provider
/// `grafana` on `Auto`.
async fn ready(server: Server) -> Harness {
    let h = Harness::new().await;
    match server {
        Server::AccessControl => h.grafana.set_apis(false, true),
        Server::Legacy => h.grafana.set_apis(true, false),
    }
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(NS, "grafana", "grafana-sa", GrafanaPermissionsApi::Auto));
    h.reconcile_provider(NS, "grafana")
        .await
        .expect("provider becomes ready");
    h.grafana.clear_calls();
    h.kube.clear_calls();
    h
}

/// Path prefix of the permission calls of `server` on the harness's data source.
fn permissions_path(h: &Harness, server: Server) -> String {
    match server {
        Server::AccessControl => format!("/api/access-control/datasources/{DATASOURCE_UID}"),
        Server::Legacy => format!("/api/datasources/{}/permissions", h.datasource_id),
    }
}

/// Vendor writes of `server` on the harness's data source.
fn writes(h: &Harness, server: Server) -> usize {
    let path = permissions_path(h, server);
    h.grafana.count("POST", &path) + h.grafana.count("DELETE", &path)
}

/// A data source reference by id only.
fn datasource_by_id(id: i64) -> grant_operator::api::GrafanaDatasourceRef {
    grant_operator::api::GrafanaDatasourceRef {
        uid: None,
        name: None,
        id: Some(id),
    }
}

/// The provider's check fails as `Unauthorized`; returns its `Ready`
/// condition.
async fn provider_unauthorized(
    h: &Harness,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    assert_eq!(h.provider_refusal(NS, "grafana").await, "Unauthorized");
    h.provider_ready(NS, "grafana")
}

fn pair(key: String, level: &str) -> (String, String) {
    (key, level.to_string())
}

async fn settle(h: &Harness, name: &str) -> Result<(), String> {
    h.settle_of::<grant_operator::api::GrafanaGrant>(name)
        .await
        .map(|_| ())
        .map_err(|error| error.reason().to_string())
}

fn ready_of(h: &Harness, name: &str) -> (String, String, String) {
    let ready = h.ready_of::<grant_operator::api::GrafanaGrant>(name);
    (ready.status, ready.reason, ready.message)
}

/// The `Ready` condition of `name` has `status` and `reason`; returns its
/// message.
#[track_caller]
fn assert_ready(h: &Harness, name: &str, status: &str, reason: &str) -> String {
    h.assert_ready_of::<grant_operator::api::GrafanaGrant>(name, status, reason)
}

fn status_of(h: &Harness, name: &str) -> grant_operator::api::GrantStatus {
    h.status_of::<grant_operator::api::GrafanaGrant>(name)
}

/// Runs each named scenario once per server, as `<module>::<server>::<name>`
/// (see `support::each_setup!`).
macro_rules! each_server {
    ($($name:ident),* $(,)?) => {
        crate::support::each_setup!(
            [$($name),*];
            access_control => (super::Server::AccessControl),
            legacy => (super::Server::Legacy),
        );
    };
}

mod apis;
mod faults;
mod names;
mod permissions;
