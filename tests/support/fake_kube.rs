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
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use grant_operator::sandbox::emulator::SeededRng;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

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

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

impl Default for FakeKube {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeKube {
    /// New empty fake API server. Core `Secret`, `Namespace`, `ConfigMap`, `Pod`,
    /// `Service`, `ServiceAccount`, `Event` (v1 and events.k8s.io/v1) and `Lease`
    /// kinds are pre-registered.
    pub fn new() -> FakeKube {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        let mut state = State {
            rv: 0,
            uid_counter: 0,
            rng: seed,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            pruned_up_to: 0,
            kinds: HashMap::new(),
            status_sub: HashSet::new(),
        };
        for (group, version, plural, kind, namespaced) in [
            ("", "v1", "secrets", "Secret", true),
            ("", "v1", "namespaces", "Namespace", false),
            ("", "v1", "configmaps", "ConfigMap", true),
            ("", "v1", "pods", "Pod", true),
            ("", "v1", "services", "Service", true),
            ("", "v1", "serviceaccounts", "ServiceAccount", true),
            ("", "v1", "events", "Event", true),
            ("events.k8s.io", "v1", "events", "Event", true),
            ("coordination.k8s.io", "v1", "leases", "Lease", true),
        ] {
            state.register_kind(group, version, plural, kind, namespaced);
        }
        let (rv_tx, _) = tokio::sync::watch::channel(0);
        FakeKube {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                rv_tx,
                calls: Mutex::new(CallLog::default()),
                hooks: Mutex::new(Vec::new()),
                interceptor: Mutex::new(None),
                status_faults: Mutex::new(StatusFaults::default()),
                watch_lag: Mutex::new(Duration::ZERO),
            }),
        }
    }

    /// The `tower::Service` implementing the API server.
    pub fn service(&self) -> FakeKubeService {
        FakeKubeService {
            inner: self.inner.clone(),
        }
    }

    /// A `kube::Client` talking to this fake (default namespace `"default"`).
    /// Must be called inside a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.service(), "default")
    }

    /// Declare that `group`/`plural` has a status subresource: writes to the main
    /// resource keep the stored `.status`; writes to `/status` only change `.status`.
    pub fn register_status_subresource(&self, group: &str, plural: &str) {
        self.inner
            .lock_state()
            .status_sub
            .insert((group.to_string(), plural.to_string()));
    }

    /// Register the Kind of a resource (used for list kinds and to fill in
    /// `apiVersion`/`kind` of created objects that lack them).
    pub fn register_kind(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) {
        self.inner
            .lock_state()
            .register_kind(group, version, plural, kind, namespaced);
    }

    /// Number of change events kept for watch replay (default 10 000). Watches
    /// resuming from an older resourceVersion get a `410 Gone` error event.
    pub fn set_history_limit(&self, limit: usize) {
        let mut st = self.inner.lock_state();
        st.history_limit = limit;
        st.prune_history();
    }

    /// Register a hook called synchronously for every HTTP request, before it is
    /// handled (the `status` field is `0` at that point).
    pub fn on_request(&self, f: impl Fn(&RecordedCall) + Send + Sync + 'static) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(f));
    }

    /// Calls `interceptor` with every HTTP request before it is handled (and
    /// before `on_request` hooks), replacing an earlier one; see [`Hold`]. It
    /// must not block.
    pub fn intercept(&self, interceptor: impl Fn(&RecordedCall) -> Hold + Send + Sync + 'static) {
        *self
            .inner
            .interceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(interceptor));
    }

    /// The next `times` writes (PUT or PATCH) to a `/status` subresource fail
    /// with `fault`, after any queued earlier.
    pub fn fail_status_writes(&self, times: usize, fault: StatusFault) {
        let mut faults = self.inner.lock_status_faults();
        faults.queued.extend(std::iter::repeat_n(fault, times));
    }

    /// From now on each write to a `/status` subresource (once the queued
    /// faults are used up) fails with probability `probability`, with a fault
    /// picked uniformly from `faults`; the draws come from `seed`.
    pub fn random_status_faults(&self, seed: u64, probability: f64, faults: Vec<StatusFault>) {
        self.inner.lock_status_faults().random = Some((probability, faults, SeededRng::new(seed)));
    }

    /// Watches deliver each change `lag` after it was stored (changes stored
    /// from now on; the initial listing of a watch is not delayed), as a watch
    /// cache that lags behind its store does. Reads (GET, LIST) are not delayed.
    pub fn set_watch_lag(&self, lag: Duration) {
        *self
            .inner
            .watch_lag
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lag;
    }

    /// No more status write faults, queued or random.
    pub fn clear_status_faults(&self) {
        *self.inner.lock_status_faults() = StatusFaults::default();
    }

    /// Create or replace an object directly (not recorded as a call). The whole
    /// object is stored (including `status`), except that `uid` and
    /// `creationTimestamp` of an existing object are kept; resourceVersion and
    /// generation are maintained and watch events are emitted. Returns the stored
    /// object (or the final state if it was removed because it is being deleted
    /// without finalizers).
    pub fn put<K: kube::Resource<DynamicType = ()> + serde::Serialize>(&self, obj: &K) -> Value {
        let gvr = Gvr::new(&K::group(&()), &K::version(&()), &K::plural(&()));
        let mut value = serde_json::to_value(obj).expect("object serializes to JSON");
        let namespace = obj.meta().namespace.clone();
        let name = obj
            .meta()
            .name
            .clone()
            .expect("FakeKube::put requires metadata.name");
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(K::api_version(&()).into_owned()),
            );
            map.insert("kind".into(), Value::String(K::kind(&()).into_owned()));
        }
        let key = Key {
            gvr: gvr.clone(),
            namespace: namespace.clone().unwrap_or_default(),
            name,
        };
        let mut st = self.inner.lock_state();
        if !st
            .kinds
            .contains_key(&(gvr.group.clone(), gvr.plural.clone()))
        {
            st.register_kind(
                &gvr.group,
                &gvr.version,
                &gvr.plural,
                &K::kind(&()),
                namespace.is_some(),
            );
        }
        let out = st.put_direct(&key, value);
        self.inner.notify(&st);
        out
    }

    /// Changes a stored object atomically (as a user's PATCH would, but not
    /// recorded as a call): `change` edits the object as stored, so status and
    /// finalizers written meanwhile are kept. resourceVersion and generation are
    /// maintained and a watch event is emitted. Returns false if the object
    /// does not exist.
    pub fn modify<K: kube::Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> bool {
        let key = Key {
            gvr: Gvr::new(&K::group(&()), &K::version(&()), &K::plural(&())),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        let mut st = self.inner.lock_state();
        let Some(mut object) = st.objects.get(&key).cloned() else {
            return false;
        };
        change(&mut object);
        st.put_direct(&key, object);
        self.inner.notify(&st);
        true
    }

    /// Read an object directly.
    pub fn get<K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<K> {
        let key = Key {
            gvr: Gvr::new(&K::group(&()), &K::version(&()), &K::plural(&())),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        let value = self.inner.lock_state().objects.get(&key).cloned()?;
        Some(serde_json::from_value(value).expect("stored object deserializes into K"))
    }

    /// Delete an object directly, with the same semantics as an HTTP DELETE
    /// (finalizers keep the object with a `deletionTimestamp`). No-op if absent.
    pub fn delete<K: kube::Resource<DynamicType = ()>>(&self, namespace: Option<&str>, name: &str) {
        let key = Key {
            gvr: Gvr::new(&K::group(&()), &K::version(&()), &K::plural(&())),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        let mut st = self.inner.lock_state();
        let _ = st.delete(&key, &Value::Null, false);
        self.inner.notify(&st);
    }

    /// All stored objects of `group`/`plural` (any version, any namespace).
    pub fn list_json(&self, group: &str, plural: &str) -> Vec<Value> {
        self.inner
            .lock_state()
            .objects
            .iter()
            .filter(|(k, _)| k.gvr.group == group && k.gvr.plural == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every HTTP request received so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.inner
            .lock_calls()
            .entries
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Forget recorded calls.
    pub fn clear_calls(&self) {
        self.inner.lock_calls().entries.clear();
    }
}

// ---------------------------------------------------------------------------
// tower::Service
// ---------------------------------------------------------------------------

impl tower::Service<Request<kube::client::Body>> for FakeKubeService {
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) => {
                    let e = ApiError::bad_request(format!("failed to read request body: {err}"));
                    return Ok(json_response(400, &e.to_status()));
                }
            };
            let interceptor = inner
                .interceptor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let hold = match interceptor {
                Some(interceptor) => interceptor(&RecordedCall {
                    method: parts.method.as_str().to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: serde_json::from_slice(&body).ok(),
                    status: 0,
                }),
                None => Hold::Pass,
            };
            match hold {
                Hold::Pass => Ok(inner.serve(parts, body)),
                Hold::Before(until) => {
                    until.await;
                    let e = ApiError::new(
                        503,
                        "ServiceUnavailable",
                        "the request was held and dropped",
                    );
                    Ok(json_response(503, &e.to_status()))
                }
                Hold::After(until) => {
                    let response = inner.serve(parts, body);
                    until.await;
                    Ok(response)
                }
            }
        })
    }
}

