//! Conditions, status writes and Events.
//!
//! Status is written by server-side apply of a body holding only `apiVersion`,
//! `kind` and `status`, with the operator's field manager, and only when it
//! changed. A condition keeps its `lastTransitionTime` unless its status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use std::sync::Arc;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::api::{READY, Reason};

use super::FIELD_MANAGER;

/// The `Ready` condition: `status` is `True`, `False` or `Unknown`.
pub fn ready(
    previous: &[Condition],
    status: &str,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let before = previous.iter().find(|condition| condition.type_ == READY);
    let last_transition_time = match before {
        Some(before) if before.status == status => before.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: reason.as_str().into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The `Ready` condition among `conditions`.
pub fn ready_of(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|condition| condition.type_ == READY)
}

/// Writes `status` to `object` by server-side apply (the operator owns all of status).
/// Writes wait for a permit of `writes`, which bounds concurrent writes (and so the
/// connections opened to the API server).
pub async fn apply_status<K, S>(
    client: &kube::Client,
    object: &K,
    status: &S,
    writes: &Semaphore,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let _permit = writes.acquire().await;
    patch_status_unread(
        client,
        object,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
}

/// Patches `object`'s status and reads the answer only for its status code: the
/// object the API server sends back (with all of its `managedFields`) is not
/// needed, since the watch brings it anyway, and parsing it would cost as much
/// as the write itself for every resource on every sync.
async fn patch_status_unread<K, P>(
    client: &kube::Client,
    object: &K,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
    P: Serialize,
{
    let namespace = object.meta().namespace.as_deref();
    let request = kube::core::Request::new(K::url_path(&(), namespace))
        .patch_subresource("status", &object.name_any(), params, patch)
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await.map(|_| ())
}

/// Writes only the `Ready` condition and `observedGeneration` of `object`'s
/// status, by a JSON merge patch that leaves every other status field (the rows
/// above all) as the API server has them: a reconcile's copy of the rows may be
/// older than what a sync wrote since, and writing it back would forget grants.
/// The patch carries the copy's `resourceVersion` as a precondition, so a status
/// that changed meanwhile is not overwritten with an older condition either: then
/// nothing is written (the change brings a new reconcile).
pub async fn patch_ready<K>(
    client: &kube::Client,
    object: &K,
    condition: &Condition,
    writes: &Semaphore,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()>,
{
    let body = serde_json::json!({
        "metadata": { "resourceVersion": object.resource_version() },
        "status": {
            "observedGeneration": object.meta().generation,
            "conditions": [condition],
        },
    });
    let _permit = writes.acquire().await;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match patch_status_unread(client, object, &params, &Patch::Merge(body)).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Publishes Events through kube's `Recorder`, one recorder per event: the
/// operator only emits on transitions, so the recorder's series aggregation (a
/// cache that keeps every event for six minutes, about 3 KB each) buys nothing
/// and would cost tens of MB when thousands of grants converge at once.
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    writes: Arc<Semaphore>,
}

impl Events {
    /// A publisher sharing the write bound `writes`.
    pub fn new(client: kube::Client, reporter: Reporter, writes: Arc<Semaphore>) -> Events {
        Events {
            client,
            reporter,
            writes,
        }
    }

    /// Publishes an Event on `object`; failures are logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(truncate(note, 1000)),
            action: action.into(),
            secondary: None,
        };
        let _permit = self.writes.acquire().await;
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
            warn!(%error, reason, "could not publish an event");
        }
    }
}

/// Joins items for a message, at most `max` of them.
pub fn list_some(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} and {} more", items[..max].join(", "), items.len() - max)
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = ready(&[], "True", Reason::Synced, "ok", Some(1), t0);
        assert_eq!(first.last_transition_time, Time(t0));
        let same = ready(
            std::slice::from_ref(&first),
            "True",
            Reason::Synced,
            "still ok",
            Some(2),
            t1,
        );
        assert_eq!(same.last_transition_time, Time(t0));
        assert_eq!(same.observed_generation, Some(2));
        let flipped = ready(
            &[same],
            "False",
            Reason::VendorUnavailable,
            "down",
            Some(2),
            t1,
        );
        assert_eq!(flipped.last_transition_time, Time(t1));
        assert_eq!(flipped.reason, "VendorUnavailable");
    }

    #[test]
    fn lists_are_shortened() {
        let items: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        assert_eq!(list_some(&items, 10), "0, 1, 2, 3, 4");
        assert_eq!(list_some(&items, 2), "0, 1 and 3 more");
        assert_eq!(truncate("abcdef".into(), 5), "ab...");
    }
}
