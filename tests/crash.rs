//! Crash and fault tests (issue 12): the real operator loop (`run`) against the
//! in-memory API server and the vendor emulators, killed at every request of
//! a scenario in turn and at random points, with and without injected faults;
//! after each run the invariants of `crash/check.rs` must hold.
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

mod support;

#[path = "crash/check.rs"]
mod check;
#[path = "crash/model.rs"]
mod model;
#[path = "crash/world.rs"]
mod world;

use std::time::{Duration, Instant};

use futures::StreamExt;
use grant_operator::api::{GrafanaPermissionsApi, SnowflakeGrantsApi};

use check::{Violation, check, report};
use model::*;
use support::emulator::{FaultKind, RandomFaults, SeededRng};
use support::env_number;
use support::fake_kube::StatusFault;
use world::*;

/// How long a converging operator may take before its run counts as failed.
const CONVERGE: Duration = Duration::from_secs(20);
/// How long the vendors may differ from the declarations once the resources settled.
const GRACE: Duration = Duration::from_millis(1500);

fn parallel() -> usize {
    env_number("CRASH_PARALLEL", 4usize).max(1)
}

// ---------------------------------------------------------------------------
// Kill at every request
// ---------------------------------------------------------------------------

fn declare(vendor: Vendor, name: &str, entries: &[(usize, Perm)]) -> Action {
    Action::Declare(vendor, name.to_string(), entries.iter().cloned().collect())
}

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

/// The result of one run.
struct Run {
    /// The counted requests of the run (before the kill, if any).
    steps: Vec<Step>,
    killed: bool,
    failure: Option<String>,
    violations: Vec<Violation>,
    took: Duration,
}