fn json_response(code: u16, value: &Value) -> Response<ResBody> {
    let bytes = serde_json::to_vec(value).expect("JSON serializes");
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response")
}

/// Wrap a stream of chunks into a response body. `http_body::Frame` is not
/// re-exported by the crates we depend on, so each data frame is obtained from a
/// `Full` body (which yields its single frame immediately).
fn streaming_body(chunks: impl Stream<Item = Bytes> + Send + 'static) -> ResBody {
    StreamBody::new(chunks.filter_map(|chunk| async move {
        let mut full = Full::new(chunk);
        full.frame().await
    }))
    .boxed_unsync()
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Target {
    gvr: Gvr,
    /// `None` for cluster-scoped objects and all-namespace collections.
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Reply {
    Json(u16, Value),
    Watch(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::Json(e.code, e.to_status())
    }
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let own = |s: &str| Some(s.to_string());
    let (namespace, plural, name, subresource) = match rest {
        [plural] => (None, *plural, None, None),
        // `/api/v1/namespaces/{name}/status` is the namespace's own subresource.
        ["namespaces", name, sub]
            if group.is_empty() && (*sub == "status" || *sub == "finalize") =>
        {
            (None, "namespaces", own(name), own(sub))
        }
        ["namespaces", ns, plural] => (own(ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (own(ns), *plural, own(name), None),
        ["namespaces", ns, plural, name, sub] => (own(ns), *plural, own(name), own(sub)),
        [plural, name] => (None, *plural, own(name), None),
        [plural, name, sub] => (None, *plural, own(name), own(sub)),
        _ => return None,
    };
    Some(Target {
        gvr: Gvr::new(group, version, plural),
        namespace,
        name,
        subresource,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

fn is_true(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true" | "1"))
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_calls(&self) -> MutexGuard<'_, CallLog> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_status_faults(&self) -> MutexGuard<'_, StatusFaults> {
        self.status_faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault of this request, if it is a status write that is to fail.
    fn status_fault(&self, method: &str, path: &str) -> Option<StatusFault> {
        let write = matches!(method, "PUT" | "PATCH");
        let status =
            parse_path(path).is_some_and(|target| target.subresource.as_deref() == Some("status"));
        if !(write && status) {
            return None;
        }
        self.lock_status_faults().take()
    }

    /// Wake watches; call while holding the state lock after a change.
    fn notify(&self, st: &State) {
        if *self.rv_tx.borrow() != st.rv {
            self.rv_tx.send_replace(st.rv);
        }
    }

    fn serve(self: Arc<Self>, parts: http::request::Parts, body: Bytes) -> Response<ResBody> {
        let method = parts.method.as_str().to_string();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let header = |name: http::header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let accept = header(http::header::ACCEPT).unwrap_or_default();
        let json_body: Option<Value> = if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };

        let call = RecordedCall {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: json_body.clone(),
            status: 0,
        };
        let hooks: Vec<Hook> = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for hook in &hooks {
            hook(&call);
        }
        let seq = {
            let mut log = self.lock_calls();
            let seq = log.next_seq;
            log.next_seq += 1;
            log.entries.push((seq, call));
            seq
        };

        let fault = self.status_fault(&method, &path);
        let reply = match (body.is_empty(), &json_body) {
            (false, None) => ApiError::bad_request("request body is not valid JSON").into(),
            // A write that fails unstored is never handled (the fault's answer replaces this).
            _ if fault.is_some_and(|fault| !fault.applied) => Reply::Json(0, Value::Null),
            _ => self.handle(
                &method,
                &path,
                &query,
                &accept,
                content_type.as_deref(),
                json_body,
            ),
        };

        let reply = match fault {
            Some(fault) => {
                let reason = match fault.code {
                    409 => "Conflict",
                    429 => "TooManyRequests",
                    503 => "ServiceUnavailable",
                    504 => "Timeout",
                    _ => "InternalError",
                };
                let stored = if fault.applied {
                    "stored"
                } else {
                    "not stored"
                };
                ApiError::new(
                    fault.code,
                    reason,
                    format!("injected status write fault (the write was {stored})"),
                )
                .into()
            }
            None => reply,
        };
        let (code, response) = match reply {
            Reply::Json(code, value) => (code, json_response(code, &value)),
            Reply::Watch(stream) => {
                let response = Response::builder()
                    .status(StatusCode::OK)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(streaming_body(stream))
                    .expect("valid response");
                (200, response)
            }
        };
        let mut log = self.lock_calls();
        if let Some((_, c)) = log.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            c.status = code;
        }
        response
    }

    fn handle(
        self: &Arc<Self>,
        method: &str,
        path: &str,
        query: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        if path == "/version" && method == "GET" {
            return Reply::Json(200, version_info());
        }
        let Some(target) = parse_path(path) else {
            return ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({path})"),
            )
            .into();
        };
        if let Some(sub) = &target.subresource
            && sub != "status"
        {
            return ApiError::new(
                404,
                "NotFound",
                format!("subresource {sub:?} is not supported by the fake API server"),
            )
            .into();
        }
        let q = parse_query(query);
        let meta_only = accept.contains("as=PartialObjectMetadata");
        // `dryRun=All` in the query; DELETE carries it in the DeleteOptions body.
        let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
            || method == "DELETE"
                && body
                    .as_ref()
                    .and_then(|b| b.get("dryRun"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
        let status_sub = target.subresource.is_some();
        let namespace = target.namespace.clone().unwrap_or_default();

        let mut st = self.lock_state();
        let result: Result<(u16, Value), ApiError> = match (method, &target.name) {
            ("GET", None) => {
                let selectors = match Selectors::from_query(&q) {
                    Ok(s) => s,
                    Err(e) => return e.into(),
                };
                if is_true(q.get("watch")) {
                    let spec = WatchSpec {
                        gvr: target.gvr.clone(),
                        namespace: target.namespace.clone(),
                        selectors,
                        meta_only,
                        bookmarks: is_true(q.get("allowWatchBookmarks")),
                        kind: st.kind_of(&target.gvr),
                    };
                    let timeout = q
                        .get("timeoutSeconds")
                        .and_then(|t| t.parse::<u64>().ok())
                        .filter(|t| *t > 0);
                    return match self.start_watch(
                        &st,
                        spec,
                        q.get("resourceVersion").map(String::as_str),
                        is_true(q.get("sendInitialEvents")),
                        timeout,
                    ) {
                        Ok(stream) => Reply::Watch(stream),
                        Err(e) => e.into(),
                    };
                }
                Ok((200, st.list(&target, &selectors, meta_only, &q)))
            }
            ("GET", Some(name)) => {
                let key = Key {
                    gvr: target.gvr.clone(),
                    namespace,
                    name: name.clone(),
                };
                match st.objects.get(&key) {
                    Some(obj) => Ok((200, obj.clone())),
                    None => Err(ApiError::not_found(&target.gvr, name)),
                }
            }
            ("POST", None) => match body {
                Some(body) => st
                    .create(
                        &target.gvr,
                        target.namespace.as_deref(),
                        body,
                        dry_run,
                        false,
                    )
                    .map(|o| (201, o)),
                None => Err(ApiError::bad_request("create requires a body")),
            },
            ("PUT", Some(name)) => {
                let key = Key {
                    gvr: target.gvr.clone(),
                    namespace,
                    name: name.clone(),
                };
                match body {
                    Some(body) => st.update(&key, body, status_sub, dry_run).map(|o| (200, o)),
                    None => Err(ApiError::bad_request("replace requires a body")),
                }
            }
            ("PATCH", Some(name)) => {
                let key = Key {
                    gvr: target.gvr.clone(),
                    namespace,
                    name: name.clone(),
                };
                match body {
                    Some(body) => st.patch(
                        &target,
                        &key,
                        content_type.unwrap_or_default(),
                        body,
                        dry_run,
                    ),
                    None => Err(ApiError::bad_request("patch requires a body")),
                }
            }
            ("DELETE", Some(name)) if !status_sub => {
                let key = Key {
                    gvr: target.gvr.clone(),
                    namespace,
                    name: name.clone(),
                };
                st.delete(&key, body.as_ref().unwrap_or(&Value::Null), dry_run)
                    .map(|o| (200, o))
            }
            ("DELETE", None) => {
                let selectors = match Selectors::from_query(&q) {
                    Ok(s) => s,
                    Err(e) => return e.into(),
                };
                let keys: Vec<Key> = st
                    .matching(&target.gvr, target.namespace.as_deref(), &selectors)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut items = Vec::new();
                for key in keys {
                    if let Ok(obj) = st.delete(&key, body.as_ref().unwrap_or(&Value::Null), dry_run)
                    {
                        items.push(obj);
                    }
                }
                Ok((200, st.list_object(&target.gvr, items, false)))
            }
            _ => Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("method {method} is not supported on {path}"),
            )),
        };
        self.notify(&st);
        drop(st);
        match result {
            Ok((code, value)) => {
                let value =
                    if meta_only && value.get("kind").and_then(Value::as_str) != Some("Status") {
                        if value.get("items").is_some() {
                            value
                        } else {
                            partial_metadata(&value)
                        }
                    } else {
                        value
                    };
                Reply::Json(code, value)
            }
            Err(e) => e.into(),
        }
    }

    fn start_watch(
        self: &Arc<Self>,
        st: &State,
        spec: WatchSpec,
        resource_version: Option<&str>,
        send_initial_events: bool,
        timeout: Option<u64>,
    ) -> Result<Pin<Box<dyn Stream<Item = Bytes> + Send>>, ApiError> {
        let from = match resource_version.filter(|s| !s.is_empty()) {
            None => 0,
            Some(rv) => rv
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        };
        let mut pending = VecDeque::new();
        let mut done = false;
        let cursor;
        if send_initial_events || from == 0 {
            // "Start at most recent" with synthetic ADDED events for current state.
            for (_, obj) in st.matching(&spec.gvr, spec.namespace.as_deref(), &spec.selectors) {
                pending.push_back(watch_line("ADDED", &spec.render(obj)));
            }
            cursor = st.rv;
            if send_initial_events {
                pending.push_back(watch_line("BOOKMARK", &spec.bookmark(cursor, true)));
            }
        } else {
            cursor = from;
            if from < st.pruned_up_to {
                pending.push_back(gone_line(from));
                done = true;
            }
        }
        // Subscribing while holding the state lock: the receiver has "seen" exactly
        // the state read above.
        let rx = self.rv_tx.subscribe();
        let watch = WatchState {
            inner: self.clone(),
            spec,
            cursor,
            rx,
            deadline: timeout.map(|t| tokio::time::Instant::now() + Duration::from_secs(t)),
            pending,
            lagging: VecDeque::new(),
            done,
        };
        Ok(Box::pin(futures::stream::unfold(watch, WatchState::next)))
    }
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn partial_metadata(obj: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({ "type": kind, "object": object })).expect("JSON serializes");
    line.push(b'\n');
    Bytes::from(line)
}

fn gone_line(rv: u64) -> Bytes {
    watch_line(
        "ERROR",
        &status_object(410, "Expired", &format!("too old resource version: {rv}")),
    )
}

// ---------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------

struct WatchSpec {
    gvr: Gvr,
    namespace: Option<String>,
    selectors: Selectors,
    meta_only: bool,
    bookmarks: bool,
    kind: String,
}

impl WatchSpec {
    fn render(&self, obj: &Value) -> Value {
        if self.meta_only {
            partial_metadata(obj)
        } else {
            obj.clone()
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let (api_version, kind) = if self.meta_only {
            (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadata".to_string(),
            )
        } else {
            (self.gvr.api_version(), self.kind.clone())
        };
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            metadata["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
        }
        json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata })
    }

    fn matches_key(&self, key: &Key) -> bool {
        key.gvr == self.gvr
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == key.namespace)
    }

    /// Translate a stored change into the event this watch sees (if any), taking
    /// selector transitions into account.
    fn translate(&self, ev: &HistEvent) -> Option<Bytes> {
        if !self.matches_key(&ev.key) {
            return None;
        }
        let now = self.selectors.matches(&ev.object);
        let kind = match ev.kind {
            EventKind::Added => now.then_some("ADDED")?,
            EventKind::Deleted => now.then_some("DELETED")?,
            EventKind::Modified => {
                let before = ev.prev.as_ref().is_some_and(|p| self.selectors.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
        };
        Some(watch_line(kind, &self.render(&ev.object)))
    }
}

struct WatchState {
    inner: Arc<Inner>,
    spec: WatchSpec,
    /// Every change with resourceVersion <= cursor has been considered.
    cursor: u64,
    rx: tokio::sync::watch::Receiver<u64>,
    deadline: Option<tokio::time::Instant>,
    pending: VecDeque<Bytes>,
    /// Changes waiting out the watch lag, with when they are due.
    lagging: VecDeque<(tokio::time::Instant, Bytes)>,
    done: bool,
}

impl WatchState {
    async fn next(mut self) -> Option<(Bytes, WatchState)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((line, self));
            }
            if let Some(due) = self.lagging.front().map(|(due, _)| *due)
                && (self.done || due <= tokio::time::Instant::now())
            {
                tokio::time::sleep_until(due).await;
                if let Some((_, line)) = self.lagging.pop_front() {
                    return Some((line, self));
                }
            }
            if self.done {
                return None;
            }
            self.rx.borrow_and_update();
            {
                let st = self.inner.lock_state();
                if self.cursor < st.pruned_up_to {
                    self.pending.push_back(gone_line(self.cursor));
                    self.done = true;
                    continue;
                }
                let lag = *self
                    .inner
                    .watch_lag
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let start = st.history.partition_point(|e| e.rv <= self.cursor);
                for ev in st.history.range(start..) {
                    if let Some(line) = self.spec.translate(ev) {
                        if lag.is_zero() && self.lagging.is_empty() {
                            self.pending.push_back(line);
                        } else {
                            self.lagging.push_back((ev.at + lag, line));
                        }
                    }
                }
                self.cursor = self.cursor.max(st.rv);
            }
            if !self.pending.is_empty() {
                continue;
            }
            if let Some(due) = self.lagging.front().map(|(due, _)| *due) {
                // A change comes due, or another is stored meanwhile.
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    changed = self.rx.changed() => {
                        if changed.is_err() {
                            self.done = true;
                        }
                    }
                }
                continue;
            }
            let changed = match self.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, self.rx.changed())
                    .await
                    .unwrap_or(Ok(())),
                None => self.rx.changed().await,
            };
            if changed.is_err()
                || self
                    .deadline
                    .is_some_and(|d| tokio::time::Instant::now() >= d)
            {
                // Timed out (or server gone): end the stream, telling the client
                // where to resume.
                if self.spec.bookmarks {
                    self.pending.push_back(watch_line(
                        "BOOKMARK",
                        &self.spec.bookmark(self.cursor, false),
                    ));
                }
                self.done = true;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Selectors {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

#[derive(Debug)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Debug)]
struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

/// Split on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => terms.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, ApiError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("invalid label selector set {s:?}")))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl Selectors {
    fn from_query(q: &HashMap<String, String>) -> Result<Selectors, ApiError> {
        let mut sel = Selectors::default();
        if let Some(ls) = q.get("labelSelector") {
            for term in split_terms(ls) {
                sel.labels.push(Self::parse_label_term(&term)?);
            }
        }
        if let Some(fs) = q.get("fieldSelector") {
            for term in split_terms(fs) {
                let (path, value, negate) = if let Some((p, v)) = term.split_once("!=") {
                    (p, v, true)
                } else if let Some((p, v)) = term.split_once("==") {
                    (p, v, false)
                } else if let Some((p, v)) = term.split_once('=') {
                    (p, v, false)
                } else {
                    return Err(ApiError::bad_request(format!(
                        "invalid field selector term {term:?}"
                    )));
                };
                sel.fields.push(FieldReq {
                    path: path.trim().to_string(),
                    value: value.trim().to_string(),
                    negate,
                });
            }
        }
        Ok(sel)
    }

    fn parse_label_term(term: &str) -> Result<LabelReq, ApiError> {
        if let Some(key) = term.strip_prefix('!') {
            return Ok(LabelReq::NotExists(key.trim().to_string()));
        }
        if let Some((k, set)) = term.split_once(" notin ") {
            return Ok(LabelReq::NotIn(k.trim().to_string(), parse_set(set)?));
        }
        if let Some((k, set)) = term.split_once(" in ") {
            return Ok(LabelReq::In(k.trim().to_string(), parse_set(set)?));
        }
        if let Some((k, v)) = term.split_once("!=") {
            return Ok(LabelReq::Ne(k.trim().to_string(), v.trim().to_string()));
        }
        if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            return Ok(LabelReq::Eq(k.trim().to_string(), v.trim().to_string()));
        }
        if term.contains(|c: char| c.is_whitespace() || "()<>".contains(c)) {
            return Err(ApiError::bad_request(format!(
                "unsupported label selector term {term:?}"
            )));
        }
        Ok(LabelReq::Exists(term.to_string()))
    }

    fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::In(k, set) => label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            LabelReq::NotIn(k, set) => label(k).is_none_or(|l| set.iter().all(|v| v != l)),
        });
        labels_ok
            && self.fields.iter().all(|req| {
                let pointer = format!("/{}", req.path.replace('.', "/"));
                let actual = match obj.pointer(&pointer) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                (actual == req.value) != req.negate
            })
    }
}

