//! Setting up a world: the API server with the kinds, the namespace, and the
//! Secret and provider of each vendor; each vendor's emulator with its
//! grantees, its object and the outsider's grant; the kill switch and the
//! journal's observer on each.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Instant;

use grant_operator::api::*;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::*;
use crate::support::dremio::DremioEmulator;
use crate::support::emulator::Intercept;
use crate::support::fake_kube::Hold;
use crate::support::grafana::GrafanaEmulator;
use crate::support::sigma::SigmaEmulator;
use crate::support::snowflake::SnowflakeEmulator;
use crate::support::*;
use crate::support::{dremio, emulator, grafana, sigma};

use super::vendors::{project_dremio, project_grafana, project_sigma, project_snowflake};
use super::*;

/// What the world is made of.
#[derive(Clone, Debug)]
pub struct Options {
    pub vendors: Vec<Vendor>,
    pub grafana_api: GrafanaPermissionsApi,
    pub snowflake_api: SnowflakeGrantsApi,
    pub dremio_cloud: bool,
    /// `requestTimeoutSeconds` of every provider.
    pub request_timeout: i32,
}

impl Options {
    /// One vendor, on its default API.
    pub fn single(vendor: Vendor) -> Options {
        Options {
            vendors: vec![vendor],
            grafana_api: GrafanaPermissionsApi::AccessControl,
            snowflake_api: SnowflakeGrantsApi::RoleGrants,
            dremio_cloud: false,
            request_timeout: 2,
        }
    }
}

/// `plural/name` of a status write (PUT or PATCH of a `/status` subresource).
fn status_write(call: &crate::support::fake_kube::RecordedCall) -> Option<String> {
    if !matches!(call.method.as_str(), "PATCH" | "PUT") {
        return None;
    }
    let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., plural, name, "status"] => Some(format!("{plural}/{name}")),
        _ => None,
    }
}

/// Installs the kill switch on an emulator and the journal's observer.
fn watch_emulator<V: emulator::Vendor>(
    emulator: &Arc<emulator::Server<V>>,
    vendor: Vendor,
    switch: &Arc<KillSwitch>,
    journal: &Arc<Journal>,
    project: impl Fn(&emulator::Server<V>) -> Live + Send + Sync + 'static,
) {
    let source = vendor.name();
    let killer = switch.clone();
    emulator.intercept(move |call| {
        match killer.decide(source, &call.method, &call.path, &call.query) {
            Decision::Pass => Intercept::Pass,
            Decision::HoldBefore => Intercept::DropBefore(killer.release_of()),
            Decision::HoldAfter => Intercept::DropAfter(killer.release_of()),
        }
    });
    let weak: Weak<emulator::Server<V>> = Arc::downgrade(emulator);
    let journal = journal.clone();
    emulator.observe(move |call, stage| {
        if let Some(emulator) = weak.upgrade() {
            journal.observed(vendor, call, stage, project(&emulator));
        }
    });
}

