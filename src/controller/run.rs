//! Wiring: watches, reflector stores, controllers and shutdown.
//!
//! Providers, Secrets (metadata only) and Namespaces (metadata only) are each
//! watched once and shared by every controller that needs them. Each grant kind
//! has its own watch feeding its store and its target index. Objects are kept
//! in memory without `managedFields` and `last-applied-configuration`.
//!
//! Everything `run` starts stops when it returns (the leader gate calls it again
//! with fresh caches when it leads again). Readiness is reported once every
//! watch has listed once; the objects in the caches are counted for metrics.

use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::api::{ClusterGrantProvider, GrantProvider, ProviderKind};
use crate::metrics::{Census, CensusSource, Metrics, Observed};
use crate::server::Health;
use crate::vendor_api::GrantKind;

use super::clients::{ProviderId, secret_refs};
use super::grant::{self, GrantContext};
use super::provider::{self, ProviderObject};
use super::units::{Index, Watched};
use super::{Clock, Config, Context, Stores};

/// Events buffered per subscriber of a shared watch.
const SUBSCRIBER_BUFFER: usize = 1024;

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
fn slim_metadata_only<K: ResourceExt>(object: &mut K) {
    slim(object);
}

/// Namespaces: names, labels (for `namespaceSelector`) and versions only.
fn slim_metadata<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().clear();
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A shared watch: its store, a subscription per consumer, and the task driving it.
struct SharedWatch<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    writer: Option<reflector::store::Writer<K>>,
    listed: tokio::sync::watch::Sender<bool>,
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
    fn new() -> SharedWatch<K> {
        let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
        SharedWatch {
            store,
            writer: Some(writer),
            listed: tokio::sync::watch::Sender::new(false),
        }
    }

    fn subscribe(&self) -> ReflectHandle<K> {
        self.writer
            .as_ref()
            .and_then(|writer| writer.subscribe())
            .expect("shared stores hand out subscriptions until started")
    }

    /// Starts the watch; `deleted` is told of every object the watch sees deleted.
    fn start(
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
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Tasks {
    fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
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
    fn all(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let waits = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        futures::future::join_all(waits.into_iter().map(|mut listed| async move {
            // Err: the watch was dropped, so `run` is ending anyway.
            let _ = listed.wait_for(|listed| *listed).await;
        }))
        .map(|_| ())
    }
}

/// Counts providers by `Ready` for the `resources` metrics.
fn provider_census<P: provider::ProviderObject>(store: Store<P>) -> CensusSource {
    Box::new(move |census: &mut Census| {
        let kind = match P::KIND {
            ProviderKind::GrantProvider => "GrantProvider",
            ProviderKind::ClusterGrantProvider => "ClusterGrantProvider",
        };
        for provider in store.state() {
            let meta = provider.meta();
            census.resource(Observed {
                kind,
                namespace: meta.namespace.as_deref(),
                name: meta.name.as_deref().unwrap_or_default(),
                created: meta.creation_timestamp.as_ref(),
                ready: provider
                    .provider_status()
                    .and_then(|status| super::status::ready_of(&status.conditions)),
                last_sync: None,
            });
        }
    })
}

/// Counts grant resources by `Ready` and their status rows by state.
fn grant_census<K: GrantKind>(
    store: Store<Watched<K>>,
    last_synced: Arc<std::sync::atomic::AtomicI64>,
) -> CensusSource {
    Box::new(move |census: &mut Census| {
        let synced = last_synced.load(std::sync::atomic::Ordering::Relaxed);
        if synced > 0 {
            census.synced(K::KIND, synced as f64);
        }
        for watched in store.state() {
            let grant = match &watched.object {
                Ok(grant) => grant,
                Err(unreadable) => {
                    let meta = &unreadable.metadata;
                    census.unreadable(
                        K::KIND,
                        meta.namespace.as_deref(),
                        meta.name.as_deref().unwrap_or_default(),
                        meta.creation_timestamp.as_ref(),
                    );
                    continue;
                }
            };
            let meta = grant.meta();
            let status = grant.status();
            census.resource(Observed {
                kind: K::KIND,
                namespace: meta.namespace.as_deref(),
                name: meta.name.as_deref().unwrap_or_default(),
                created: meta.creation_timestamp.as_ref(),
                ready: status.and_then(|status| super::status::ready_of(&status.conditions)),
                last_sync: status.and_then(|status| status.last_sync_time.as_ref()),
            });
            for row in status.map(|status| status.grants.as_slice()).unwrap_or(&[]) {
                census.row(K::KIND, row_state(row.state));
            }
        }
    })
}

fn row_state(state: crate::api::GrantState) -> &'static str {
    use crate::api::GrantState;
    match state {
        GrantState::Applied => "Applied",
        GrantState::Pending => "Pending",
        GrantState::Failed => "Failed",
        GrantState::Drifted => "Drifted",
    }
}

