//! DremioGrant end to end over real HTTP: the real reconcilers against the
//! strict Dremio emulator, on the Software paths (`/api/v3`) and the Cloud
//! paths (`/v0/projects/{id}`, users and roles at organisation level), with the
//! Kubernetes side on an in-memory API.
//!
//! Every scenario runs twice (`each_deployment!` below).

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use grant_operator::api::{
    DeletionPolicy, DremioCatalogObjectRef, DremioGrant, GrantState, ManagementPolicy, Mode,
};
use support::dremio::{FaultKind, GrantRecord, GranteeType};
use support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deployment {
    Software,
    Cloud,
}

/// A harness with a Ready provider `dremio` for `deployment`.
async fn ready(deployment: Deployment) -> Harness {
    let h = Harness::new().await;
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    h.put(&h.dremio_provider(NS, "dremio", "dremio-pat", deployment == Deployment::Cloud));
    h.reconcile_provider(NS, "dremio")
        .await
        .expect("provider becomes ready");
    h.dremio.clear_calls();
    h.kube.clear_calls();
    h
}

/// The grants path of the harness's catalog object.
fn grants_path(h: &Harness, deployment: Deployment) -> String {
    match deployment {
        Deployment::Software => format!("/api/v3/catalog/{}/grants", h.dremio_object),
        Deployment::Cloud => format!(
            "/v0/projects/{DREMIO_PROJECT}/catalog/{}/grants",
            h.dremio_object
        ),
    }
}

fn live(key: String, privileges: &[&str]) -> (String, Vec<String>) {
    let mut privileges: Vec<String> = privileges.iter().map(|p| p.to_string()).collect();
    privileges.sort();
    (key, privileges)
}

async fn settle(h: &Harness, name: &str) -> Result<(), String> {
    h.settle_of::<DremioGrant>(name)
        .await
        .map(|_| ())
        .map_err(|error| error.reason().to_string())
}

fn ready_of(h: &Harness, name: &str) -> (String, String, String) {
    let ready = h.ready_of::<DremioGrant>(name);
    (ready.status, ready.reason, ready.message)
}

/// The `Ready` condition of `name` has `status` and `reason`; returns its
/// message.
#[track_caller]
fn assert_ready(h: &Harness, name: &str, status: &str, reason: &str) -> String {
    h.assert_ready_of::<DremioGrant>(name, status, reason)
}

/// Runs each named scenario once per deployment, as
/// `<module>::<deployment>::<name>` (see `support::each_setup!`).
macro_rules! each_deployment {
    ($($name:ident),* $(,)?) => {
        crate::support::each_setup!(
            [$($name),*];
            software => (super::Deployment::Software),
            cloud => (super::Deployment::Cloud),
        );
    };
}

mod faults;
mod grants;
mod names;
