//! Scale benchmark of the real binary on all four vendors (ignored by default;
//! one command, see README "Performance"):
//!
//! ```sh
//! cargo test --release --test bench_scale -- --ignored --nocapture
//! ```
//!
//! The operator runs as its own process (all four grant controllers) against the
//! in-memory API server served over HTTP and the four vendor emulators, every
//! vendor call answered after an injected round trip (100 ms). Grant resources are
//! created at about 10 per second, in turn for each vendor, shaped as a real API
//! server sends them: `managedFields` of server-side apply (Argo CD), of
//! `kubectl`'s client-side apply and of the operator's own writes, the
//! `last-applied-configuration` annotation, labels and Argo CD's tracking
//! annotation; the operator adds its status rows (vendor ids, messages). Every
//! resource has `syncInterval: 60s` and declares two grants; each vendor has 50
//! vendor objects (Snowflake: 50 grantee roles, its unit).
//!
//! It prints a table of:
//! - resident memory of the operator process (`VmRSS`, sampled every 500 ms while
//!   converging: the peak; and after settling) at each checkpoint (1,000 / 5,000 /
//!   10,000 / 20,000 resources, up to `SCALE_RESOURCES`), and the bytes per
//!   resource between checkpoints;
//! - create -> Ready p50 / p99 per vendor: from the moment the API server stored
//!   the resource to the moment it received the first status write with
//!   `Ready=True` (a hook on the in-memory API server);
//! - vendor writes over the minimum the vendor APIs allow (see [`Minimum`]),
//!   counted from each emulator's call log;
//! - steady state, after convergence: listings per vendor object per interval (one
//!   per grantee for Snowflake) and vendor writes (must be 0), over
//!   `SCALE_STEADY_INTERVALS` intervals, with the operator's CPU over that window
//!   (`/proc/<pid>/stat` utime + stime) and the status writes it made.
//!
//! Knobs: `SCALE_RESOURCES` (10,000), `SCALE_RATE` (creations per second, 10),
//! `SCALE_OBJECTS` (vendor objects per vendor, 50), `SCALE_INTERVAL_SECS` (60),
//! `SCALE_RTT_MS` (100), `SCALE_STEADY_INTERVALS` (2), `SCALE_CHECKPOINTS`
//! (`1000,5000,10000,20000`), `BENCH_SETTLE_SECS` (20), `BENCH_WRAPPER` (run the
//! operator under a profiler, e.g. `valgrind --tool=massif`), `BENCH_OPERATOR`
//! (another build of the binary, to compare), `SCALE_REFRESH_INTERVALS`
//! (`--last-sync-refresh-intervals`; unset: the operator's default, README,
//! "Behaviour where the contract is silent", 10).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grant_operator::api::*;
use serde_json::{Value, json};
use support::fake_kube::FakeKube;
use support::*;

/// The four vendors, in the order resources are created.
const VENDORS: [&str; 4] = ["Sigma", "Grafana", "Dremio", "Snowflake"];
const PLURALS: [&str; 4] = [
    "sigmagrants",
    "grafanagrants",
    "dremiogrants",
    "snowflakegrants",
];

/// Grantees each vendor object draws from (so that resources share grants).
const POOL: usize = 40;
const SIGMA_MEMBERS: usize = 200;
const GRAFANA_USERS: usize = 100;
const GRAFANA_TEAMS: usize = 20;
const DREMIO_USERS: usize = 40;
const DREMIO_ROLES: usize = 20;
const SNOWFLAKE_TABLES: usize = 40;

/// What each vendor's emulator knows, and the ids the resources name.
struct World {
    kube: FakeKube,
    sigma: support::sigma::SigmaEmulator,
    grafana: support::grafana::GrafanaEmulator,
    dremio: support::dremio::DremioEmulator,
    snowflake: support::snowflake::SnowflakeEmulator,
    sigma_members: Vec<String>,
    grafana_users: Vec<i64>,
    grafana_teams: Vec<i64>,
    objects: usize,
}

