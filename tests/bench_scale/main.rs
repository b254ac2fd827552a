//! Scale benchmark of the real binary on all four vendors (ignored by default;
//! one command, see README "Performance"):
//!
//! ```sh
//! cargo test --release --test bench_scale -- --ignored --nocapture
//! ```
//!
//! The operator runs as its own process (all four grant controllers) against the
//! in-memory API server served over HTTP and the four vendor emulators, every
//! vendor call answered after an injected round trip (100 ms). Grant resources are
//! created at about 10 per second, in turn for each vendor, shaped as a real API
//! server sends them: `managedFields` of server-side apply (Argo CD), of
//! `kubectl`'s client-side apply and of the operator's own writes, the
//! `last-applied-configuration` annotation, labels and Argo CD's tracking
//! annotation; the operator adds its status rows (vendor ids, messages). Every
//! resource has `syncInterval: 60s` and declares two grants; each vendor has 50
//! vendor objects (Snowflake: 50 grantee roles, its unit).
//!
//! It prints a table of:
//! - resident memory of the operator process (`VmRSS`, sampled every 500 ms while
//!   converging: the peak; and after settling) at each checkpoint (1,000 / 5,000 /
//!   10,000 / 20,000 resources, up to `SCALE_RESOURCES`), and the bytes per
//!   resource between checkpoints;
//! - create -> Ready p50 / p99 per vendor: from the moment the API server stored
//!   the resource to the moment it received the first status write with
//!   `Ready=True` (a hook on the in-memory API server);
//! - vendor writes over the minimum the vendor APIs allow (see [`Minimum`]),
//!   counted from each emulator's call log;
//! - steady state, after convergence: listings per vendor object per interval (one
//!   per grantee for Snowflake) and vendor writes (must be 0), over
//!   `SCALE_STEADY_INTERVALS` intervals, with the operator's CPU over that window
//!   (`/proc/<pid>/stat` utime + stime) and the status writes it made.
//!
//! Knobs: `SCALE_RESOURCES` (10,000), `SCALE_RATE` (creations per second, 10),
//! `SCALE_OBJECTS` (vendor objects per vendor, 50), `SCALE_INTERVAL_SECS` (60),
//! `SCALE_RTT_MS` (100), `SCALE_STEADY_INTERVALS` (2), `SCALE_CHECKPOINTS`
//! (`1000,5000,10000,20000`), `BENCH_SETTLE_SECS` (20), `BENCH_WRAPPER` (run the
//! operator under a profiler, e.g. `valgrind --tool=massif`), `BENCH_OPERATOR`
//! (another build of the binary, to compare), `SCALE_REFRESH_INTERVALS`
//! (`--last-sync-refresh-intervals`; unset: the operator's default, README,
//! "Behaviour where the contract is silent", item 10).

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grant_operator::api::*;
use serde_json::{Value, json};
use support::fake_kube::FakeKube;
use support::*;

/// The four vendors, in the order resources are created.
const VENDORS: [&str; 4] = ["Sigma", "Grafana", "Dremio", "Snowflake"];
const PLURALS: [&str; 4] = [
    "sigmagrants",
    "grafanagrants",
    "dremiogrants",
    "snowflakegrants",
];

