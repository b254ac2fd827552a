//! Test support: vendor emulators, a fake Kubernetes API, and a harness that
//! drives the operator's real reconcilers over them.
//!
//! The harness runs the same watches and reflector stores as `run` (through
//! `grant_watch`), but calls `reconcile` itself so each test decides when a
//! reconcile happens, and holds the clock still unless it advances it.
//!
//! When a harness is dropped at the end of a test, every request its Sigma and
//! Snowflake emulators received is checked against the vendors' own API
//! definitions ([`conformance`]), and the test fails listing each one that
//! departs from them.
#![allow(dead_code)]

pub mod binary;
pub mod conformance;
pub mod fake_kube;
// The vendor emulators live in the crate (feature `sandbox`) so `demo` can use them too.
#[allow(unused_imports)] // not every test binary uses every emulator
pub use grant_operator::sandbox::{dremio, emulator, grafana, sigma, snowflake};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use grant_operator::api::*;
use grant_operator::controller::clients::ProviderId;
use grant_operator::controller::grant::{self, GrantContext};
use grant_operator::controller::units::Watched;
use grant_operator::controller::{Clock, Config, Context, Error, Stores, provider, run};
use grant_operator::metrics::Metrics;
use grant_operator::vendor_api::http::RetryPolicy;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use dremio::DremioEmulator;
use fake_kube::FakeKube;
use grafana::GrafanaEmulator;
use grant_operator::vendor_api::GrantKind;
use sigma::SigmaEmulator;
use snowflake::SnowflakeEmulator;

/// The namespace most tests use.
pub const NS: &str = "analytics";
/// The connection the emulator knows.
pub const CONNECTION: &str = "g3e8e8947-c9f5-43re-93b0-T80d0ddf5627";
/// Valid API credentials of the emulator.
pub const CLIENT_ID: &str = "client-id-1";
pub const CLIENT_SECRET: &str = "client-secret-1";
/// The Grafana data source the emulator knows (org 1).
pub const DATASOURCE_UID: &str = "P8E80F9AEF21F6940";
pub const DATASOURCE_NAME: &str = "Prometheus";
/// A valid Grafana service account token of org 1.
pub const GRAFANA_TOKEN: &str = "glsa_test_token_1";
/// A valid Dremio personal access token.
pub const DREMIO_TOKEN: &str = "dremio-pat-1";
/// The Dremio Cloud project the emulator knows.
pub const DREMIO_PROJECT: &str = "0f3c4a2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
/// The path of the Dremio catalog object the emulator knows.
pub const DREMIO_PATH: [&str; 3] = ["Samples", "samples.dremio.com", "zips.json"];
/// Privileges available on it.
pub const DREMIO_PRIVILEGES: [&str; 5] = ["ALTER", "INSERT", "MANAGE_GRANTS", "SELECT", "UPDATE"];

/// The Snowflake account and user of the emulator's key-pair login.
pub const SNOWFLAKE_ACCOUNT: &str = "myorg-myaccount";
pub const SNOWFLAKE_USER: &str = "grant_operator";
/// Valid Snowflake OAuth and programmatic access tokens.
pub const SNOWFLAKE_OAUTH: &str = "sf-oauth-token-1";
pub const SNOWFLAKE_PAT: &str = "sf-pat-1";
/// TEST-ONLY key material (see tests/fixtures/snowflake/README.md).
pub const SNOWFLAKE_KEY: &str = include_str!("../fixtures/snowflake/test_key.p8");
pub const SNOWFLAKE_PUBLIC_KEY: &str = include_str!("../fixtures/snowflake/test_key.pub");
pub const SNOWFLAKE_ENCRYPTED_KEY: &str =
    include_str!("../fixtures/snowflake/test_key_encrypted.p8");
pub const SNOWFLAKE_PASSPHRASE: &str =
    include_str!("../fixtures/snowflake/test_key_passphrase.txt");
pub const SNOWFLAKE_OTHER_KEY: &str = include_str!("../fixtures/snowflake/other_key.p8");
pub const SNOWFLAKE_PKCS1_KEY: &str = include_str!("../fixtures/snowflake/test_key_pkcs1.pem");

/// A clock that only moves when told to.
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock {
            now: Mutex::new(Timestamp::now()),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap();
        *now = now.checked_add(by).unwrap();
    }

    pub fn now_plus(&self, by: Duration) -> Timestamp {
        self.now.lock().unwrap().checked_add(by).unwrap()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap()
    }
}

/// Fast vendor retries for tests.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}

pub struct Harness {
    pub kube: FakeKube,
    pub sigma: SigmaEmulator,
    pub grafana: GrafanaEmulator,
    /// The numeric id of [`DATASOURCE_UID`].
    pub datasource_id: i64,
    pub dremio: DremioEmulator,
    /// The id of the catalog object at [`DREMIO_PATH`].
    pub dremio_object: String,
    pub snowflake: SnowflakeEmulator,
    pub clock: Arc<ManualClock>,
    pub metrics: Arc<Metrics>,
    pub context: Arc<Context>,
    pub grants: Arc<GrantContext<SigmaGrant>>,
    pub grafana_grants: Arc<GrantContext<GrafanaGrant>>,
    pub dremio_grants: Arc<GrantContext<DremioGrant>>,
    pub snowflake_grants: Arc<GrantContext<SnowflakeGrant>>,
    pub rechecks: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<ProviderId>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // A test that already failed reports that failure, not this one.
        if !std::thread::panicking() {
            conformance::assert_conform(
                &conformance::scenario(),
                &self.sigma.journal(),
                &self.snowflake.journal(),
            );
        }
    }
}