/// Lists in pages of 100: a connection's read buffer grows to the largest answer
/// it carried and keeps that size while pooled or watching.
fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(100)
}

/// A future that completes on shutdown, clonable for every controller.
pub type ShutdownSignal = Shared<BoxFuture<'static, ()>>;

/// Completes on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> ShutdownSignal {
    async {
        #[cfg(unix)]
        {
            let mut terminate =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(signal) => signal,
                    Err(error) => {
                        warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the operator");
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    .boxed()
    .shared()
}

/// Runs every controller until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    config: Config,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    shutdown: ShutdownSignal,
) {
    let health = Health::new(metrics.clone(), false);
    run_reporting(client, config, metrics, clock, shutdown, health).await;
}

/// [`run`], reporting to `health` when the watches have synced.
pub async fn run_reporting(
    client: kube::Client,
    config: Config,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    shutdown: ShutdownSignal,
    health: Arc<Health>,
) {
    let mut tasks = Tasks::default();
    let namespace = config.namespace.clone();
    let mut providers = SharedWatch::<GrantProvider>::new();
    let mut cluster_providers = SharedWatch::<ClusterGrantProvider>::new();
    let mut secrets = SharedWatch::<PartialObjectMeta<Secret>>::new();
    let mut namespaces = SharedWatch::<PartialObjectMeta<Namespace>>::new();

    let stores = Stores {
        providers: providers.store.clone(),
        cluster_providers: cluster_providers.store.clone(),
        secrets: secrets.store.clone(),
        namespaces: namespaces.store.clone(),
    };
    let (context, mut rechecks) = Context::new(
        client.clone(),
        config.clone(),
        stores.clone(),
        metrics.clone(),
        clock,
    );
    let context = Arc::new(context);
    metrics.set_default_sync_interval(config.default_sync_interval);
    metrics.count_objects("GrantProvider", provider_census(providers.store.clone()));
    metrics.count_objects(
        "ClusterGrantProvider",
        provider_census(cluster_providers.store.clone()),
    );
    context.readiness.wait_for(providers.listed.subscribe());
    context
        .readiness
        .wait_for(cluster_providers.listed.subscribe());
    context.readiness.wait_for(secrets.listed.subscribe());
    context.readiness.wait_for(namespaces.listed.subscribe());

    // Provider controllers.
    let (recheck_namespaced, recheck_namespaced_rx) =
        tokio::sync::mpsc::channel::<ObjectRef<GrantProvider>>(256);
    let (recheck_cluster, recheck_cluster_rx) =
        tokio::sync::mpsc::channel::<ObjectRef<ClusterGrantProvider>>(256);
    tasks.spawn(async move {
        while let Some(id) = rechecks.recv().await {
            debug!(provider = %id, "checking a provider again after a refused grant sync");
            // A full queue means a check is coming anyway.
            match id.namespace {
                Some(namespace) => {
                    let _ =
                        recheck_namespaced.try_send(ObjectRef::new(&id.name).within(&namespace));
                }
                None => {
                    let _ = recheck_cluster.try_send(ObjectRef::new(&id.name));
                }
            }
        }
    });

    let controller_config = controller::Config::default().concurrency(config.concurrency);
    let namespaced_providers =
        Controller::for_shared_stream(providers.subscribe(), providers.store.clone())
            .with_config(controller_config.clone())
            .watches_shared_stream(secrets.subscribe(), {
                let store = providers.store.clone();
                move |secret| providers_using_secret(&store, &secret)
            })
            .reconcile_on(receiver_stream(recheck_namespaced_rx))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                provider::reconcile::<GrantProvider>,
                provider::error_policy::<GrantProvider>,
                context.clone(),
            )
            .for_each(log_result("GrantProvider"));

    let cluster = Controller::for_shared_stream(
        cluster_providers.subscribe(),
        cluster_providers.store.clone(),
    )
    .with_config(controller_config.clone())
    .watches_shared_stream(secrets.subscribe(), {
        let store = cluster_providers.store.clone();
        move |secret| providers_using_secret(&store, &secret)
    })
    .reconcile_on(receiver_stream(recheck_cluster_rx))
    .graceful_shutdown_on(shutdown.clone())
    .run(
        provider::reconcile::<ClusterGrantProvider>,
        provider::error_policy::<ClusterGrantProvider>,
        context.clone(),
    )
    .for_each(log_result("ClusterGrantProvider"));

    // One controller per grant kind (the list in `crate::vendors`), all on the
    // same shared watches; they run until `shutdown`, joined below.
    macro_rules! grant_controllers {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
            futures::future::join_all([$(
                grant_controller::<crate::api::$grant>(
                    &client,
                    namespace.as_deref(),
                    &context,
                    Subscriptions::of(&providers, &cluster_providers, &secrets, &namespaces),
                    controller_config.clone(),
                    shutdown.clone(),
                )
                .boxed(),
            )*])
        };
    }
    let grants = crate::vendors::vendors!(grant_controllers);

    // A deleted provider's client (with its credentials) and lane go with it.
    let forget = context.clone();
    providers.start(
        api(&client, namespace.as_deref()),
        slim,
        &mut tasks,
        move |provider| forget.forget_provider(&ProviderId::of_provider(provider)),
    );
    let forget = context.clone();
    cluster_providers.start(
        Api::all(client.clone()),
        slim,
        &mut tasks,
        move |provider| forget.forget_provider(&ProviderId::of_provider(provider)),
    );
    secrets.start(
        api(&client, namespace.as_deref()),
        slim_metadata_only,
        &mut tasks,
        |_| {},
    );
    namespaces.start(Api::all(client.clone()), slim_metadata, &mut tasks, |_| {});
    let synced = context.readiness.all();
    let reporting = health.clone();
    tasks.spawn(async move {
        synced.await;
        debug!("every watch has listed once");
        reporting.set_synced(true);
    });
    let _stopped = Stopped { health, metrics };

    tokio::join!(namespaced_providers, cluster, grants);
}

