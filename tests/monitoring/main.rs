//! Monitoring shipped in the chart: the `PrometheusRule` and the Grafana dashboard.
//!
//! - Every PromQL expression of the rules and of every dashboard panel parses
//!   (`promql-parser`), and every metric name and label it uses (selectors,
//!   `by`, `on`/`ignoring`, `group_left`) is in the operator's real `/metrics`
//!   output, scraped over HTTP while the operator runs with some activity (a
//!   Ready grant, drift repaired, a grant that is not Ready). Label values in
//!   matchers must be values the operator can export for that label (the
//!   closed sets of kinds, vendors, outcomes, reasons, states); each `$labels.x`
//!   of an alert's annotations and each `{{x}}` of a panel's legend is a label
//!   of the expression's result.
//! - The two templates render the rule and the dashboard when enabled and
//!   nothing when not. There is no `helm` in `cargo test`: they are read with a
//!   renderer limited to the constructs they use (below), and any other
//!   template construct fails the test. (`.ci/helm` renders and lints the whole
//!   chart with Helm's own engine in CI.)
//! - The dashboard JSON is valid, every panel and query uses the datasource
//!   variable, and every alert's `runbook_url` names a section of
//!   `docs/runbook.md`.
//! - What the templates render reads the same in YAML 1.1 and 1.2.

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use grant_operator::api::{
    DremioGrant, GrafanaGrant, SigmaGrant, SigmaPermission::*, SnowflakeGrant, VendorKind,
};
use grant_operator::metrics::{Metrics, VENDOR_OUTCOMES, reason_label_values};
use grant_operator::server::Health;
use grant_operator::vendor_api::GrantKind;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality};
use serde_json::{Value, json};
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const RULE: &str = "charts/grant-operator/templates/prometheusrule.yaml";
const DASHBOARD: &str = "charts/grant-operator/templates/dashboard.yaml";
const DASHBOARD_JSON: &str = "charts/grant-operator/dashboards/grant-operator.json";

mod chart;
mod promql;
mod render;
use chart::*;
use render::*;
