//! Crash and fault tests (issue 12): the real operator loop (`run`) against the
//! in-memory API server and the vendor emulators, killed at every request of
//! a scenario in turn and at random points, with and without injected faults;
//! after each run the invariants of `check.rs` must hold.
//!
//! - `kill_at_every_request_<vendor>`: per vendor, a scenario that creates,
//!   edits (a grant removed, a level lowered and raised) and deletes resources.
//!   A clean run counts its requests (every vendor request and every API
//!   request but LISTs and WATCHes). Then for each request k: the scenario runs
//!   again from scratch, the operator is killed when request k arrives (k is
//!   never handled) and, for writes, also after k was handled with its answer
//!   withheld; the scenario's next declaration changes are made while it is
//!   down; it restarts with fresh memory and must converge. (Killing after the
//!   answer to k is killing before k+1 arrives, so reads need only the first.)
//!   `CRASH_KILL=k` (and `CRASH_WHEN=arrival|answer`) replays one kill point.
//! - `random_kills`: seeded random create/edit/delete sequences across the four
//!   vendors (random API flavours), killed at random requests (half of them
//!   writes); while the operator is down the resource it was writing for (or
//!   another of that vendor) is deleted or loses a grant or a level, and the
//!   next step is made; then it restarts.
//! - `random_kills_with_faults`: the same with 30% vendor faults (5xx, 429 with
//!   `Retry-After`, answers after the client's timeout, connections dropped
//!   before and after the request took effect), failing status writes, and
//!   watches that deliver changes up to 100 ms late.
//!   `CRASH_SEED` and `CRASH_RUNS` replay and extend both; every failing run
//!   prints its seed and the command that replays it.
//! - `a_cleanup_handed_an_object_without_rows_...`: one deterministic run of a
//!   deletion whose reconcile is handed an object older than the status rows
//!   its first sync writes (a lagging watch), while revokes fail.
//! - `soak_*` (ignored): many more runs, for a machine with time.
//!
//! A failing run prints the kill point(s), the declarations, each violation
//! and the vendor calls behind it. Runs go `CRASH_PARALLEL` (default 4) at a time.
//!
//! The modules: `kill_at_every_request`, `random` and `targeted` hold the
//! tests; `hooks` tests the emulators' and the fake API server's hooks they
//! rely on; `world` is the operator process, the kill switch, the emulators
//! and the journal of one run; `model` what resources declare and vendors
//! hold; `check` the invariants; `report` the text of a failing run;
//! `outcome` the end of a run and the verdict on a test's runs.

#[path = "../support/mod.rs"]
mod support;

mod check;
mod hooks;
mod kill_at_every_request;
mod model;
mod outcome;
mod random;
mod report;
mod targeted;
mod world;

use std::time::Duration;

use model::{Perm, Vendor};
use support::env_number;
use world::Action;

/// How long a converging operator may take before its run counts as failed.
pub const CONVERGE: Duration = Duration::from_secs(20);
/// How long the vendors may differ from the declarations once the resources settled.
pub const GRACE: Duration = Duration::from_millis(1500);

/// How many runs go at once (`CRASH_PARALLEL`).
pub fn parallel() -> usize {
    env_number("CRASH_PARALLEL", 4usize).max(1)
}

/// Creates or edits `name` of `vendor` to declare `entries`.
pub fn declare(vendor: Vendor, name: &str, entries: &[(usize, Perm)]) -> Action {
    Action::Declare(vendor, name.to_string(), entries.iter().cloned().collect())
}
