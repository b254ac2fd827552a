//! SigmaGrant end to end over real HTTP: the real reconcilers against the strict
//! Sigma emulator, with the Kubernetes side on an in-memory API.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use grant_operator::api::{GrantState, SigmaPermission::*};
use support::*;

/// Injects `kind` into the next `times` `method` requests to a connection.
fn fault_on_connections(h: &Harness, method: &str, times: usize, kind: sigma::FaultKind) {
    h.sigma
        .inject(fault(method, "/v2/connections", times, kind));
}

/// A ready harness on which `readers` grants jane@example.com `usage`, synced;
/// with jane's member id.
async fn jane_reads() -> (Harness, String) {
    let h = Harness::ready().await;
    let jane = h.sigma.add_member("jane@example.com");
    h.put_settled(&jane_readers()).await;
    (h, jane)
}

mod credentials;
mod deletion;
mod faults;
mod grants;
mod providers;
mod requests;
mod sync;
mod unreadable;
