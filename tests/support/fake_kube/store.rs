//! Storage semantics: metadata, resource versions, uids, the change
//! history, kinds and lists; `writes` carries out create, update, patch and
//! delete on top of them.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::routes::{Target, partial_metadata};
use super::selectors::Selectors;
use super::{ApiError, EventKind, Gvr, HistEvent, Key, KindInfo, State};

mod writes;

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
    pub(super) fn register_kind(
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

    pub(super) fn kind_of(&self, gvr: &Gvr) -> String {
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

    pub(super) fn random(&mut self) -> u64 {
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

    pub(super) fn prune_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(ev) = self.history.pop_front() {
                self.pruned_up_to = self.pruned_up_to.max(ev.rv);
            }
        }
    }

    pub(super) fn matching<'a>(
        &'a self,
        gvr: &'a Gvr,
        namespace: Option<&'a str>,
        selectors: &'a Selectors,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects.iter().filter(move |(k, v)| {
            k.gvr == *gvr && namespace.is_none_or(|ns| ns == k.namespace) && selectors.matches(v)
        })
    }

    pub(super) fn list_object(&self, gvr: &Gvr, items: Vec<Value>, meta_only: bool) -> Value {
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

    pub(super) fn list(
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
}
