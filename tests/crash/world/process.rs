//! The operator as a process that can be killed, and the kill switch.
//!
//! - **The operator process** runs `controller::run::run` on a tokio runtime of
//!   its own, in a thread of its own, with a kube client made inside it. A
//!   kill drops `run` and shuts that runtime down: every task the operator
//!   spawned (watches, the kube client's buffer, HTTP connections) dies with
//!   it, as in a process kill. Nothing graceful happens.
//! - **The kill switch** sees every request the API server and the emulators
//!   receive, in arrival order, and counts the ones a sync awaits: every vendor
//!   request and every API request except LISTs and WATCHes (those only feed
//!   the caches). Armed at request k, it holds request k before it is handled
//!   (`Arrival`) or after it was handled, with its answer withheld (`Answer`),
//!   and from then on holds every request without handling it: the operator
//!   is frozen at that request until the test kills it. Held vendor requests
//!   are released after the kill and their connections closed unanswered.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use grant_operator::controller::{Config, SystemClock, run};
use grant_operator::metrics::Metrics;

use crate::support::fake_kube::FakeKube;
use crate::support::fast_retries;

/// The operator's settings in every crash test: fast retries and backoff.
pub fn operator_config() -> Config {
    Config {
        error_backoff: Duration::from_millis(50),
        vendor_retry: fast_retries(),
        default_sync_interval: Duration::from_secs(2),
        // Every sync writes lastSyncTime: the checks prove a resource was synced
        // after a restart or after the faults stopped by its lastSyncTime.
        last_sync_refresh_intervals: 1,
        ..Config::default()
    }
}

/// The operator in a runtime of its own; dropping it kills it.
pub struct Operator {
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    dead: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Operator {
    pub fn start(kube: FakeKube, config: Config) -> Operator {
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (died, dead) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("operator".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the operator's runtime starts");
                runtime.block_on(async move {
                    let client = kube.client();
                    // Never signalled: the operator is only ever killed.
                    let shutdown = futures::future::pending::<()>().boxed().shared();
                    let metrics = Arc::new(Metrics::new());
                    tokio::select! {
                        _ = run::run(client, config, metrics, Arc::new(SystemClock), shutdown) => {}
                        // A kill, or the test dropping the operator.
                        _ = killed => {}
                    }
                });
                // Every task still in the runtime is dropped here.
                runtime.shutdown_timeout(Duration::from_secs(5));
                let _ = died.send(());
            })
            .expect("the operator's thread starts");
        Operator {
            kill: Some(kill),
            dead: Some(dead),
        }
    }

    /// Kills the operator and waits until its runtime is gone.
    pub async fn kill(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(dead) = self.dead.take() {
            let _ = dead.await;
        }
    }
}

/// When the switch kills relative to the request it is armed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// When the request arrives: it is never handled.
    Arrival,
    /// After the request was handled: its answer never reaches the operator.
    Answer,
}

impl When {
    pub fn name(self) -> &'static str {
        match self {
            When::Arrival => "arrival",
            When::Answer => "answer",
        }
    }
}

/// One counted request.
#[derive(Clone, Debug)]
pub struct Step {
    pub n: usize,
    pub source: &'static str,
    pub method: String,
    pub path: String,
    pub at: Instant,
}

impl Step {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    pub fn show(&self) -> String {
        format!("#{} {} {} {}", self.n, self.source, self.method, self.path)
    }
}

