//! One world of a crash test: the in-memory API server (which outlives operator
//! restarts, as etcd does), the vendor emulators with their seeded objects,
//! the operator as a process that can be killed, and the records the
//! invariants are checked against.
//!
//! This module owns the world itself: the declaration changes a test makes
//! (each journaled), starting, killing (after each kill no request may reach
//! the API server, nor, after a moment for requests already on the wire, an
//! emulator) and stopping the operator, and waiting for it to converge. Its
//! parts: `process` (the operator process and the kill switch), `setup` (the
//! world's setup per vendor), `journal` (declaration changes and vendor
//! transitions) and `vendors` (reading what the vendors hold).

mod journal;
mod process;
mod setup;
mod vendors;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use grant_operator::api::*;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::model::*;
use crate::support::dremio::DremioEmulator;
use crate::support::fake_kube::FakeKube;
use crate::support::grafana::GrafanaEmulator;
use crate::support::sigma::SigmaEmulator;
use crate::support::snowflake::SnowflakeEmulator;
use crate::support::*;

pub use journal::*;
pub use process::*;
pub use setup::Options;
use vendors::Labels;
pub use vendors::Live;

/// How long after a kill a vendor request the operator wrote to its socket
/// before dying may still reach an emulator: the emulator's task that reads it
/// may wait that long for a core when many worlds run at once on a loaded
/// machine (30 ms was too short at a load average of 20). A request from
/// something that survived the kill arrives later, or reaches the API server,
/// which allows no delay at all.
const VENDOR_SETTLE: Duration = Duration::from_millis(250);

/// What the model says of one resource.
#[derive(Clone, Debug)]
pub struct Declared {
    pub spec: Spec,
    pub deleted: bool,
}

/// A kill that happened.
#[derive(Clone, Debug)]
pub struct Kill {
    pub step: Step,
    pub when: When,
    /// The counted requests just before it.
    pub context: Vec<Step>,
}

/// One world: the API server, the emulators, the operator (when running),
/// the kill switch, the journal and what the test declared.
pub struct World {
    pub options: Options,
    pub kube: FakeKube,
    pub sigma: Option<Arc<SigmaEmulator>>,
    pub grafana: Option<Arc<GrafanaEmulator>>,
    pub dremio: Option<Arc<DremioEmulator>>,
    pub snowflake: Option<Arc<SnowflakeEmulator>>,
    dremio_object: String,
    labels: HashMap<Vendor, Labels>,
    pub switch: Arc<KillSwitch>,
    pub journal: Arc<Journal>,
    operator: Option<Operator>,
    pub resources: BTreeMap<(Vendor, String), Declared>,
    pub kills: Vec<Kill>,
    /// Problems of the harness itself (requests after a kill).
    pub harness_problems: Vec<String>,
    /// When each resource's status was last written (handled), by `plural/name`.
    status_writes: StatusWrites,
}

type StatusWrites = Arc<Mutex<HashMap<String, Instant>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A point in time after which every surviving resource must have been synced.
#[derive(Clone, Copy, Debug)]
pub struct Since {
    /// `lastSyncTime` (the start of the last sync, in whole seconds) at or after this.
    pub wall: Timestamp,
    /// Or a status write after this, when `writes` (see [`Since::restart`]).
    pub instant: Instant,
    pub writes: bool,
}

impl Since {
    /// Right before a (re)start: every sync of the new operator starts after
    /// it, so its status writes prove a sync (`lastSyncTime` alone could not
    /// tell a sync in the same second).
    pub fn restart() -> Since {
        Since {
            wall: Timestamp::now(),
            instant: Instant::now(),
            writes: true,
        }
    }

    /// Now, with a running operator: only a sync that started later counts,
    /// and `lastSyncTime` has whole seconds, so from the next whole second.
    pub fn now() -> Since {
        let now = Timestamp::now();
        let wall = Timestamp::from_second(now.as_second() + 1).unwrap_or(now);
        Since {
            wall,
            instant: Instant::now(),
            writes: false,
        }
    }
}

impl World {
    // ----- declarations -----

    /// Creates or edits the resource `name` of `vendor` to declare `spec`.
    pub fn declare(&mut self, vendor: Vendor, name: &str, spec: Spec) {
        let object = resource(vendor, name, &spec);
        let exists = self
            .resources
            .get(&(vendor, name.to_string()))
            .is_some_and(|declared| !declared.deleted);
        let before = Instant::now();
        if exists {
            let new_spec = object["spec"].clone();
            let edited = match vendor {
                Vendor::Sigma => self.modify::<SigmaGrant>(name, new_spec),
                Vendor::Grafana => self.modify::<GrafanaGrant>(name, new_spec),
                Vendor::Dremio => self.modify::<DremioGrant>(name, new_spec),
                Vendor::Snowflake => self.modify::<SnowflakeGrant>(name, new_spec),
            };
            assert!(edited, "{name} exists to be edited");
        } else {
            match vendor {
                Vendor::Sigma => self.kube.put(&typed::<SigmaGrant>(object)),
                Vendor::Grafana => self.kube.put(&typed::<GrafanaGrant>(object)),
                Vendor::Dremio => self.kube.put(&typed::<DremioGrant>(object)),
                Vendor::Snowflake => self.kube.put(&typed::<SnowflakeGrant>(object)),
            };
        }
        self.record(before, vendor, name, Some(spec.clone()));
        self.resources.insert(
            (vendor, name.to_string()),
            Declared {
                spec,
                deleted: false,
            },
        );
    }

