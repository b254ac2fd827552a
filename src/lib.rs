//! grant-operator keeps the access grants of SaaS data platforms (Sigma
//! Computing, Grafana, Snowflake, Dremio) matching custom resources.
//!
//! - [`api`]: the custom resources of the contract.
//! - [`plan`]: the pure planner (desired union vs live grants -> actions and status rows).
//! - [`vendor`]: the vendor trait, the shared HTTP client and one module per vendor.
//! - [`controller`]: the reconcilers for providers and grants.

pub mod api;
pub mod plan;
