//! The test-facing API of [`FakeKube`]: building it and its client, kinds
//! and status subresources, request hooks and faults, and reading and
//! writing objects directly.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grant_operator::sandbox::emulator::SeededRng;
use serde_json::Value;

use super::{
    CallLog, DEFAULT_HISTORY_LIMIT, FakeKube, FakeKubeService, Gvr, Hold, Inner, Key, RecordedCall,
    State, StatusFault, StatusFaults,
};

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