#[derive(Default)]
struct SwitchState {
    /// Every request seen (counted or not, held or not): source, method, path, when.
    arrivals: Vec<(&'static str, String, String, Instant)>,
    /// Requests counted so far.
    counted: usize,
    /// Counted requests that were writes (not GET).
    writes: usize,
    /// The kill: at this many counted requests (or writes, if `.2`).
    target: Option<(usize, When, bool)>,
    frozen: bool,
    tripped: Option<(Step, When)>,
    steps: Vec<Step>,
    /// Release generation of the current freeze.
    generation: u64,
}

/// Counts requests and freezes the operator at the one it is armed at.
pub struct KillSwitch {
    state: Mutex<SwitchState>,
    tripped: tokio::sync::watch::Sender<bool>,
    released: tokio::sync::watch::Sender<u64>,
}

/// What the switch decides for a request.
pub enum Decision {
    Pass,
    HoldBefore,
    HoldAfter,
}

/// Whether a request counts as an await point of a sync: not a LIST or WATCH
/// of the API server.
fn counted(source: &str, method: &str, path: &str, query: &str) -> bool {
    if source != "kube" || method != "GET" {
        return true;
    }
    if query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1")
    {
        return false;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..).unwrap_or_default(),
        Some(&"apis") => segments.get(3..).unwrap_or_default(),
        _ => return true,
    };
    let list = rest.len() == 1 || (rest.len() == 3 && rest[0] == "namespaces");
    !list
}

impl KillSwitch {
    pub(super) fn new() -> KillSwitch {
        KillSwitch {
            state: Mutex::new(SwitchState::default()),
            tripped: tokio::sync::watch::Sender::new(false),
            released: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn decide(
        &self,
        source: &'static str,
        method: &str,
        path: &str,
        query: &str,
    ) -> Decision {
        let mut st = self.lock();
        st.arrivals
            .push((source, method.to_string(), path.to_string(), Instant::now()));
        if st.frozen {
            return Decision::HoldBefore;
        }
        if !counted(source, method, path, query) {
            return Decision::Pass;
        }
        st.counted += 1;
        if method != "GET" {
            st.writes += 1;
        }
        let step = Step {
            n: st.counted,
            source,
            method: method.to_string(),
            path: path.to_string(),
            at: Instant::now(),
        };
        st.steps.push(step.clone());
        let now = |writes: bool| if writes { st.writes } else { st.counted };
        match st.target {
            Some((k, when, writes)) if k == now(writes) && (!writes || method != "GET") => {
                st.frozen = true;
                st.tripped = Some((step, when));
                self.tripped.send_replace(true);
                match when {
                    When::Arrival => Decision::HoldBefore,
                    When::Answer => Decision::HoldAfter,
                }
            }
            _ => Decision::Pass,
        }
    }

    /// A future that completes when the current freeze is released.
    pub(super) fn release_of(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let generation = self.lock().generation;
        let mut released = self.released.subscribe();
        Box::pin(async move {
            let _ = released.wait_for(|done| *done > generation).await;
        })
    }

    /// Kills at counted request `k` (counted from the world's start).
    pub fn arm(&self, k: usize, when: When) {
        self.lock().target = Some((k, when, false));
    }

    /// Kills at the `n`-th write from now (the writes are where a kill can
    /// leave something unrecorded).
    pub fn arm_at_write(&self, n: usize, when: When) {
        let mut st = self.lock();
        st.target = Some((st.writes + n.max(1), when, true));
    }

    /// No kill planned.
    pub fn disarm(&self) {
        self.lock().target = None;
    }

    /// Requests counted so far.
    pub fn counted(&self) -> usize {
        self.lock().counted
    }

    /// The requests seen after `since` (every request, counted or not), as lines.
    pub fn arrived_after(&self, since: Instant) -> Vec<String> {
        self.lock()
            .arrivals
            .iter()
            .filter(|(_, _, _, at)| *at > since)
            .map(|(source, method, path, _)| format!("{source} {method} {path}"))
            .collect()
    }

    /// The counted requests so far.
    pub fn steps(&self) -> Vec<Step> {
        self.lock().steps.clone()
    }

    pub fn tripped(&self) -> Option<(Step, When)> {
        self.lock().tripped.clone()
    }

    /// Waits until the switch trips.
    pub async fn wait_tripped(&self) {
        let mut tripped = self.tripped.subscribe();
        let _ = tripped.wait_for(|t| *t).await;
    }

    /// After the kill: releases what was held and lets requests through again.
    pub(super) fn reset(&self) {
        let mut st = self.lock();
        st.frozen = false;
        st.target = None;
        st.tripped = None;
        self.tripped.send_replace(false);
        st.generation += 1;
        self.released.send_replace(st.generation);
    }
}