fn reflect<K>(client: &kube::Client, tasks: &mut Vec<tokio::task::JoinHandle<()>>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    reflect_telling(client, tasks, |_| {})
}

/// [`reflect`], telling `deleted` of every object the watch sees deleted.
fn reflect_telling<K>(
    client: &kube::Client,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    deleted: impl Fn(&K) + Send + 'static,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()));
    tasks.push(tokio::spawn(stream.for_each(move |event| {
        if let Ok(watcher::Event::Delete(object)) = event {
            deleted(&object);
        }
        futures::future::ready(())
    })));
    store
}

/// Reconciles `object` as the controller would: a reconcile that queues a sync of
/// its target runs again once the sync tasks are done (the controller is woken).
pub async fn reconcile_through<K: GrantKind>(
    object: Arc<Watched<K>>,
    cx: Arc<GrantContext<K>>,
) -> Result<Action, Error> {
    for _ in 0..20 {
        match grant::reconcile(object.clone(), cx.clone()).await {
            Err(Error::Queued) => cx.syncs.idle().await,
            other => return other,
        }
    }
    panic!("stayed queued for a sync of its target");
}

/// The watch and controller context of one grant kind, as `run` sets them up
/// (without the controller: tests reconcile by hand). Deleted objects are
/// forgotten as `run` forgets them; wake-ups are dropped (the harness waits for
/// syncs to end instead).
fn watched_kind<K: GrantKind>(
    client: &kube::Client,
    context: &Arc<Context>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Arc<GrantContext<K>> {
    let run::GrantWatch {
        store,
        index,
        stream,
        mut deleted,
    } = run::grant_watch::<K>(Api::all(client.clone()));
    tasks.push(tokio::spawn(
        stream.for_each(|_| futures::future::ready(())),
    ));
    let (wake, _) = tokio::sync::mpsc::unbounded_channel();
    let cx = Arc::new(GrantContext::new(context.clone(), store, index, wake));
    let forgetting = cx.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(object) = deleted.recv().await {
            forgetting.forget(&object);
        }
    }));
    cx
}

impl Harness {
    /// A harness with an emulator that knows one API client and one connection.
    pub async fn new() -> Harness {
        Self::with_config(Config {
            error_backoff: Duration::from_millis(10),
            vendor_retry: fast_retries(),
            ..Config::default()
        })
        .await
    }

    pub async fn with_config(config: Config) -> Harness {
        grant_operator::install_crypto_provider();
        let kube = FakeKube::new();
        for (plural, kind, namespaced) in [
            ("grantproviders", "GrantProvider", true),
            ("clustergrantproviders", "ClusterGrantProvider", false),
            ("sigmagrants", "SigmaGrant", true),
            ("grafanagrants", "GrafanaGrant", true),
            ("snowflakegrants", "SnowflakeGrant", true),
            ("dremiogrants", "DremioGrant", true),
        ] {
            kube.register_kind(GROUP, VERSION, plural, kind, namespaced);
            kube.register_status_subresource(GROUP, plural);
        }
        let client = kube.client();
        let mut tasks = Vec::new();
        // Deleted providers are forgotten as `run` forgets them.
        let (gone, mut deleted_providers) = tokio::sync::mpsc::unbounded_channel::<ProviderId>();
        let stores = Stores {
            providers: reflect_telling::<GrantProvider>(&client, &mut tasks, {
                let gone = gone.clone();
                move |provider| {
                    let _ = gone.send(ProviderId::of_provider(provider));
                }
            }),
            cluster_providers: reflect_telling::<ClusterGrantProvider>(&client, &mut tasks, {
                let gone = gone.clone();
                move |provider| {
                    let _ = gone.send(ProviderId::of_provider(provider));
                }
            }),
            secrets: reflect::<PartialObjectMeta<Secret>>(&client, &mut tasks),
            namespaces: reflect::<PartialObjectMeta<Namespace>>(&client, &mut tasks),
        };
        let clock = Arc::new(ManualClock::new());
        let metrics = Arc::new(Metrics::new());
        let (context, rechecks) = Context::new(
            client.clone(),
            config,
            stores,
            metrics.clone(),
            clock.clone(),
        );
        let context = Arc::new(context);
        tasks.push(tokio::spawn({
            let context = context.clone();
            async move {
                while let Some(id) = deleted_providers.recv().await {
                    context.forget_provider(&id);
                }
            }
        }));
        let grants = watched_kind::<SigmaGrant>(&client, &context, &mut tasks);
        let grafana_grants = watched_kind::<GrafanaGrant>(&client, &context, &mut tasks);
        let dremio_grants = watched_kind::<DremioGrant>(&client, &context, &mut tasks);
        let snowflake_grants = watched_kind::<SnowflakeGrant>(&client, &context, &mut tasks);

        let sigma = SigmaEmulator::start().await;
        sigma.add_client(CLIENT_ID, CLIENT_SECRET);
        sigma.add_connection(CONNECTION);

        let grafana = GrafanaEmulator::start().await;
        grafana.add_token(1, GRAFANA_TOKEN);
        let datasource_id = grafana.add_datasource(1, DATASOURCE_UID, DATASOURCE_NAME);

        let dremio = DremioEmulator::start().await;
        dremio.add_token(DREMIO_TOKEN);
        dremio.add_project(DREMIO_PROJECT);
        let dremio_object = dremio.add_object(&DREMIO_PATH, &DREMIO_PRIVILEGES);
        let snowflake = SnowflakeEmulator::start().await;
        seed_snowflake(&snowflake);

        let harness = Harness {
            kube,
            sigma,
            grafana,
            datasource_id,
            dremio,
            dremio_object,
            snowflake,
            clock,
            metrics,
            context,
            grants,
            grafana_grants,
            dremio_grants,
            snowflake_grants,
            rechecks: tokio::sync::Mutex::new(rechecks),
            tasks,
        };
        harness.namespace(NS, &[]);
        harness
    }