impl World {
    async fn new(objects: usize) -> World {
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
        let sigma = support::sigma::SigmaEmulator::start().await;
        sigma.add_client(CLIENT_ID, CLIENT_SECRET);
        let grafana = support::grafana::GrafanaEmulator::start().await;
        grafana.add_token(1, GRAFANA_TOKEN);
        let dremio = support::dremio::DremioEmulator::start().await;
        dremio.add_token(DREMIO_TOKEN);
        let snowflake = support::snowflake::SnowflakeEmulator::start().await;
        seed_snowflake(&snowflake);

        for o in 0..objects {
            sigma.add_connection(&format!("conn-{o}"));
            grafana.add_datasource(1, &format!("ds-{o}"), &format!("Data source {o}"));
            dremio.add_object(
                &["Lake", "sales", &format!("table_{o}")],
                &["ALTER", "SELECT", "MANAGE_GRANTS"],
            );
            snowflake.add_role(&format!("ROLE_{o}"));
        }
        let sigma_members = (0..SIGMA_MEMBERS)
            .map(|m| sigma.add_member(&format!("member{m}@example.com")))
            .collect();
        let grafana_users = (0..GRAFANA_USERS)
            .map(|u| grafana.add_user(1, &format!("user{u}"), &format!("user{u}@example.com")))
            .collect();
        let grafana_teams = (0..GRAFANA_TEAMS)
            .map(|t| grafana.add_team(1, &format!("team-{t}")))
            .collect();
        for u in 0..DREMIO_USERS {
            dremio.add_user(&format!("user{u}"), &format!("user{u}@example.com"));
        }
        for r in 0..DREMIO_ROLES {
            dremio.add_role(&format!("role{r}"));
        }
        for t in 0..SNOWFLAKE_TABLES {
            snowflake.add_table(&format!("SALES.PUBLIC.T{t}"));
        }
        World {
            kube,
            sigma,
            grafana,
            dremio,
            snowflake,
            sigma_members,
            grafana_users,
            grafana_teams,
            objects,
        }
    }