/// What `run` reports once it ends (also when it is cancelled).
struct Stopped {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.health.set_synced(false);
        self.metrics.forget_all_objects();
    }
}

/// A channel as a stream.
fn receiver_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

fn log_result<K, E: std::fmt::Display>(
    kind: &'static str,
) -> impl FnMut(Result<(ObjectRef<K>, controller::Action), E>) -> futures::future::Ready<()>
where
    K: Resource,
{
    move |result| {
        if let Err(error) = result {
            debug!(kind, %error, "reconcile error");
        }
        futures::future::ready(())
    }
}

/// Providers (of one kind) that reference a Secret.
fn providers_using_secret<P>(
    store: &Store<P>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<P>>
where
    P: ProviderObject,
{
    let name = secret.name_any();
    let namespace = secret.namespace().unwrap_or_default();
    store
        .state()
        .into_iter()
        .filter(|provider| {
            let own = match P::KIND {
                ProviderKind::GrantProvider => provider.namespace(),
                ProviderKind::ClusterGrantProvider => None,
            };
            secret_refs(provider.config(), own.as_deref())
                .iter()
                .any(|(ns, n)| *ns == namespace && *n == name)
        })
        .map(|provider| ObjectRef::from_obj(provider.as_ref()))
        .collect()
}

/// Grants that reference a provider.
fn grants_using<K: GrantKind>(
    store: &Store<Watched<K>>,
    id: &ProviderId,
) -> Vec<ObjectRef<Watched<K>>> {
    store
        .state()
        .into_iter()
        .filter(|watched| {
            let Ok(grant) = &watched.object else {
                return false;
            };
            let namespace = grant.namespace().unwrap_or_default();
            ProviderId::of_ref(&grant.policy().provider_ref, &namespace) == *id
        })
        .map(|watched| ObjectRef::from_obj(watched.as_ref()))
        .collect()
}

/// The watch of one grant kind: its reflector store, its target index, and the
/// stream (of applied objects) that drives both and triggers the controller.
/// What [`grant_watch`] sets up.
pub struct GrantWatch<K: GrantKind, S> {
    /// The reflector store.
    pub store: Store<Watched<K>>,
    /// Resources by target.
    pub index: Arc<Index<K>>,
    /// The stream that drives both (and triggers the controller).
    pub stream: S,
    /// Objects the watch saw deleted (after store and index forgot them), so that
    /// what is kept per resource can be forgotten too ([`GrantContext::forget`]).
    pub deleted: tokio::sync::mpsc::UnboundedReceiver<Watched<K>>,
}

pub fn grant_watch<K: GrantKind>(
    api: Api<Watched<K>>,
) -> GrantWatch<K, impl Stream<Item = Result<Watched<K>, watcher::Error>> + Send + 'static> {
    let (store, writer) = reflector::store::<Watched<K>>();
    let index = Arc::new(Index::<K>::default());
    let follow = index.clone();
    let (gone, deleted) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api, watch_config())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                follow.apply(event);
                if let watcher::Event::Delete(object) = event {
                    // Err: nobody forgets for this watch (a test's), which is fine.
                    let _ = gone.send(object.clone());
                }
            }
        })
        .applied_objects();
    GrantWatch {
        store,
        index,
        stream,
        deleted,
    }
}

