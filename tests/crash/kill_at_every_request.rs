//! The kill at every request: per vendor, a scenario that creates, edits and
//! deletes resources, run clean to count its requests, then again from
//! scratch for each request k, killed when k arrives and (for writes) after
//! k was handled with its answer withheld. `CRASH_KILL=k` (and
//! `CRASH_WHEN=arrival|answer`) replays one kill point.

use std::time::Instant;

use futures::StreamExt;

use crate::check::{Violation, check};
use crate::model::*;
use crate::outcome::{Run, conclude, timed_out};
use crate::report::report;
use crate::world::*;
use crate::{CONVERGE, GRACE, declare, parallel};

/// The scenario of one vendor, step by step: two resources share a grant;
/// then one loses a grant, lowers one and gains a new one while the other
/// raises one; then the first is deleted and a third created; then the
/// second is deleted and the third lowered. So a kill while a step's writes are
/// unrecorded is followed, while the operator is down, by the removal (from a
/// spec, or with the resource) of what those writes granted. Every atom enters
/// the union of the declarations once and leaves it once (see
/// `Journal::assert_single_intervals`).
fn scenario(vendor: Vendor) -> Vec<Vec<Action>> {
    let d = |name: &str, entries: &[(usize, Perm)]| declare(vendor, name, entries);
    let delete = |name: &str| Action::Delete(vendor, name.to_string());
    let p = |set: &[&'static str]| privileges(set, false);
    match vendor {
        // Keys 0-3 are members m0-m3, 4-5 teams team-0 and team-1; levels 0 usage, 1 annotate.
        Vendor::Sigma => vec![
            vec![
                d("a", &[(0, level(1)), (1, level(0)), (4, level(0))]),
                d("b", &[(2, level(0)), (4, level(0))]),
            ],
            vec![
                d("a", &[(0, level(0)), (4, level(0)), (5, level(0))]),
                d("b", &[(2, level(1)), (4, level(0))]),
            ],
            vec![delete("a"), d("c", &[(3, level(1))])],
            vec![delete("b"), d("c", &[(3, level(0))])],
        ],
        // Keys 0-3 are users u0-u3, 4-5 teams team-0 and team-1; levels Query, Edit, Admin.
        Vendor::Grafana => vec![
            vec![
                d("a", &[(0, level(2)), (1, level(0)), (4, level(0))]),
                d("b", &[(2, level(0)), (4, level(1))]),
            ],
            vec![
                d("a", &[(0, level(1)), (4, level(0)), (5, level(0))]),
                d("b", &[(2, level(1)), (4, level(1))]),
            ],
            vec![delete("a"), d("c", &[(3, level(2))])],
            vec![delete("b"), d("c", &[(3, level(0))])],
        ],
        // Keys 0-2 are users u0-u2, 3-5 roles r0-r2.
        Vendor::Dremio => vec![
            vec![
                d(
                    "a",
                    &[
                        (0, p(&["SELECT", "ALTER"])),
                        (1, p(&["SELECT"])),
                        (3, p(&["SELECT"])),
                    ],
                ),
                d("b", &[(2, p(&["SELECT"])), (3, p(&["SELECT", "INSERT"]))]),
            ],
            vec![
                d(
                    "a",
                    &[
                        (0, p(&["SELECT"])),
                        (3, p(&["SELECT"])),
                        (5, p(&["SELECT"])),
                    ],
                ),
                d(
                    "b",
                    &[(2, p(&["SELECT", "UPDATE"])), (3, p(&["SELECT", "INSERT"]))],
                ),
            ],
            vec![delete("a"), d("c", &[(4, p(&["SELECT", "ALTER"]))])],
            vec![delete("b"), d("c", &[(4, p(&["SELECT"]))])],
        ],
        // Securables of the role ANALYST: 0 SCHEMA SALES.PUBLIC, 1 DATABASE SALES,
        // 2 TABLE ORDERS, 4 VIEW ORDERS_V. A lower level is the grant option dropped.
        Vendor::Snowflake => vec![
            vec![
                d("a", &[(2, p(&["SELECT", "INSERT"]))]),
                d("b", &[(0, privileges(&["USAGE"], true))]),
                d("c", &[(2, p(&["SELECT"]))]),
            ],
            vec![
                d("a", &[(2, p(&["SELECT"]))]),
                d("b", &[(0, p(&["USAGE"]))]),
                d("d", &[(1, p(&["USAGE"]))]),
            ],
            vec![
                delete("a"),
                delete("d"),
                d("e", &[(4, privileges(&["SELECT"], true))]),
            ],
            vec![delete("b"), d("e", &[(4, p(&["SELECT"]))])],
        ],
    }
}

/// The scenario of `vendor`, killed at `kill` if given.
async fn scenario_run(vendor: Vendor, kill: Option<(usize, When)>) -> Run {
    let started = Instant::now();
    let steps = scenario(vendor);
    // A short request timeout: a restarted operator holds the targets the killed
    // one was working on for twice the timeout, and every run here restarts it.
    let mut world = World::new(Options {
        request_timeout: 1,
        ..Options::single(vendor)
    })
    .await;
    if let Some((k, when)) = kill {
        world.switch.arm(k, when);
    }
    world.start();
    let mut extra: Vec<Violation> = Vec::new();
    let mut killed = matches!(world.providers_ready(CONVERGE).await, Waited::Tripped);
    let mut next = 0;
    while !killed && next < steps.len() {
        world.apply(&steps[next]);
        next += 1;
        match world.converge(None, CONVERGE, GRACE, true).await {
            Waited::Done => {}
            Waited::Tripped => killed = true,
            Waited::TimedOut(problems) => {
                extra.push(timed_out(
                    &format!("did not converge after step {} (before any kill)", next - 1),
                    problems,
                ));
                break;
            }
        }
    }
    let counted = world.switch.steps();
    if killed {
        world.kill().await;
        // The next declaration changes happen while the operator is down.
        if next < steps.len() {
            world.apply(&steps[next]);
        }
        let since = Since::restart();
        world.start();
        if let Waited::TimedOut(problems) =
            world.converge(Some(since), CONVERGE, GRACE, false).await
        {
            extra.push(timed_out("did not converge after the restart", problems));
        }
    }
    world.stop().await;
    let mut violations = check(&world);
    if !extra.is_empty() && violations.is_empty() {
        violations = extra;
    }
    let failure = (!violations.is_empty()).then(|| {
        let (title, replay) = match kill {
            Some((k, when)) => (
                format!(
                    "{}: kill at request {k} ({})",
                    vendor.name(),
                    when.name()
                ),
                format!(
                    "CRASH_KILL={k} CRASH_WHEN={} cargo test --test crash kill_at_every_request_{} -- --nocapture",
                    when.name(),
                    vendor.name()
                ),
            ),
            None => (
                format!("{}: clean run (no kill)", vendor.name()),
                format!(
                    "CRASH_KILL=0 cargo test --test crash kill_at_every_request_{} -- --nocapture",
                    vendor.name()
                ),
            ),
        };
        report(&title, &replay, &world, &[], &violations)
    });
    Run {
        steps: counted,
        killed,
        failure,
        violations,
        took: started.elapsed(),
    }
}

async fn kill_at_every_request(vendor: Vendor) {
    let started = Instant::now();
    let only: Option<usize> = std::env::var("CRASH_KILL")
        .ok()
        .and_then(|k| k.parse().ok());
    let only_when = std::env::var("CRASH_WHEN").ok();
    let clean = scenario_run(vendor, None).await;
    let mut points: Vec<(usize, When)> = Vec::new();
    for step in &clean.steps {
        points.push((step.n, When::Arrival));
        if step.is_write() {
            points.push((step.n, When::Answer));
        }
    }
    eprintln!(
        "{}: a clean run counts {} requests ({} writes); {} kill points",
        vendor.name(),
        clean.steps.len(),
        clean.steps.iter().filter(|s| s.is_write()).count(),
        points.len()
    );
    if let Some(k) = only {
        points.retain(|(n, when)| *n == k && only_when.as_deref().is_none_or(|w| w == when.name()));
        if k > 0 && points.is_empty() {
            points.push((
                k,
                match only_when.as_deref() {
                    Some("answer") => When::Answer,
                    _ => When::Arrival,
                },
            ));
        }
    }
    let mut runs: Vec<Run> = futures::stream::iter(points)
        .map(|point| scenario_run(vendor, Some(point)))
        .buffer_unordered(parallel())
        .collect()
        .await;
    let unreached = runs.iter().filter(|run| !run.killed).count();
    if unreached > 0 {
        eprintln!(
            "{}: {unreached} kill points were not reached (the run made fewer requests)",
            vendor.name()
        );
    }
    runs.push(clean);
    conclude(
        &format!("kill_at_every_request_{}", vendor.name()),
        &runs,
        started,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_request_sigma() {
    kill_at_every_request(Vendor::Sigma).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_request_grafana() {
    kill_at_every_request(Vendor::Grafana).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_request_snowflake() {
    kill_at_every_request(Vendor::Snowflake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_request_dremio() {
    kill_at_every_request(Vendor::Dremio).await;
}