    /// The namespace, Secrets and one provider per vendor, each with a rate limit.
    fn providers(&self) {
        let namespace = k8s_openapi::api::core::v1::Namespace {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(NS.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.kube.put(&namespace);
        let secret = |name: &str, data: &[(&str, &str)]| {
            let secret = k8s_openapi::api::core::v1::Secret {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(NS.into()),
                    ..Default::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| {
                            (
                                k.to_string(),
                                k8s_openapi::ByteString(v.as_bytes().to_vec()),
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            };
            self.kube.put(&secret);
        };
        secret(
            "sigma-api",
            &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
        );
        secret("grafana-sa", &[("token", GRAFANA_TOKEN)]);
        secret("dremio-pat", &[("token", DREMIO_TOKEN)]);
        secret("snowflake-key", &[("private-key", SNOWFLAKE_KEY)]);
        let limited = |mut provider: GrantProvider| {
            provider.spec.rate_limit = Some(RateLimit {
                requests_per_second: RATE_LIMIT,
                burst: Some(RATE_LIMIT as i32),
            });
            provider.spec.request_timeout_seconds = Some(10);
            self.kube.put(&provider);
        };
        limited(sigma_provider(NS, "sigma", &self.sigma.url(), "sigma-api"));
        limited(grafana_provider(
            NS,
            "grafana",
            &self.grafana.url(),
            "grafana-sa",
            GrafanaPermissionsApi::AccessControl,
        ));
        limited(dremio_provider(
            NS,
            "dremio",
            &self.dremio.url(),
            "dremio-pat",
            None,
        ));
        limited(snowflake_provider(
            NS,
            "snowflake",
            &self.snowflake.url(),
            "snowflake-key",
            SnowflakeLogin::KeyPair,
            SnowflakeGrantsApi::RoleGrants,
        ));
    }

    fn providers_ready(&self) -> bool {
        ["sigma", "grafana", "dremio", "snowflake"]
            .iter()
            .all(|name| {
                self.kube
                    .get::<GrantProvider>(Some(NS), name)
                    .and_then(|provider| provider.status)
                    .is_some_and(|status| {
                        status
                            .conditions
                            .iter()
                            .any(|c| c.type_ == READY && c.status == "True")
                    })
            })
    }

    /// Every vendor call is answered after `rtt`.
    fn delay_every_call(&self, rtt: Duration) {
        let fault = |prefix: &str| support::emulator::Fault {
            method: None,
            path_prefix: prefix.into(),
            times: usize::MAX,
            kind: support::emulator::FaultKind::Delay(rtt),
        };
        self.sigma.inject(fault("/"));
        self.grafana.inject(fault("/"));
        self.dremio.inject(fault("/"));
        self.snowflake.inject(fault("/"));
    }

    /// Creates resource `index` (vendor `index % 4`) and returns its plural and name.
    fn create(&self, index: usize, interval: &str) -> (usize, String) {
        let vendor = index % 4;
        let j = index / 4;
        let o = j % self.objects;
        let round = j / self.objects;
        let name = format!("{}-{j}", VENDORS[vendor].to_lowercase());
        let with = |policy: &mut GrantPolicy, provider: &str| {
            policy.provider_ref.name = provider.into();
            policy.sync_interval = Some(interval.into());
        };
        match vendor {
            0 => {
                let grants = sigma_members_of(o, round)
                    .map(|m| member_id(&self.sigma_members[m], sigma_level(o, m)))
                    .collect();
                let mut grant = sigma_grant(&name, grants);
                grant.metadata.name = Some(name.clone());
                grant.spec.connection_id = format!("conn-{o}");
                with(&mut grant.spec.policy, "sigma");
                self.kube.put(&realistic(grant, "spec.connectionId"));
            }
            1 => {
                let (user, team) = grafana_grantees(o, round);
                let grants = vec![
                    user_id(self.grafana_users[user], grafana_level(o, user)),
                    GrafanaPermissionEntry {
                        user: None,
                        team: Some(GrafanaTeamRef {
                            name: None,
                            id: Some(self.grafana_teams[team]),
                        }),
                        role: None,
                        permission: GrafanaPermission::Query,
                    },
                ];
                let mut grant = grafana_grant(&name, grants);
                grant.spec.datasource.uid = Some(format!("ds-{o}"));
                with(&mut grant.spec.policy, "grafana");
                self.kube.put(&realistic(grant, "spec.datasource"));
            }
            2 => {
                let (user, role) = dremio_grantees(o, round);
                let mut grant = dremio_grant(
                    &name,
                    vec![
                        dremio_role(&format!("role{role}"), &["SELECT"]),
                        dremio_user(&format!("user{user}"), &["SELECT", "ALTER"]),
                    ],
                );
                grant.spec.catalog_object.path =
                    Some(vec!["Lake".into(), "sales".into(), format!("table_{o}")]);
                with(&mut grant.spec.policy, "dremio");
                self.kube.put(&realistic(grant, "spec.catalogObject"));
            }
            _ => {
                let mut grant = snowflake_grant(
                    &name,
                    (SnowflakeGranteeType::Role, &format!("ROLE_{o}")),
                    target_securable(
                        "TABLE",
                        &format!("SALES.PUBLIC.T{}", snowflake_table(round)),
                    ),
                    &["SELECT", "INSERT"],
                    false,
                );
                with(&mut grant.spec.policy, "snowflake");
                self.kube.put(&realistic(grant, "spec.grantee"));
            }
        }
        (vendor, name)
    }
}

/// Requests per second each provider allows (`spec.rateLimit`).
const RATE_LIMIT: f64 = 50.0;

fn sigma_members_of(o: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..2).map(move |k| (o * 13 + (round * 2 + k) % POOL) % SIGMA_MEMBERS)
}

/// A member's level on a connection is the same in every resource: no raises.
fn sigma_level(o: usize, m: usize) -> SigmaPermission {
    if (o + m).is_multiple_of(3) {
        SigmaPermission::Annotate
    } else {
        SigmaPermission::Usage
    }
}

fn grafana_grantees(o: usize, round: usize) -> (usize, usize) {
    (
        (o * 7 + round % POOL) % GRAFANA_USERS,
        (o + round) % GRAFANA_TEAMS,
    )
}

fn grafana_level(o: usize, user: usize) -> GrafanaPermission {
    if (o + user).is_multiple_of(3) {
        GrafanaPermission::Edit
    } else {
        GrafanaPermission::Query
    }
}

fn dremio_grantees(o: usize, round: usize) -> (usize, usize) {
    ((o * 3 + round) % DREMIO_USERS, (o + round) % DREMIO_ROLES)
}

fn snowflake_table(round: usize) -> usize {
    round % SNOWFLAKE_TABLES
}

/// The fewest vendor writes that bring each vendor to what the resources declare,
/// when resources arrive one after another and each must become Ready on its own
/// (a resource cannot wait for declarations that do not exist yet), using each
/// API's largest batch:
/// - Sigma: one `POST .../grants` per resource that brings new grants to its
///   connection (up to 100 grants per call; a resource has two);
/// - Grafana: one call per new grantee-level on a data source (the API sets one
///   grantee's level per call);
/// - Dremio: one `PUT .../grants` per resource that brings new privileges to its
///   object (the PUT replaces the whole list, so one call carries them all);
/// - Snowflake: one call per new (grantee, securable): one call grants every
///   privilege on one securable to one grantee.
///
/// Levels and privileges of a grantee on an object are the same in every resource
/// here, so no raise or lower is ever needed. Syncs that serve several resources
/// at once can go below this (one write for several arrivals).
#[derive(Default)]
struct Minimum {
    sigma: BTreeSet<(usize, usize)>,
    grafana: BTreeSet<(usize, &'static str, usize)>,
    dremio: BTreeSet<(usize, &'static str, usize)>,
    snowflake: BTreeSet<(usize, usize)>,
    writes: [u64; 4],
}

impl Minimum {
    fn arrive(&mut self, index: usize, objects: usize) {
        let vendor = index % 4;
        let j = index / 4;
        let (o, round) = (j % objects, j / objects);
        match vendor {
            0 => {
                let new = sigma_members_of(o, round)
                    .filter(|m| self.sigma.insert((o, *m)))
                    .count();
                self.writes[0] += new.div_ceil(100) as u64;
            }
            1 => {
                let (user, team) = grafana_grantees(o, round);
                self.writes[1] += u64::from(self.grafana.insert((o, "user", user)))
                    + u64::from(self.grafana.insert((o, "team", team)));
            }
            2 => {
                let (user, role) = dremio_grantees(o, round);
                let new =
                    self.dremio.insert((o, "user", user)) | self.dremio.insert((o, "role", role));
                self.writes[2] += u64::from(new);
            }
            _ => {
                self.writes[3] += u64::from(self.snowflake.insert((o, snowflake_table(round))));
            }
        }
    }
}

/// The object as a real API server sends it after Argo CD (server-side apply),
/// `kubectl apply` and the operator wrote it.
fn realistic<K>(object: K, target_field: &str) -> K
where
    K: kube::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned,
{
    let mut value = serde_json::to_value(&object).expect("serializes");
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = K::kind(&()).to_string();
    let api_version = K::api_version(&()).to_string();
    let tracking = format!("data-access:{GROUP}/{kind}:{NS}/{name}");
    let labels = json!({
        "app.kubernetes.io/instance": "data-access",
        "app.kubernetes.io/managed-by": "argocd",
        "app.kubernetes.io/part-of": "analytics-platform",
        "team": format!("team-{}", name.len() % 7),
    });
    let applied = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "annotations": {"argocd.argoproj.io/tracking-id": tracking},
            "labels": labels,
            "name": name,
            "namespace": NS,
        },
        "spec": value["spec"],
    });
    let time = "2026-01-15T09:30:00Z";
    let label_fields: serde_json::Map<String, Value> = labels
        .as_object()
        .map(|labels| {
            labels
                .keys()
                .map(|k| (format!("f:{k}"), json!({})))
                .collect()
        })
        .unwrap_or_default();
    let target_key = target_field.trim_start_matches("spec.");
    let managed = json!([
        {
            "manager": "argocd-controller",
            "operation": "Apply",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {"f:argocd.argoproj.io/tracking-id": {}},
                    "f:labels": label_fields,
                },
                "f:spec": fields_v1(&value["spec"]),
            },
        },
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                },
            },
        },
        {
            "manager": "grant-operator",
            "operation": "Update",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"grantoperator.dev/revoke\"": {}}}},
        },
        {
            "manager": "grant-operator",
            "operation": "Apply",
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "subresource": "status",
            "fieldsV1": {"f:status": {
                "f:conditions": {"k:{\"type\":\"Ready\"}": {
                    ".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {},
                    "f:reason": {}, "f:status": {}, "f:type": {},
                }},
                "f:driftCorrections": {},
                "f:grants": {},
                "f:lastSyncTime": {},
                "f:observedGeneration": {},
                "f:target": {format!("f:{target_key}"): {}},
            }},
        },
    ]);
    let metadata = value["metadata"].as_object_mut().expect("metadata");
    metadata.insert("labels".into(), labels);
    metadata.insert(
        "annotations".into(),
        json!({
            "argocd.argoproj.io/tracking-id": tracking,
            "kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n"),
        }),
    );
    metadata.insert("managedFields".into(), managed);
    serde_json::from_value(value).expect("deserializes")
}