    /// A harness with the standard namespace, Secret and a Ready `GrantProvider` `sigma-prod`.
    pub async fn ready() -> Harness {
        let harness = Harness::new().await;
        harness.secret(
            NS,
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        );
        harness.put(&harness.sigma_provider(NS, "sigma-prod", "sigma-api"));
        harness
            .reconcile_provider(NS, "sigma-prod")
            .await
            .expect("provider becomes ready");
        harness.sigma.clear_calls();
        harness.kube.clear_calls();
        harness
    }

    // ----- objects -----

    pub fn namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        self.kube.put(&namespace);
    }

    pub fn secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        self.kube.put(&secret);
    }

    /// A provider for this harness's emulator, with a short timeout and a high rate limit.
    pub fn sigma_provider(&self, namespace: &str, name: &str, secret: &str) -> GrantProvider {
        let mut provider = sigma_provider(namespace, name, &self.sigma.url(), secret);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    /// A Grafana provider for this harness's emulator (token in `secret`, key
    /// `token`; org 1), with a short timeout and a high rate limit.
    pub fn grafana_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        api: GrafanaPermissionsApi,
    ) -> GrantProvider {
        let mut provider = grafana_provider(namespace, name, &self.grafana.url(), secret, api);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    /// A Dremio provider for this harness's emulator: Software, or Cloud on
    /// [`DREMIO_PROJECT`]; token in `secret` (key `token`).
    pub fn dremio_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        cloud: bool,
    ) -> GrantProvider {
        let mut provider = dremio_provider(
            namespace,
            name,
            &self.dremio.url(),
            secret,
            cloud.then_some(DREMIO_PROJECT),
        );
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }

    /// Grants of a Dremio catalog object as `(grantee key, privileges sorted)` sorted.
    pub fn dremio_live(&self, object: &str) -> Vec<(String, Vec<String>)> {
        let mut live: Vec<(String, Vec<String>)> = self
            .dremio
            .grants(object)
            .into_iter()
            .map(|entry| {
                let kind = match entry.grantee_type {
                    dremio::GranteeType::User => "user",
                    dremio::GranteeType::Role => "role",
                };
                let mut privileges = entry.privileges.clone();
                privileges.sort();
                (format!("{kind}:{}", entry.id), privileges)
            })
            .collect();
        live.sort();
        live
    }

    /// Managed, non-inherited permissions of a Grafana data source as
    /// `(grantee key, level)` sorted: what the operator may change.
    pub fn grafana_live(&self, uid: &str) -> Vec<(String, String)> {
        let mut live: Vec<(String, String)> = self
            .grafana
            .permissions(uid)
            .into_iter()
            .filter(|entry| entry.managed && !entry.inherited)
            .map(|entry| {
                let grantee = match entry.grantee {
                    grafana::Grantee::User(id) => format!("user:{id}"),
                    grafana::Grantee::Team(id) => format!("team:{id}"),
                    grafana::Grantee::BuiltIn(role) => format!("role:{role}"),
                };
                (grantee, entry.permission.name().to_string())
            })
            .collect();
        live.sort();
        live
    }

    /// Waits until all `resources` grants report Synced (calling `on_poll` on every
    /// look); returns how long it took.
    pub async fn wait_until_synced(
        &self,
        resources: usize,
        limit: Duration,
        mut on_poll: impl FnMut(),
    ) -> Duration {
        let started = tokio::time::Instant::now();
        loop {
            let synced = self
                .kube
                .list_json(GROUP, "sigmagrants")
                .iter()
                .filter(|grant| grant["status"]["conditions"][0]["reason"] == "Synced")
                .count();
            on_poll();
            if synced == resources {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "only {synced} of {resources} synced"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub fn cluster_provider(
        &self,
        name: &str,
        secret_namespace: &str,
        secret: &str,
        selector: LabelSelector,
    ) -> ClusterGrantProvider {
        let value = |key: &str| SecretValue {
            secret_key_ref: ClusterSecretKeySelector {
                name: secret.into(),
                namespace: secret_namespace.into(),
                key: key.into(),
            },
        };
        ClusterGrantProvider::new(
            name,
            ClusterGrantProviderSpec {
                sigma: Some(SigmaProvider {
                    api_url: self.sigma.url(),
                    client_id: value("client-id"),
                    client_secret: value("client-secret"),
                }),
                grafana: None,
                snowflake: None,
                dremio: None,
                request_timeout_seconds: Some(5),
                rate_limit: None,
                ca_bundle: None,
                namespace_selector: selector,
            },
        )
    }

    /// Creates or replaces an object as given (status and finalizers included).
    pub fn put<K: Resource<DynamicType = ()> + serde::Serialize>(&self, object: &K) {
        self.kube.put(object);
    }

    pub fn get(&self, name: &str) -> Option<SigmaGrant> {
        self.get_of::<SigmaGrant>(name)
    }

    pub fn get_of<K: TestKind>(&self, name: &str) -> Option<K> {
        self.kube.get::<K>(Some(NS), name)
    }

    pub fn status(&self, name: &str) -> GrantStatus {
        self.status_of::<SigmaGrant>(name)
    }

    pub fn status_of<K: TestKind>(&self, name: &str) -> GrantStatus {
        self.get_of::<K>(name)
            .and_then(|grant| grant.status().cloned())
            .unwrap_or_default()
    }

    pub fn ready_condition(&self, name: &str) -> Condition {
        self.ready_of::<SigmaGrant>(name)
    }

    pub fn ready_of<K: TestKind>(&self, name: &str) -> Condition {
        let status = self.status_of::<K>(name);
        status
            .conditions
            .into_iter()
            .find(|condition| condition.type_ == READY)
            .unwrap_or_else(|| panic!("{name} has no Ready condition"))
    }

    /// Changes the spec of a grant (keeping its status and finalizers, like `kubectl apply`).
    pub fn edit(&self, name: &str, change: impl FnOnce(&mut SigmaGrantSpec)) {
        self.edit_of::<SigmaGrant>(name, |grant| change(&mut grant.spec));
    }

    /// Changes a grant of any kind (keeping its status and finalizers).
    pub fn edit_of<K: TestKind>(&self, name: &str, change: impl FnOnce(&mut K)) {
        let mut grant = self.get_of::<K>(name).expect("grant exists");
        change(&mut grant);
        self.kube.put(&grant);
    }

    pub fn delete(&self, name: &str) {
        self.delete_of::<SigmaGrant>(name);
    }

    pub fn delete_of<K: TestKind>(&self, name: &str) {
        self.kube.delete::<K>(Some(NS), name);
    }

    pub fn provider_ready(&self, namespace: &str, name: &str) -> Condition {
        self.kube
            .get::<GrantProvider>(Some(namespace), name)
            .and_then(|provider| provider.status)
            .and_then(|status| {
                status
                    .conditions
                    .into_iter()
                    .find(|condition| condition.type_ == READY)
            })
            .expect("provider has a Ready condition")
    }

    /// Events recorded for a grant: `(type, reason, note)`.
    pub fn events(&self, name: &str) -> Vec<(String, String, String)> {
        self.kube
            .list_json("events.k8s.io", "events")
            .into_iter()
            .filter(|event| event["regarding"]["name"] == name)
            .map(|event| {
                (
                    event["type"].as_str().unwrap_or_default().to_string(),
                    event["reason"].as_str().unwrap_or_default().to_string(),
                    event["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    // ----- reconciling -----

    /// Waits until every reflector store has seen the latest version of every object.
    pub async fn caught_up(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stores = &self.context.stores;
            let done = matches(
                &self.grants.store,
                self.kube.list_json(GROUP, "sigmagrants"),
            ) && matches(
                &self.grafana_grants.store,
                self.kube.list_json(GROUP, "grafanagrants"),
            ) && matches(
                &self.dremio_grants.store,
                self.kube.list_json(GROUP, "dremiogrants"),
            ) && matches(
                &self.snowflake_grants.store,
                self.kube.list_json(GROUP, "snowflakegrants"),
            ) && matches(
                &stores.providers,
                self.kube.list_json(GROUP, "grantproviders"),
            ) && matches(
                &stores.cluster_providers,
                self.kube.list_json(GROUP, "clustergrantproviders"),
            ) && matches(&stores.secrets, self.kube.list_json("", "secrets"))
                && matches(&stores.namespaces, self.kube.list_json("", "namespaces"));
            if done {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stores did not catch up with the API"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One reconcile, as the controller runs it (with `error_policy` on failure).
    pub async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        self.reconcile_of::<SigmaGrant>(name).await
    }

    /// One reconcile of a grant of kind `K`.
    ///
    /// A reconcile that queues a sync of its target is run again once the sync
    /// tasks are done (the controller would be woken), so this returns the result
    /// of the reconcile that read the sync's answer.
    pub async fn reconcile_of<K: TestKind>(&self, name: &str) -> Result<Action, Error> {
        let cx = K::context(self);
        for _ in 0..20 {
            self.caught_up().await;
            let Some(object) = cx.store.get(&ObjectRef::new(name).within(NS)) else {
                return Ok(Action::await_change());
            };
            let result = grant::reconcile(object.clone(), cx.clone()).await;
            if let Err(Error::Queued) = result {
                cx.syncs.idle().await;
                continue;
            }
            if let Err(error) = &result {
                grant::error_policy(object, error, cx.clone());
            }
            return result;
        }
        panic!("{name} stayed queued for a sync of its target");
    }

    /// Reconciles until a reconcile writes nothing more; returns the last result.
    pub async fn settle(&self, name: &str) -> Result<Action, Error> {
        self.settle_of::<SigmaGrant>(name).await
    }

    /// [`Harness::settle`] for a grant of kind `K`.
    pub async fn settle_of<K: TestKind>(&self, name: &str) -> Result<Action, Error> {
        let mut result = Ok(Action::await_change());
        for _ in 0..10 {
            let before = self.version(K::PLURAL, name);
            result = self.reconcile_of::<K>(name).await;
            self.caught_up().await;
            if self.version(K::PLURAL, name) == before {
                return result;
            }
        }
        result
    }

    /// The resourceVersion of a grant, read raw (it may not be readable as its kind).
    fn version(&self, plural: &str, name: &str) -> Option<String> {
        self.kube
            .list_json(GROUP, plural)
            .into_iter()
            .find(|object| {
                object["metadata"]["name"] == name && object["metadata"]["namespace"] == NS
            })
            .and_then(|object| {
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .map(String::from)
            })
    }

    pub async fn reconcile_provider(&self, namespace: &str, name: &str) -> Result<Action, Error> {
        self.caught_up().await;
        let object = self
            .context
            .stores
            .providers
            .get(&ObjectRef::new(name).within(namespace))
            .expect("provider in store");
        let result = provider::reconcile(object.clone(), self.context.clone()).await;
        if let Err(error) = &result {
            provider::error_policy(object, error, self.context.clone());
        }
        self.caught_up().await;
        result
    }

    pub async fn reconcile_cluster_provider(&self, name: &str) -> Result<Action, Error> {
        self.caught_up().await;
        let object = self
            .context
            .stores
            .cluster_providers
            .get(&ObjectRef::new(name))
            .expect("cluster provider in store");
        let result = provider::reconcile(object.clone(), self.context.clone()).await;
        if let Err(error) = &result {
            provider::error_policy(object, error, self.context.clone());
        }
        self.caught_up().await;
        result
    }

    /// Moves the clock past every resource's sync interval.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Grants on the connection as `(grantee, permission)` sorted, for comparisons.
    pub fn live(&self) -> Vec<(String, String)> {
        let mut live: Vec<(String, String)> = self
            .sigma
            .grants(CONNECTION)
            .into_iter()
            .map(|grant| {
                let grantee = match grant.grantee {
                    sigma::Grantee::Member(id) => format!("member:{id}"),
                    sigma::Grantee::Team(id) => format!("team:{id}"),
                };
                (grantee, grant.permission)
            })
            .collect();
        live.sort();
        live
    }
}

fn matches<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, listed: Vec<Value>) -> bool {
    let listed: BTreeMap<(String, String), String> = listed
        .iter()
        .map(|object| {
            let meta = &object["metadata"];
            (
                (
                    meta["namespace"].as_str().unwrap_or_default().to_string(),
                    meta["name"].as_str().unwrap_or_default().to_string(),
                ),
                meta["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let stored: BTreeMap<(String, String), String> = store
        .state()
        .iter()
        .map(|object| {
            (
                (object.namespace().unwrap_or_default(), object.name_any()),
                object.resource_version().unwrap_or_default(),
            )
        })
        .collect();
    listed == stored
}

/// A `GrantProvider` for Sigma at `api_url`, with credentials in `secret`
/// (keys `client-id` and `client-secret`).
pub fn sigma_provider(namespace: &str, name: &str, api_url: &str, secret: &str) -> GrantProvider {
    let mut provider = GrantProvider::new(
        name,
        GrantProviderSpec {
            sigma: Some(SigmaProvider {
                api_url: api_url.into(),
                client_id: secret_value(secret, "client-id"),
                client_secret: secret_value(secret, "client-secret"),
            }),
            grafana: None,
            snowflake: None,
            dremio: None,
            request_timeout_seconds: None,
            rate_limit: None,
            ca_bundle: None,
        },
    );
    provider.metadata.namespace = Some(namespace.into());
    provider
}

/// A `GrantProvider` for Grafana at `url` (org 1), with a service account token
/// in `secret` (key `token`).
pub fn grafana_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    api: GrafanaPermissionsApi,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    provider.spec.grafana = Some(GrafanaProvider {
        url: url.into(),
        org_id: Some(1),
        permissions_api: api,
        token: Some(secret_value(secret, "token")),
        basic_auth: None,
    });
    provider
}

pub fn secret_value(secret: &str, key: &str) -> SecretValue<SecretKeySelector> {
    SecretValue {
        secret_key_ref: SecretKeySelector {
            name: secret.into(),
            key: key.into(),
        },
    }
}

pub fn policy(provider: &str) -> GrantPolicy {
    GrantPolicy {
        provider_ref: ProviderRef {
            kind: ProviderKind::GrantProvider,
            name: provider.into(),
        },
        mode: Mode::Additive,
        deletion_policy: DeletionPolicy::Delete,
        management_policy: ManagementPolicy::Manage,
        suspend: false,
        sync_interval: Some("1m".into()),
        expires_at: None,
    }
}

pub fn member(email: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: Some(SigmaMemberRef {
            id: None,
            email: Some(email.into()),
        }),
        team: None,
        permission,
    }
}

pub fn member_id(id: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: Some(SigmaMemberRef {
            id: Some(id.into()),
            email: None,
        }),
        team: None,
        permission,
    }
}

pub fn team(name: &str, permission: SigmaPermission) -> SigmaGrantEntry {
    SigmaGrantEntry {
        member: None,
        team: Some(SigmaTeamRef {
            id: None,
            name: Some(name.into()),
        }),
        permission,
    }
}

/// A SigmaGrant in [`NS`] on [`CONNECTION`] through `sigma-prod`.
pub fn sigma_grant(name: &str, grants: Vec<SigmaGrantEntry>) -> SigmaGrant {
    let mut grant = SigmaGrant::new(
        name,
        SigmaGrantSpec {
            policy: policy("sigma-prod"),
            connection_id: CONNECTION.into(),
            grants,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

pub fn time(at: Timestamp) -> Time {
    Time(at)
}

/// The requeue delay of an action (kube keeps the field private; Debug shows it).
pub fn requeue_after(action: &Action) -> Duration {
    let text = format!("{action:?}");
    let seconds = text
        .split("Some(")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|number| number.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no requeue in {text}"));
    Duration::from_secs_f64(seconds)
}

/// `items`, sorted (live grants are compared sorted).
pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// The real operator loop (`run`) in a task, stopped by [`RunningOperator::stop`].
pub struct RunningOperator {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOperator {
    pub fn start(client: kube::Client, config: Config, metrics: Arc<Metrics>) -> RunningOperator {
        use futures::FutureExt;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let task = tokio::spawn(run::run(
            client,
            config,
            metrics,
            Arc::new(grant_operator::controller::SystemClock),
            shutdown,
        ));
        RunningOperator { stop, task }
    }

    /// Signals shutdown; `Err` when the operator did not stop within `within`.
    pub async fn stop(self, within: Duration) -> Result<(), String> {
        let _ = self.stop.send(());
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("the operator task failed: {error}")),
            Err(_) => Err(format!("the operator did not stop within {within:?}")),
        }
    }
}

/// Requests served over HTTP by [`serve_kube_logged`]: (method, path). The
/// fake's own log also holds the in-process reflectors' requests; this one holds
/// only what came over the wire (a binary's).
pub type Served = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Serves `kube` over HTTP on a loopback port (for an operator running as its own
/// process) and writes a kubeconfig pointing at it; returns the kubeconfig's path.
pub async fn serve_kube_over_http(kube: &FakeKube) -> std::path::PathBuf {
    serve_kube_logged(kube, None).await
}

/// [`serve_kube_over_http`], recording each request served in `log` when given.
pub async fn serve_kube_logged(kube: &FakeKube, log: Option<Served>) -> std::path::PathBuf {
    use http_body_util::BodyExt;
    use std::io::Write;
    use tower::ServiceExt;
    let service = kube.service();
    let app = tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let service = service.clone();
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            if let Some(log) = &log {
                log.lock()
                    .unwrap()
                    .push((parts.method.to_string(), parts.uri.path().to_string()));
            }
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let request = http::Request::from_parts(parts, kube::client::Body::from(bytes));
            let response = service.oneshot(request).await.expect("fake API answers");
            let (parts, body) = response.into_parts();
            Ok::<_, std::convert::Infallible>(http::Response::from_parts(
                parts,
                axum::body::Body::new(body),
            ))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, tower::make::Shared::new(app)).await });
    let kubeconfig = std::env::temp_dir().join(format!(
        "grant-operator-bench-{}-{}.yaml",
        std::process::id(),
        address.port()
    ));
    std::fs::File::create(&kubeconfig)
        .unwrap()
        .write_all(
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\n\
                 users:\n- name: fake\n  user:\n    token: fake\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: fake\n"
            )
            .as_bytes(),
        )
        .unwrap();
    kubeconfig
}

/// A value from `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The operator binary as its own process: `run` against `kubeconfig`, with
/// `args` appended; `BENCH_WRAPPER` (e.g. "valgrind --tool=massif") runs it
/// under a profiler, and `BENCH_OPERATOR` names another build of the binary.
pub fn spawn_operator(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Child {
    let wrapper: Vec<String> = std::env::var("BENCH_WRAPPER")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    // BENCH_OPERATOR: another build of the binary (an earlier one, to compare).
    let binary = std::env::var("BENCH_OPERATOR")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_grant-operator").to_string());
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = std::process::Command::new(program);
            command.args(rest).arg(&binary);
            command
        }
        None => std::process::Command::new(&binary),
    };
    command
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        // Any free port: several benchmarks (or engineers) may run at once.
        .args(["--metrics-bind-address", "127.0.0.1:0"])
        .args(args)
        .spawn()
        .unwrap()
}

/// Stops an operator started with [`spawn_operator`] by SIGTERM (so a profiler
/// can write its report), killing it after a minute.
pub async fn stop_operator(mut operator: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &operator.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while operator.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match operator.try_wait().ok().flatten() {
        Some(status) => eprintln!("operator exited on SIGTERM: {status}"),
        None => {
            eprintln!("operator did not stop on SIGTERM; killing it");
            let _ = operator.kill();
            let _ = operator.wait();
        }
    }
}

/// A number from the environment, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A grant kind the harness reconciles.
pub trait TestKind: GrantKind {
    /// The plural of the kind's API resource.
    const PLURAL: &'static str;
    /// The harness's controller context of the kind.
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>>;
}

impl TestKind for SigmaGrant {
    const PLURAL: &'static str = "sigmagrants";
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>> {
        &harness.grants
    }
}

impl TestKind for DremioGrant {
    const PLURAL: &'static str = "dremiogrants";
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>> {
        &harness.dremio_grants
    }
}

impl TestKind for GrafanaGrant {
    const PLURAL: &'static str = "grafanagrants";
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>> {
        &harness.grafana_grants
    }
}

/// A `GrantProvider` for Dremio at `url` (Cloud when `project` is set), with a
/// personal access token in `secret` (key `token`).
pub fn dremio_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    project: Option<&str>,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    provider.spec.dremio = Some(DremioProvider {
        url: url.into(),
        project_id: project.map(String::from),
        token: secret_value(secret, "token"),
    });
    provider
}

/// A DremioGrant in [`NS`] on [`DREMIO_PATH`] through the provider `dremio`.
pub fn dremio_grant(name: &str, grants: Vec<DremioGrantEntry>) -> DremioGrant {
    let mut grant = DremioGrant::new(
        name,
        DremioGrantSpec {
            policy: policy("dremio"),
            catalog_object: DremioCatalogObjectRef {
                path: Some(DREMIO_PATH.iter().map(|part| part.to_string()).collect()),
                id: None,
            },
            grants,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

fn principal(name: &str) -> Option<DremioPrincipalRef> {
    Some(DremioPrincipalRef {
        name: Some(name.into()),
        id: None,
    })
}

fn privileges(privileges: &[&str]) -> Vec<String> {
    privileges.iter().map(|p| p.to_string()).collect()
}

/// `user: { name }` with `privileges`.
pub fn dremio_user(name: &str, granted: &[&str]) -> DremioGrantEntry {
    DremioGrantEntry {
        user: principal(name),
        role: None,
        privileges: privileges(granted),
    }
}

/// `role: { name }` with `privileges`.
pub fn dremio_role(name: &str, granted: &[&str]) -> DremioGrantEntry {
    DremioGrantEntry {
        user: None,
        role: principal(name),
        privileges: privileges(granted),
    }
}

/// A GrafanaGrant in [`NS`] on [`DATASOURCE_UID`] through the provider `grafana`.
pub fn grafana_grant(name: &str, permissions: Vec<GrafanaPermissionEntry>) -> GrafanaGrant {
    let mut grant = GrafanaGrant::new(
        name,
        GrafanaGrantSpec {
            policy: policy("grafana"),
            datasource: GrafanaDatasourceRef {
                uid: Some(DATASOURCE_UID.into()),
                name: None,
                id: None,
            },
            permissions,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

fn grafana_user(
    login: Option<&str>,
    email: Option<&str>,
    id: Option<i64>,
    permission: GrafanaPermission,
) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: Some(GrafanaUserRef {
            login: login.map(String::from),
            email: email.map(String::from),
            id,
        }),
        team: None,
        role: None,
        permission,
    }
}

/// `user: { login }`.
pub fn user_login(login: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(Some(login), None, None, permission)
}

/// `user: { email }`.
pub fn user_email(email: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(None, Some(email), None, permission)
}

/// `user: { id }`.
pub fn user_id(id: i64, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    grafana_user(None, None, Some(id), permission)
}

/// `team: { name }`.
pub fn team_name(name: &str, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: None,
        team: Some(GrafanaTeamRef {
            name: Some(name.into()),
            id: None,
        }),
        role: None,
        permission,
    }
}

/// `role: Viewer | Editor | Admin`.
pub fn built_in(role: GrafanaBuiltInRole, permission: GrafanaPermission) -> GrafanaPermissionEntry {
    GrafanaPermissionEntry {
        user: None,
        team: None,
        role: Some(role),
        permission,
    }
}

/// The operator as the binary runs it with `--leader-election`: the leader gate
/// over `run`, reporting to its own [`Health`](grant_operator::server::Health).
pub struct ElectedOperator {
    pub health: Arc<grant_operator::server::Health>,
    pub metrics: Arc<Metrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

/// The Lease every elected test operator uses.
pub const LEASE: &str = "grant-operator";
/// The namespace of the Lease.
pub const OPERATOR_NS: &str = "grant-operator-system";

impl ElectedOperator {
    /// Starts a replica called `identity`, with a 2 s lease.
    pub fn start(client: kube::Client, config: Config, identity: &str) -> ElectedOperator {
        use futures::FutureExt;
        use grant_operator::leader::{LeaseSettings, run_while_leading};
        let metrics = Arc::new(Metrics::new());
        let health = grant_operator::server::Health::new(metrics.clone(), true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let settings = LeaseSettings {
            name: LEASE.into(),
            namespace: OPERATOR_NS.into(),
            identity: identity.into(),
            duration: Duration::from_secs(2),
        };
        let task = tokio::spawn({
            let metrics = metrics.clone();
            let health = health.clone();
            async move {
                run_while_leading(client.clone(), settings, health.clone(), shutdown, |stop| {
                    run::run_reporting(
                        client.clone(),
                        config.clone(),
                        metrics.clone(),
                        Arc::new(grant_operator::controller::SystemClock),
                        stop,
                        health.clone(),
                    )
                })
                .await
            }
        });
        ElectedOperator {
            health,
            metrics,
            stop,
            task,
        }
    }

    /// Signals shutdown; `Err` when it did not stop within `within` or failed.
    pub async fn stop(self, within: Duration) -> Result<(), String> {
        let _ = self.stop.send(());
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => Err(format!("the operator task failed: {error}")),
            Err(_) => Err(format!("the operator did not stop within {within:?}")),
        }
    }
}

/// Waits up to 20 s for `check`.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a Snowflake provider logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnowflakeLogin {
    /// Key pair, unencrypted PKCS#8.
    KeyPair,
    /// Key pair, encrypted PKCS#8 and a passphrase.
    EncryptedKeyPair,
    OAuth,
    Pat,
}

/// The emulator's account: the operator's key-pair user and tokens, roles
/// `ANALYST`, `LOADER` and `"My Role"`, database role `SALES.READER`, user `JANE`,
/// database `SALES` with schemas `PUBLIC` (tables `ORDERS`, `CUSTOMERS`, view
/// `ORDERS_V`) and `"Mixed Case"` (table `"Line Items"`), warehouse `COMPUTE_WH`.
pub fn seed_snowflake(snowflake: &SnowflakeEmulator) {
    snowflake.add_key_user(SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PUBLIC_KEY);
    snowflake.add_oauth_token(SNOWFLAKE_OAUTH);
    snowflake.add_pat(SNOWFLAKE_PAT);
    for role in ["ANALYST", "LOADER", r#""My Role""#] {
        snowflake.add_role(role);
    }
    snowflake.add_database_role("SALES.READER");
    snowflake.add_user("JANE");
    snowflake.add_table("SALES.PUBLIC.ORDERS");
    snowflake.add_table("SALES.PUBLIC.CUSTOMERS");
    snowflake.add_view("SALES.PUBLIC.ORDERS_V");
    snowflake.add_table(r#"SALES."Mixed Case"."Line Items""#);
    snowflake.add_warehouse("COMPUTE_WH");
}

impl Harness {
    /// The Secret `name` in `namespace` with what `login` needs
    /// (`private-key`, `passphrase`, `token`).
    pub fn snowflake_secret(&self, namespace: &str, name: &str, login: SnowflakeLogin) {
        match login {
            SnowflakeLogin::KeyPair => {
                self.secret(namespace, name, &[("private-key", SNOWFLAKE_KEY)])
            }
            SnowflakeLogin::EncryptedKeyPair => self.secret(
                namespace,
                name,
                &[
                    ("private-key", SNOWFLAKE_ENCRYPTED_KEY),
                    ("passphrase", SNOWFLAKE_PASSPHRASE.trim()),
                ],
            ),
            SnowflakeLogin::OAuth => self.secret(namespace, name, &[("token", SNOWFLAKE_OAUTH)]),
            SnowflakeLogin::Pat => self.secret(namespace, name, &[("token", SNOWFLAKE_PAT)]),
        }
    }

    /// A Snowflake provider for this harness's emulator, with a short timeout
    /// and a high rate limit.
    pub fn snowflake_provider(
        &self,
        namespace: &str,
        name: &str,
        secret: &str,
        login: SnowflakeLogin,
        api: SnowflakeGrantsApi,
    ) -> GrantProvider {
        let mut provider =
            snowflake_provider(namespace, name, &self.snowflake.url(), secret, login, api);
        provider.spec.request_timeout_seconds = Some(5);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        provider
    }
}

impl TestKind for SnowflakeGrant {
    const PLURAL: &'static str = "snowflakegrants";
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>> {
        &harness.snowflake_grants
    }
}

/// A `GrantProvider` for Snowflake at `url` logging in as [`SNOWFLAKE_USER`] of
/// [`SNOWFLAKE_ACCOUNT`] the `login` way, credentials in `secret`.
pub fn snowflake_provider(
    namespace: &str,
    name: &str,
    url: &str,
    secret: &str,
    login: SnowflakeLogin,
    api: SnowflakeGrantsApi,
) -> GrantProvider {
    let mut provider = sigma_provider(namespace, name, "https://unused", secret);
    provider.spec.sigma = None;
    let key_pair = match login {
        SnowflakeLogin::KeyPair => Some(SnowflakeKeyPair {
            private_key: secret_value(secret, "private-key"),
            passphrase: None,
        }),
        SnowflakeLogin::EncryptedKeyPair => Some(SnowflakeKeyPair {
            private_key: secret_value(secret, "private-key"),
            passphrase: Some(secret_value(secret, "passphrase")),
        }),
        _ => None,
    };
    provider.spec.snowflake = Some(SnowflakeProvider {
        account_url: url.into(),
        account: SNOWFLAKE_ACCOUNT.into(),
        user: SNOWFLAKE_USER.into(),
        key_pair,
        oauth_token: (login == SnowflakeLogin::OAuth).then(|| secret_value(secret, "token")),
        programmatic_access_token: (login == SnowflakeLogin::Pat)
            .then(|| secret_value(secret, "token")),
        grants_api: api,
    });
    provider
}

/// A SnowflakeGrant in [`NS`] through the provider `snowflake`: `grantee`
/// (`ROLE`, `DATABASE_ROLE` or `USER`), privileges on `target`.
pub fn snowflake_grant(
    name: &str,
    grantee: (SnowflakeGranteeType, &str),
    target: SnowflakeTarget,
    privileges: &[&str],
    with_grant_option: bool,
) -> SnowflakeGrant {
    let mut grant = SnowflakeGrant::new(
        name,
        SnowflakeGrantSpec {
            policy: policy("snowflake"),
            grantee: SnowflakeGrantee {
                type_: grantee.0,
                name: grantee.1.into(),
            },
            target,
            privileges: privileges.iter().map(|p| p.to_string()).collect(),
            with_grant_option,
        },
    );
    grant.metadata.namespace = Some(NS.into());
    grant
}

/// `target: { securable: { type, name } }`.
pub fn target_securable(type_: &str, name: &str) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: Some(SnowflakeSecurable {
            type_: type_.into(),
            name: name.into(),
        }),
        all: None,
        future: None,
    }
}

fn bulk(securable_type: &str, scope: SnowflakeScopeType, name: &str) -> SnowflakeBulk {
    SnowflakeBulk {
        securable_type: securable_type.into(),
        in_: SnowflakeScope {
            type_: scope,
            name: name.into(),
        },
    }
}

/// `target: { all: { securableType, in: { type, name } } }`.
pub fn target_all(securable_type: &str, scope: SnowflakeScopeType, name: &str) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: None,
        all: Some(bulk(securable_type, scope, name)),
        future: None,
    }
}

/// `target: { future: { securableType, in: { type, name } } }`.
pub fn target_future(
    securable_type: &str,
    scope: SnowflakeScopeType,
    name: &str,
) -> SnowflakeTarget {
    SnowflakeTarget {
        securable: None,
        all: None,
        future: Some(bulk(securable_type, scope, name)),
    }
}
