//! The gauges of objects (`grants`, `resources`, `not_ready_since_timestamp_seconds`,
//! `last_successful_sync_timestamp_seconds`), counted at scrape time from the
//! controllers' caches: a [`Census`] fed by one source per kind, and the
//! collector that encodes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::api::Reason;

use super::{GrantStateLabels, KindLabels, NotReadyLabels, ReadyLabels};

/// One grant or provider resource, as the census reads it from a cache.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The kind.
    pub kind: &'static str,
    /// Its namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<&'a str>,
    /// Its name.
    pub name: &'a str,
    /// `metadata.creationTimestamp`: when it has been not Ready since, before
    /// it has a `Ready` condition.
    pub created: Option<&'a Time>,
    /// Its `Ready` condition, if it has one.
    pub ready: Option<&'a Condition>,
    /// `status.lastSyncTime` (grant kinds).
    pub last_sync: Option<&'a Time>,
}

/// Objects counted at scrape time.
#[derive(Debug, Default, PartialEq)]
pub struct Census {
    /// Status rows by kind and state.
    pub grants: BTreeMap<GrantStateLabels, i64>,
    /// Resources by kind and `Ready`.
    pub resources: BTreeMap<ReadyLabels, i64>,
    /// Resources that are not Ready, and since when (Unix seconds): the
    /// `Ready` condition's `lastTransitionTime`, or the creation time before
    /// the resource has one.
    pub not_ready: BTreeMap<NotReadyLabels, f64>,
    /// By kind, the latest `lastSyncTime` of a resource that is neither
    /// `Suspended` nor `Expired` (those stop syncing on purpose), in Unix seconds.
    pub last_sync: BTreeMap<KindLabels, f64>,
}

impl Census {
    /// Counts one status row.
    pub fn row(&mut self, kind: &'static str, state: &'static str) {
        *self
            .grants
            .entry(GrantStateLabels { kind, state })
            .or_default() += 1;
    }

    /// Counts one resource by its `Ready` condition; one that is not Ready is
    /// also reported by name, and a grant's `lastSyncTime` counts towards its
    /// kind's last successful sync.
    pub fn resource(&mut self, object: Observed<'_>) {
        let labels = match object.ready {
            Some(condition) => ReadyLabels {
                kind: object.kind,
                ready: match condition.status.as_str() {
                    "True" => "True",
                    "False" => "False",
                    _ => "Unknown",
                },
                reason: known_reason(&condition.reason),
            },
            None => ReadyLabels {
                kind: object.kind,
                ready: "Unknown",
                reason: "None",
            },
        };
        if labels.ready != "True" {
            let since = match object.ready {
                Some(condition) => Some(&condition.last_transition_time),
                None => object.created,
            };
            self.not_ready_since(&labels, object.namespace, object.name, since);
        }
        if let Some(last_sync) = object.last_sync
            && !matches!(labels.reason, "Suspended" | "Expired")
        {
            let seconds = unix_seconds(last_sync);
            let latest = self
                .last_sync
                .entry(KindLabels { kind: object.kind })
                .or_insert(seconds);
            *latest = latest.max(seconds);
        }
        *self.resources.entry(labels).or_default() += 1;
    }

    /// A sync of `kind` that read its vendor successfully started at `seconds`
    /// (Unix seconds), whether or not a status write recorded it.
    pub fn synced(&mut self, kind: &'static str, seconds: f64) {
        let latest = self.last_sync.entry(KindLabels { kind }).or_insert(seconds);
        *latest = latest.max(seconds);
    }

    /// Counts one resource this version cannot read (not Ready since it was created).
    pub fn unreadable(
        &mut self,
        kind: &'static str,
        namespace: Option<&str>,
        name: &str,
        created: Option<&Time>,
    ) {
        let labels = ReadyLabels {
            kind,
            ready: "Unknown",
            reason: "Unreadable",
        };
        self.not_ready_since(&labels, namespace, name, created);
        *self.resources.entry(labels).or_default() += 1;
    }

