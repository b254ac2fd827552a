//! Request handling: parsing paths and query strings, status-write faults,
//! and the dispatch of each verb (get, list, create, update, patch, delete,
//! watch) to the store.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::selectors::Selectors;
use super::service::{json_response, streaming_body};
use super::watch::{WatchSpec, WatchState};
use super::{
    ApiError, CallLog, Gvr, Hook, Inner, Key, RecordedCall, ResBody, State, StatusFault,
    StatusFaults, status_object,
};

#[derive(Debug)]
pub(super) struct Target {
    pub(super) gvr: Gvr,
    /// `None` for cluster-scoped objects and all-namespace collections.
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
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
    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock_calls(&self) -> MutexGuard<'_, CallLog> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock_status_faults(&self) -> MutexGuard<'_, StatusFaults> {
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
    pub(super) fn notify(&self, st: &State) {
        if *self.rv_tx.borrow() != st.rv {
            self.rv_tx.send_replace(st.rv);
        }
    }

    pub(super) fn serve(
        self: Arc<Self>,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Response<ResBody> {
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

pub(super) fn partial_metadata(obj: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub(super) fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({ "type": kind, "object": object })).expect("JSON serializes");
    line.push(b'\n');
    Bytes::from(line)
}

pub(super) fn gone_line(rv: u64) -> Bytes {
    watch_line(
        "ERROR",
        &status_object(410, "Expired", &format!("too old resource version: {rv}")),
    )
}
