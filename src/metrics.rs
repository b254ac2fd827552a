//! Prometheus metrics of the operator, in one registry.
//!
//! Labels are bounded: vendor, operation and outcome names come from fixed
//! sets in the code, kinds from the API, never from user input. Reasons read
//! back from a resource's status are mapped onto the contract's fixed set.
//!
//! Counters and histograms are fed where things happen. The gauges of objects
//! (`grants`, `resources`, `not_ready_since_timestamp_seconds`,
//! `last_successful_sync_timestamp_seconds`) are computed at scrape time from
//! the controllers' caches (see [`Metrics::count_objects`]), so they can never
//! drift from what the operator holds, and they cost no memory per resource
//! between scrapes.
//!
//! Cardinality: every label set is bounded by fixed sets (kinds, vendors,
//! operations, outcomes, states, reasons), except
//! `not_ready_since_timestamp_seconds`, which has one series per resource that
//! is not Ready at scrape time (kube-state-metrics style: none in a healthy
//! cluster, at most one per grant or provider resource).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::Reason;

/// Labels of a vendor API call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorCallLabels {
    /// `sigma`, `grafana`, `snowflake`, `dremio`.
    pub vendor: &'static str,
    /// The operation, such as `list_grants`.
    pub operation: &'static str,
    /// `success`, `unauthorized`, `forbidden`, `not_found`, `client_error`,
    /// `rate_limited`, `server_error`, `timeout`, `connection_error`.
    pub outcome: &'static str,
}

/// Labels of a vendor API call's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorOperationLabels {
    /// `sigma`, `grafana`, `snowflake`, `dremio`.
    pub vendor: &'static str,
    /// The operation, such as `list_grants`.
    pub operation: &'static str,
}

/// The `outcome` label values of vendor requests: every value
/// [`Metrics::vendor_call`] is given is one of these.
pub const VENDOR_OUTCOMES: &[&str] = &[
    "success",
    "unauthorized",
    "forbidden",
    "not_found",
    "client_error",
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
];

/// Labels of per-vendor counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorLabels {
    /// `sigma`, `grafana`, `snowflake`, `dremio`.
    pub vendor: &'static str,
}

/// Labels of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// The kind reconciled.
    pub kind: &'static str,
    /// `success` or the contract reason of the failure.
    pub result: String,
}

/// Labels of vendor writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The grant kind.
    pub kind: &'static str,
    /// `grant`, `raise`, `lower`, `revoke`, `change`.
    pub action: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
}

/// Labels of per-kind counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct KindLabels {
    /// The grant kind.
    pub kind: &'static str,
}

/// Labels of status rows counted by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct GrantStateLabels {
    /// The grant kind.
    pub kind: &'static str,
    /// `Applied`, `Pending`, `Failed` or `Drifted`.
    pub state: &'static str,
}

/// Labels of resources counted by their `Ready` condition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ReadyLabels {
    /// The kind (grant or provider kinds).
    pub kind: &'static str,
    /// `True`, `False` or `Unknown` (no status yet counts as `Unknown`).
    pub ready: &'static str,
    /// The condition's reason; `None` without a condition, `Unreadable` for an
    /// object this version cannot read, `Other` for a reason outside the contract.
    pub reason: &'static str,
}

/// Labels of a resource that is not Ready.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct NotReadyLabels {
    /// The kind (grant or provider kinds).
    pub kind: &'static str,
    /// The resource's namespace; empty for cluster-scoped kinds (Prometheus
    /// reads an empty label as no label).
    pub namespace: Option<String>,
    /// The resource's name.
    pub name: String,
    /// `False` or `Unknown` (no status yet counts as `Unknown`).
    pub ready: &'static str,
    /// As in [`ReadyLabels::reason`].
    pub reason: &'static str,
}

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
struct CensusSources(Arc<Mutex<Sources>>);

#[derive(Default)]
struct Sources {
    by_kind: BTreeMap<&'static str, CensusSource>,
    /// The running controllers' default sync interval, in seconds.
    default_sync_interval: Option<f64>,
}