/// The FieldsV1 set of a value (lists atomic, as the CRDs declare them).
fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, child)| (format!("f:{key}"), fields_v1(child)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// CPU seconds (user + system) the process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 of stat(5), utime 14, stime 15.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// How an emulator call counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallKind {
    /// A listing of a unit's grants.
    Listing,
    /// A grant write (grant, revoke, level change, list replacement).
    Write,
    /// Anything else (authentication, look-ups, result polls).
    Other,
}

fn classify(vendor: usize, method: &str, path: &str) -> CallKind {
    let get = method == "GET";
    match vendor {
        0 if path.starts_with("/v2/connections/") && path.ends_with("/grants") && get => {
            CallKind::Listing
        }
        0 if path.starts_with("/v2/connections/") && path.contains("/grants") => CallKind::Write,
        1 if path.starts_with("/api/access-control/datasources/") => {
            let segments = path.trim_start_matches('/').split('/').count();
            match (get, segments) {
                (true, 4) if !path.ends_with("/description") => CallKind::Listing,
                (false, _) => CallKind::Write,
                _ => CallKind::Other,
            }
        }
        1 if path.contains("/permissions") && !get => CallKind::Write,
        1 if path.ends_with("/permissions") && get => CallKind::Listing,
        2 if path.ends_with("/grants") && get => CallKind::Listing,
        2 if path.ends_with("/grants") => CallKind::Write,
        3 if (path.ends_with("/grants") || path.ends_with("/future-grants")) && get => {
            CallKind::Listing
        }
        3 if path.contains("grants") && !get => CallKind::Write,
        _ => CallKind::Other,
    }
}

