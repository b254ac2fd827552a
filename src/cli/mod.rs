//! The command-line tools that need no cluster: `plan`, `apply` (and, with the
//! `sandbox` feature, `demo`). They read manifests, take Secret values only from
//! where the user points, and run the controller's own sync engine once.

#[cfg(feature = "sandbox")]
pub mod demo;
pub mod export;
pub mod manifests;
pub mod plan;
pub mod secrets;
