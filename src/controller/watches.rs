//! The watches every controller shares: one watch per kind feeding a reflector
//! store and any number of subscribers, objects slimmed to what the
//! controllers read, the tasks that end with `run`, and readiness once every
//! watch has listed once.

use std::sync::Mutex;

use futures::{FutureExt, Stream, StreamExt};
use kube::api::Api;
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

/// Events buffered per subscriber of a shared watch.
pub(super) const SUBSCRIBER_BUFFER: usize = 1024;

/// Keeps only what the controllers read.
/// Grants and providers: the controllers read spec, status, and these metadata
/// fields: name, namespace, uid, resourceVersion, generation, deletionTimestamp
/// and finalizers. Labels and annotations (Argo CD adds tracking annotations to
/// every object) are dropped from memory.
pub(crate) fn slim<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().clear();
    object.labels_mut().clear();
    object.meta_mut().owner_references = None;
}

/// Secrets (watched as metadata only): names and versions only.
pub(super) fn slim_metadata_only<K: ResourceExt>(object: &mut K) {
    slim(object);
}

/// Namespaces: names, labels (for `namespaceSelector`) and versions only.
pub(super) fn slim_metadata<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().clear();
}

pub(super) fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A shared watch: its store, a subscription per consumer, and the task driving it.
pub(super) struct SharedWatch<K: Resource<DynamicType = ()> + Clone + 'static> {
    pub(super) store: Store<K>,
    writer: Option<reflector::store::Writer<K>>,
    pub(super) listed: tokio::sync::watch::Sender<bool>,
}

impl<K> SharedWatch<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    pub(super) fn new() -> SharedWatch<K> {
        let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        SharedWatch {
            store,
            writer: Some(writer),
            listed: tokio::sync::watch::Sender::new(false),
        }
    }

    pub(super) fn subscribe(&self) -> ReflectHandle<K> {
        self.writer
            .as_ref()
            .and_then(|writer| writer.subscribe())
            .expect("shared stores hand out subscriptions until started")
    }

    /// Starts the watch; `deleted` is told of every object the watch sees deleted.
    pub(super) fn start(
        &mut self,
        api: Api<K>,
        slim: fn(&mut K),
        tasks: &mut Tasks,
        deleted: impl Fn(&K) + Send + 'static,
    ) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let kind = K::kind(&()).to_string();
        let listed = self.listed.clone();
        let watch = watcher(api, watch_config())
            .default_backoff()
            .modify(slim)
            .reflect_shared(writer)
            .for_each(move |event| {
                match event {
                    Err(error) => warn!(kind, %error, "watch error; retrying"),
                    Ok(watcher::Event::InitDone) => {
                        listed.send_replace(true);
                    }
                    Ok(watcher::Event::Delete(object)) => deleted(&object),
                    Ok(_) => {}
                }
                futures::future::ready(())
            });
        tasks.spawn(watch);
    }
}

/// Tasks that end with `run`: aborted when dropped.
#[derive(Default)]
pub(super) struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Tasks {
    pub(super) fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The watches whose first listing the operator waits for before it reports ready.
///
/// (Not `Store::wait_until_ready`: its one-shot channel wakes only the waiter that
/// polled last, and the controllers wait on the same stores.)
#[derive(Default)]
pub struct Readiness(Mutex<Vec<tokio::sync::watch::Receiver<bool>>>);

impl Readiness {
    /// Readiness waits until `listed` turns true.
    pub fn wait_for(&self, listed: tokio::sync::watch::Receiver<bool>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listed);
    }

    /// Completes once every watch registered so far has listed once.
    pub(super) fn all(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let waits = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        futures::future::join_all(waits.into_iter().map(|mut listed| async move {
            // Err: the watch was dropped, so `run` is ending anyway.
            let _ = listed.wait_for(|listed| *listed).await;
        }))
        .map(|_| ())
    }
}

/// Lists in pages of 100: a connection's read buffer grows to the largest answer
/// it carried and keeps that size while pooled or watching.
pub(super) fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(100)
}

/// A channel as a stream.
pub(super) fn receiver_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

/// An unbounded channel as a stream.
pub(super) fn unbounded_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