/// `(listings, writes, others, peak requests in any one second)` of each vendor.
fn tally(world: &World) -> [(u64, u64, u64, usize); 4] {
    let calls: [Vec<(String, String, Instant)>; 4] = [
        simple(world.sigma.calls()),
        simple(world.grafana.calls()),
        simple(world.dremio.calls()),
        simple(world.snowflake.calls()),
    ];
    let mut out = [(0, 0, 0, 0); 4];
    for (vendor, calls) in calls.iter().enumerate() {
        for (method, path, _) in calls {
            match classify(vendor, method, path) {
                CallKind::Listing => out[vendor].0 += 1,
                CallKind::Write => out[vendor].1 += 1,
                CallKind::Other => out[vendor].2 += 1,
            }
        }
        let mut times: Vec<Instant> = calls.iter().map(|(_, _, at)| *at).collect();
        times.sort();
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
                start += 1;
            }
            out[vendor].3 = out[vendor].3.max(end - start + 1);
        }
    }
    out
}

/// Per vendor: the mean gap between consecutive listings of the same vendor
/// object (the same listing path), over every object listed at least twice.
/// `syncInterval / gap` is the listings per object per interval, free of where
/// the window's edges fall among the jittered resyncs.
fn listing_gaps(world: &World) -> [Option<Duration>; 4] {
    let calls: [Vec<(String, String, Instant)>; 4] = [
        simple(world.sigma.calls()),
        simple(world.grafana.calls()),
        simple(world.dremio.calls()),
        simple(world.snowflake.calls()),
    ];
    let mut out = [None; 4];
    for (vendor, calls) in calls.iter().enumerate() {
        let mut by_path: HashMap<&str, Vec<Instant>> = HashMap::new();
        for (method, path, at) in calls {
            if classify(vendor, method, path) == CallKind::Listing {
                by_path.entry(path.as_str()).or_default().push(*at);
            }
        }
        let (mut total, mut gaps) = (Duration::ZERO, 0u32);
        for times in by_path.values_mut() {
            times.sort();
            for pair in times.windows(2) {
                total += pair[1].duration_since(pair[0]);
                gaps += 1;
            }
        }
        if gaps > 0 {
            out[vendor] = Some(total / gaps);
        }
    }
    out
}

