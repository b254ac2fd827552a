//! What is measured and how: CPU time from `/proc`, vendor calls classified and
//! tallied per vendor, listing gaps, percentiles and memory units.

use super::*;

/// CPU seconds (user + system) the process used so far.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 of stat(5), utime 14, stime 15.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / clock_ticks()
}

pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// How an emulator call counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// A listing of a unit's grants.
    Listing,
    /// A grant write (grant, revoke, level change, list replacement).
    Write,
    /// Anything else (authentication, look-ups, result polls).
    Other,
}

pub(crate) fn classify(vendor: usize, method: &str, path: &str) -> CallKind {
    let get = method == "GET";
    match vendor {
        0 if path.starts_with("/v2/connections/") && path.ends_with("/grants") && get => {
            CallKind::Listing
        }
        0 if path.starts_with("/v2/connections/") && path.contains("/grants") => CallKind::Write,
        1 if path.starts_with("/api/access-control/datasources/") => {
            let segments = path.trim_start_matches('/').split('/').count();
            match (get, segments) {
                (true, 4) if !path.ends_with("/description") => CallKind::Listing,
                (false, _) => CallKind::Write,
                _ => CallKind::Other,
            }
        }
        1 if path.contains("/permissions") && !get => CallKind::Write,
        1 if path.ends_with("/permissions") && get => CallKind::Listing,
        2 if path.ends_with("/grants") && get => CallKind::Listing,
        2 if path.ends_with("/grants") => CallKind::Write,
        3 if (path.ends_with("/grants") || path.ends_with("/future-grants")) && get => {
            CallKind::Listing
        }
        3 if path.contains("grants") && !get => CallKind::Write,
        _ => CallKind::Other,
    }
}

/// `(listings, writes, others, peak requests in any one second)` of each vendor.
pub(crate) fn tally(world: &World) -> [(u64, u64, u64, usize); 4] {
    let calls: [Vec<(String, String, Instant)>; 4] = [
        simple(world.sigma.calls()),
        simple(world.grafana.calls()),
        simple(world.dremio.calls()),
        simple(world.snowflake.calls()),
    ];
    let mut out = [(0, 0, 0, 0); 4];
    for (vendor, calls) in calls.iter().enumerate() {
        for (method, path, _) in calls {
            match classify(vendor, method, path) {
                CallKind::Listing => out[vendor].0 += 1,
                CallKind::Write => out[vendor].1 += 1,
                CallKind::Other => out[vendor].2 += 1,
            }
        }
        let mut times: Vec<Instant> = calls.iter().map(|(_, _, at)| *at).collect();
        times.sort();
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            out[vendor].3 = out[vendor].3.max(end - start + 1);
        }
    }
    out
}

/// Per vendor: the mean gap between consecutive listings of the same vendor
/// object (the same listing path), over every object listed at least twice.
/// `syncInterval / gap` is the listings per object per interval, free of where
/// the window's edges fall among the jittered resyncs.
pub(crate) fn listing_gaps(world: &World) -> [Option<Duration>; 4] {
    let calls: [Vec<(String, String, Instant)>; 4] = [
        simple(world.sigma.calls()),
        simple(world.grafana.calls()),
        simple(world.dremio.calls()),
        simple(world.snowflake.calls()),
    ];
    let mut out = [None; 4];
    for (vendor, calls) in calls.iter().enumerate() {
        let mut by_path: HashMap<&str, Vec<Instant>> = HashMap::new();
        for (method, path, at) in calls {
            if classify(vendor, method, path) == CallKind::Listing {
                by_path.entry(path.as_str()).or_default().push(*at);
            }
        }
        let (mut total, mut gaps) = (Duration::ZERO, 0u32);
        for times in by_path.values_mut() {
            times.sort();
            for pair in times.windows(2) {
                total += pair[1].duration_since(pair[0]);
                gaps += 1;
            }
        }
        if gaps > 0 {
            out[vendor] = Some(total / gaps);
        }
    }
    out
}

pub(crate) fn simple(calls: Vec<support::emulator::Call>) -> Vec<(String, String, Instant)> {
    calls
        .into_iter()
        .map(|call| (call.method, call.path, call.at))
        .collect()
}

pub(crate) fn clear_calls(world: &World) {
    world.sigma.clear_calls();
    world.grafana.clear_calls();
    world.dremio.clear_calls();
    world.snowflake.clear_calls();
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Status writes seen by the API server, and the first `Ready=True` of each resource.
#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) ready: Mutex<HashMap<String, Instant>>,
    pub(crate) status_writes: AtomicU64,
    pub(crate) other_writes: AtomicU64,
    /// Listings (not watches) of the grant kinds: a watch that cannot resume
    /// (`410 Gone`) lists its whole kind again.
    pub(crate) grant_lists: AtomicU64,
}
