//! Wiring: the controllers on their watches, and shutdown.
//!
//! Providers, Secrets (metadata only) and Namespaces (metadata only) are each
//! watched once (`watches`) and shared by every controller that needs them.
//! Each grant kind (one per vendor of the list in `crate::vendors`) has its own
//! watch feeding its store and its target index. Objects are kept in memory
//! without `managedFields` and `last-applied-configuration`.
//!
//! Everything `run` starts stops when it returns (the leader gate calls it again
//! with fresh caches when it leads again). Readiness is reported once every
//! watch has listed once; the objects in the caches are counted for metrics.

use std::sync::Arc;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::{debug, warn};

use crate::api::{ClusterGrantProvider, GrantProvider, ProviderKind};
use crate::metrics::Metrics;
use crate::server::Health;
use crate::vendor_api::GrantKind;

use super::census::{grant_census, provider_census};
use super::clients::{ProviderId, secret_refs};
use super::grant::{self, GrantContext};
use super::provider::{self, ProviderObject};
use super::units::{Index, Watched};
use super::watches::{
    SharedWatch, Tasks, api, receiver_stream, slim_metadata, slim_metadata_only, unbounded_stream,
    watch_config,
};
use super::{Clock, Config, Context, Stores};

pub use super::watches::Readiness;
pub(crate) use super::watches::slim;

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