fn simple(calls: Vec<support::emulator::Call>) -> Vec<(String, String, Instant)> {
    calls
        .into_iter()
        .map(|call| (call.method, call.path, call.at))
        .collect()
}

fn clear_calls(world: &World) {
    world.sigma.clear_calls();
    world.grafana.clear_calls();
    world.dremio.clear_calls();
    world.snowflake.clear_calls();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Status writes seen by the API server, and the first `Ready=True` of each resource.
#[derive(Default)]
struct Observed {
    ready: Mutex<HashMap<String, Instant>>,
    status_writes: AtomicU64,
    other_writes: AtomicU64,
    /// Listings (not watches) of the grant kinds: a watch that cannot resume
    /// (`410 Gone`) lists its whole kind again.
    grant_lists: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn scale_on_four_vendors() {
    let total: usize = env_number("SCALE_RESOURCES", 10_000);
    let rate: f64 = env_number("SCALE_RATE", 10.0);
    let objects: usize = env_number("SCALE_OBJECTS", 50);
    let interval_secs: u64 = env_number("SCALE_INTERVAL_SECS", 60);
    let rtt = Duration::from_millis(env_number("SCALE_RTT_MS", 100));
    let steady_intervals: u64 = env_number("SCALE_STEADY_INTERVALS", 2);
    let settle = Duration::from_secs(env_number("BENCH_SETTLE_SECS", 20));
    let mut checkpoints: Vec<usize> = std::env::var("SCALE_CHECKPOINTS")
        .unwrap_or_else(|_| "1000,5000,10000,20000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| *n < total)
        .collect();
    checkpoints.push(total);
    let interval = format!("{interval_secs}s");

    let world = World::new(objects).await;
    world.providers();
    let observed = Arc::new(Observed::default());
    {
        let observed = observed.clone();
        world.kube.on_request(move |call| {
            if call.method == "GET" {
                let listing = PLURALS.iter().any(|plural| call.path.ends_with(plural))
                    && !call.query.split('&').any(|pair| pair == "watch=true");
                if listing {
                    observed.grant_lists.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            let Some(rest) = call.path.strip_suffix("/status") else {
                observed.other_writes.fetch_add(1, Ordering::Relaxed);
                return;
            };
            observed.status_writes.fetch_add(1, Ordering::Relaxed);
            let ready = call
                .body
                .as_ref()
                .and_then(|body| body["status"]["conditions"].as_array())
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            if ready {
                let mut parts = rest.rsplit('/');
                let name = parts.next().unwrap_or_default();
                let plural = parts.next().unwrap_or_default();
                observed
                    .ready
                    .lock()
                    .unwrap()
                    .entry(format!("{plural}/{name}"))
                    .or_insert_with(Instant::now);
            }
        });
    }
    let kubeconfig = serve_kube_over_http(&world.kube).await;
    // The operator's default lastSyncTime refresh unless SCALE_REFRESH_INTERVALS
    // names another (README, "Behaviour where the contract is silent", 10).
    let refresh = std::env::var("SCALE_REFRESH_INTERVALS").ok();
    let mut args = vec!["--log-level", "warn"];
    if let Some(refresh) = &refresh {
        args.extend(["--last-sync-refresh-intervals", refresh.as_str()]);
    }
    let operator = spawn_operator(&kubeconfig, &args);
    let pid = operator.id();
    let started = Instant::now();
    while !world.providers_ready() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the providers did not become Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("providers Ready after {:?}", started.elapsed());
    world.delay_every_call(rtt);
    clear_calls(&world);

    // Creation at `rate` per second, pausing at each checkpoint until every resource
    // created so far is Ready, then letting the operator settle.
    let mut created: Vec<(usize, String, Instant)> = Vec::with_capacity(total);
    let mut minimum = Minimum::default();
    let mut rows = Vec::new();
    let mut peak = 0;
    let clock = Instant::now();
    let mut paused = Duration::ZERO;
    for &checkpoint in &checkpoints {
        while created.len() < checkpoint {
            let index = created.len();
            let due = clock + paused + Duration::from_secs_f64(index as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
            let (vendor, name) = world.create(index, &interval);
            minimum.arrive(index, objects);
            created.push((
                vendor,
                format!("{}/{name}", PLURALS[vendor]),
                Instant::now(),
            ));
            if index.is_multiple_of(5) {
                peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            }
        }
        let pause = Instant::now();
        let deadline = pause + Duration::from_secs(1800);
        loop {
            peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            let ready = observed.ready.lock().unwrap().len();
            if ready >= created.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {ready} of {} resources became Ready",
                created.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let converged = pause.elapsed();
        let until = Instant::now() + settle;
        while Instant::now() < until {
            peak = peak.max(proc_status_kib(pid, "VmRSS:"));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let settled = proc_status_kib(pid, "VmRSS:");
        eprintln!(
            "{checkpoint} resources: Ready {converged:?} after the last creation; resident {:.1} MiB settled, peak {:.1} MiB, high-water {:.1} MiB",
            mib(settled),
            mib(peak),
            mib(proc_status_kib(pid, "VmHWM:"))
        );
        rows.push((checkpoint, peak, settled, converged));
        paused += pause.elapsed();
    }

    // Latency per vendor, from creation to the first Ready=True.
    let ready = observed.ready.lock().unwrap().clone();
    let mut latency: [Vec<Duration>; 4] = Default::default();
    for (vendor, key, at) in &created {
        if let Some(done) = ready.get(key) {
            latency[*vendor].push(done.saturating_duration_since(*at));
        }
    }
    for list in &mut latency {
        list.sort();
    }
    let converging = tally(&world);

    // Steady state: one interval to let the last resyncs pass, then the window.
    tokio::time::sleep(Duration::from_secs(interval_secs) + settle).await;
    clear_calls(&world);
    let status_before = observed.status_writes.load(Ordering::Relaxed);
    let other_before = observed.other_writes.load(Ordering::Relaxed);
    let lists_before = observed.grant_lists.load(Ordering::Relaxed);
    let cpu_before = cpu_seconds(pid);
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(interval_secs * steady_intervals)).await;
    let window = window_start.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid) - cpu_before) / window;
    let steady = tally(&world);
    let gaps = listing_gaps(&world);
    let status_writes = observed.status_writes.load(Ordering::Relaxed) - status_before;
    let other_writes = observed.other_writes.load(Ordering::Relaxed) - other_before;
    let grant_lists = observed.grant_lists.load(Ordering::Relaxed) - lists_before;
    let resident = proc_status_kib(pid, "VmRSS:");

    // The table.
    let refreshed = match &refresh {
        Some(n) => format!("every {n} intervals"),
        None => "at the default".into(),
    };
    println!();
    println!(
        "## grant-operator at scale: {total} resources on 4 vendors, {objects} vendor objects each, {:?} round trips, syncInterval {interval}, {rate}/s created, lastSyncTime refresh {refreshed}",
        rtt
    );
    println!();
    println!("| resources | resident peak | resident settled | Ready after the last creation |");
    println!("|---|---|---|---|");
    for (count, peak, settled, converged) in &rows {
        println!(
            "| {count} | {:.1} MiB | {:.1} MiB | {:.1} s |",
            mib(*peak),
            mib(*settled),
            converged.as_secs_f64()
        );
    }
    for pair in rows.windows(2) {
        let (a, _, sa, _) = pair[0];
        let (b, _, sb, _) = pair[1];
        let slope = (sb as f64 - sa as f64) * 1024.0 / (b - a) as f64;
        println!("slope {a} -> {b}: {slope:.0} bytes per resource (settled)");
    }
    println!();
    println!(
        "| vendor | resources | create->Ready p50 | p99 | max | writes | minimum | writes/minimum | listings | other calls | peak calls/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for vendor in 0..4 {
        let list = &latency[vendor];
        let (listings, writes, others, peak_rate) = converging[vendor];
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {writes} | {} | {:.3} | {listings} | {others} | {peak_rate} |",
            VENDORS[vendor],
            list.len(),
            percentile(list, 50.0).as_secs_f64(),
            percentile(list, 99.0).as_secs_f64(),
            list.last().copied().unwrap_or_default().as_secs_f64(),
            minimum.writes[vendor],
            writes as f64 / minimum.writes[vendor].max(1) as f64,
        );
    }
    let all_writes: u64 = converging.iter().map(|c| c.1).sum();
    let all_minimum: u64 = minimum.writes.iter().sum();
    println!(
        "all vendors: {all_writes} writes, minimum {all_minimum}: {:.3}",
        all_writes as f64 / all_minimum.max(1) as f64
    );
    println!();
    println!(
        "steady state over {steady_intervals} intervals ({window:.0} s): CPU {:.2}% of a core, {status_writes} status writes, {other_writes} other API writes, {grant_lists} listing pages of grant kinds (relists; {} in the whole run), resident {:.1} MiB",
        cpu * 100.0,
        observed.grant_lists.load(Ordering::Relaxed),
        mib(resident)
    );
    println!();
    println!(
        "| vendor | listings | per object per interval (count) | mean gap between an object's listings | per object per interval (from the gap) | writes | other calls |"
    );
    println!("|---|---|---|---|---|---|---|");
    for vendor in 0..4 {
        let (listings, writes, others, _) = steady[vendor];
        let (gap, ratio) = match gaps[vendor] {
            Some(gap) => (
                format!("{:.1} s", gap.as_secs_f64()),
                format!("{:.3}", interval_secs as f64 / gap.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {listings} | {:.3} | {gap} | {ratio} | {writes} | {others} |",
            VENDORS[vendor],
            listings as f64 / (objects as u64 * steady_intervals) as f64
        );
    }

    stop_operator(operator).await;
    let _ = std::fs::remove_file(&kubeconfig);
}
