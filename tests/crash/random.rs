//! Random kills: seeded random create/edit/delete sequences across the four
//! vendors (random API flavours), the operator killed at random requests and
//! something of what it was working on taken away while it is down; with and
//! without vendor and status faults. Everything of a run comes from its seed
//! (`CRASH_SEED`, `CRASH_RUNS`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use grant_operator::api::{GrafanaPermissionsApi, SnowflakeGrantsApi};

use crate::model::*;
use crate::outcome::{Run, conclude, converge_and_check};
use crate::parallel;
use crate::report::report;
use crate::support::emulator::{FaultKind, RandomFaults, SeededRng};
use crate::support::env_number;
use crate::support::fake_kube::StatusFault;
use crate::world::*;

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
    let violations =
        converge_and_check(&mut world, Some(since), "did not converge at the end").await;
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
