//! Watches: what a watch asks for, and the stream of events it answers
//! with (initial events, history replay, bookmarks, `410 Gone`, lag).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::routes::{gone_line, partial_metadata, watch_line};
use super::selectors::Selectors;
use super::{EventKind, Gvr, HistEvent, INITIAL_EVENTS_END, Inner, Key};

pub(super) struct WatchSpec {
    pub(super) gvr: Gvr,
    pub(super) namespace: Option<String>,
    pub(super) selectors: Selectors,
    pub(super) meta_only: bool,
    pub(super) bookmarks: bool,
    pub(super) kind: String,
}

impl WatchSpec {
    pub(super) fn render(&self, obj: &Value) -> Value {
        if self.meta_only {
            partial_metadata(obj)
        } else {
            obj.clone()
        }
    }

    pub(super) fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
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

pub(super) struct WatchState {
    pub(super) inner: Arc<Inner>,
    pub(super) spec: WatchSpec,
    /// Every change with resourceVersion <= cursor has been considered.
    pub(super) cursor: u64,
    pub(super) rx: tokio::sync::watch::Receiver<u64>,
    pub(super) deadline: Option<tokio::time::Instant>,
    pub(super) pending: VecDeque<Bytes>,
    /// Changes waiting out the watch lag, with when they are due.
    pub(super) lagging: VecDeque<(tokio::time::Instant, Bytes)>,
    pub(super) done: bool,
}

impl WatchState {
    pub(super) async fn next(mut self) -> Option<(Bytes, WatchState)> {
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