// ---------------------------------------------------------------------------
// Storage semantics
// ---------------------------------------------------------------------------

fn now_timestamp() -> Value {
    serde_json::to_value(Time(Timestamp::now())).expect("time serializes")
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Drop empty/null metadata fields, like the API server's `omitempty`.
fn normalize_meta(obj: &mut Value) {
    let meta = meta_mut(obj);
    meta.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    });
}

fn finalizers_empty(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The object without `metadata`, `status`, `apiVersion` and `kind`, i.e. what
/// drives `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for f in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(f);
        }
    }
    v
}

/// JSON patch (RFC 6902). `test` ops are evaluated like the API server does:
/// testing for `null` succeeds when the path does not exist.
fn apply_json_patch(doc: &mut Value, body: Value) -> Result<(), ApiError> {
    let patch: json_patch::Patch = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    let mut work = doc.clone();
    for (i, op) in patch.0.iter().enumerate() {
        if let json_patch::PatchOperation::Test(test) = op {
            let actual = work.pointer(test.path.as_str()).unwrap_or(&Value::Null);
            if *actual != test.value {
                return Err(ApiError::invalid(format!(
                    "the server rejected our request due to an error in our request: test operation {i} failed at path {:?}",
                    test.path.as_str()
                )));
            }
        } else {
            json_patch::patch(&mut work, std::slice::from_ref(op))
                .map_err(|e| ApiError::invalid(format!("JSON patch operation {i} failed: {e}")))?;
        }
    }
    *doc = work;
    Ok(())
}