/// Grantees each vendor object draws from (so that resources share grants).
const POOL: usize = 40;
const SIGMA_MEMBERS: usize = 200;
const GRAFANA_USERS: usize = 100;
const GRAFANA_TEAMS: usize = 20;
const DREMIO_USERS: usize = 40;
const DREMIO_ROLES: usize = 20;
const SNOWFLAKE_TABLES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn scale_on_four_vendors() {
    let total: usize = env_number("SCALE_RESOURCES", 10_000);
    let rate: f64 = env_number("SCALE_RATE", 10.0);
    let objects: usize = env_number("SCALE_OBJECTS", 50);
    let interval_secs: u64 = env_number("SCALE_INTERVAL_SECS", 60);
    let rtt = Duration::from_millis(env_number("SCALE_RTT_MS", 100));
    let steady_intervals: u64 = env_number("SCALE_STEADY_INTERVALS", 2);
    let settle = Duration::from_secs(env_number("BENCH_SETTLE_SECS", 20));
    let mut checkpoints: Vec<usize> = std::env::var("SCALE_CHECKPOINTS")
        .unwrap_or_else(|_| "1000,5000,10000,20000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| *n < total)
        .collect();
    checkpoints.push(total);
    let interval = format!("{interval_secs}s");

    let world = World::new(objects).await;
    world.providers();
    let observed = Arc::new(Observed::default());
    {
        let observed = observed.clone();
        world.kube.on_request(move |call| {
            if call.method == "GET" {
                let listing = PLURALS.iter().any(|plural| call.path.ends_with(plural))
                    && !call.query.split('&').any(|pair| pair == "watch=true");
                if listing {
                    observed.grant_lists.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            let Some(rest) = call.path.strip_suffix("/status") else {
                observed.other_writes.fetch_add(1, Ordering::Relaxed);
                return;
            };
            observed.status_writes.fetch_add(1, Ordering::Relaxed);
            let ready = call
                .body
                .as_ref()
                .and_then(|body| body["status"]["conditions"].as_array())
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            if ready {
                let mut parts = rest.rsplit('/');
                let name = parts.next().unwrap_or_default();
                let plural = parts.next().unwrap_or_default();
                observed
                    .ready
                    .lock()
                    .unwrap()
                    .entry(format!("{plural}/{name}"))
                    .or_insert_with(Instant::now);
            }
        });
    }
    let kubeconfig = serve_kube_over_http(&world.kube).await;
    // The operator's default lastSyncTime refresh unless SCALE_REFRESH_INTERVALS
    // names another (README, "Behaviour where the contract is silent", item 10).
    let refresh = std::env::var("SCALE_REFRESH_INTERVALS").ok();
    let mut args = vec!["--log-level", "warn"];
    if let Some(refresh) = &refresh {
        args.extend(["--last-sync-refresh-intervals", refresh.as_str()]);
    }
    let operator = spawn_operator(&kubeconfig, &args);
    let pid = operator.id();
    let started = Instant::now();
    while !world.providers_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the providers did not become Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("providers Ready after {:?}", started.elapsed());
    world.delay_every_call(rtt);
    clear_calls(&world);

    // Creation at `rate` per second, pausing at each checkpoint until every resource
    // created so far is Ready, then letting the operator settle.
    let mut created: Vec<(usize, String, Instant)> = Vec::with_capacity(total);
    let mut minimum = Minimum::default();
    let mut rows = Vec::new();
    let mut peak = 0;
    let clock = Instant::now();
    let mut paused = Duration::ZERO;
    for &checkpoint in &checkpoints {
        while created.len() < checkpoint {
            let index = created.len();
            let due = clock + paused + Duration::from_secs_f64(index as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let (vendor, name) = world.create(index, &interval);
            minimum.arrive(index, objects);
            created.push((
                vendor,
                format!("{}/{name}", PLURALS[vendor]),
                Instant::now(),
            ));
            if index.is_multiple_of(5) {
                peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            }
        }
        let pause = Instant::now();
        let deadline = pause + Duration::from_secs(1800);
        loop {
            peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            let ready = observed.ready.lock().unwrap().len();
            if ready >= created.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {ready} of {} resources became Ready",
                created.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let converged = pause.elapsed();
        let until = Instant::now() + settle;
        while Instant::now() < until {
            peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let settled = proc_status_kib(pid, "VmRSS:");
        eprintln!(
            "{checkpoint} resources: Ready {converged:?} after the last creation; resident {:.1} MiB settled, peak {:.1} MiB, high-water {:.1} MiB",
            mib(settled),
            mib(peak),
            mib(proc_status_kib(pid, "VmHWM:"))
        );
        rows.push((checkpoint, peak, settled, converged));
        paused += pause.elapsed();
    }

    // Latency per vendor, from creation to the first Ready=True.
    let ready = observed.ready.lock().unwrap().clone();
    let mut latency: [Vec<Duration>; 4] = Default::default();
    for (vendor, key, at) in &created {
        if let Some(done) = ready.get(key) {
            latency[*vendor].push(done.saturating_duration_since(*at));
        }
    }
    for list in &mut latency {
        list.sort();
    }
    let converging = tally(&world);

    // Steady state: one interval to let the last resyncs pass, then the window.
    tokio::time::sleep(Duration::from_secs(interval_secs) + settle).await;
    clear_calls(&world);
    let status_before = observed.status_writes.load(Ordering::Relaxed);
    let other_before = observed.other_writes.load(Ordering::Relaxed);
    let lists_before = observed.grant_lists.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds(pid);
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(interval_secs * steady_intervals)).await;
    let window = window_start.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid) - cpu_before) / window;
    let steady = tally(&world);
    let gaps = listing_gaps(&world);
    let status_writes = observed.status_writes.load(Ordering::Relaxed) - status_before;
    let other_writes = observed.other_writes.load(Ordering::Relaxed) - other_before;
    let grant_lists = observed.grant_lists.load(Ordering::Relaxed) - lists_before;
    let resident = proc_status_kib(pid, "VmRSS:");

    // The table.
    let refreshed = match &refresh {
        Some(n) => format!("every {n} intervals"),
        None => "at the default".into(),
    };
    println!();
    println!(
        "## grant-operator at scale: {total} resources on 4 vendors, {objects} vendor objects each, {:?} round trips, syncInterval {interval}, {rate}/s created, lastSyncTime refresh {refreshed}",
        rtt
    );
    println!();
    println!("| resources | resident peak | resident settled | Ready after the last creation |");
    println!("|---|---|---|---|");
    for (count, peak, settled, converged) in &rows {
        println!(
            "| {count} | {:.1} MiB | {:.1} MiB | {:.1} s |",
            mib(*peak),
            mib(*settled),
            converged.as_secs_f64()
        );
    }
    for pair in rows.windows(2) {
        let (a, _, sa, _) = pair[0];
        let (b, _, sb, _) = pair[1];
        let slope = (sb as f64 - sa as f64) * 1024.0 / (b - a) as f64;
        println!("slope {a} -> {b}: {slope:.0} bytes per resource (settled)");
    }
    println!();
    println!(
        "| vendor | resources | create->Ready p50 | p99 | max | writes | minimum | writes/minimum | listings | other calls | peak calls/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for vendor in 0..4 {
        let list = &latency[vendor];
        let (listings, writes, others, peak_rate) = converging[vendor];
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {writes} | {} | {:.3} | {listings} | {others} | {peak_rate} |",
            VENDORS[vendor],
            list.len(),
            percentile(list, 50.0).as_secs_f64(),
            percentile(list, 99.0).as_secs_f64(),
            list.last().copied().unwrap_or_default().as_secs_f64(),
            minimum.writes[vendor],
            writes as f64 / minimum.writes[vendor].max(1) as f64,
        );
    }
    let all_writes: u64 = converging.iter().map(|c| c.1).sum();
    let all_minimum: u64 = minimum.writes.iter().sum();
    println!(
        "all vendors: {all_writes} writes, minimum {all_minimum}: {:.3}",
        all_writes as f64 / all_minimum.max(1) as f64
    );
    println!();
    println!(
        "steady state over {steady_intervals} intervals ({window:.0} s): CPU {:.2}% of a core, {status_writes} status writes, {other_writes} other API writes, {grant_lists} listing pages of grant kinds (relists; {} in the whole run), resident {:.1} MiB",
        cpu * 100.0,
        observed.grant_lists.load(Ordering::Relaxed),
        mib(resident)
    );
    println!();
    println!(
        "| vendor | listings | per object per interval (count) | mean gap between an object's listings | per object per interval (from the gap) | writes | other calls |"
    );
    println!("|---|---|---|---|---|---|---|");
    for vendor in 0..4 {
        let (listings, writes, others, _) = steady[vendor];
        let (gap, ratio) = match gaps[vendor] {
            Some(gap) => (
                format!("{:.1} s", gap.as_secs_f64()),
                format!("{:.3}", interval_secs as f64 / gap.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {listings} | {:.3} | {gap} | {ratio} | {writes} | {others} |",
            VENDORS[vendor],
            listings as f64 / (objects as u64 * steady_intervals) as f64
        );
    }

    stop_operator(operator).await;
    let _ = std::fs::remove_file(&kubeconfig);
}

mod measure;
mod workload;
mod world;
use measure::*;
use workload::*;
use world::*;
