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
//!
//! This module owns the label sets and the registry with its counters and
//! histograms ([`Metrics`]); `census` the gauges of objects counted at scrape
//! time ([`Census`]).

mod census;
#[cfg(test)]
mod tests;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::census::CensusSources;

pub use census::{Census, CensusSource, Observed, reason_label_values};

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
