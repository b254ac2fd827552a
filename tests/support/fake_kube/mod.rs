//! An in-memory fake Kubernetes API server exposed as a [`tower::Service`].
//!
//! [`FakeKube::client`] returns a real [`kube::Client`] whose requests are answered by
//! this fake, so typed `Api<K>` calls, watchers/reflectors, `Controller`, the finalizer
//! helper and the event `Recorder` can run without a cluster.
//!
//! Objects are stored generically as `serde_json::Value`, keyed by
//! (group, version, plural, namespace-or-empty, name). Every change bumps a global
//! resourceVersion counter and is appended to a bounded history that watches replay.
//!
//! Approximations (compared to a real API server):
//! - server-side apply is a JSON merge of the applied body (no field ownership, fields
//!   omitted from a later apply are *not* removed); on `/status` the applied `status`
//!   replaces the stored status wholesale;
//! - strategic merge patch is treated as a JSON merge patch;
//! - no validation/defaulting/admission, no garbage collection (ownerReferences and
//!   namespace deletion do not cascade), no discovery endpoints (`/api`, `/apis`);
//! - `limit`/`continue` paginate a fresh snapshot each time (no consistent snapshot);
//! - watch bookmarks are only sent to end a streaming list (`sendInitialEvents`) and when
//!   a watch with `allowWatchBookmarks` times out.
//!
//! Watch/list modes: kube 5's `watcher::Config::default()` uses
//! `InitialListStrategy::ListWatch` (paginated LIST, then WATCH from the list's
//! resourceVersion). `Config::streaming_lists()` (WATCH with `sendInitialEvents=true`,
//! answered with ADDED events for the current state followed by a BOOKMARK annotated
//! `k8s.io/initial-events-end`) is supported too. A WATCH from resourceVersion `0`/unset
//! starts with synthetic ADDED events; from `N` it replays the recorded history after
//! `N`, or sends a `410 Gone` ERROR event when that history was already pruned.
//!
//! Faults, for crash tests: an interceptor sees every request before it is
//! handled and may hold it, before it is handled or before it is answered
//! ([`FakeKube::intercept`], [`Hold`]); status writes can fail, the next N of them
//! or each with a seeded probability, with or without having been stored
//! ([`FakeKube::fail_status_writes`], [`FakeKube::random_status_faults`]);
//! watches can deliver each change late, as a lagging watch cache does
//! ([`FakeKube::set_watch_lag`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use grant_operator::sandbox::emulator::SeededRng;
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{Value, json};

mod control;
mod routes;
mod selectors;
mod service;
mod store;
mod watch;

/// Default number of change events kept for watch replay.
const DEFAULT_HISTORY_LIMIT: usize = 10_000;

const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

type ResBody = UnsyncBoxBody<Bytes, Infallible>;
type Hook = Arc<dyn Fn(&RecordedCall) + Send + Sync>;
type Interceptor = Arc<dyn Fn(&RecordedCall) -> Hold + Send + Sync>;

/// What an interceptor ([`FakeKube::intercept`]) decides for a request.
pub enum Hold {
    /// Handle it as usual.
    Pass,
    /// Wait for the future before handling it: while it is pending the request
    /// has not reached the server. When it completes, the request is answered
    /// 503 without being handled.
    Before(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Handle it, then wait for the future before answering: the change is
    /// stored, but the client has no answer while the future is pending.
    After(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// How a status write fails ([`FakeKube::fail_status_writes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusFault {
    /// The status code answered, e.g. 500 or 409.
    pub code: u16,
    /// Whether the write is stored before the error is answered (an answer
    /// lost after the write took effect).
    pub applied: bool,
}

#[derive(Default)]
struct StatusFaults {
    /// The next writes fail like this, in order.
    queued: VecDeque<StatusFault>,
    /// Then each write fails with this probability, the fault picked uniformly.
    random: Option<(f64, Vec<StatusFault>, SeededRng)>,
}

impl StatusFaults {
    fn take(&mut self) -> Option<StatusFault> {
        if let Some(fault) = self.queued.pop_front() {
            return Some(fault);
        }
        let (probability, faults, rng) = self.random.as_mut()?;
        if faults.is_empty() || !rng.chance(*probability) {
            return None;
        }
        let pick = rng.below(faults.len());
        faults.get(pick).copied()
    }
}

/// One HTTP request received by the fake API server.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub method: String,
    pub path: String,
    /// Raw (still percent-encoded) query string, without the leading `?`.
    pub query: String,
    pub content_type: Option<String>,
    /// Request body parsed as JSON (`None` when empty or not JSON).
    pub body: Option<Value>,
    /// Response status code; `0` while the request is still being handled
    /// (this is what `on_request` hooks observe).
    pub status: u16,
}

/// In-memory fake Kubernetes API server. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeKube {
    inner: Arc<Inner>,
}

/// The `tower::Service` answering kube requests; obtained from [`FakeKube::service`].
#[derive(Clone)]
pub struct FakeKubeService {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Carries the latest resourceVersion; watches wait on it for changes.
    /// Always sent while holding the `state` lock.
    rv_tx: tokio::sync::watch::Sender<u64>,
    calls: Mutex<CallLog>,
    hooks: Mutex<Vec<Hook>>,
    interceptor: Mutex<Option<Interceptor>>,
    status_faults: Mutex<StatusFaults>,
    watch_lag: Mutex<Duration>,
}

#[derive(Default)]
struct CallLog {
    next_seq: u64,
    entries: Vec<(u64, RecordedCall)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Gvr {
    group: String,
    version: String,
    plural: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    gvr: Gvr,
    namespace: String,
    name: String,
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // version/scope are recorded for debugging; routing is path-driven
struct KindInfo {
    version: String,
    kind: String,
    namespaced: bool,
}

struct HistEvent {
    rv: u64,
    /// When the change was stored (watches deliver it no earlier than this plus the lag).
    at: tokio::time::Instant,
    key: Key,
    kind: EventKind,
    object: Value,
    prev: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventKind {
    Added,
    Modified,
    Deleted,
}

struct State {
    rv: u64,
    uid_counter: u64,
    rng: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<HistEvent>,
    history_limit: usize,
    /// Highest resourceVersion of an event dropped from `history`.
    pruned_up_to: u64,
    kinds: HashMap<(String, String), KindInfo>,
    status_sub: HashSet<(String, String)>,
}

/// Error answered as a Kubernetes `Status` object.
#[derive(Debug)]
struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }
    fn not_found(gvr: &Gvr, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", gvr.resource_name(), name),
        )
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
    fn conflict(gvr: &Gvr, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                gvr.resource_name(),
                name
            ),
        )
    }
    fn to_status(&self) -> Value {
        status_object(self.code, self.reason, &self.message)
    }
}

fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

impl Gvr {
    fn new(group: &str, version: &str, plural: &str) -> Self {
        Gvr {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
        }
    }
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}