/// What a grant controller follows besides its own kind.
struct Subscriptions {
    providers: (Store<GrantProvider>, ReflectHandle<GrantProvider>),
    cluster_providers: (
        Store<ClusterGrantProvider>,
        ReflectHandle<ClusterGrantProvider>,
    ),
    secrets: ReflectHandle<PartialObjectMeta<Secret>>,
    namespaces: ReflectHandle<PartialObjectMeta<Namespace>>,
}

impl Subscriptions {
    fn of(
        providers: &SharedWatch<GrantProvider>,
        cluster_providers: &SharedWatch<ClusterGrantProvider>,
        secrets: &SharedWatch<PartialObjectMeta<Secret>>,
        namespaces: &SharedWatch<PartialObjectMeta<Namespace>>,
    ) -> Subscriptions {
        Subscriptions {
            providers: (providers.store.clone(), providers.subscribe()),
            cluster_providers: (
                cluster_providers.store.clone(),
                cluster_providers.subscribe(),
            ),
            secrets: secrets.subscribe(),
            namespaces: namespaces.subscribe(),
        }
    }
}

fn grant_controller<K: GrantKind>(
    client: &kube::Client,
    namespace: Option<&str>,
    context: &Arc<Context>,
    subscriptions: Subscriptions,
    controller_config: controller::Config,
    shutdown: ShutdownSignal,
) -> impl std::future::Future<Output = ()> + Send + use<K> {
    let GrantWatch {
        store,
        index,
        stream,
        mut deleted,
    } = grant_watch(api::<Watched<K>>(client, namespace));
    context.readiness.wait_for(index.listed());
    let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
    let cx = Arc::new(GrantContext::new(
        context.clone(),
        store.clone(),
        index,
        wake,
    ));
    context
        .metrics
        .count_objects(K::KIND, grant_census(store.clone(), cx.last_synced.clone()));
    let syncs = cx.syncs.clone();
    let forgetting = {
        let cx = cx.clone();
        async move {
            // Ends when the watch stream (holding the sender) is dropped.
            while let Some(object) = deleted.recv().await {
                cx.forget(&object);
            }
        }
    };

    let on_provider = {
        let store = store.clone();
        move |provider: Arc<GrantProvider>| {
            grants_using(
                &store,
                &ProviderId {
                    kind: ProviderKind::GrantProvider,
                    namespace: provider.namespace(),
                    name: provider.name_any(),
                },
            )
        }
    };
    let on_cluster_provider = {
        let store = store.clone();
        move |provider: Arc<ClusterGrantProvider>| {
            grants_using(
                &store,
                &ProviderId {
                    kind: ProviderKind::ClusterGrantProvider,
                    namespace: None,
                    name: provider.name_any(),
                },
            )
        }
    };
    let on_secret = {
        let store = store.clone();
        let providers = subscriptions.providers.0.clone();
        let cluster_providers = subscriptions.cluster_providers.0.clone();
        move |secret: Arc<PartialObjectMeta<Secret>>| {
            let mut grants = Vec::new();
            for provider in providers_using_secret(&providers, &secret) {
                grants.extend(grants_using(
                    &store,
                    &ProviderId {
                        kind: ProviderKind::GrantProvider,
                        namespace: provider.namespace.clone(),
                        name: provider.name.clone(),
                    },
                ));
            }
            for provider in providers_using_secret(&cluster_providers, &secret) {
                grants.extend(grants_using(
                    &store,
                    &ProviderId {
                        kind: ProviderKind::ClusterGrantProvider,
                        namespace: None,
                        name: provider.name.clone(),
                    },
                ));
            }
            grants
        }
    };
    let on_namespace = {
        let store = store.clone();
        move |ns: Arc<PartialObjectMeta<Namespace>>| {
            let name = ns.name_any();
            store
                .state()
                .into_iter()
                .filter(|watched| {
                    watched.namespace().as_deref() == Some(name.as_str())
                        && watched.object.as_ref().is_ok_and(|grant| {
                            grant.policy().provider_ref.kind == ProviderKind::ClusterGrantProvider
                        })
                })
                .map(|grant| ObjectRef::from_obj(grant.as_ref()))
                .collect::<Vec<_>>()
        }
    };

    let controller = Controller::for_stream(stream, store)
        .with_config(controller_config)
        .watches_shared_stream(subscriptions.providers.1, on_provider)
        .watches_shared_stream(subscriptions.cluster_providers.1, on_cluster_provider)
        .watches_shared_stream(subscriptions.secrets, on_secret)
        .watches_shared_stream(subscriptions.namespaces, on_namespace)
        .reconcile_on(unbounded_stream(woken))
        .graceful_shutdown_on(shutdown)
        .run(grant::reconcile::<K>, grant::error_policy::<K>, cx)
        .for_each(log_result(K::KIND));
    async move {
        // Sync tasks outlive reconciles; they end with the controller, also when
        // `run` is dropped rather than shut down.
        let _syncs = AbortOnDrop(syncs);
        tokio::join!(controller, forgetting);
    }
}

/// Stops a grant kind's sync tasks when dropped.
struct AbortOnDrop(Arc<grant::SyncTasks>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort_all();
    }
}

/// An unbounded channel as a stream.
fn unbounded_stream<T: Send + 'static>(
    receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
