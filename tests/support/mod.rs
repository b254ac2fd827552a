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
//!
//! This module owns the harness (its clock, watches and controller contexts);
//! `objects` puts and reads the cluster's objects, `reconciling` drives the
//! reconcilers, `vendors` reads and seeds the emulators, `manifests` builds
//! resources, `operator` runs the real operator loop or the binary's.
#![allow(dead_code)]

pub mod binary;
pub mod conformance;
pub mod fake_kube;
mod manifests;
mod objects;
mod operator;
mod reconciling;
mod vendors;
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

// Each test binary uses a part of what these modules offer.
#[allow(unused_imports)]
pub use manifests::*;
#[allow(unused_imports)]
pub use operator::*;
#[allow(unused_imports)]
pub use vendors::*;

/// Runs each scenario of `names` as a `#[tokio::test]` in one module per setup,
/// called with that setup's arguments:
/// `each_setup!([create, delete]; software => (super::Deployment::Software), ...)`
/// gives `software::create`, which runs `create(Deployment::Software)`.
#[allow(unused_macros)] // only the tests of vendors with several setups use it
macro_rules! each_setup {
    ($names:tt; $($module:ident => $args:tt),+ $(,)?) => {
        $(crate::support::each_setup!(@module $module $args $names);)+
    };
    (@module $module:ident $args:tt [$($name:ident),* $(,)?]) => {
        mod $module {
            $(#[tokio::test]
            async fn $name() {
                super::$name $args .await
            })*
        }
    };
}
#[allow(unused_imports)] // only the tests of vendors with several setups use it
pub(crate) use each_setup;

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

/// An in-memory API server that serves every kind of the operator, each with its
/// status subresource.
pub fn operator_kube() -> FakeKube {
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
    kube
}

/// The Secret `name` in `namespace` holding `data`.
pub fn secret_with_data(namespace: &str, name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
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

/// A controller configuration for tests that run the operator loop: a short
/// backoff after an error and fast vendor retries.
pub fn fast_config() -> Config {
    Config {
        error_backoff: Duration::from_millis(50),
        vendor_retry: fast_retries(),
        ..Config::default()
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

/// What a reflector needs of a kind.
trait Reflected:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K> Reflected for K where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

fn reflect<K: Reflected>(
    client: &kube::Client,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Store<K> {
    reflect_telling(client, tasks, |_| {})
}

/// [`reflect`], telling `deleted` of every object the watch sees deleted.
fn reflect_telling<K: Reflected>(
    client: &kube::Client,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    deleted: impl Fn(&K) + Send + 'static,
) -> Store<K> {
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
        let kube = operator_kube();
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
        harness.sigma_prod_provider();
        harness
            .reconcile_provider(NS, "sigma-prod")
            .await
            .expect("provider becomes ready");
        harness.sigma.clear_calls();
        harness.kube.clear_calls();
        harness
    }

    // ----- objects -----
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

/// A number from the environment, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
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

/// A grant kind the harness reconciles.
pub trait TestKind: GrantKind {
    /// The plural of the kind's API resource.
    const PLURAL: &'static str;
    /// The harness's controller context of the kind.
    fn context(harness: &Harness) -> &Arc<GrantContext<Self>>;
}

/// Implements [`TestKind`] for a kind: its plural and the harness field of its context.
macro_rules! test_kind {
    ($($kind:ty => $plural:literal, $field:ident;)+) => {
        $(impl TestKind for $kind {
            const PLURAL: &'static str = $plural;
            fn context(harness: &Harness) -> &Arc<GrantContext<Self>> {
                &harness.$field
            }
        })+
    };
}

test_kind! {
    SigmaGrant => "sigmagrants", grants;
    DremioGrant => "dremiogrants", dremio_grants;
    GrafanaGrant => "grafanagrants", grafana_grants;
    SnowflakeGrant => "snowflakegrants", snowflake_grants;
}