impl World {
    /// The API server with the kinds, the namespace, Secrets and providers;
    /// the emulators of `options.vendors` with their grantees, objects and the
    /// outsider's grant; the kill switch and observers installed. No operator yet.
    pub async fn new(options: Options) -> World {
        grant_operator::install_crypto_provider();
        let kube = operator_kube();
        kube.put(&Namespace {
            metadata: ObjectMeta {
                name: Some(NS.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        });
        let switch = Arc::new(KillSwitch::new());
        let journal = Arc::new(Journal::new());
        let status_writes: StatusWrites = Arc::default();
        {
            let killer = switch.clone();
            let status_writes = status_writes.clone();
            kube.intercept(move |call| {
                match killer.decide("kube", &call.method, &call.path, &call.query) {
                    Decision::Pass => match status_write(call) {
                        // Noted once it was handled.
                        Some(object) => {
                            let status_writes = status_writes.clone();
                            Hold::After(Box::pin(async move {
                                lock(&status_writes).insert(object, Instant::now());
                            }))
                        }
                        None => Hold::Pass,
                    },
                    Decision::HoldBefore => Hold::Before(killer.release_of()),
                    Decision::HoldAfter => Hold::After(killer.release_of()),
                }
            });
        }

        let mut world = World {
            options: options.clone(),
            kube,
            sigma: None,
            grafana: None,
            dremio: None,
            snowflake: None,
            dremio_object: String::new(),
            labels: HashMap::new(),
            switch,
            journal,
            operator: None,
            resources: BTreeMap::new(),
            kills: Vec::new(),
            harness_problems: Vec::new(),
            status_writes,
        };
        for vendor in options.vendors.clone() {
            world.set_up(vendor).await;
        }
        world
    }

    /// Stores `provider` (made fast, with the world's request timeout) and
    /// the Secret `secret` it reads.
    fn provide(&self, mut provider: GrantProvider, secret: &str, data: &[(&str, &str)]) {
        self.kube.put(&secret_with_data(NS, secret, data));
        provider.spec.request_timeout_seconds = Some(self.options.request_timeout);
        provider.spec.rate_limit = Some(RateLimit {
            requests_per_second: 1000.0,
            burst: Some(1000),
        });
        self.kube.put(&provider);
    }

    /// Installs the kill switch and the journal's observer on the emulator of
    /// `vendor` and keeps its `labels` for reading what it holds.
    fn watch<V: emulator::Vendor>(
        &mut self,
        emulator: &Arc<emulator::Server<V>>,
        vendor: Vendor,
        labels: HashMap<String, String>,
        project: impl Fn(&emulator::Server<V>, &Labels) -> Live + Send + Sync + 'static,
    ) {
        let labels: Labels = Arc::new(labels);
        let projected = labels.clone();
        watch_emulator(emulator, vendor, &self.switch, &self.journal, move |e| {
            project(e, &projected)
        });
        self.labels.insert(vendor, labels);
    }

    async fn set_up(&mut self, vendor: Vendor) {
        let mut labels = HashMap::new();
        match vendor {
            Vendor::Sigma => {
                let sigma = Arc::new(SigmaEmulator::start().await);
                sigma.add_client(CLIENT_ID, CLIENT_SECRET);
                sigma.add_connection(CONNECTION);
                for key in 0..4 {
                    labels.insert(
                        sigma.add_member(&format!("m{key}@example.com")),
                        vendor.key_label(key),
                    );
                }
                for key in 4..6 {
                    labels.insert(
                        sigma.add_team(&format!("team-{}", key - 4)),
                        vendor.key_label(key),
                    );
                }
                let outsider = sigma.add_member("outsider@example.com");
                labels.insert(outsider.clone(), "outsider".into());
                sigma.seed_grant(CONNECTION, sigma::Grantee::Member(outsider), "usage");
                self.provide(
                    sigma_provider(NS, vendor.provider(), &sigma.url(), "sigma-api"),
                    "sigma-api",
                    &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
                );
                self.watch(&sigma, vendor, labels, project_sigma);
                self.sigma = Some(sigma);
            }
            Vendor::Grafana => {
                let grafana = Arc::new(GrafanaEmulator::start().await);
                grafana.add_token(1, GRAFANA_TOKEN);
                grafana.add_datasource(1, DATASOURCE_UID, DATASOURCE_NAME);
                for key in 0..4 {
                    let id =
                        grafana.add_user(1, &format!("u{key}"), &format!("u{key}@example.com"));
                    labels.insert(format!("user:{id}"), vendor.key_label(key));
                }
                for key in 4..6 {
                    let id = grafana.add_team(1, &format!("team-{}", key - 4));
                    labels.insert(format!("team:{id}"), vendor.key_label(key));
                }
                let outsider = grafana.add_user(1, "outsider", "outsider@example.com");
                labels.insert(format!("user:{outsider}"), "outsider".into());
                grafana.seed_permission(
                    DATASOURCE_UID,
                    grafana::Grantee::User(outsider),
                    grafana::Level::Edit,
                    true,
                    false,
                );
                self.provide(
                    grafana_provider(
                        NS,
                        vendor.provider(),
                        &grafana.url(),
                        "grafana-sa",
                        self.options.grafana_api,
                    ),
                    "grafana-sa",
                    &[("token", GRAFANA_TOKEN)],
                );
                self.watch(&grafana, vendor, labels, project_grafana);
                self.grafana = Some(grafana);
            }
            Vendor::Dremio => {
                let dremio = Arc::new(DremioEmulator::start().await);
                dremio.add_token(DREMIO_TOKEN);
                dremio.add_project(DREMIO_PROJECT);
                let object = dremio.add_object(&DREMIO_PATH, &crate::support::DREMIO_PRIVILEGES);
                for key in 0..3 {
                    let name = format!("u{key}");
                    labels.insert(
                        dremio.add_user(&name, &format!("{name}@example.com")),
                        vendor.key_label(key),
                    );
                }
                for key in 3..6 {
                    labels.insert(
                        dremio.add_role(&format!("r{}", key - 3)),
                        vendor.key_label(key),
                    );
                }
                let outsiders = dremio.add_role("outsiders");
                labels.insert(outsiders.clone(), "outsiders".into());
                dremio.set_grants_directly(
                    &object,
                    vec![dremio::GrantRecord {
                        grantee_type: dremio::GranteeType::Role,
                        id: outsiders,
                        privileges: vec!["SELECT".into()],
                    }],
                );
                self.provide(
                    dremio_provider(
                        NS,
                        vendor.provider(),
                        &dremio.url(),
                        "dremio-pat",
                        self.options.dremio_cloud.then_some(DREMIO_PROJECT),
                    ),
                    "dremio-pat",
                    &[("token", DREMIO_TOKEN)],
                );
                let projected = object.clone();
                self.watch(&dremio, vendor, labels, move |e, labels| {
                    project_dremio(e, &projected, labels)
                });
                self.dremio_object = object;
                self.dremio = Some(dremio);
            }
            Vendor::Snowflake => {
                let snowflake = Arc::new(SnowflakeEmulator::start().await);
                seed_snowflake(&snowflake);
                snowflake.grant_direct(
                    "ROLE",
                    SNOWFLAKE_ROLE,
                    "WAREHOUSE",
                    "COMPUTE_WH",
                    "USAGE",
                    false,
                );
                self.provide(
                    snowflake_provider(
                        NS,
                        vendor.provider(),
                        &snowflake.url(),
                        "snowflake-key",
                        SnowflakeLogin::KeyPair,
                        self.options.snowflake_api,
                    ),
                    "snowflake-key",
                    &[("private-key", SNOWFLAKE_KEY)],
                );
                self.watch(&snowflake, vendor, labels, |e, _| project_snowflake(e));
                self.snowflake = Some(snowflake);
            }
        }
    }
}