impl State {
    fn register_kind(
        &mut self,
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) {
        self.kinds.insert(
            (group.to_string(), plural.to_string()),
            KindInfo {
                version: version.to_string(),
                kind: kind.to_string(),
                namespaced,
            },
        );
    }

    fn has_status_sub(&self, gvr: &Gvr) -> bool {
        self.status_sub
            .contains(&(gvr.group.clone(), gvr.plural.clone()))
    }

    fn kind_of(&self, gvr: &Gvr) -> String {
        if let Some(info) = self.kinds.get(&(gvr.group.clone(), gvr.plural.clone())) {
            return info.kind.clone();
        }
        if let Some(kind) = self
            .objects
            .iter()
            .find(|(k, _)| k.gvr == *gvr)
            .and_then(|(_, v)| v.get("kind"))
            .and_then(Value::as_str)
        {
            return kind.to_string();
        }
        // Best effort guess: "widgets" -> "Widget".
        let singular = gvr.plural.strip_suffix('s').unwrap_or(&gvr.plural);
        let mut chars = singular.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn random(&mut self) -> u64 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let r = self.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            (r >> 4) & 0xfff,
            r & 0xfff,
            self.uid_counter
        )
    }

    fn record(&mut self, key: &Key, kind: EventKind, object: &Value, prev: Option<Value>) {
        self.history.push_back(HistEvent {
            rv: self.rv,
            at: tokio::time::Instant::now(),
            key: key.clone(),
            kind,
            object: object.clone(),
            prev,
        });
        self.prune_history();
    }

    fn prune_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(ev) = self.history.pop_front() {
                self.pruned_up_to = self.pruned_up_to.max(ev.rv);
            }
        }
    }

    fn matching<'a>(
        &'a self,
        gvr: &'a Gvr,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |(k, v)| {
            k.gvr == *gvr && namespace.is_none_or(|ns| ns == k.namespace) && selectors.matches(v)
        })
    }

    fn list_object(&self, gvr: &Gvr, items: Vec<Value>, meta_only: bool) -> Value {
        if meta_only {
            json!({
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadataList",
                "metadata": { "resourceVersion": self.rv.to_string() },
                "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
            })
        } else {
            json!({
                "apiVersion": gvr.api_version(),
                "kind": format!("{}List", self.kind_of(gvr)),
                "metadata": { "resourceVersion": self.rv.to_string() },
                "items": items,
            })
        }
    }

    fn list(
        &self,
        target: &Target,
        selectors: &Selectors,
        meta_only: bool,
        q: &HashMap<String, String>,
    ) -> Value {
        let all: Vec<Value> = self
            .matching(&target.gvr, target.namespace.as_deref(), selectors)
            .map(|(_, v)| v.clone())
            .collect();
        let offset = q
            .get("continue")
            .and_then(|c| c.strip_prefix("fake-offset-"))
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(0)
            .min(all.len());
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let end = limit.map_or(all.len(), |l| (offset + l).min(all.len()));
        let mut list = self.list_object(&target.gvr, all[offset..end].to_vec(), meta_only);
        if end < all.len() {
            list["metadata"]["continue"] = json!(format!("fake-offset-{end}"));
            list["metadata"]["remainingItemCount"] = json!(all.len() - end);
        }
        list
    }

    fn create(
        &mut self,
        gvr: &Gvr,
        namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        keep_status: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("object must be a JSON object"));
        }
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    loop {
                        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
                        let mut r = self.random();
                        let mut candidate = prefix.clone();
                        for _ in 0..5 {
                            candidate.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
                            r /= ALPHABET.len() as u64;
                        }
                        let key = Key {
                            gvr: gvr.clone(),
                            namespace: namespace.unwrap_or_default().to_string(),
                            name: candidate.clone(),
                        };
                        if !self.objects.contains_key(&key) {
                            break candidate;
                        }
                    }
                }
                None => {
                    return Err(ApiError::invalid(
                        "metadata.name or metadata.generateName is required",
                    ));
                }
            },
        };
        let key = Key {
            gvr: gvr.clone(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.clone(),
        };
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", gvr.resource_name(), name),
            ));
        }
        if !keep_status && self.has_status_sub(gvr) {
            obj.as_object_mut().expect("object").remove("status");
        }
        self.fill_type_meta(gvr, namespace.is_some(), &mut obj);
        let uid = self.new_uid();
        let rv = if dry_run { self.rv } else { self.next_rv() };
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        match namespace {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("generation".into(), json!(1));
        meta.insert("creationTimestamp".into(), now_timestamp());
        meta.remove("deletionTimestamp");
        meta.remove("managedFields");
        normalize_meta(&mut obj);
        if !dry_run {
            self.objects.insert(key.clone(), obj.clone());
            self.record(&key, EventKind::Added, &obj, None);
        }
        Ok(obj)
    }

    /// Set `apiVersion` from the URL and `kind` from the body or the registry; a
    /// kind seen for the first time in a body is registered.
    fn fill_type_meta(&mut self, gvr: &Gvr, namespaced: bool, obj: &mut Value) {
        let map = obj.as_object_mut().expect("object");
        map.insert("apiVersion".into(), json!(gvr.api_version()));
        match map
            .get("kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        {
            Some(kind) => {
                let kind = kind.to_string();
                self.kinds
                    .entry((gvr.group.clone(), gvr.plural.clone()))
                    .or_insert_with(|| KindInfo {
                        version: gvr.version.clone(),
                        kind,
                        namespaced,
                    });
            }
            None => {
                let kind = self.kind_of(gvr);
                obj["kind"] = json!(kind);
            }
        }
    }

    /// Update an existing object with a full candidate state (PUT, or the result
    /// of a patch). Applies status-subresource rules, optimistic concurrency,
    /// server-managed metadata, generation and finalizer-driven removal.
    fn update(
        &mut self,
        key: &Key,
        candidate: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let old = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
        if !candidate.is_object() {
            return Err(ApiError::bad_request("object must be a JSON object"));
        }
        let old_rv = meta_str(&old, "resourceVersion")
            .unwrap_or_default()
            .to_string();
        if let Some(rv) = meta_str(&candidate, "resourceVersion").filter(|rv| !rv.is_empty())
            && rv != old_rv
        {
            return Err(ApiError::conflict(&key.gvr, &key.name));
        }
        if let Some(name) = meta_str(&candidate, "name")
            && name != key.name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        let mut new = if status_only {
            let mut n = old.clone();
            match candidate.get("status").filter(|s| !s.is_null()) {
                Some(status) => n["status"] = status.clone(),
                None => {
                    n.as_object_mut().expect("object").remove("status");
                }
            }
            n
        } else {
            let mut n = candidate;
            if self.has_status_sub(&key.gvr) {
                let map = n.as_object_mut().expect("object");
                match old.get("status") {
                    Some(status) => map.insert("status".into(), status.clone()),
                    None => map.remove("status"),
                };
            }
            n
        };
        // Type meta and server-managed metadata.
        for field in ["apiVersion", "kind"] {
            new[field] = old.get(field).cloned().unwrap_or(Value::Null);
        }
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let meta = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        meta.remove("managedFields");
        normalize_meta(&mut new);
        if new == old {
            return Ok(old);
        }
        if spec_part(&new) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if dry_run {
            return Ok(new);
        }
        self.commit_change(key, new, old)
    }

    /// Store a changed object (bumping resourceVersion), or remove it when it is
    /// being deleted and has no finalizers left.
    fn commit_change(&mut self, key: &Key, mut new: Value, old: Value) -> Result<Value, ApiError> {
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        if is_deleting(&new) && finalizers_empty(&new) {
            self.objects.remove(key);
            self.record(key, EventKind::Deleted, &new, Some(old));
        } else {
            self.objects.insert(key.clone(), new.clone());
            self.record(key, EventKind::Modified, &new, Some(old));
        }
        Ok(new)
    }

    fn patch(
        &mut self,
        target: &Target,
        key: &Key,
        content_type: &str,
        body: Value,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let status_only = target.subresource.is_some();
        let mime = content_type.split(';').next().unwrap_or_default().trim();
        let existing = self.objects.get(key).cloned();
        match mime {
            "application/apply-patch+yaml" => {
                let Some(old) = existing else {
                    if status_only {
                        return Err(ApiError::not_found(&key.gvr, &key.name));
                    }
                    let mut body = body;
                    if body.is_object() {
                        meta_mut(&mut body).insert("name".into(), json!(key.name));
                    }
                    return self
                        .create(&key.gvr, target.namespace.as_deref(), body, dry_run, false)
                        .map(|o| (201, o));
                };
                let mut candidate = old.clone();
                if status_only {
                    if let Some(status) = body.get("status") {
                        candidate["status"] = status.clone();
                    }
                } else {
                    json_patch::merge(&mut candidate, &body);
                }
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                let mut candidate =
                    existing.ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
                json_patch::merge(&mut candidate, &body);
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            "application/json-patch+json" => {
                let mut candidate =
                    existing.ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
                apply_json_patch(&mut candidate, body)?;
                self.update(key, candidate, status_only, dry_run)
                    .map(|o| (200, o))
            }
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
            )),
        }
    }

    fn delete(&mut self, key: &Key, options: &Value, dry_run: bool) -> Result<Value, ApiError> {
        let old = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key.gvr, &key.name))?;
        if let Some(pre) = options.get("preconditions") {
            let check = |field: &str| {
                pre.get(field)
                    .and_then(Value::as_str)
                    .is_none_or(|want| meta_str(&old, field) == Some(want))
            };
            if !check("uid") || !check("resourceVersion") {
                return Err(ApiError::conflict(&key.gvr, &key.name));
            }
        }
        if finalizers_empty(&old) {
            if dry_run {
                return Ok(old);
            }
            let mut gone = old.clone();
            let rv = self.next_rv();
            meta_mut(&mut gone).insert("resourceVersion".into(), json!(rv.to_string()));
            self.objects.remove(key);
            self.record(key, EventKind::Deleted, &gone, Some(old));
            return Ok(gone);
        }
        if is_deleting(&old) {
            return Ok(old);
        }
        let mut new = old.clone();
        meta_mut(&mut new).insert("deletionTimestamp".into(), now_timestamp());
        if dry_run {
            return Ok(new);
        }
        self.commit_change(key, new, old)
    }

    /// Direct create-or-replace used by [`FakeKube::put`].
    fn put_direct(&mut self, key: &Key, mut obj: Value) -> Value {
        let Some(old) = self.objects.get(key).cloned() else {
            let namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str());
            let deletion = obj.pointer("/metadata/deletionTimestamp").cloned();
            meta_mut(&mut obj).insert("name".into(), json!(key.name));
            let mut created = self
                .create(&key.gvr, namespace, obj, false, true)
                .expect("create of a new object succeeds");
            if let Some(ts) = deletion.filter(|t| !t.is_null()) {
                let old = created.clone();
                meta_mut(&mut created).insert("deletionTimestamp".into(), ts);
                return self
                    .commit_change(key, created, old)
                    .expect("commit succeeds");
            }
            return created;
        };
        let meta = meta_mut(&mut obj);
        meta.insert("name".into(), json!(key.name));
        if key.namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        normalize_meta(&mut obj);
        if obj == old {
            return old;
        }
        if spec_part(&obj) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut obj).insert("generation".into(), json!(generation + 1));
        }
        self.commit_change(key, obj, old).expect("commit succeeds")
    }
}