    /// Journals a declaration change written between `before` and now.
    fn record(&mut self, before: Instant, vendor: Vendor, name: &str, spec: Option<Spec>) {
        let after = Instant::now();
        self.journal.record(Change {
            before,
            after,
            vendor,
            name: name.to_string(),
            spec,
        });
    }

    /// The grant resources of `vendor` the API server stores, by name, as JSON.
    pub fn stored(&self, vendor: Vendor) -> BTreeMap<String, Value> {
        self.kube
            .list_json(GROUP, vendor.plural())
            .into_iter()
            .filter(|object| object["metadata"]["namespace"] == NS)
            .map(|object| {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                (name.to_string(), object)
            })
            .collect()
    }

    fn modify<K: kube::Resource<DynamicType = ()>>(&self, name: &str, spec: Value) -> bool {
        self.kube
            .modify::<K>(Some(NS), name, move |object| object["spec"] = spec)
    }

    /// Deletes the resource `name` of `vendor` (its finalizer keeps it until the operator lets go).
    pub fn delete(&mut self, vendor: Vendor, name: &str) {
        let before = Instant::now();
        match vendor {
            Vendor::Sigma => self.kube.delete::<SigmaGrant>(Some(NS), name),
            Vendor::Grafana => self.kube.delete::<GrafanaGrant>(Some(NS), name),
            Vendor::Dremio => self.kube.delete::<DremioGrant>(Some(NS), name),
            Vendor::Snowflake => self.kube.delete::<SnowflakeGrant>(Some(NS), name),
        }
        self.record(before, vendor, name, None);
        if let Some(declared) = self.resources.get_mut(&(vendor, name.to_string())) {
            declared.deleted = true;
        }
    }

