//! The command-line tools that need no cluster: `plan`, `apply`, `export`,
//! `access` (and, with the `sandbox` feature, `demo`). They read manifests (or,
//! for `access --from-cluster`, list the cluster's resources), take Secret
//! values only from where the user points, and use the controller's own vendor
//! clients and sync engine.

pub mod access;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod export;
pub mod manifests;
pub mod plan;
pub mod providers;
pub mod secrets;
