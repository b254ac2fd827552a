//! Sandboxes: strict in-process emulators of the vendors' APIs, used by the
//! integration tests and by `grant-operator demo`. They behave as the vendors
//! document (auth, paging, limits, error bodies, 429) and refuse anything else,
//! so code that works against them is likely to work against the real APIs.
//!
//! Built only with the `sandbox` cargo feature (on by default for the CLI; the
//! container image is built without it). Request data never makes them panic;
//! their setup helpers do panic on misuse, which is a bug in the test or demo
//! that calls them.

pub mod dremio;
pub mod emulator;
pub mod grafana;
pub mod sigma;
pub mod snowflake;