    /// Carries out a list of declaration changes.
    pub fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Declare(vendor, name, spec) => self.declare(*vendor, name, spec.clone()),
                Action::Delete(vendor, name) => self.delete(*vendor, name),
            }
        }
    }

    // ----- the operator -----

    pub fn start(&mut self) {
        assert!(self.operator.is_none(), "the operator already runs");
        self.operator = Some(Operator::start(self.kube.clone(), operator_config()));
    }

    /// Kills the operator (after the switch tripped, or at once), checks that
    /// nothing of it is left making requests, and lets requests through again.
    pub async fn kill(&mut self) {
        let Some(operator) = self.operator.take() else {
            return;
        };
        operator.kill().await;
        // Nothing of the operator may be left making requests. API requests
        // are in-process: none may arrive once its runtime is gone. A vendor
        // request written to its socket just before the kill may still be read
        // by the emulator a moment later, so vendors get a moment to settle.
        let dead = Instant::now();
        tokio::time::sleep(VENDOR_SETTLE).await;
        let settled = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let late: Vec<String> = self
            .switch
            .arrived_after(dead)
            .into_iter()
            .filter(|line| line.starts_with("kube "))
            .chain(
                self.switch
                    .arrived_after(settled)
                    .into_iter()
                    .filter(|line| !line.starts_with("kube ")),
            )
            .collect();
        if !late.is_empty() {
            self.harness_problems.push(format!(
                "requests arrived after the operator was killed (something of it survived the kill): {}",
                late.join("; ")
            ));
        }
        if let Some((step, when)) = self.switch.tripped() {
            let steps = self.switch.steps();
            let from = step.n.saturating_sub(8).max(1);
            let context = steps
                .iter()
                .filter(|s| s.n >= from && s.n < step.n)
                .cloned()
                .collect();
            self.kills.push(Kill {
                step,
                when,
                context,
            });
        }
        self.switch.reset();
    }

    /// Stops the operator at the end of a test.
    pub async fn stop(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.kill().await;
        }
    }

    // ----- waiting -----

    /// Why the resources are not settled: survivors not Ready/Synced at their
    /// generation (and, with `since`, not synced since: a `lastSyncTime` at or
    /// after it, or a status write after it, as `lastSyncTime` has whole
    /// seconds), deleted ones still present. Empty when settled.
    pub fn unsettled_resources(&self, since: Option<Since>) -> Vec<String> {
        let mut problems = Vec::new();
        for vendor in &self.options.vendors {
            let stored = self.stored(*vendor);
            for ((v, name), declared) in &self.resources {
                if v != vendor {
                    continue;
                }
                let object = stored.get(name);
                if declared.deleted {
                    if let Some(object) = object {
                        problems.push(format!(
                            "{} {name} was deleted but is still there (finalizers {}; Ready {})",
                            vendor.name(),
                            object["metadata"]["finalizers"],
                            ready_summary(object)
                        ));
                    }
                    continue;
                }
                let Some(object) = object else {
                    problems.push(format!("{} {name} is missing", vendor.name()));
                    continue;
                };
                let generation = object["metadata"]["generation"].as_i64();
                let status = &object["status"];
                let ready = ready_of(object);
                let synced = ready.is_some_and(|ready| {
                    ready["status"] == "True"
                        && ready["reason"] == "Synced"
                        && ready["observedGeneration"].as_i64() == generation
                }) && status["observedGeneration"].as_i64() == generation;
                let fresh = match since {
                    None => true,
                    Some(since) => {
                        status["lastSyncTime"]
                            .as_str()
                            .and_then(|t| t.parse::<Timestamp>().ok())
                            .is_some_and(|t| t >= since.wall)
                            || since.writes
                                && lock(&self.status_writes)
                                    .get(&format!("{}/{name}", vendor.plural()))
                                    .is_some_and(|at| *at >= since.instant)
                    }
                };
                if !synced || !fresh {
                    problems.push(format!(
                        "{} {name} is not Synced at generation {} by a sync since {}: Ready {}; lastSyncTime {}",
                        vendor.name(),
                        generation.unwrap_or_default(),
                        since
                            .map(|s| s.wall.to_string())
                            .unwrap_or_else(|| "-".into()),
                        ready_summary(object),
                        status["lastSyncTime"]
                    ));
                }
            }
        }
        problems
    }

    /// Vendors whose grants differ from the surviving declarations.
    pub fn vendor_mismatches(&self) -> Vec<String> {
        self.options
            .vendors
            .iter()
            .filter_map(|vendor| {
                let live = self.live(*vendor).atoms;
                let expected = self.expected(*vendor);
                (live != expected).then(|| {
                    format!(
                        "{} holds {} but the declarations are {}",
                        vendor.name(),
                        show(&live),
                        show(&expected)
                    )
                })
            })
            .collect()
    }

    /// Waits until the resources are settled and the vendors hold what they
    /// declare. Returns early when the kill switch trips (if `interruptible`).
    /// Once the resources are settled, the vendors get `grace` to match.
    pub async fn converge(
        &self,
        since: Option<Since>,
        limit: Duration,
        grace: Duration,
        interruptible: bool,
    ) -> Waited {
        let deadline = tokio::time::Instant::now() + limit;
        let mut settled_at: Option<tokio::time::Instant> = None;
        loop {
            if interruptible && self.switch.tripped().is_some() {
                return Waited::Tripped;
            }
            let mut problems = self.unsettled_resources(since);
            if problems.is_empty() {
                let now = tokio::time::Instant::now();
                let first = *settled_at.get_or_insert(now);
                problems = self.vendor_mismatches();
                if problems.is_empty() {
                    return Waited::Done;
                }
                if now >= first + grace {
                    return Waited::TimedOut(problems);
                }
            } else {
                settled_at = None;
            }
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut(problems);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits `wait`, or less if the switch trips.
    pub async fn pause(&self, wait: Duration) -> Waited {
        tokio::select! {
            _ = tokio::time::sleep(wait) => Waited::Done,
            _ = self.switch.wait_tripped() => Waited::Tripped,
        }
    }

    /// Waits until every provider is Ready (or the switch trips).
    pub async fn providers_ready(&self, limit: Duration) -> Waited {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.switch.tripped().is_some() {
                return Waited::Tripped;
            }
            let pending: Vec<String> = self
                .options
                .vendors
                .iter()
                .filter(|vendor| {
                    !self
                        .kube
                        .get::<GrantProvider>(Some(NS), vendor.provider())
                        .and_then(|p| p.status)
                        .is_some_and(|s| {
                            s.conditions
                                .iter()
                                .any(|c| c.type_ == READY && c.status == "True")
                        })
                })
                .map(|vendor| format!("provider {} is not Ready", vendor.provider()))
                .collect();
            if pending.is_empty() {
                return Waited::Done;
            }
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut(pending);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Dropping the operator kills it (its thread ends on its own).
        self.operator.take();
        // Let held requests go so no emulator task waits forever.
        self.switch.reset();
    }
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited {
    Done,
    Tripped,
    TimedOut(Vec<String>),
}

/// A declaration change of a scenario.
#[derive(Clone, Debug)]
pub enum Action {
    /// Create or edit.
    Declare(Vendor, String, Spec),
    Delete(Vendor, String),
}

fn typed<K: serde::de::DeserializeOwned>(object: Value) -> K {
    serde_json::from_value(object).expect("resource deserializes")
}

fn ready_of(object: &Value) -> Option<&Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == READY)
}

/// `True/Synced "3 of 3 grants applied"`.
pub fn ready_summary(object: &Value) -> String {
    match ready_of(object) {
        Some(ready) => format!(
            "{}/{} {:?}",
            ready["status"].as_str().unwrap_or_default(),
            ready["reason"].as_str().unwrap_or_default(),
            ready["message"].as_str().unwrap_or_default()
        ),
        None => "(no Ready condition)".into(),
    }
}
