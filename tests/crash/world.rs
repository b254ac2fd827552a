//! One world of a crash test: the in-memory API server (which outlives operator
//! restarts, as etcd does), the vendor emulators with their seeded objects,
//! the operator as a process that can be killed, and the records the
//! invariants are checked against.
//!
//! - **The operator process** runs `controller::run::run` on a tokio runtime of
//!   its own, in a thread of its own, with a kube client made inside it. A
//!   kill drops `run` and shuts that runtime down: every task the operator
//!   spawned (watches, the kube client's buffer, HTTP connections) dies with
//!   it, as in a process kill. Nothing graceful happens. After each kill no
//!   request may reach the API server, nor (after a moment for requests
//!   already on the wire) an emulator.
//! - **The kill switch** sees every request the API server and the emulators
//!   receive, in arrival order, and counts the ones a sync awaits: every vendor
//!   request and every API request except LISTs and WATCHes (those only feed
//!   the caches). Armed at request k, it holds request k before it is handled
//!   (`Arrival`) or after it was handled, with its answer withheld (`Answer`),
//!   and from then on holds every request without handling it: the operator
//!   is frozen at that request until the test kills it. Held vendor requests
//!   are released after the kill and their connections closed unanswered.
//! - **The journal** records every declaration change (with the instants
//!   before and after it was written) and, through the emulators' observers,
//!   every request that changed a vendor's grants, with the grants before and
//!   after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use grant_operator::api::*;
use grant_operator::controller::{Config, SystemClock, run};
use grant_operator::metrics::Metrics;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::model::*;
use crate::support::dremio::DremioEmulator;
use crate::support::emulator::{Call, Intercept, Stage};
use crate::support::fake_kube::{FakeKube, Hold};
use crate::support::grafana::GrafanaEmulator;
use crate::support::sigma::SigmaEmulator;
use crate::support::snowflake::SnowflakeEmulator;
use crate::support::*;
use crate::support::{dremio, emulator, grafana, sigma};

/// How long after a kill a vendor request the operator wrote to its socket
/// before dying may still reach an emulator: the emulator's task that reads it
/// may wait that long for a core when many worlds run at once on a loaded
/// machine (30 ms was too short at a load average of 20). A request from
/// something that survived the kill arrives later, or reaches the API server,
/// which allows no delay at all.
const VENDOR_SETTLE: Duration = Duration::from_millis(250);

/// What the world is made of.
#[derive(Clone, Debug)]
pub struct Options {
    pub vendors: Vec<Vendor>,
    pub grafana_api: GrafanaPermissionsApi,
    pub snowflake_api: SnowflakeGrantsApi,
    pub dremio_cloud: bool,
    /// `requestTimeoutSeconds` of every provider.
    pub request_timeout: i32,
}

impl Options {
    /// One vendor, on its default API.
    pub fn single(vendor: Vendor) -> Options {
        Options {
            vendors: vec![vendor],
            grafana_api: GrafanaPermissionsApi::AccessControl,
            snowflake_api: SnowflakeGrantsApi::RoleGrants,
            dremio_cloud: false,
            request_timeout: 2,
        }
    }
}

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

