//! What a run comes to: the result of one run, the end of a run (converge
//! without kills or faults, then check), and the verdict on a test's runs.

use std::time::{Duration, Instant};

use crate::check::{Violation, check};
use crate::world::{Since, Step, Waited, World};
use crate::{CONVERGE, GRACE};

/// The result of one run.
pub struct Run {
    /// The counted requests of the run (before the kill, if any).
    pub steps: Vec<Step>,
    pub killed: bool,
    /// The report, if the run broke an invariant.
    pub failure: Option<String>,
    pub violations: Vec<Violation>,
    pub took: Duration,
}

/// A run that did not converge, as a violation (when it broke nothing else).
pub fn timed_out(what: &str, problems: Vec<String>) -> Violation {
    Violation {
        vendor: None,
        what: what.to_string(),
        lines: problems,
    }
}

/// Lets the operator converge (since `since`, if given), stops it and checks
/// the invariants; a run that broke none but did not converge gets a
/// violation saying so (`what`).
pub async fn converge_and_check(
    world: &mut World,
    since: Option<Since>,
    what: &str,
) -> Vec<Violation> {
    let waited = world.converge(since, CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out(what, problems));
    }
    violations
}

/// Prints the failures and panics if there are any.
pub fn conclude(name: &str, runs: &[Run], started: Instant) {
    let failures: Vec<&Run> = runs.iter().filter(|run| run.failure.is_some()).collect();
    let slowest = runs.iter().map(|run| run.took).max().unwrap_or_default();
    eprintln!(
        "{name}: {} runs, {} failed, {:.1}s in all (slowest run {:.1}s)",
        runs.len(),
        failures.len(),
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    if failures.is_empty() {
        return;
    }
    for run in &failures {
        if let Some(failure) = &run.failure {
            eprintln!("{failure}");
        }
    }
    let mut summary = String::new();
    for run in &failures {
        if let Some(failure) = &run.failure {
            let title = failure.lines().next().unwrap_or_default();
            let kinds: Vec<String> = run.violations.iter().map(Violation::headline).collect();
            summary.push_str(&format!("\n  {title}: {}", kinds.join(" / ")));
        }
    }
    panic!(
        "{name}: {} of {} runs broke an invariant:{summary}",
        failures.len(),
        runs.len()
    );
}