impl CensusSources {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> Census {
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

/// Every metric the operator exports.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Vendor API requests (each attempt) by vendor, operation and outcome.
    pub vendor_calls: Family<VendorCallLabels, Counter>,
    /// Duration of each vendor API request attempt by vendor and operation.
    pub vendor_call_duration: Family<VendorOperationLabels, Histogram>,
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Vendor syncs (one listing each) by kind.
    pub syncs: Family<KindLabels, Counter>,
    /// Grant changes written to vendors.
    pub actions: Family<ActionLabels, Counter>,
    /// Grants repaired after drifting.
    pub drift_repairs: Family<KindLabels, Counter>,
    /// Listings that may be incomplete (capped by the vendor with no way past
    /// the cap); the sync reading one failed before any write.
    pub incomplete_listings: Family<VendorLabels, Counter>,
    /// Seconds from a resource's creation to its first `Ready=True`.
    pub time_to_ready: Family<KindLabels, Histogram>,
    /// 1 while this replica runs the controllers (holds the lease, or leader election is off).
    pub leader: Gauge,
    /// 1 once the running controllers' watches have listed everything once.
    pub watches_synced: Gauge,
    census: CensusSources,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("grant_operator");
        let vendor_calls = Family::<VendorCallLabels, Counter>::default();
        registry.register(
            "vendor_requests",
            "Vendor API requests by vendor, operation and outcome (every attempt)",
            vendor_calls.clone(),
        );
        let vendor_call_duration = Family::<VendorOperationLabels, Histogram>::new_with_constructor(
            vendor_call_histogram as fn() -> Histogram,
        );
        registry.register(
            "vendor_request_duration_seconds",
            "Duration of vendor API requests by vendor and operation (every attempt, from sending to the body read)",
            vendor_call_duration.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles by kind",
            reconcile_duration.clone(),
        );
        let syncs = Family::<KindLabels, Counter>::default();
        registry.register(
            "vendor_syncs",
            "Syncs of vendor objects (one listing each) by kind",
            syncs.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "grant_changes",
            "Grant changes written to vendors",
            actions.clone(),
        );
        let drift_repairs = Family::<KindLabels, Counter>::default();
        registry.register(
            "drift_repairs",
            "Grants repaired after drifting",
            drift_repairs.clone(),
        );
        let incomplete_listings = Family::<VendorLabels, Counter>::default();
        registry.register(
            "incomplete_listings",
            "Vendor listings that may be incomplete (as many rows as the vendor answers at most, and no link to more); the sync failed before any write",
            incomplete_listings.clone(),
        );
        let time_to_ready = Family::<KindLabels, Histogram>::new_with_constructor(
            time_to_ready_histogram as fn() -> Histogram,
        );
        registry.register(
            "time_to_first_ready_seconds",
            "Seconds from a grant resource's creation to its first Ready=True",
            time_to_ready.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica runs the controllers (holds the lease, or leader election is off), else 0",
            leader.clone(),
        );
        let watches_synced = Gauge::default();
        registry.register(
            "watches_synced",
            "1 once the running controllers' watches have listed every object once, else 0",
            watches_synced.clone(),
        );
        let census = CensusSources::default();
        registry.register_collector(Box::new(census.clone()));
        Metrics {
            registry,
            vendor_calls,
            vendor_call_duration,
            reconciles,
            reconcile_duration,
            syncs,
            actions,
            drift_repairs,
            incomplete_listings,
            time_to_ready,
            leader,
            watches_synced,
            census,
        }
    }

    /// Counts the objects of `kind` from `source` at every scrape, replacing an
    /// earlier source of the same kind; [`Metrics::forget_objects`] stops it.
    pub fn count_objects(&self, kind: &'static str, source: CensusSource) {
        self.census.lock().by_kind.insert(kind, source);
    }

    /// Stops counting the objects of `kind` (its controller stopped).
    pub fn forget_objects(&self, kind: &'static str) {
        self.census.lock().by_kind.remove(kind);
    }

    /// Reports the controllers' default sync interval with the objects, so
    /// that an alert can compare the last successful sync with it.
    pub fn set_default_sync_interval(&self, interval: Duration) {
        self.census.lock().default_sync_interval = Some(interval.as_secs_f64());
    }