fn timed_out(what: &str, problems: Vec<String>) -> Violation {
    Violation {
        vendor: None,
        what: what.to_string(),
        lines: problems,
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

/// Prints the failures and panics if there are any.
fn conclude(name: &str, runs: &[Run], started: Instant) {
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

// ---------------------------------------------------------------------------
// Random kills
// ---------------------------------------------------------------------------

/// A random run, all of it from its seed.
struct RandomPlan {
    seed: u64,
    options: Options,
    steps: Vec<Vec<Action>>,
    /// How long to let the operator work after each step.
    pauses: Vec<Duration>,
    /// Kills: requests (or writes, if `.2`) after the previous (re)start, and when.
    kills: Vec<(usize, When, bool)>,
    faults: bool,
    /// How late watches deliver changes (fault runs).
    watch_lag: Duration,
}

/// The model a random plan is drawn against: what each resource declares and
/// which atoms left the declarations (they may not come back).
#[derive(Default)]
struct Drawn {
    alive: std::collections::BTreeMap<(Vendor, String), Spec>,
    retired: std::collections::BTreeSet<(Vendor, String, String)>,
    /// Deleted resources (their names are not used again).
    gone: std::collections::BTreeSet<(Vendor, String)>,
    names: usize,
}

impl Drawn {
    fn union(&self, vendor: Vendor) -> Atoms {
        let mut atoms = Atoms::new();
        for ((v, _), spec) in &self.alive {
            if *v == vendor {
                unite(&mut atoms, &spec_atoms(vendor, spec));
            }
        }
        atoms
    }

    /// Whether `spec` on `name` may be declared: no retired atom comes back.
    fn allowed(&self, vendor: Vendor, spec: &Spec) -> bool {
        spec_atoms(vendor, spec).iter().all(|(key, set)| {
            set.iter()
                .all(|atom| !self.retired.contains(&(vendor, key.clone(), atom.clone())))
        })
    }

    /// Applies an action to the model, retiring what leaves the union.
    fn commit(&mut self, action: &Action) {
        let vendor = match action {
            Action::Declare(vendor, ..) | Action::Delete(vendor, _) => *vendor,
        };
        let before = self.union(vendor);
        match action {
            Action::Declare(vendor, name, spec) => {
                self.alive.insert((*vendor, name.clone()), spec.clone());
            }
            Action::Delete(vendor, name) => {
                self.alive.remove(&(*vendor, name.clone()));
                self.gone.insert((*vendor, name.clone()));
            }
        }
        let after = self.union(vendor);
        for (key, set) in before {
            for atom in set {
                if !after.get(&key).is_some_and(|s| s.contains(&atom)) {
                    self.retired.insert((vendor, key.clone(), atom));
                }
            }
        }
    }
}

fn max_level(options: &Options, vendor: Vendor) -> usize {
    match vendor {
        Vendor::Sigma => 1,
        // The Legacy API has no Admin.
        Vendor::Grafana if options.grafana_api == GrafanaPermissionsApi::Legacy => 1,
        Vendor::Grafana => 2,
        Vendor::Snowflake | Vendor::Dremio => 0,
    }
}

fn random_perm(rng: &mut SeededRng, options: &Options, vendor: Vendor, key: usize) -> Perm {
    match vendor.ladder() {
        Some(_) => Perm::Level(rng.below(max_level(options, vendor) + 1)),
        None => {
            let all = vendor.privileges(key);
            let mut set: std::collections::BTreeSet<&'static str> =
                all.iter().copied().filter(|_| rng.chance(0.4)).collect();
            if set.is_empty() {
                set.insert(all[rng.below(all.len())]);
            }
            Perm::Privileges {
                set,
                option: vendor == Vendor::Snowflake && rng.chance(0.3),
            }
        }
    }
}

fn random_spec(rng: &mut SeededRng, options: &Options, vendor: Vendor) -> Spec {
    let entries = if vendor.one_key_per_resource() {
        1
    } else {
        1 + rng.below(3)
    };
    let mut spec = Spec::new();
    while spec.len() < entries {
        let key = rng.below(vendor.keys());
        spec.insert(key, random_perm(rng, options, vendor, key));
    }
    spec
}

fn random_edit(rng: &mut SeededRng, options: &Options, vendor: Vendor, spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    let keys: Vec<usize> = spec.keys().copied().collect();
    let key = keys[rng.below(keys.len())];
    match rng.below(3) {
        // Remove a key (never the last one).
        0 if spec.len() > 1 => {
            spec.remove(&key);
        }
        // Add a key.
        1 if !vendor.one_key_per_resource() => {
            let new = rng.below(vendor.keys());
            spec.entry(new)
                .or_insert_with(|| random_perm(rng, options, vendor, new));
        }
        // Change the permission of a key (level up or down, privileges, grant option).
        _ => {
            let perm = random_perm(rng, options, vendor, key);
            spec.insert(key, perm);
        }
    }
    spec
}

fn random_plan(seed: u64, faults: bool) -> RandomPlan {
    let mut rng = SeededRng::new(seed);
    let options = Options {
        vendors: Vendor::ALL.to_vec(),
        grafana_api: if rng.chance(0.5) {
            GrafanaPermissionsApi::AccessControl
        } else {
            GrafanaPermissionsApi::Legacy
        },
        snowflake_api: if rng.chance(0.5) {
            SnowflakeGrantsApi::RoleGrants
        } else {
            SnowflakeGrantsApi::Legacy
        },
        dremio_cloud: rng.chance(0.5),
        // Short, so that answers delayed past it are timeouts, and so that the
        // operator's watch of writes a killed operator may have sent (twice the
        // timeout after it restarts) is short too.
        request_timeout: if faults { 1 } else { 2 },
    };
    let mut drawn = Drawn::default();
    let mut steps = Vec::new();
    let mut pauses = Vec::new();
    for _ in 0..6 + rng.below(5) {
        let mut actions = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let vendor = Vendor::ALL[rng.below(Vendor::ALL.len())];
            let mine: Vec<(String, Spec)> = drawn
                .alive
                .iter()
                .filter(|((v, _), _)| *v == vendor)
                .map(|((_, name), spec)| (name.clone(), spec.clone()))
                .collect();
            let pick = rng.below(10);
            let action = (0..20).find_map(|_| {
                let action = if mine.is_empty() || pick < 4 {
                    drawn.names += 1;
                    let name = format!("{}-{}", vendor.name(), drawn.names);
                    Action::Declare(vendor, name, random_spec(&mut rng, &options, vendor))
                } else {
                    let (name, spec) = &mine[rng.below(mine.len())];
                    if pick < 8 {
                        Action::Declare(
                            vendor,
                            name.clone(),
                            random_edit(&mut rng, &options, vendor, spec),
                        )
                    } else {
                        Action::Delete(vendor, name.clone())
                    }
                };
                match &action {
                    Action::Declare(_, _, spec) if !drawn.allowed(vendor, spec) => None,
                    _ => Some(action),
                }
            });
            if let Some(action) = action {
                drawn.commit(&action);
                actions.push(action);
            }
        }
        steps.push(actions);
        pauses.push(Duration::from_millis(rng.below(400) as u64));
    }
    let kills = (0..1 + rng.below(3))
        .map(|_| {
            let when = if rng.chance(0.5) {
                When::Arrival
            } else {
                When::Answer
            };
            // Half at a write, where a kill can leave something unrecorded.
            if rng.chance(0.5) {
                (1 + rng.below(40), when, true)
            } else {
                (1 + rng.below(120), when, false)
            }
        })
        .collect();
    let watch_lag = if faults {
        Duration::from_millis(rng.below(100) as u64)
    } else {
        Duration::ZERO
    };
    RandomPlan {
        seed,
        options,
        steps,
        pauses,
        kills,
        faults,
        watch_lag,
    }
}

/// Vendor faults: 5xx, 429 (Retry-After 0 or 1 s), requests carried out after
/// the client's 1 s timeout (they land late) or answered after it (they took
/// effect), connections dropped before and after the request took effect.
fn vendor_faults(seed: u64) -> RandomFaults {
    RandomFaults {
        seed,
        probability: 0.3,
        method: None,
        path_prefix: "/".into(),
        kinds: vec![
            FaultKind::Status(500),
            FaultKind::Status(503),
            FaultKind::RateLimited {
                retry_after_secs: 0,
            },
            FaultKind::RateLimited {
                retry_after_secs: 1,
            },
            FaultKind::Delay(Duration::from_millis(1300)),
            FaultKind::DelayAnswer(Duration::from_millis(1300)),
            FaultKind::DropBefore,
            FaultKind::DropAfter,
        ],
    }
}

fn set_faults(world: &World, seed: u64, on: bool) {
    let mut salt = SeededRng::new(seed ^ 0xFA17);
    macro_rules! each {
        ($emulator:expr) => {
            if let Some(emulator) = &$emulator {
                let seed = salt.next_u64();
                if on {
                    emulator.inject_random(vendor_faults(seed));
                } else {
                    emulator.clear_random_faults();
                }
            }
        };
    }
    each!(world.sigma);
    each!(world.grafana);
    each!(world.dremio);
    each!(world.snowflake);
    if on {
        world.kube.random_status_faults(
            salt.next_u64(),
            0.2,
            vec![
                StatusFault {
                    code: 500,
                    applied: false,
                },
                StatusFault {
                    code: 409,
                    applied: false,
                },
                // Stored, but answered as if it timed out (the reports rely on
                // 504 meaning stored and 500/409 not).
                StatusFault {
                    code: 504,
                    applied: true,
                },
            ],
        );
    } else {
        world.kube.clear_status_faults();
    }
}

fn plan_lines(plan: &RandomPlan) -> Vec<String> {
    let mut lines = vec![format!(
        "options: grafana {:?}, snowflake {:?}, dremio {}, faults {}, watch lag {:?}",
        plan.options.grafana_api,
        plan.options.snowflake_api,
        if plan.options.dremio_cloud {
            "Cloud"
        } else {
            "Software"
        },
        if plan.faults { "30%" } else { "none" },
        plan.watch_lag
    )];
    lines.push(format!(
        "kills planned (requests, or writes if true, after each start; when): {:?}",
        plan.kills
    ));
    lines
}

async fn random_run(plan: RandomPlan, test: &'static str) -> Run {
    let started = Instant::now();
    let mut world = World::new(plan.options.clone()).await;
    if plan.faults {
        set_faults(&world, plan.seed, true);
        world.kube.set_watch_lag(plan.watch_lag);
    }
    let mut kills = plan.kills.iter();
    let arm = |world: &World, kill: Option<&(usize, When, bool)>| match kill {
        Some((after, when, true)) => world.switch.arm_at_write(*after, *when),
        Some((after, when, false)) => world.switch.arm(world.switch.counted() + after, *when),
        None => {}
    };
    let mut drawn = Drawn::default();
    let mut reactions = SeededRng::new(plan.seed ^ 0x5EED_0F4E_AC00);
    world.start();
    arm(&world, kills.next());
    let mut next = 0;
    while next < plan.steps.len() {
        apply_planned(&mut world, &mut drawn, &plan.steps[next]);
        let pause = plan.pauses[next];
        next += 1;
        if let Waited::Tripped = world.pause(pause).await {
            world.kill().await;
            // While it is down: take away something of what it was working on,
            // then the plan's next step.
            if let Some(action) = reaction(&world, &drawn, &mut reactions) {
                apply_planned(&mut world, &mut drawn, &[action]);
            }
            if next < plan.steps.len() {
                apply_planned(&mut world, &mut drawn, &plan.steps[next]);
                next += 1;
            }
            world.start();
            arm(&world, kills.next());
        }
    }
    world.switch.disarm();
    if world.switch.tripped().is_some() {
        world.kill().await;
        world.start();
    }
    if plan.faults {
        set_faults(&world, plan.seed, false);
        // Let requests delayed by a fault land before the end state counts.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let since = Since::now();
    let waited = world.converge(Some(since), CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(&world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out("did not converge at the end", problems));
    }
    let failure = (!violations.is_empty()).then(|| {
        report(
            &format!("{test}: seed {}", plan.seed),
            &format!(
                "CRASH_SEED={} CRASH_RUNS=1 cargo test --test crash {test} -- --nocapture",
                plan.seed
            ),
            &world,
            &plan_lines(&plan),
            &violations,
        )
    });
    Run {
        steps: Vec::new(),
        killed: !world.kills.is_empty(),
        failure,
        violations,
        took: started.elapsed(),
    }
}

/// Applies the actions of a plan that still make sense: a deleted resource is
/// not declared again, and no atom that left the declarations comes back
/// (a reaction to a kill may have removed what a later step builds on).
fn apply_planned(world: &mut World, drawn: &mut Drawn, actions: &[Action]) {
    for action in actions {
        let permitted = match action {
            Action::Declare(vendor, name, spec) => {
                !drawn.gone.contains(&(*vendor, name.clone())) && drawn.allowed(*vendor, spec)
            }
            Action::Delete(vendor, name) => drawn.alive.contains_key(&(*vendor, name.clone())),
        };
        if permitted {
            world.apply(std::slice::from_ref(action));
            drawn.commit(action);
        }
    }
}

/// What to take away while the operator is down after a kill: from the
/// resource whose status write it was killed at (or a resource of the vendor
/// it was calling, or any), delete it or remove a grant or a level of it.
fn reaction(world: &World, drawn: &Drawn, rng: &mut SeededRng) -> Option<Action> {
    let step = &world.kills.last()?.step;
    let segments: Vec<&str> = step.path.split('/').collect();
    let named = Vendor::ALL.into_iter().find_map(|vendor| {
        let at = segments.iter().position(|s| *s == vendor.plural())?;
        Some((vendor, segments.get(at + 1).map(|name| name.to_string())))
    });
    let vendor = match named {
        Some((vendor, _)) => Some(vendor),
        None => Vendor::ALL.into_iter().find(|v| v.name() == step.source),
    };
    let alive: Vec<(&(Vendor, String), &Spec)> = drawn
        .alive
        .iter()
        .filter(|((v, _), _)| vendor.is_none_or(|vendor| *v == vendor))
        .collect();
    if alive.is_empty() {
        return None;
    }
    let ((vendor, name), spec) = named
        .and_then(|(_, name)| name)
        .and_then(|name| alive.iter().find(|((_, n), _)| *n == name).copied())
        .unwrap_or_else(|| alive[rng.below(alive.len())]);
    let vendor = *vendor;
    let delete = Action::Delete(vendor, name.clone());
    if rng.chance(0.5) {
        return Some(delete);
    }
    let mut spec = spec.clone();
    let keys: Vec<usize> = spec.keys().copied().collect();
    let key = keys[rng.below(keys.len())];
    if spec.len() > 1 {
        spec.remove(&key);
        return Some(Action::Declare(vendor, name.clone(), spec));
    }
    let lower = match spec.get(&key) {
        Some(Perm::Level(level)) if *level > 0 => Some(Perm::Level(level - 1)),
        Some(Perm::Privileges { set, option: true }) => Some(Perm::Privileges {
            set: set.clone(),
            option: false,
        }),
        Some(Perm::Privileges { set, option }) if set.len() > 1 => {
            let mut set = set.clone();
            let drop = *set.iter().nth(rng.below(set.len()))?;
            set.remove(drop);
            Some(Perm::Privileges {
                set,
                option: *option,
            })
        }
        _ => None,
    };
    match lower {
        Some(perm) => {
            spec.insert(key, perm);
            Some(Action::Declare(vendor, name.clone(), spec))
        }
        None => Some(delete),
    }
}

/// The seeds of a random test: `CRASH_SEED` (default `default`) and the
/// `CRASH_RUNS - 1` after it.
fn seeds(default_seed: u64, default_runs: usize) -> Vec<u64> {
    let base = env_number("CRASH_SEED", default_seed);
    let runs = env_number("CRASH_RUNS", default_runs);
    (0..runs as u64).map(|i| base.wrapping_add(i)).collect()
}

async fn random_runs(test: &'static str, faults: bool, seeds: Vec<u64>) {
    let started = Instant::now();
    eprintln!(
        "{test}: seeds {}..={}",
        seeds.first().copied().unwrap_or_default(),
        seeds.last().copied().unwrap_or_default()
    );
    let runs: Vec<Run> = futures::stream::iter(seeds)
        .map(|seed| random_run(random_plan(seed, faults), test))
        .buffer_unordered(parallel())
        .collect()
        .await;
    conclude(test, &runs, started);
}

/// A seed that changes with every soak run unless `CRASH_SEED` is set.
fn soak_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills() {
    random_runs("random_kills", false, seeds(1_000, 16)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_with_faults() {
    random_runs("random_kills_with_faults", true, seeds(2_000, 14)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: hundreds of runs; see README (Testing)"]
async fn soak_random_kills() {
    random_runs("soak_random_kills", false, seeds(soak_seed(), 300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: hundreds of runs; see README (Testing)"]
async fn soak_random_kills_with_faults() {
    random_runs(
        "soak_random_kills_with_faults",
        true,
        seeds(soak_seed(), 200),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Targeted
// ---------------------------------------------------------------------------

/// A resource deleted while its first sync is writing its grant, with the
/// watch cache lagging: the deletion's reconcile is handed the object as the
/// cache holds it, without the status row that sync is about to write. The
/// sync that follows sees the row and tries to revoke, and the vendor refuses
/// the revoke for a while. The finalizer must stay until the grant is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_handed_an_object_without_rows_still_revokes_what_a_sync_recorded() {
    let started = Instant::now();
    let mut world = World::new(Options::single(Vendor::Sigma)).await;
    world.kube.set_watch_lag(Duration::from_millis(300));
    let sigma = world.sigma.clone().expect("sigma");
    let grants = format!("/v2/connections/{}/grants", support::CONNECTION);
    sigma.inject(support::emulator::Fault {
        method: Some("POST".into()),
        path_prefix: grants.clone(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(800)),
    });
    sigma.inject(support::emulator::Fault {
        method: Some("DELETE".into()),
        path_prefix: grants.clone(),
        times: usize::MAX,
        kind: FaultKind::Status(500),
    });
    world.start();
    let ready = world.providers_ready(CONVERGE).await;
    assert!(matches!(ready, Waited::Done), "{ready:?}");
    let steps = [
        vec![declare(Vendor::Sigma, "a", &[(0, level(0))])],
        vec![Action::Delete(Vendor::Sigma, "a".into())],
    ];
    world.apply(&steps[0]);
    support::eventually("the grant write arrives", || {
        sigma.count("POST", &grants) > 0
    })
    .await;
    world.apply(&steps[1]);
    // Revokes fail for a while: a cleanup that lets go now forgets the grant.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sigma.clear_faults();
    let waited = world.converge(None, CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(&world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out("did not converge", problems));
    }
    let run = Run {
        steps: Vec::new(),
        killed: false,
        failure: (!violations.is_empty()).then(|| {
            report(
                "sigma: a deletion handed to cleanup before the rows of its first sync",
                "cargo test --test crash a_cleanup_handed_an_object_without_rows -- --nocapture",
                &world,
                &[],
                &violations,
            )
        }),
        violations,
        took: started.elapsed(),
    };
    conclude("a_cleanup_handed_an_object_without_rows", &[run], started);
}

/// A grant write sent by an operator that is killed while the vendor holds it,
/// and that lands after the restarted operator's first read, is still revoked
/// when its declaration goes away (the restarted operator watches the intent
/// rows of writes it cannot know the fate of): removed from the spec, or with the
/// resource, while the operator is down.
async fn a_held_write_lands_after_a_kill(vendor: Vendor, delete: bool) {
    let started = Instant::now();
    let mut world = World::new(Options::single(vendor)).await;
    // The grant write is carried out 1.5 s after it arrives, whatever happens to
    // the operator that sent it.
    let (method, prefix) = match vendor {
        Vendor::Sigma => (
            "POST",
            format!("/v2/connections/{}/grants", support::CONNECTION),
        ),
        Vendor::Snowflake => ("POST", "/api/v2/roles/".to_string()),
        other => panic!("no held write for {other:?} here"),
    };
    let fault = support::emulator::Fault {
        method: Some(method.into()),
        path_prefix: prefix.clone(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(1500)),
    };
    let (sigma, snowflake) = (world.sigma.clone(), world.snowflake.clone());
    let writes = move || match vendor {
        Vendor::Sigma => world_calls(sigma.as_ref().expect("sigma").calls()),
        _ => world_calls(snowflake.as_ref().expect("snowflake").calls()),
    };
    fn world_calls(calls: Vec<support::emulator::Call>) -> Vec<(String, String, u16)> {
        calls
            .into_iter()
            .map(|call| (call.method, call.path, call.status))
            .collect()
    }
    match vendor {
        Vendor::Sigma => world.sigma.as_ref().expect("sigma").inject(fault),
        _ => world.snowflake.as_ref().expect("snowflake").inject(fault),
    }
    world.start();
    let ready = world.providers_ready(CONVERGE).await;
    assert!(matches!(ready, Waited::Done), "{ready:?}");
    let first = match vendor {
        Vendor::Sigma => vec![declare(vendor, "a", &[(0, level(0)), (1, level(0))])],
        _ => vec![declare(
            vendor,
            "a",
            &[(2, privileges(&["SELECT", "INSERT"], false))],
        )],
    };
    let second = match (vendor, delete) {
        (_, true) => vec![Action::Delete(vendor, "a".into())],
        (Vendor::Sigma, false) => vec![declare(vendor, "a", &[(1, level(0))])],
        (_, false) => vec![declare(vendor, "a", &[(2, privileges(&["SELECT"], false))])],
    };
    world.apply(&first);
    let the_write = |calls: &[(String, String, u16)]| {
        calls
            .iter()
            .find(|(m, path, _)| {
                m == method && path.starts_with(&prefix) && !path.ends_with(":revoke")
            })
            .map(|(_, _, status)| *status)
    };
    support::eventually("the grant write arrives", || the_write(&writes()).is_some()).await;
    world.kill().await;
    assert_eq!(
        the_write(&writes()),
        Some(0),
        "the write is held when the operator dies"
    );
    // While it is down, the grant is declared no more; then a new operator starts
    // and reads the target before the held write lands...
    world.apply(&second);
    world.start();
    support::eventually("the held write lands", || {
        the_write(&writes()).is_some_and(|status| status != 0)
    })
    .await;
    // ...and, the grant being declared by nobody, revokes it.
    let waited = world.converge(None, CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(&world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out("did not converge", problems));
    }
    let name = format!(
        "a_held_write_lands_after_a_kill ({vendor:?}, {})",
        if delete {
            "deleted"
        } else {
            "removed from the spec"
        }
    );
    let run = Run {
        steps: Vec::new(),
        killed: true,
        failure: (!violations.is_empty()).then(|| {
            report(
                &format!("{vendor:?}: a write held by the vendor lands after a kill and a restart"),
                "cargo test --test crash a_held_write -- --nocapture",
                &world,
                &[],
                &violations,
            )
        }),
        violations,
        took: started.elapsed(),
    };
    conclude(&name, &[run], started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_removed_from_the_spec_is_revoked_sigma() {
    a_held_write_lands_after_a_kill(Vendor::Sigma, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_of_a_deleted_resource_is_revoked_sigma() {
    a_held_write_lands_after_a_kill(Vendor::Sigma, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_removed_from_the_spec_is_revoked_snowflake() {
    a_held_write_lands_after_a_kill(Vendor::Snowflake, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_of_a_deleted_resource_is_revoked_snowflake() {
    a_held_write_lands_after_a_kill(Vendor::Snowflake, true).await;
}

/// A grant write the vendor holds past the request timeout, for a resource
/// deleted while it is held: the operator that sent it sees no answer, records
/// the grant as in doubt, and is killed; the write lands after the restart. The
/// grant must be revoked and the finalizer must wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_past_the_timeout_of_a_resource_deleted_meanwhile_is_revoked() {
    let started = Instant::now();
    let mut world = World::new(Options {
        request_timeout: 1,
        ..Options::single(Vendor::Snowflake)
    })
    .await;
    let snowflake = world.snowflake.clone().expect("snowflake");
    let the_post = {
        let snowflake = snowflake.clone();
        move || {
            snowflake
                .calls()
                .into_iter()
                .find(|call| call.method == "POST" && call.path.starts_with("/api/v2/roles/"))
                .map(|call| call.status)
        }
    };
    snowflake.inject(support::emulator::Fault {
        method: Some("POST".into()),
        path_prefix: "/api/v2/roles/".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(1300)),
    });
    world.start();
    let ready = world.providers_ready(CONVERGE).await;
    assert!(matches!(ready, Waited::Done), "{ready:?}");
    world.apply(&[declare(
        Vendor::Snowflake,
        "a",
        &[(1, privileges(&["USAGE"], true))],
    )]);
    support::eventually("the grant write arrives", || the_post().is_some()).await;
    let sent = Instant::now();
    world.apply(&[Action::Delete(Vendor::Snowflake, "a".into())]);
    // The operator gives up on the write after its 1 s timeout and records it.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(sent.elapsed())).await;
    world.kill().await;
    world.start();
    let waited = world.converge(None, CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(&world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out("did not converge", problems));
    }
    let run = Run {
        steps: Vec::new(),
        killed: true,
        failure: (!violations.is_empty()).then(|| {
            report(
                "snowflake: a held write of a resource deleted meanwhile, past the timeout, then a kill",
                "cargo test --test crash a_write_held_past_the_timeout -- --nocapture",
                &world,
                &[],
                &violations,
            )
        }),
        violations,
        took: started.elapsed(),
    };
    conclude("a_write_held_past_the_timeout", &[run], started);
}

/// A whole-list write (Dremio's PUT) sent by an operator that is killed while
/// the vendor holds it, and that lands after the restarted operator could have
/// written: it replaces the whole list with the one the dead operator computed.
/// So while a dead operator's write may still land on a target where it had
/// work in progress (here the intent rows of the deleted resource), the
/// restarted operator writes nothing there; what is declared meanwhile is
/// granted after, and never revoked by the late write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_whole_list_write_of_a_dead_operator_is_never_overtaken() {
    let started = Instant::now();
    let mut world = World::new(Options::single(Vendor::Dremio)).await;
    let dremio = world.dremio.clone().expect("dremio");
    let the_put = {
        let dremio = dremio.clone();
        move || {
            dremio
                .calls()
                .into_iter()
                .find(|call| call.method == "PUT" && call.path.starts_with("/api/v3/catalog/"))
                .map(|call| call.status)
        }
    };
    // Carried out 1.5 s after it arrives, whatever happens to its sender.
    dremio.inject(support::emulator::Fault {
        method: Some("PUT".into()),
        path_prefix: "/api/v3/catalog/".into(),
        times: 1,
        kind: FaultKind::Delay(Duration::from_millis(1500)),
    });
    world.start();
    let ready = world.providers_ready(CONVERGE).await;
    assert!(matches!(ready, Waited::Done), "{ready:?}");
    world.apply(&[declare(
        Vendor::Dremio,
        "a",
        &[(0, privileges(&["SELECT"], false))],
    )]);
    support::eventually("the grant list write arrives", || the_put().is_some()).await;
    world.kill().await;
    assert_eq!(
        the_put(),
        Some(0),
        "the write is held when the operator dies"
    );
    // While it is down, the first resource goes and another grantee is declared
    // on the same object; the restarted operator must not write that grant
    // before the held list (which does not have it) lands.
    world.apply(&[
        Action::Delete(Vendor::Dremio, "a".into()),
        declare(Vendor::Dremio, "b", &[(1, privileges(&["INSERT"], false))]),
    ]);
    world.start();
    let waited = world.converge(None, CONVERGE, GRACE, false).await;
    world.stop().await;
    let mut violations = check(&world);
    if let (Waited::TimedOut(problems), true) = (waited, violations.is_empty()) {
        violations.push(timed_out("did not converge", problems));
    }
    let run = Run {
        steps: Vec::new(),
        killed: true,
        failure: (!violations.is_empty()).then(|| {
            report(
                "dremio: a whole-list write held by the vendor lands after a kill and a restart",
                "cargo test --test crash a_held_whole_list_write -- --nocapture",
                &world,
                &[],
                &violations,
            )
        }),
        violations,
        took: started.elapsed(),
    };
    conclude(
        "a_held_whole_list_write_of_a_dead_operator",
        &[run],
        started,
    );
}

// ---------------------------------------------------------------------------
// The hooks themselves
// ---------------------------------------------------------------------------

mod hooks {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use grant_operator::api::SigmaGrant;
    use kube::api::{Api, Patch, PatchParams};
    use serde_json::{Value, json};

    use crate::support::dremio::{DremioEmulator, GrantRecord, GranteeType};
    use crate::support::emulator::{Fault, FaultKind, Intercept, RandomFaults, Stage};
    use crate::support::fake_kube::{FakeKube, Hold, StatusFault};
    use crate::support::*;

    const TOKEN: &str = "dremio-pat-hooks";

    struct Dremio {
        emulator: DremioEmulator,
        object: String,
        user: String,
    }

    async fn dremio() -> Dremio {
        grant_operator::install_crypto_provider();
        let emulator = DremioEmulator::start().await;
        emulator.add_token(TOKEN);
        let object = emulator.add_object(&["Sales"], &["SELECT", "ALTER"]);
        let user = emulator.add_user("jean", "jean@example.com");
        Dremio {
            emulator,
            object,
            user,
        }
    }

    impl Dremio {
        fn path(&self) -> String {
            format!(
                "{}/api/v3/catalog/{}/grants",
                self.emulator.url(),
                self.object
            )
        }

        /// PUTs a grant list giving the user SELECT, with a client timeout.
        async fn put(&self, timeout: Duration) -> Result<u16, reqwest::Error> {
            let body = json!({"grants": [{"granteeType": "USER", "id": self.user, "privileges": ["SELECT"]}]});
            reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("client")
                .put(self.path())
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .map(|response| response.status().as_u16())
        }

        async fn get(&self) -> u16 {
            reqwest::Client::new()
                .get(self.path())
                .bearer_auth(TOKEN)
                .send()
                .await
                .map(|response| response.status().as_u16())
                .expect("an answer")
        }

        fn granted(&self) -> bool {
            self.emulator.grants(&self.object)
                == vec![GrantRecord {
                    grantee_type: GranteeType::User,
                    id: self.user.clone(),
                    privileges: vec!["SELECT".into()],
                }]
        }

        fn fault(&self, kind: FaultKind) {
            self.emulator.inject(Fault {
                method: Some("PUT".into()),
                path_prefix: "/api/v3/catalog".into(),
                times: 1,
                kind,
            });
        }
    }

    #[tokio::test]
    async fn connections_dropped_before_or_after_the_change_and_late_answers() {
        let d = dremio().await;
        let patient = Duration::from_secs(5);

        d.fault(FaultKind::DropBefore);
        let dropped = d.put(patient).await.expect_err("no answer");
        assert!(!dropped.is_timeout(), "closed, not timed out: {dropped:?}");
        assert!(!d.granted(), "dropped before: not carried out");
        assert_eq!(d.emulator.calls().last().map(|c| c.status), Some(0));

        d.fault(FaultKind::DropAfter);
        let dropped = d.put(patient).await.expect_err("no answer");
        assert!(!dropped.is_timeout(), "closed, not timed out: {dropped:?}");
        assert!(d.granted(), "dropped after: carried out");

        // Answered after the client gave up, but carried out at once.
        d.emulator.set_grants_directly(&d.object, Vec::new());
        d.fault(FaultKind::DelayAnswer(Duration::from_millis(500)));
        let late = d
            .put(Duration::from_millis(100))
            .await
            .expect_err("timed out");
        assert!(late.is_timeout(), "{late:?}");
        assert!(d.granted(), "carried out before the answer");

        // Delay (existing): carried out only after the delay, even if the client gave up.
        d.emulator.set_grants_directly(&d.object, Vec::new());
        d.fault(FaultKind::Delay(Duration::from_millis(400)));
        let late = d
            .put(Duration::from_millis(100))
            .await
            .expect_err("timed out");
        assert!(late.is_timeout(), "{late:?}");
        assert!(!d.granted(), "not yet carried out");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(d.granted(), "carried out late");

        // The server keeps serving.
        assert_eq!(d.put(patient).await.expect("answered"), 204);
    }

    #[tokio::test]
    async fn random_faults_replay_from_their_seed() {
        let statuses = |seed: u64| async move {
            let d = dremio().await;
            d.emulator.inject_random(RandomFaults {
                seed,
                probability: 0.5,
                method: Some("GET".into()),
                path_prefix: "/api/v3/catalog".into(),
                kinds: vec![FaultKind::Status(500), FaultKind::Status(503)],
            });
            let mut out = Vec::new();
            for _ in 0..40 {
                out.push(d.get().await);
            }
            // Other methods are not drawn for.
            assert_eq!(d.put(Duration::from_secs(5)).await.expect("answered"), 204);
            d.emulator.clear_random_faults();
            for _ in 0..10 {
                assert_eq!(d.get().await, 200);
            }
            out
        };
        let first = statuses(7).await;
        assert_eq!(first, statuses(7).await, "the same seed, the same faults");
        assert_ne!(first, statuses(8).await, "another seed, other faults");
        let faulted = first.iter().filter(|s| **s != 200).count();
        assert!((8..=32).contains(&faulted), "{faulted} of 40 at p=0.5");
        assert!(
            first.iter().all(|s| [200, 500, 503].contains(s)),
            "{first:?}"
        );
    }

    #[tokio::test]
    async fn an_interceptor_holds_requests_and_an_observer_sees_each_change_alone() {
        let d = Arc::new(dremio().await);
        let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
        {
            let weak = Arc::downgrade(&d);
            let seen = seen.clone();
            d.emulator.observe(move |call, stage| {
                if let Some(d) = weak.upgrade() {
                    let name = match stage {
                        Stage::Before => format!("before {}", call.method),
                        Stage::After { status } => format!("after {} {status}", call.method),
                    };
                    seen.lock().unwrap().push((name, d.granted()));
                }
            });
        }
        let (release, released) = tokio::sync::watch::channel(false);
        let hold = move |after: bool| {
            let mut released = released.clone();
            let until = Box::pin(async move {
                let _ = released.wait_for(|r| *r).await;
            });
            if after {
                Intercept::DropAfter(until)
            } else {
                Intercept::DropBefore(until)
            }
        };
        let holding = Arc::new(Mutex::new(Some(false)));
        {
            let holding = holding.clone();
            d.emulator
                .intercept(move |call| match *holding.lock().unwrap() {
                    Some(after) if call.method == "PUT" => hold(after),
                    _ => Intercept::Pass,
                });
        }

        // Held before: not carried out while held, nor after (the connection is closed).
        let request = tokio::spawn({
            let d = d.clone();
            async move { d.put(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!request.is_finished(), "held");
        assert!(!d.granted());
        release.send_replace(true);
        assert!(request.await.unwrap().is_err(), "no answer");
        assert!(!d.granted());

        // Held after: carried out at once, never answered.
        release.send_replace(false);
        *holding.lock().unwrap() = Some(true);
        let request = tokio::spawn({
            let d = d.clone();
            async move { d.put(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!request.is_finished(), "held");
        assert!(d.granted(), "carried out while the answer is held");
        release.send_replace(true);
        assert!(request.await.unwrap().is_err(), "no answer");

        *holding.lock().unwrap() = None;
        d.emulator.set_grants_directly(&d.object, Vec::new());
        seen.lock().unwrap().clear();
        assert_eq!(d.put(Duration::from_secs(5)).await.unwrap(), 204);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                ("before PUT".to_string(), false),
                ("after PUT 204".to_string(), true)
            ]
        );
    }

    fn grant_object(kube: &FakeKube) -> Api<SigmaGrant> {
        kube.register_kind(
            grant_operator::api::GROUP,
            grant_operator::api::VERSION,
            "sigmagrants",
            "SigmaGrant",
            true,
        );
        kube.register_status_subresource(grant_operator::api::GROUP, "sigmagrants");
        kube.put(&sigma_grant("readers", vec![]));
        Api::namespaced(kube.client(), NS)
    }

    fn stored_corrections(kube: &FakeKube) -> Value {
        let grant: SigmaGrant = kube.get(Some(NS), "readers").expect("stored");
        serde_json::to_value(grant.status.unwrap_or_default()).unwrap()["driftCorrections"].clone()
    }

    async fn write_status(api: &Api<SigmaGrant>, corrections: i64) -> Result<(), u16> {
        api.patch_status(
            "readers",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"driftCorrections": corrections}})),
        )
        .await
        .map(|_| ())
        .map_err(|error| match error {
            kube::Error::Api(status) => status.code,
            other => panic!("{other}"),
        })
    }

    #[tokio::test]
    async fn the_fake_api_server_fails_status_writes_and_holds_requests() {
        let kube = FakeKube::new();
        let api = grant_object(&kube);
        kube.fail_status_writes(
            1,
            StatusFault {
                code: 500,
                applied: false,
            },
        );
        kube.fail_status_writes(
            1,
            StatusFault {
                code: 409,
                applied: true,
            },
        );
        assert_eq!(write_status(&api, 1).await, Err(500));
        assert_eq!(stored_corrections(&kube), json!(0), "not stored");
        assert_eq!(write_status(&api, 2).await, Err(409));
        assert_eq!(
            stored_corrections(&kube),
            json!(2),
            "stored, the answer an error"
        );
        assert_eq!(write_status(&api, 3).await, Ok(()));

        kube.random_status_faults(
            1,
            1.0,
            vec![StatusFault {
                code: 503,
                applied: false,
            }],
        );
        assert_eq!(write_status(&api, 4).await, Err(503));
        kube.clear_status_faults();
        assert_eq!(write_status(&api, 5).await, Ok(()));

        // Held after handling: stored at once, answered on release.
        let (release, released) = tokio::sync::watch::channel(false);
        kube.intercept(move |call| {
            if call.method != "PATCH" {
                return Hold::Pass;
            }
            let mut released = released.clone();
            Hold::After(Box::pin(async move {
                let _ = released.wait_for(|r| *r).await;
            }))
        });
        let write = tokio::spawn({
            let api = api.clone();
            async move { write_status(&api, 6).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!write.is_finished(), "held");
        assert_eq!(stored_corrections(&kube), json!(6), "stored while held");
        release.send_replace(true);
        assert_eq!(write.await.unwrap(), Ok(()));
    }
}