    fn not_ready_since(
        &mut self,
        labels: &ReadyLabels,
        namespace: Option<&str>,
        name: &str,
        since: Option<&Time>,
    ) {
        // The API server sets creationTimestamp on every object, so `None`
        // only happens for objects that never came from it.
        let Some(since) = since else { return };
        self.not_ready.insert(
            NotReadyLabels {
                kind: labels.kind,
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
                ready: labels.ready,
                reason: labels.reason,
            },
            unix_seconds(since),
        );
    }
}

/// A Kubernetes time as Unix seconds (millisecond precision, as status times have).
fn unix_seconds(time: &Time) -> f64 {
    time.0.as_millisecond() as f64 / 1000.0
}

/// Every value of the `reason` label of `resources` and
/// `not_ready_since_timestamp_seconds`: the contract's reasons, `None`,
/// `Unreadable` and `Other`.
pub fn reason_label_values() -> impl Iterator<Item = &'static str> {
    Reason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .chain(["None", "Unreadable", "Other"])
}

/// The contract's name of a reason read back from a status, or `Other`.
fn known_reason(reason: &str) -> &'static str {
    Reason::named(reason).map_or("Other", Reason::as_str)
}

/// Adds the objects of one cache to a census.
pub type CensusSource = Box<dyn Fn(&mut Census) + Send + Sync>;

/// The caches counted at scrape time, by kind, and the settings reported with them.
#[derive(Clone, Default)]
pub(super) struct CensusSources(Arc<Mutex<Sources>>);

#[derive(Default)]
pub(super) struct Sources {
    pub(super) by_kind: BTreeMap<&'static str, CensusSource>,
    /// The running controllers' default sync interval, in seconds.
    pub(super) default_sync_interval: Option<f64>,
}

impl CensusSources {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn take(&self) -> Census {
        let mut census = Census::default();
        let sources = self.lock();
        for source in sources.by_kind.values() {
            source(&mut census);
        }
        census
    }
}

impl std::fmt::Debug for CensusSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CensusSources").finish_non_exhaustive()
    }
}

impl Collector for CensusSources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let census = self.take();
        if !census.grants.is_empty() {
            let mut family = encoder.encode_descriptor(
                "grants",
                "Status rows of grant resources by kind and state (Applied, Pending, Failed, Drifted)",
                None,
                MetricType::Gauge,
            )?;
            for (labels, count) in &census.grants {
                ConstGauge::new(*count).encode(family.encode_family(labels)?)?;
            }
        }
        if !census.resources.is_empty() {
            let mut family = encoder.encode_descriptor(
                "resources",
                "Grant and provider resources by kind and Ready condition (status and reason)",
                None,
                MetricType::Gauge,
            )?;
            for (labels, count) in &census.resources {
                ConstGauge::new(*count).encode(family.encode_family(labels)?)?;
            }
        }
        if !census.not_ready.is_empty() {
            let mut family = encoder.encode_descriptor(
                "not_ready_since_timestamp_seconds",
                "One series per grant or provider resource that is not Ready: since when (Unix seconds; the Ready condition's lastTransitionTime, or the creation time without one)",
                None,
                MetricType::Gauge,
            )?;
            for (labels, since) in &census.not_ready {
                ConstGauge::new(*since).encode(family.encode_family(labels)?)?;
            }
        }
        if !census.last_sync.is_empty() {
            let mut family = encoder.encode_descriptor(
                "last_successful_sync_timestamp_seconds",
                "By kind, the latest lastSyncTime (a sync that read the vendor successfully) of a resource neither Suspended nor Expired, in Unix seconds",
                None,
                MetricType::Gauge,
            )?;
            for (labels, at) in &census.last_sync {
                ConstGauge::new(*at).encode(family.encode_family(labels)?)?;
            }
        }
        let interval = self.lock().default_sync_interval;
        if let Some(seconds) = interval {
            let family = encoder.encode_descriptor(
                "default_sync_interval_seconds",
                "The syncInterval of grant resources that do not set one (--sync-interval), reported while the controllers run",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(seconds).encode(family)?;
        }
        Ok(())
    }
}
