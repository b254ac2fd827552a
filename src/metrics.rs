//! Prometheus metrics of the operator, in one registry.
//!
//! Labels are bounded: vendor, operation and outcome names come from fixed
//! sets in the code, kinds from the API, never from user input. Reasons read
//! back from a resource's status are mapped onto the contract's fixed set.
//!
//! Counters and histograms are fed where things happen. The gauges of objects
//! by state (`grants`, `resources`) are counted at scrape time from the
//! controllers' caches (see [`Metrics::count_objects`]), so they can never drift
//! from what the operator holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
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
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
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

/// Objects counted at scrape time.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Status rows by kind and state.
    pub grants: BTreeMap<GrantStateLabels, i64>,
    /// Resources by kind and `Ready`.
    pub resources: BTreeMap<ReadyLabels, i64>,
}

impl Census {
    /// Counts one status row.
    pub fn row(&mut self, kind: &'static str, state: &'static str) {
        *self
            .grants
            .entry(GrantStateLabels { kind, state })
            .or_default() += 1;
    }

    /// Counts one resource by its `Ready` status and reason as found in its status.
    pub fn resource(&mut self, kind: &'static str, ready: Option<(&str, &str)>) {
        let labels = match ready {
            Some((status, reason)) => ReadyLabels {
                kind,
                ready: match status {
                    "True" => "True",
                    "False" => "False",
                    _ => "Unknown",
                },
                reason: known_reason(reason),
            },
            None => ReadyLabels {
                kind,
                ready: "Unknown",
                reason: "None",
            },
        };
        *self.resources.entry(labels).or_default() += 1;
    }

    /// Counts one resource this version cannot read.
    pub fn unreadable(&mut self, kind: &'static str) {
        *self
            .resources
            .entry(ReadyLabels {
                kind,
                ready: "Unknown",
                reason: "Unreadable",
            })
            .or_default() += 1;
    }
}

/// The contract's name of a reason read back from a status, or `Other`.
fn known_reason(reason: &str) -> &'static str {
    use Reason::*;
    [
        Synced,
        Progressing,
        DriftDetected,
        ProviderNotFound,
        ProviderNotReady,
        ProviderNotAllowed,
        CredentialsMissing,
        Unauthorized,
        Forbidden,
        TargetNotFound,
        GranteeNotFound,
        InvalidGrant,
        RateLimited,
        VendorUnavailable,
        Conflict,
        Suspended,
        Expired,
        Deleting,
        Authenticated,
        Unreachable,
        InvalidSpec,
    ]
    .into_iter()
    .map(Reason::as_str)
    .find(|known| *known == reason)
    .unwrap_or("Other")
}

/// Adds the objects of one cache to a census.
pub type CensusSource = Box<dyn Fn(&mut Census) + Send + Sync>;

/// The caches counted at scrape time, by kind.
#[derive(Clone, Default)]
struct CensusSources(Arc<Mutex<BTreeMap<&'static str, CensusSource>>>);

impl CensusSources {
    fn take(&self) -> Census {
        let mut census = Census::default();
        let sources = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for source in sources.values() {
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
                prometheus_client::metrics::MetricType::Gauge,
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
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (labels, count) in &census.resources {
                ConstGauge::new(*count).encode(family.encode_family(labels)?)?;
            }
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
        self.census
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind, source);
    }

    /// Stops counting the objects of `kind` (its controller stopped).
    pub fn forget_objects(&self, kind: &'static str) {
        self.census
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(kind);
    }

    /// Stops counting objects of every kind (the controllers stopped).
    pub fn forget_all_objects(&self) {
        self.census
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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

    #[test]
    fn census_is_counted_at_scrape_time_with_bounded_labels() {
        let metrics = Metrics::new();
        assert!(!metrics.encode().unwrap().contains("grant_operator_grants"));
        metrics.count_objects(
            "SigmaGrant",
            Box::new(|census: &mut Census| {
                census.row("SigmaGrant", "Applied");
                census.row("SigmaGrant", "Applied");
                census.row("SigmaGrant", "Failed");
                census.resource("SigmaGrant", Some(("True", "Synced")));
                census.resource("SigmaGrant", Some(("False", "made up by hand")));
                census.resource("SigmaGrant", None);
                census.unreadable("SigmaGrant");
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
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        metrics.forget_objects("SigmaGrant");
        assert!(!metrics.encode().unwrap().contains("grant_operator_grants"));
    }
}
