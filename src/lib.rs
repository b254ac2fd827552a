//! grant-operator keeps the access grants of SaaS data platforms (Sigma
//! Computing, Grafana, Snowflake, Dremio) matching custom resources.
//!
//! - [`api`]: the custom resources of the contract.
//! - [`names`]: names beside ids, for people reading keys.
//! - [`plan`]: the pure planner (desired union vs live grants -> actions and status rows).
//! - [`report`]: the status and Event text of a sync, for the controller and the CLI.
//! - [`sync`]: one sync of one unit (resolve, read, plan, apply, read back), shared by
//!   the controller and the command-line tools.
//! - [`vendor_api`]: the vendor trait, the shared HTTP client and one module per vendor.
//! - [`vendors`]: the list of vendors everything else learns them from.
//! - [`controller`]: the reconcilers for providers and grants.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz`; [`leader`]: leader election on a Lease.
//! - [`yaml`]: YAML as Kubernetes tools (YAML 1.1) read it; the writer of the CRDs.

pub mod api;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod credentials;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod plan;
pub mod report;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod server;
pub mod sync;
pub mod telemetry;
pub mod vendor_api;
pub mod vendors;
pub mod yaml;

/// Installs ring as the process-wide rustls crypto provider (the one kube uses
/// too), once; later calls do nothing.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