// ---------------------------------------------------------------------------
// The operator process
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The kill switch
// ---------------------------------------------------------------------------

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
    fn new() -> KillSwitch {
        KillSwitch {
            state: Mutex::new(SwitchState::default()),
            tripped: tokio::sync::watch::Sender::new(false),
            released: tokio::sync::watch::Sender::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self, source: &'static str, method: &str, path: &str, query: &str) -> Decision {
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
    fn release_of(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
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
    fn reset(&self) {
        let mut st = self.lock();
        st.frozen = false;
        st.target = None;
        st.tripped = None;
        self.tripped.send_replace(false);
        st.generation += 1;
        self.released.send_replace(st.generation);
    }
}

// ---------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------

/// A declaration change: a resource created, edited (`spec`), or deleted (`None`).
#[derive(Clone, Debug)]
pub struct Change {
    /// Just before it was written: atoms it removes are gone from here on.
    pub before: Instant,
    /// Just after: atoms it adds are declared from here on.
    pub after: Instant,
    pub vendor: Vendor,
    pub name: String,
    pub spec: Option<Spec>,
}

/// A request that changed a vendor's grants.
#[derive(Clone, Debug)]
pub struct Transition {
    /// When the vendor started handling it.
    pub at: Instant,
    pub arrived: Instant,
    pub vendor: Vendor,
    pub request: String,
    pub status: u16,
    pub before: Atoms,
    pub after: Atoms,
}

/// What a vendor holds: atoms, and keys held by more than one grant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub atoms: Atoms,
    pub duplicates: Vec<String>,
}

#[derive(Default)]
struct JournalState {
    changes: Vec<Change>,
    transitions: Vec<Transition>,
    before: HashMap<Vendor, (Instant, Live)>,
}

/// Declaration changes and vendor transitions.
pub struct Journal {
    pub started: Instant,
    state: Mutex<JournalState>,
}

/// A request as one line: method, path, query and body (shortened).
pub fn describe(call: &Call) -> String {
    let mut line = format!("{} {}", call.method, call.path);
    if !call.query.is_empty() {
        line.push('?');
        line.push_str(&call.query);
    }
    if let Some(body) = &call.body {
        let mut body = body.to_string();
        if body.len() > 400 {
            body.truncate(400);
            body.push_str("...");
        }
        line.push(' ');
        line.push_str(&body);
    }
    line
}

impl Journal {
    fn new() -> Journal {
        Journal {
            started: Instant::now(),
            state: Mutex::new(JournalState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JournalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Milliseconds since the world started, for printing.
    pub fn ms(&self, at: Instant) -> String {
        format!(
            "{:>6}ms",
            at.saturating_duration_since(self.started).as_millis()
        )
    }

    fn observed(&self, vendor: Vendor, call: &Call, stage: Stage, live: Live) {
        let mut st = self.lock();
        match stage {
            Stage::Before => {
                st.before.insert(vendor, (Instant::now(), live));
            }
            Stage::After { status } => {
                let Some((at, before)) = st.before.remove(&vendor) else {
                    return;
                };
                if before.atoms != live.atoms {
                    st.transitions.push(Transition {
                        at,
                        arrived: call.at,
                        vendor,
                        request: describe(call),
                        status,
                        before: before.atoms,
                        after: live.atoms,
                    });
                }
            }
        }
    }

    pub fn record(&self, change: Change) {
        self.lock().changes.push(change);
    }

    pub fn changes(&self) -> Vec<Change> {
        self.lock().changes.clone()
    }

    pub fn transitions(&self) -> Vec<Transition> {
        self.lock().transitions.clone()
    }

    /// What the resources of `vendor` declared at `t` (outsiders not included).
    pub fn declared_at(&self, vendor: Vendor, t: Instant) -> Atoms {
        let mut union = Atoms::new();
        for atoms in self.declared_by_at(vendor, t).values() {
            unite(&mut union, atoms);
        }
        union
    }

    /// What each resource of `vendor` declared at `t`. During a write (between
    /// `before` and `after`) only what both the old and the new spec declare
    /// counts.
    pub fn declared_by_at(&self, vendor: Vendor, t: Instant) -> BTreeMap<String, Atoms> {
        let changes = self.changes();
        let mut per_resource: BTreeMap<String, Atoms> = BTreeMap::new();
        for change in changes.iter().filter(|c| c.vendor == vendor) {
            if t < change.before {
                break;
            }
            let new = change
                .spec
                .as_ref()
                .map(|spec| spec_atoms(vendor, spec))
                .unwrap_or_default();
            if t >= change.after {
                per_resource.insert(change.name.clone(), new);
            } else {
                let old = per_resource.remove(&change.name).unwrap_or_default();
                let mut both = Atoms::new();
                for (key, set) in old {
                    let kept: BTreeSet<String> = set
                        .intersection(new.get(&key).unwrap_or(&BTreeSet::new()))
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        both.insert(key, kept);
                    }
                }
                per_resource.insert(change.name.clone(), both);
            }
        }
        per_resource
    }

    /// Panics unless every atom of every vendor entered the union of the
    /// declarations at most once and left it at most once: the check of
    /// revokes relies on it (an atom declared again after it was revoked
    /// could be revoked by a sync that started before, which is no fault).
    pub fn assert_single_intervals(&self) {
        let changes = self.changes();
        for vendor in Vendor::ALL {
            let mut specs: BTreeMap<String, Atoms> = BTreeMap::new();
            let mut union = Atoms::new();
            let mut retired: BTreeSet<(String, String)> = BTreeSet::new();
            for change in changes.iter().filter(|c| c.vendor == vendor) {
                match &change.spec {
                    Some(spec) => specs.insert(change.name.clone(), spec_atoms(vendor, spec)),
                    None => specs.remove(&change.name),
                };
                let mut next = Atoms::new();
                for atoms in specs.values() {
                    unite(&mut next, atoms);
                }
                for (key, set) in &next {
                    for atom in set {
                        assert!(
                            !retired.contains(&(key.clone(), atom.clone())),
                            "test bug: {} {key} {atom} declared again after it left the declarations",
                            vendor.name()
                        );
                    }
                }
                for (key, set) in &union {
                    for atom in set {
                        if !next.get(key).is_some_and(|s| s.contains(atom)) {
                            retired.insert((key.clone(), atom.clone()));
                        }
                    }
                }
                union = next;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------

/// Vendor ids -> key labels.
type Labels = Arc<HashMap<String, String>>;

/// What the model says of one resource.
#[derive(Clone, Debug)]
pub struct Declared {
    pub spec: Spec,
    pub deleted: bool,
}

/// A kill that happened.
#[derive(Clone, Debug)]
pub struct Kill {
    pub step: Step,
    pub when: When,
    /// The counted requests just before it.
    pub context: Vec<Step>,
}

pub struct World {
    pub options: Options,
    pub kube: FakeKube,
    pub sigma: Option<Arc<SigmaEmulator>>,
    pub grafana: Option<Arc<GrafanaEmulator>>,
    pub dremio: Option<Arc<DremioEmulator>>,
    pub snowflake: Option<Arc<SnowflakeEmulator>>,
    dremio_object: String,
    labels: HashMap<Vendor, Labels>,
    pub switch: Arc<KillSwitch>,
    pub journal: Arc<Journal>,
    operator: Option<Operator>,
    pub resources: BTreeMap<(Vendor, String), Declared>,
    pub kills: Vec<Kill>,
    /// Problems of the harness itself (requests after a kill).
    pub harness_problems: Vec<String>,
    /// When each resource's status was last written (handled), by `plural/name`.
    status_writes: StatusWrites,
}

type StatusWrites = Arc<Mutex<HashMap<String, Instant>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `plural/name` of a status write (PUT or PATCH of a `/status` subresource).
fn status_write(call: &crate::support::fake_kube::RecordedCall) -> Option<String> {
    if !matches!(call.method.as_str(), "PATCH" | "PUT") {
        return None;
    }
    let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., plural, name, "status"] => Some(format!("{plural}/{name}")),
        _ => None,
    }
}

/// A point in time after which every surviving resource must have been synced.
#[derive(Clone, Copy, Debug)]
pub struct Since {
    /// `lastSyncTime` (the start of the last sync, in whole seconds) at or after this.
    pub wall: Timestamp,
    /// Or a status write after this, when `writes` (see [`Since::restart`]).
    pub instant: Instant,
    pub writes: bool,
}

impl Since {
    /// Right before a (re)start: every sync of the new operator starts after
    /// it, so its status writes prove a sync (`lastSyncTime` alone could not
    /// tell a sync in the same second).
    pub fn restart() -> Since {
        Since {
            wall: Timestamp::now(),
            instant: Instant::now(),
            writes: true,
        }
    }

    /// Now, with a running operator: only a sync that started later counts,
    /// and `lastSyncTime` has whole seconds, so from the next whole second.
    pub fn now() -> Since {
        let now = Timestamp::now();
        let wall = Timestamp::from_second(now.as_second() + 1).unwrap_or(now);
        Since {
            wall,
            instant: Instant::now(),
            writes: false,
        }
    }
}

fn secret(kube: &FakeKube, name: &str, data: &[(&str, &str)]) {
    kube.put(&secret_with_data(NS, name, data));
}

fn fast(provider: &mut GrantProvider, timeout: i32) {
    provider.spec.request_timeout_seconds = Some(timeout);
    provider.spec.rate_limit = Some(RateLimit {
        requests_per_second: 1000.0,
        burst: Some(1000),
    });
}

fn project_sigma(emulator: &SigmaEmulator, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for grant in emulator.grants(CONNECTION) {
        let id = match &grant.grantee {
            sigma::Grantee::Member(id) | sigma::Grantee::Team(id) => id.clone(),
        };
        let key = labels.get(&id).cloned().unwrap_or(id);
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two grants"));
        }
        live.atoms
            .entry(key)
            .or_default()
            .extend(live_atoms(Vendor::Sigma, &grant.permission));
    }
    live
}

fn project_grafana(emulator: &GrafanaEmulator, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for entry in emulator.permissions(DATASOURCE_UID) {
        if !entry.managed || entry.inherited {
            continue;
        }
        let id = match &entry.grantee {
            grafana::Grantee::User(id) => format!("user:{id}"),
            grafana::Grantee::Team(id) => format!("team:{id}"),
            grafana::Grantee::BuiltIn(role) => format!("role:{role}"),
        };
        let key = labels.get(&id).cloned().unwrap_or(id);
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two entries"));
        }
        live.atoms
            .entry(key)
            .or_default()
            .extend(live_atoms(Vendor::Grafana, entry.permission.name()));
    }
    live
}

fn project_dremio(emulator: &DremioEmulator, object: &str, labels: &Labels) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for entry in emulator.grants(object) {
        let key = labels.get(&entry.id).cloned().unwrap_or(entry.id.clone());
        if !seen.insert(key.clone()) {
            live.duplicates.push(format!("{key} holds two entries"));
        }
        let atoms = live.atoms.entry(key.clone()).or_default();
        for privilege in &entry.privileges {
            if !atoms.insert(privilege.clone()) {
                live.duplicates
                    .push(format!("{key} holds {privilege} twice"));
            }
        }
    }
    live
}

fn project_snowflake(emulator: &SnowflakeEmulator) -> Live {
    let mut live = Live::default();
    let mut seen = BTreeSet::new();
    for (securable, privilege) in emulator.live("ROLE", SNOWFLAKE_ROLE) {
        if !seen.insert((securable.clone(), privilege.clone())) {
            live.duplicates
                .push(format!("{securable} holds {privilege} twice"));
        }
        live.atoms
            .entry(securable)
            .or_default()
            .extend(live_atoms(Vendor::Snowflake, &privilege));
    }
    live
}

/// Installs the kill switch on an emulator and the journal's observer.
fn watch_emulator<V: emulator::Vendor>(
    emulator: &Arc<emulator::Server<V>>,
    vendor: Vendor,
    switch: &Arc<KillSwitch>,
    journal: &Arc<Journal>,
    project: impl Fn(&emulator::Server<V>) -> Live + Send + Sync + 'static,
) {
    let source = vendor.name();
    let killer = switch.clone();
    emulator.intercept(move |call| {
        match killer.decide(source, &call.method, &call.path, &call.query) {
            Decision::Pass => Intercept::Pass,
            Decision::HoldBefore => Intercept::DropBefore(killer.release_of()),
            Decision::HoldAfter => Intercept::DropAfter(killer.release_of()),
        }
    });
    let weak: Weak<emulator::Server<V>> = Arc::downgrade(emulator);
    let journal = journal.clone();
    emulator.observe(move |call, stage| {
        if let Some(emulator) = weak.upgrade() {
            journal.observed(vendor, call, stage, project(&emulator));
        }
    });
}

impl World {
    /// The API server with the kinds, the namespace, Secrets and providers;
    /// the emulators of `options.vendors` with their grantees, objects and the
    /// outsider's grant; the kill switch and observers installed. No operator yet.
    pub async fn new(options: Options) -> World {
        grant_operator::install_crypto_provider();
        let kube = operator_kube();
        kube.put(&Namespace {
            metadata: ObjectMeta {
                name: Some(NS.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        });
        let switch = Arc::new(KillSwitch::new());
        let journal = Arc::new(Journal::new());
        let status_writes: StatusWrites = Arc::default();
        {
            let killer = switch.clone();
            let status_writes = status_writes.clone();
            kube.intercept(move |call| {
                match killer.decide("kube", &call.method, &call.path, &call.query) {
                    Decision::Pass => match status_write(call) {
                        // Noted once it was handled.
                        Some(object) => {
                            let status_writes = status_writes.clone();
                            Hold::After(Box::pin(async move {
                                lock(&status_writes).insert(object, Instant::now());
                            }))
                        }
                        None => Hold::Pass,
                    },
                    Decision::HoldBefore => Hold::Before(killer.release_of()),
                    Decision::HoldAfter => Hold::After(killer.release_of()),
                }
            });
        }

        let mut world = World {
            options: options.clone(),
            kube,
            sigma: None,
            grafana: None,
            dremio: None,
            snowflake: None,
            dremio_object: String::new(),
            labels: HashMap::new(),
            switch,
            journal,
            operator: None,
            resources: BTreeMap::new(),
            kills: Vec::new(),
            harness_problems: Vec::new(),
            status_writes,
        };
        for vendor in options.vendors.clone() {
            world.set_up(vendor).await;
        }
        world
    }

    async fn set_up(&mut self, vendor: Vendor) {
        let timeout = self.options.request_timeout;
        let mut labels = HashMap::new();
        match vendor {
            Vendor::Sigma => {
                let sigma = Arc::new(SigmaEmulator::start().await);
                sigma.add_client(CLIENT_ID, CLIENT_SECRET);
                sigma.add_connection(CONNECTION);
                for key in 0..4 {
                    labels.insert(
                        sigma.add_member(&format!("m{key}@example.com")),
                        vendor.key_label(key),
                    );
                }
                for key in 4..6 {
                    labels.insert(
                        sigma.add_team(&format!("team-{}", key - 4)),
                        vendor.key_label(key),
                    );
                }
                let outsider = sigma.add_member("outsider@example.com");
                labels.insert(outsider.clone(), "outsider".into());
                sigma.seed_grant(CONNECTION, sigma::Grantee::Member(outsider), "usage");
                secret(
                    &self.kube,
                    "sigma-api",
                    &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
                );
                let mut provider = sigma_provider(NS, vendor.provider(), &sigma.url(), "sigma-api");
                fast(&mut provider, timeout);
                self.kube.put(&provider);
                let labels: Labels = Arc::new(labels);
                let project = labels.clone();
                watch_emulator(&sigma, vendor, &self.switch, &self.journal, move |e| {
                    project_sigma(e, &project)
                });
                self.labels.insert(vendor, labels);
                self.sigma = Some(sigma);
            }
            Vendor::Grafana => {
                let grafana = Arc::new(GrafanaEmulator::start().await);
                grafana.add_token(1, GRAFANA_TOKEN);
                grafana.add_datasource(1, DATASOURCE_UID, DATASOURCE_NAME);
                for key in 0..4 {
                    let id =
                        grafana.add_user(1, &format!("u{key}"), &format!("u{key}@example.com"));
                    labels.insert(format!("user:{id}"), vendor.key_label(key));
                }
                for key in 4..6 {
                    let id = grafana.add_team(1, &format!("team-{}", key - 4));
                    labels.insert(format!("team:{id}"), vendor.key_label(key));
                }
                let outsider = grafana.add_user(1, "outsider", "outsider@example.com");
                labels.insert(format!("user:{outsider}"), "outsider".into());
                grafana.seed_permission(
                    DATASOURCE_UID,
                    grafana::Grantee::User(outsider),
                    grafana::Level::Edit,
                    true,
                    false,
                );
                secret(&self.kube, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
                let mut provider = grafana_provider(
                    NS,
                    vendor.provider(),
                    &grafana.url(),
                    "grafana-sa",
                    self.options.grafana_api,
                );
                fast(&mut provider, timeout);
                self.kube.put(&provider);
                let labels: Labels = Arc::new(labels);
                let project = labels.clone();
                watch_emulator(&grafana, vendor, &self.switch, &self.journal, move |e| {
                    project_grafana(e, &project)
                });
                self.labels.insert(vendor, labels);
                self.grafana = Some(grafana);
            }
            Vendor::Dremio => {
                let dremio = Arc::new(DremioEmulator::start().await);
                dremio.add_token(DREMIO_TOKEN);
                dremio.add_project(DREMIO_PROJECT);
                let object = dremio.add_object(&DREMIO_PATH, &crate::support::DREMIO_PRIVILEGES);
                for key in 0..3 {
                    let name = format!("u{key}");
                    labels.insert(
                        dremio.add_user(&name, &format!("{name}@example.com")),
                        vendor.key_label(key),
                    );
                }
                for key in 3..6 {
                    labels.insert(
                        dremio.add_role(&format!("r{}", key - 3)),
                        vendor.key_label(key),
                    );
                }
                let outsiders = dremio.add_role("outsiders");
                labels.insert(outsiders.clone(), "outsiders".into());
                dremio.set_grants_directly(
                    &object,
                    vec![dremio::GrantRecord {
                        grantee_type: dremio::GranteeType::Role,
                        id: outsiders,
                        privileges: vec!["SELECT".into()],
                    }],
                );
                secret(&self.kube, "dremio-pat", &[("token", DREMIO_TOKEN)]);
                let mut provider = dremio_provider(
                    NS,
                    vendor.provider(),
                    &dremio.url(),
                    "dremio-pat",
                    self.options.dremio_cloud.then_some(DREMIO_PROJECT),
                );
                fast(&mut provider, timeout);
                self.kube.put(&provider);
                let labels: Labels = Arc::new(labels);
                let project = labels.clone();
                let projected = object.clone();
                watch_emulator(&dremio, vendor, &self.switch, &self.journal, move |e| {
                    project_dremio(e, &projected, &project)
                });
                self.labels.insert(vendor, labels);
                self.dremio_object = object;
                self.dremio = Some(dremio);
            }
            Vendor::Snowflake => {
                let snowflake = Arc::new(SnowflakeEmulator::start().await);
                seed_snowflake(&snowflake);
                snowflake.grant_direct(
                    "ROLE",
                    SNOWFLAKE_ROLE,
                    "WAREHOUSE",
                    "COMPUTE_WH",
                    "USAGE",
                    false,
                );
                secret(
                    &self.kube,
                    "snowflake-key",
                    &[("private-key", SNOWFLAKE_KEY)],
                );
                let mut provider = snowflake_provider(
                    NS,
                    vendor.provider(),
                    &snowflake.url(),
                    "snowflake-key",
                    SnowflakeLogin::KeyPair,
                    self.options.snowflake_api,
                );
                fast(&mut provider, timeout);
                self.kube.put(&provider);
                watch_emulator(
                    &snowflake,
                    vendor,
                    &self.switch,
                    &self.journal,
                    project_snowflake,
                );
                self.labels.insert(vendor, Arc::new(labels));
                self.snowflake = Some(snowflake);
            }
        }
    }

    /// What `vendor` holds now.
    pub fn live(&self, vendor: Vendor) -> Live {
        let labels = self.labels.get(&vendor).cloned().unwrap_or_default();
        match vendor {
            Vendor::Sigma => self
                .sigma
                .as_ref()
                .map(|e| project_sigma(e, &labels))
                .unwrap_or_default(),
            Vendor::Grafana => self
                .grafana
                .as_ref()
                .map(|e| project_grafana(e, &labels))
                .unwrap_or_default(),
            Vendor::Dremio => self
                .dremio
                .as_ref()
                .map(|e| project_dremio(e, &self.dremio_object, &labels))
                .unwrap_or_default(),
            Vendor::Snowflake => self
                .snowflake
                .as_ref()
                .map(|e| project_snowflake(e))
                .unwrap_or_default(),
        }
    }

    /// The key label of a status row's grantee (`member:ID`, `user:ID`, a securable).
    pub fn row_label(&self, vendor: Vendor, grantee: &str) -> String {
        let labels = self.labels.get(&vendor);
        let lookup = |text: &str| labels.and_then(|labels| labels.get(text)).cloned();
        lookup(grantee)
            .or_else(|| grantee.split_once(':').and_then(|(_, id)| lookup(id)))
            .unwrap_or_else(|| grantee.to_string())
    }

    /// The union of the surviving declarations of `vendor`, plus the outsider's grant.
    pub fn expected(&self, vendor: Vendor) -> Atoms {
        let mut atoms = Atoms::new();
        for ((v, _), declared) in &self.resources {
            if *v == vendor && !declared.deleted {
                unite(&mut atoms, &spec_atoms(vendor, &declared.spec));
            }
        }
        let (key, held) = outsider(vendor);
        atoms
            .entry(key.to_string())
            .or_default()
            .extend(held.iter().map(|atom| atom.to_string()));
        atoms
    }

    // ----- declarations -----

    /// Creates or edits the resource `name` of `vendor` to declare `spec`.
    pub fn declare(&mut self, vendor: Vendor, name: &str, spec: Spec) {
        let object = resource(vendor, name, &spec);
        let exists = self
            .resources
            .get(&(vendor, name.to_string()))
            .is_some_and(|declared| !declared.deleted);
        let before = Instant::now();
        if exists {
            let new_spec = object["spec"].clone();
            let edited = match vendor {
                Vendor::Sigma => self.modify::<SigmaGrant>(name, new_spec),
                Vendor::Grafana => self.modify::<GrafanaGrant>(name, new_spec),
                Vendor::Dremio => self.modify::<DremioGrant>(name, new_spec),
                Vendor::Snowflake => self.modify::<SnowflakeGrant>(name, new_spec),
            };
            assert!(edited, "{name} exists to be edited");
        } else {
            match vendor {
                Vendor::Sigma => self.kube.put(&typed::<SigmaGrant>(object)),
                Vendor::Grafana => self.kube.put(&typed::<GrafanaGrant>(object)),
                Vendor::Dremio => self.kube.put(&typed::<DremioGrant>(object)),
                Vendor::Snowflake => self.kube.put(&typed::<SnowflakeGrant>(object)),
            };
        }
        let after = Instant::now();
        self.journal.record(Change {
            before,
            after,
            vendor,
            name: name.to_string(),
            spec: Some(spec.clone()),
        });
        self.resources.insert(
            (vendor, name.to_string()),
            Declared {
                spec,
                deleted: false,
            },
        );
    }

    fn modify<K: kube::Resource<DynamicType = ()>>(&self, name: &str, spec: Value) -> bool {
        self.kube
            .modify::<K>(Some(NS), name, move |object| object["spec"] = spec)
    }

    /// Deletes the resource `name` of `vendor` (its finalizer keeps it until the operator lets go).
    pub fn delete(&mut self, vendor: Vendor, name: &str) {
        let before = Instant::now();
        match vendor {
            Vendor::Sigma => self.kube.delete::<SigmaGrant>(Some(NS), name),
            Vendor::Grafana => self.kube.delete::<GrafanaGrant>(Some(NS), name),
            Vendor::Dremio => self.kube.delete::<DremioGrant>(Some(NS), name),
            Vendor::Snowflake => self.kube.delete::<SnowflakeGrant>(Some(NS), name),
        }
        let after = Instant::now();
        self.journal.record(Change {
            before,
            after,
            vendor,
            name: name.to_string(),
            spec: None,
        });
        if let Some(declared) = self.resources.get_mut(&(vendor, name.to_string())) {
            declared.deleted = true;
        }
    }

    /// Carries out a list of declaration changes.
    pub fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Declare(vendor, name, spec) => self.declare(*vendor, name, spec.clone()),
                Action::Delete(vendor, name) => self.delete(*vendor, name),
            }
        }
    }

    // ----- the operator -----

    pub fn start(&mut self) {
        assert!(self.operator.is_none(), "the operator already runs");
        self.operator = Some(Operator::start(self.kube.clone(), operator_config()));
    }

    /// Kills the operator (after the switch tripped, or at once), checks that
    /// nothing of it is left making requests, and lets requests through again.
    pub async fn kill(&mut self) {
        let Some(operator) = self.operator.take() else {
            return;
        };
        operator.kill().await;
        // Nothing of the operator may be left making requests. API requests
        // are in-process: none may arrive once its runtime is gone. A vendor
        // request written to its socket just before the kill may still be read
        // by the emulator a moment later, so vendors get a moment to settle.
        let dead = Instant::now();
        tokio::time::sleep(VENDOR_SETTLE).await;
        let settled = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let late: Vec<String> = self
            .switch
            .arrived_after(dead)
            .into_iter()
            .filter(|line| line.starts_with("kube "))
            .chain(
                self.switch
                    .arrived_after(settled)
                    .into_iter()
                    .filter(|line| !line.starts_with("kube ")),
            )
            .collect();
        if !late.is_empty() {
            self.harness_problems.push(format!(
                "requests arrived after the operator was killed (something of it survived the kill): {}",
                late.join("; ")
            ));
        }
        if let Some((step, when)) = self.switch.tripped() {
            let steps = self.switch.steps();
            let from = step.n.saturating_sub(8).max(1);
            let context = steps
                .iter()
                .filter(|s| s.n >= from && s.n < step.n)
                .cloned()
                .collect();
            self.kills.push(Kill {
                step,
                when,
                context,
            });
        }
        self.switch.reset();
    }

    /// Stops the operator at the end of a test.
    pub async fn stop(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.kill().await;
        }
    }

    // ----- waiting -----

    /// Why the resources are not settled: survivors not Ready/Synced at their
    /// generation (and, with `since`, not synced since: a `lastSyncTime` at or
    /// after it, or a status write after it, as `lastSyncTime` has whole
    /// seconds), deleted ones still present. Empty when settled.
    pub fn unsettled_resources(&self, since: Option<Since>) -> Vec<String> {
        let mut problems = Vec::new();
        for vendor in &self.options.vendors {
            let stored: HashMap<String, Value> = self
                .kube
                .list_json(GROUP, vendor.plural())
                .into_iter()
                .map(|object| {
                    (
                        object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        object,
                    )
                })
                .collect();
            for ((v, name), declared) in &self.resources {
                if v != vendor {
                    continue;
                }
                let object = stored.get(name);
                if declared.deleted {
                    if let Some(object) = object {
                        problems.push(format!(
                            "{} {name} was deleted but is still there (finalizers {}; Ready {})",
                            vendor.name(),
                            object["metadata"]["finalizers"],
                            ready_summary(object)
                        ));
                    }
                    continue;
                }
                let Some(object) = object else {
                    problems.push(format!("{} {name} is missing", vendor.name()));
                    continue;
                };
                let generation = object["metadata"]["generation"].as_i64();
                let status = &object["status"];
                let ready = ready_of(object);
                let synced = ready.is_some_and(|ready| {
                    ready["status"] == "True"
                        && ready["reason"] == "Synced"
                        && ready["observedGeneration"].as_i64() == generation
                }) && status["observedGeneration"].as_i64() == generation;
                let fresh = match since {
                    None => true,
                    Some(since) => {
                        status["lastSyncTime"]
                            .as_str()
                            .and_then(|t| t.parse::<Timestamp>().ok())
                            .is_some_and(|t| t >= since.wall)
                            || since.writes
                                && lock(&self.status_writes)
                                    .get(&format!("{}/{name}", vendor.plural()))
                                    .is_some_and(|at| *at >= since.instant)
                    }
                };
                if !synced || !fresh {
                    problems.push(format!(
                        "{} {name} is not Synced at generation {} by a sync since {}: Ready {}; lastSyncTime {}",
                        vendor.name(),
                        generation.unwrap_or_default(),
                        since
                            .map(|s| s.wall.to_string())
                            .unwrap_or_else(|| "-".into()),
                        ready_summary(object),
                        status["lastSyncTime"]
                    ));
                }
            }
        }
        problems
    }

    /// Vendors whose grants differ from the surviving declarations.
    pub fn vendor_mismatches(&self) -> Vec<String> {
        self.options
            .vendors
            .iter()
            .filter_map(|vendor| {
                let live = self.live(*vendor).atoms;
                let expected = self.expected(*vendor);
                (live != expected).then(|| {
                    format!(
                        "{} holds {} but the declarations are {}",
                        vendor.name(),
                        show(&live),
                        show(&expected)
                    )
                })
            })
            .collect()
    }

    /// Waits until the resources are settled and the vendors hold what they
    /// declare. Returns early when the kill switch trips (if `interruptible`).
    /// Once the resources are settled, the vendors get `grace` to match.
    pub async fn converge(
        &self,
        since: Option<Since>,
        limit: Duration,
        grace: Duration,
        interruptible: bool,
    ) -> Waited {
        let deadline = tokio::time::Instant::now() + limit;
        let mut settled_at: Option<tokio::time::Instant> = None;
        loop {
            if interruptible && self.switch.tripped().is_some() {
                return Waited::Tripped;
            }
            let mut problems = self.unsettled_resources(since);
            if problems.is_empty() {
                let now = tokio::time::Instant::now();
                let first = *settled_at.get_or_insert(now);
                problems = self.vendor_mismatches();
                if problems.is_empty() {
                    return Waited::Done;
                }
                if now >= first + grace {
                    return Waited::TimedOut(problems);
                }
            } else {
                settled_at = None;
            }
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut(problems);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits `wait`, or less if the switch trips.
    pub async fn pause(&self, wait: Duration) -> Waited {
        tokio::select! {
            _ = tokio::time::sleep(wait) => Waited::Done,
            _ = self.switch.wait_tripped() => Waited::Tripped,
        }
    }

    /// Waits until every provider is Ready (or the switch trips).
    pub async fn providers_ready(&self, limit: Duration) -> Waited {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.switch.tripped().is_some() {
                return Waited::Tripped;
            }
            let pending: Vec<String> = self
                .options
                .vendors
                .iter()
                .filter(|vendor| {
                    !self
                        .kube
                        .get::<GrantProvider>(Some(NS), vendor.provider())
                        .and_then(|p| p.status)
                        .is_some_and(|s| {
                            s.conditions
                                .iter()
                                .any(|c| c.type_ == READY && c.status == "True")
                        })
                })
                .map(|vendor| format!("provider {} is not Ready", vendor.provider()))
                .collect();
            if pending.is_empty() {
                return Waited::Done;
            }
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut(pending);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Dropping the operator kills it (its thread ends on its own).
        self.operator.take();
        // Let held requests go so no emulator task waits forever.
        self.switch.reset();
    }
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited {
    Done,
    Tripped,
    TimedOut(Vec<String>),
}

/// A declaration change of a scenario.
#[derive(Clone, Debug)]
pub enum Action {
    /// Create or edit.
    Declare(Vendor, String, Spec),
    Delete(Vendor, String),
}

fn typed<K: serde::de::DeserializeOwned>(object: Value) -> K {
    serde_json::from_value(object).expect("resource deserializes")
}

fn ready_of(object: &Value) -> Option<&Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == READY)
}

/// `True/Synced "3 of 3 grants applied"`.
pub fn ready_summary(object: &Value) -> String {
    match ready_of(object) {
        Some(ready) => format!(
            "{}/{} {:?}",
            ready["status"].as_str().unwrap_or_default(),
            ready["reason"].as_str().unwrap_or_default(),
            ready["message"].as_str().unwrap_or_default()
        ),
        None => "(no Ready condition)".into(),
    }
}