    /// Stops counting objects of every kind, and stops reporting the default
    /// sync interval (the controllers stopped).
    pub fn forget_all_objects(&self) {
        let mut sources = self.census.lock();
        sources.by_kind.clear();
        sources.default_sync_interval = None;
    }

    /// The objects counted now (what a scrape would report).
    pub fn census(&self) -> Census {
        self.census.take()
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Counts one vendor request attempt.
    pub fn vendor_call(
        &self,
        vendor: &'static str,
        operation: &'static str,
        outcome: &'static str,
    ) {
        self.vendor_calls
            .get_or_create(&VendorCallLabels {
                vendor,
                operation,
                outcome,
            })
            .inc();
    }

    /// Records the duration of one vendor request attempt.
    pub fn vendor_call_duration(
        &self,
        vendor: &'static str,
        operation: &'static str,
        elapsed: Duration,
    ) {
        self.vendor_call_duration
            .get_or_create(&VendorOperationLabels { vendor, operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a listing that may be incomplete.
    pub fn incomplete_listing(&self, vendor: &'static str) {
        self.incomplete_listings
            .get_or_create(&VendorLabels { vendor })
            .inc();
    }

    /// How many possibly incomplete listings were counted for a vendor (tests).
    pub fn incomplete_listing_count(&self, vendor: &'static str) -> u64 {
        self.incomplete_listings
            .get(&VendorLabels { vendor })
            .map_or(0, |counter| counter.get())
    }

    /// How many attempts were counted for a vendor, operation and outcome (tests and benchmarks).
    pub fn vendor_call_count(
        &self,
        vendor: &'static str,
        operation: &'static str,
        outcome: &'static str,
    ) -> u64 {
        self.vendor_calls
            .get(&VendorCallLabels {
                vendor,
                operation,
                outcome,
            })
            .map_or(0, |counter| counter.get())
    }
}

/// 25 ms to 60 s: vendor calls take from tens of milliseconds (a cached
/// look-up) to tens of seconds (a large listing; an attempt times out after 30 s
/// by default).
fn vendor_call_histogram() -> Histogram {
    Histogram::new([
        0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
    ])
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// 0.5 s to about 4.5 hours: a first sync takes seconds, but a resource may wait
/// long for its provider or a grantee to exist.
fn time_to_ready_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn time(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn ready(status: &str, reason: &str, since: i64) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: time(since),
            observed_generation: None,
        }
    }

    #[test]
    fn census_is_counted_at_scrape_time_with_bounded_labels() {
        let metrics = Metrics::new();
        assert!(!metrics.encode().unwrap().contains("grant_operator_grants"));
        metrics.count_objects(
            "SigmaGrant",
            Box::new(|census: &mut Census| {
                let created = time(1_000);
                let synced = ready("True", "Synced", 1_100);
                let made_up = ready("False", "made up by hand", 1_200);
                let object = |name, ready| Observed {
                    kind: "SigmaGrant",
                    namespace: Some("analytics"),
                    name,
                    created: Some(&created),
                    ready,
                    last_sync: None,
                };
                census.row("SigmaGrant", "Applied");
                census.row("SigmaGrant", "Applied");
                census.row("SigmaGrant", "Failed");
                census.resource(object("good", Some(&synced)));
                census.resource(object("odd", Some(&made_up)));
                census.resource(object("new", None));
                census.unreadable("SigmaGrant", Some("analytics"), "skewed", Some(&created));
            }),
        );
        let text = metrics.encode().unwrap();
        for line in [
            "# TYPE grant_operator_grants gauge",
            r#"grant_operator_grants{kind="SigmaGrant",state="Applied"} 2"#,
            r#"grant_operator_grants{kind="SigmaGrant",state="Failed"} 1"#,
            "# TYPE grant_operator_resources gauge",
            r#"grant_operator_resources{kind="SigmaGrant",ready="True",reason="Synced"} 1"#,
            r#"grant_operator_resources{kind="SigmaGrant",ready="False",reason="Other"} 1"#,
            r#"grant_operator_resources{kind="SigmaGrant",ready="Unknown",reason="None"} 1"#,
            r#"grant_operator_resources{kind="SigmaGrant",ready="Unknown",reason="Unreadable"} 1"#,
            "# TYPE grant_operator_not_ready_since_timestamp_seconds gauge",
            r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="odd",ready="False",reason="Other"} 1200.0"#,
            r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="new",ready="Unknown",reason="None"} 1000.0"#,
            r#"grant_operator_not_ready_since_timestamp_seconds{kind="SigmaGrant",namespace="analytics",name="skewed",ready="Unknown",reason="Unreadable"} 1000.0"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains(r#"name="good""#),
            "a Ready resource has no series:\n{text}"
        );
        metrics.forget_objects("SigmaGrant");
        let text = metrics.encode().unwrap();
        assert!(!text.contains("grant_operator_grants"), "{text}");
        assert!(!text.contains("not_ready_since"), "{text}");
    }

    #[test]
    fn the_last_successful_sync_is_the_latest_of_resources_that_sync() {
        let mut census = Census::default();
        let early = time(1_000);
        let late = time(2_000);
        let latest = time(3_000);
        let synced = ready("True", "Synced", 500);
        let failing = ready("False", "VendorUnavailable", 2_500);
        let suspended = ready("False", "Suspended", 100);
        let expired = ready("False", "Expired", 100);
        let grant = |kind, name, ready, last_sync| Observed {
            kind,
            namespace: Some("ns"),
            name,
            created: None,
            ready: Some(ready),
            last_sync: Some(last_sync),
        };
        census.resource(grant("SigmaGrant", "a", &synced, &early));
        census.resource(grant("SigmaGrant", "b", &failing, &late));
        // Suspended and expired resources stop syncing on purpose: never counted.
        census.resource(grant("SigmaGrant", "c", &suspended, &latest));
        census.resource(grant("SigmaGrant", "d", &expired, &latest));
        census.resource(grant("DremioGrant", "e", &suspended, &latest));
        assert_eq!(
            census.last_sync,
            BTreeMap::from([(KindLabels { kind: "SigmaGrant" }, 2_000.0)])
        );
        // A provider (no lastSyncTime) without creation time or condition: counted, no series.
        census.resource(Observed {
            kind: "ClusterGrantProvider",
            namespace: None,
            name: "shared",
            created: None,
            ready: None,
            last_sync: None,
        });
        assert_eq!(census.not_ready.len(), 4, "{:?}", census.not_ready);
        assert_eq!(
            census.not_ready[&NotReadyLabels {
                kind: "SigmaGrant",
                namespace: Some("ns".into()),
                name: "b".into(),
                ready: "False",
                reason: "VendorUnavailable",
            }],
            2_500.0
        );
    }

    #[test]
    fn the_default_sync_interval_is_reported_while_the_controllers_run() {
        let metrics = Metrics::new();
        assert!(!metrics.encode().unwrap().contains("default_sync_interval"));
        metrics.set_default_sync_interval(Duration::from_secs(600));
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("\ngrant_operator_default_sync_interval_seconds 600.0\n"),
            "{text}"
        );
        metrics.forget_all_objects();
        assert!(!metrics.encode().unwrap().contains("default_sync_interval"));
    }

    #[test]
    fn vendor_request_durations_have_buckets_from_25_ms_to_60_s() {
        let metrics = Metrics::new();
        metrics.vendor_call_duration("sigma", "list_grants", Duration::from_millis(70));
        let text = metrics.encode().unwrap();
        for line in [
            "# TYPE grant_operator_vendor_request_duration_seconds histogram",
            r#"grant_operator_vendor_request_duration_seconds_bucket{le="0.05",vendor="sigma",operation="list_grants"} 0"#,
            r#"grant_operator_vendor_request_duration_seconds_bucket{le="0.1",vendor="sigma",operation="list_grants"} 1"#,
            r#"grant_operator_vendor_request_duration_seconds_bucket{le="60.0",vendor="sigma",operation="list_grants"} 1"#,
            r#"grant_operator_vendor_request_duration_seconds_count{vendor="sigma",operation="list_grants"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
