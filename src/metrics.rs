//! Prometheus metrics of the operator, in one registry.
//!
//! Labels are bounded: vendor, operation and outcome names come from fixed
//! sets in the code, kinds from the API, never from user input.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The grant kind.
    pub kind: &'static str,
}

/// Every metric the operator exports.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Vendor API requests (each attempt) by vendor, operation and outcome.
    pub vendor_calls: Family<VendorCallLabels, Counter>,
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
        Metrics {
            registry,
            vendor_calls,
            reconciles,
            reconcile_duration,
            syncs,
            actions,
            drift_repairs,
        }
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

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}
