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

// ---------------------------------------------------------------------------
// A renderer limited to what the two templates use
// ---------------------------------------------------------------------------

/// The release the templates are rendered for.
const RELEASE: &str = "grant-operator";
const RELEASE_NAMESPACE: &str = "grant-operator-system";

/// `values.yaml` with `overrides` merged in (maps merge, anything else replaces).
fn values(overrides: Value) -> Value {
    fn merge(base: &mut Value, over: Value) {
        match (base, over) {
            (Value::Object(base), Value::Object(over)) => {
                for (key, value) in over {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
            (base, over) => *base = over,
        }
    }
    let mut values: Value =
        serde_norway::from_str(&read("charts/grant-operator/values.yaml")).unwrap();
    merge(&mut values, overrides);
    values
}

/// One piece of a template: literal text, or the inside of a `{{ }}` action.
#[derive(Debug)]
enum Piece {
    Text(String),
    Action(String),
}

/// Splits a template into text and actions, applying the `{{-` and `-}}`
/// whitespace trimming of Go templates.
fn pieces(template: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (trim_before, inner_start) = match after.strip_prefix("- ") {
            Some(inner) => (true, inner),
            None => (false, after),
        };
        if trim_before {
            text = text.trim_end();
        }
        out.push(Piece::Text(text.to_string()));
        let inner_start = inner_start.trim_start_matches(' ');
        // A raw string may hold `}}`: it ends at its closing backtick.
        let end = if let Some(raw) = inner_start.strip_prefix('`') {
            let close = raw.find('`').ok_or("an unterminated raw string")?;
            let after_raw = &raw[close + 1..];
            let offset = after_raw.find("}}").ok_or("an unterminated action")?;
            (inner_start.len() - raw.len()) + close + 1 + offset
        } else {
            inner_start.find("}}").ok_or("an unterminated action")?
        };
        let action = &inner_start[..end];
        let (action, trim_after) = match action.trim_end().strip_suffix(" -") {
            Some(action) => (action, true),
            None => (action, false),
        };
        out.push(Piece::Action(action.trim().to_string()));
        trim_next = trim_after;
        rest = &inner_start[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    out.push(Piece::Text(text.to_string()));
    Ok(out)
}

/// A value at a dotted path below `.Values`.
fn lookup<'a>(values: &'a Value, path: &str) -> Result<&'a Value, String> {
    let path = path
        .strip_prefix(".Values.")
        .ok_or_else(|| format!("not a value: {path}"))?;
    path.split('.').try_fold(values, |value, key| {
        value
            .get(key)
            .ok_or_else(|| format!("no value .Values.{path}"))
    })
}

/// Go template truthiness.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// How Go's `{{ }}` prints a value (numbers as Helm prints values read from YAML).
fn print(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("cannot print {other} in place")),
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.split('\n')
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The chart's labels as `_helpers.tpl` writes them for the release.
fn chart_labels() -> String {
    let chart: Value = serde_norway::from_str(&read("charts/grant-operator/Chart.yaml")).unwrap();
    format!(
        "app.kubernetes.io/name: {name}\napp.kubernetes.io/instance: {RELEASE}\napp.kubernetes.io/version: \"{app}\"\napp.kubernetes.io/managed-by: Helm\nhelm.sh/chart: {name}-{version}",
        name = chart["name"].as_str().unwrap(),
        app = chart["appVersion"].as_str().unwrap(),
        version = chart["version"].as_str().unwrap(),
    )
}

/// The value of one pipeline (`a | f x | g`), for the stages the templates use.
fn pipeline(action: &str, values: &Value, dot: Option<&Value>) -> Result<String, String> {
    let stages: Vec<&str> = action.split(" | ").map(str::trim).collect();
    let mut current: Value = match stages[0] {
        ".Release.Namespace" => json!(RELEASE_NAMESPACE),
        "include \"grant-operator.fullname\" ." => json!(RELEASE),
        "include \"grant-operator.labels\" ." => json!(chart_labels()),
        "toYaml ." => {
            let dot = dot.ok_or("toYaml . outside a with block")?;
            json!(
                serde_norway::to_string(dot)
                    .map_err(|e| e.to_string())?
                    .trim_end()
            )
        }
        path if path.starts_with(".Values.") => lookup(values, path)?.clone(),
        files if files.starts_with(".Files.Get ") => {
            let file: String = serde_json::from_str(&files[".Files.Get ".len()..])
                .map_err(|e| format!("{files}: {e}"))?;
            json!(read(&format!("charts/grant-operator/{file}")))
        }
        other => {
            return Err(format!(
                "a template expression the test cannot render: {other}"
            ));
        }
    };
    for stage in &stages[1..] {
        current = match stage.split_once(' ') {
            None if *stage == "quote" => json!(format!("{:?}", print(&current)?)),
            Some(("nindent", n)) => {
                json!(format!(
                    "\n{}",
                    indent(&print(&current)?, n.parse().map_err(|_| n)?)
                ))
            }
            Some(("indent", n)) => json!(indent(&print(&current)?, n.parse().map_err(|_| n)?)),
            Some(("default", ".Release.Namespace")) => {
                if truthy(&current) {
                    current
                } else {
                    json!(RELEASE_NAMESPACE)
                }
            }
            _ => {
                return Err(format!(
                    "a template function the test cannot render: {stage}"
                ));
            }
        };
    }
    print(&current)
}

/// Renders a template with `values`; `Err` on any construct outside the small
/// set the two monitoring templates use.
fn render(template: &str, values: &Value) -> Result<String, String> {
    // Each open block: whether its body is rendered, and its dot (`with`).
    let mut blocks: Vec<(bool, Option<Value>)> = Vec::new();
    let mut out = String::new();
    for piece in pieces(template)? {
        let active = blocks.iter().all(|(active, _)| *active);
        match piece {
            Piece::Text(text) => {
                if active {
                    out.push_str(&text);
                }
            }
            Piece::Action(action) => {
                if action.starts_with("/*") && action.ends_with("*/") {
                    continue;
                }
                if let Some(path) = action.strip_prefix("if ") {
                    let on = active && truthy(lookup(values, path)?);
                    blocks.push((on, None));
                } else if let Some(path) = action.strip_prefix("with ") {
                    let value = lookup(values, path)?.clone();
                    blocks.push((active && truthy(&value), Some(value)));
                } else if action == "end" {
                    blocks.pop().ok_or("an end without a block")?;
                } else if let Some(raw) = action.strip_prefix('`') {
                    if active {
                        out.push_str(raw.strip_suffix('`').ok_or("a bad raw string")?);
                    }
                } else if active {
                    let dot = blocks.iter().rev().find_map(|(_, dot)| dot.as_ref());
                    out.push_str(&pipeline(&action, values, dot)?);
                }
            }
        }
    }
    if !blocks.is_empty() {
        return Err("a block without an end".into());
    }
    Ok(out)
}

fn render_file(path: &str, values: &Value) -> String {
    render(&read(path), values).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one YAML document a template rendered.
fn document(path: &str, rendered: &str) -> Value {
    assert_reads_the_same_in_yaml_1_1(path, rendered);
    serde_norway::from_str(rendered).unwrap_or_else(|e| panic!("{path}: {e}\n{rendered}"))
}

/// Fails on plain scalars that a YAML 1.1 reader (kubectl, Helm, Argo CD) reads
/// differently from a YAML 1.2 one: booleans such as `on`/`yes`/`n`,
/// sexagesimal numbers such as `1:30`, octal-looking numbers such as `0755`,
/// and the merge key `<<`. Block scalars are text in both and are skipped.
fn assert_reads_the_same_in_yaml_1_1(what: &str, yaml: &str) {
    let risky = regex::Regex::new(
        r"^(?i:y|n|yes|no|on|off)$|^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$|^[-+]?0[0-7_]+$|^<<$",
    )
    .unwrap();
    let mut block_indent: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(block) = block_indent {
            if trimmed.is_empty() || indent > block {
                continue;
            }
            block_indent = None;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let entry = trimmed.trim_start_matches("- ");
        let (key, value) = match entry.split_once(": ") {
            Some((key, value)) => (Some(key), value),
            None => match entry.strip_suffix(':') {
                Some(key) => (Some(key), ""),
                None => (None, entry),
            },
        };
        let value = match value.find(" #") {
            Some(comment) => &value[..comment],
            None => value,
        }
        .trim();
        if ["|", "|-", ">", ">-", "|+", ">+"].contains(&value) {
            block_indent = Some(indent);
        }
        for scalar in key.into_iter().chain([value]) {
            assert!(
                !risky.is_match(scalar),
                "{what}: the plain scalar {scalar:?} reads differently in YAML 1.1; quote it\n{line}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The operator's real /metrics
// ---------------------------------------------------------------------------

/// What a scrape shows: each sample name with its label names, and every
/// value of every label.
#[derive(Debug, Default)]
struct Scrape {
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(brace) => (&line[..brace], &line[brace + 1..]),
            None => (line.split(' ').next().unwrap(), ""),
        };
        let names = scrape.labels.entry(name.to_string()).or_default();
        // label="value",... up to the closing brace; values hold no quote here.
        let mut rest = rest;
        while let Some((label, after)) = rest.split_once("=\"") {
            names.insert(label.trim_start_matches(',').to_string());
            let close = after.find('"').unwrap();
            rest = &after[close + 1..];
            if rest.starts_with('}') {
                break;
            }
        }
    }
    scrape
}

/// The operator's `/metrics` over HTTP after a Ready grant with drift repaired
/// and a grant that is not Ready, so that every family has samples.
async fn scrape() -> Scrape {
    let h = Harness::new().await;
    h.sigma.add_member("jane@example.com");
    h.sigma_prod_provider();
    let mut readers = sigma_grant("readers", vec![member("jane@example.com", Usage)]);
    readers.spec.policy.sync_interval = Some("1s".into());
    h.put(&readers);
    h.put(&sigma_grant(
        "strangers",
        vec![member("nobody@example.com", Usage)],
    ));

    let metrics = Arc::new(Metrics::new());
    let health = Health::new(metrics.clone(), false);
    let server = HttpServer::start(metrics.clone(), health.clone()).await;
    let base = server.base.clone();
    health.set_leading(true);
    let operator = RunningOperator::start_reporting(
        h.kube.client(),
        fast_config(),
        metrics.clone(),
        health.clone(),
    );
    let reason = |name: &str| {
        h.kube
            .get::<SigmaGrant>(Some(NS), name)
            .and_then(|g| g.status)
            .and_then(|s| s.conditions.first().map(|c| c.reason.clone()))
    };
    eventually("readers Synced", || {
        reason("readers").as_deref() == Some("Synced")
    })
    .await;
    eventually("strangers not Ready", || {
        reason("strangers").as_deref() == Some("GranteeNotFound")
    })
    .await;
    let id = h.sigma.grants(CONNECTION)[0].grant_id.clone();
    h.sigma.delete_grant_directly(CONNECTION, &id);
    eventually("drift repaired", || {
        h.kube
            .get::<SigmaGrant>(Some(NS), "readers")
            .and_then(|g| g.status)
            .is_some_and(|s| s.drift_corrections >= 1)
    })
    .await;

    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    operator.stop(Duration::from_secs(60)).await.unwrap();
    server.stop().await;
    parse_scrape(&text)
}

/// Every value a label can have, for the labels whose values are a closed set.
fn closed_label_values() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let kinds = [
        SigmaGrant::KIND,
        GrafanaGrant::KIND,
        SnowflakeGrant::KIND,
        DremioGrant::KIND,
        "GrantProvider",
        "ClusterGrantProvider",
    ];
    let vendors = [
        VendorKind::Sigma,
        VendorKind::Grafana,
        VendorKind::Snowflake,
        VendorKind::Dremio,
    ]
    .map(VendorKind::as_str);
    BTreeMap::from([
        ("kind", kinds.into_iter().collect()),
        ("vendor", vendors.into_iter().collect()),
        // Vendor requests' outcomes, and grant changes' success or failure.
        (
            "outcome",
            VENDOR_OUTCOMES.iter().copied().chain(["failure"]).collect(),
        ),
        ("reason", reason_label_values().collect()),
        ("ready", ["True", "False", "Unknown"].into()),
        ("state", ["Applied", "Pending", "Failed", "Drifted"].into()),
        (
            "action",
            ["grant", "raise", "lower", "revoke", "change"].into(),
        ),
    ])
}

// ---------------------------------------------------------------------------
// Checking PromQL against the scrape
// ---------------------------------------------------------------------------

/// Parses `expr` and checks every metric, label and label value it uses
/// against `scrape`; returns the labels of its result.
fn check_expr(what: &str, expr: &str, scrape: &Scrape) -> BTreeSet<String> {
    let parsed = parser::parse(expr).unwrap_or_else(|e| panic!("{what}: {e}\n{expr}"));
    let mut problems = Vec::new();
    let labels = result_labels(&parsed, scrape, &mut problems);
    assert!(
        problems.is_empty(),
        "{what}:\n{}\nin {expr}",
        problems.join("\n")
    );
    labels
}

fn names(labels: &promql_parser::label::Labels) -> BTreeSet<String> {
    labels.labels.iter().cloned().collect()
}

fn is_scalar(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_) => true,
        Expr::Call(call) => ["time", "scalar", "pi"].contains(&call.func.name),
        Expr::Paren(paren) => is_scalar(&paren.expr),
        Expr::Unary(unary) => is_scalar(&unary.expr),
        Expr::Binary(binary) => is_scalar(&binary.lhs) && is_scalar(&binary.rhs),
        _ => false,
    }
}

/// The labels of `expr`'s result; records what does not exist in `problems`.
fn result_labels(expr: &Expr, scrape: &Scrape, problems: &mut Vec<String>) -> BTreeSet<String> {
    match expr {
        Expr::VectorSelector(selector) => {
            let Some(name) = &selector.name else {
                problems.push("a selector without a metric name".into());
                return BTreeSet::new();
            };
            let Some(labels) = scrape.labels.get(name) else {
                problems.push(format!("no metric {name} in /metrics"));
                return BTreeSet::new();
            };
            let closed = closed_label_values();
            let matchers = selector
                .matchers
                .matchers
                .iter()
                .chain(selector.matchers.or_matchers.iter().flatten());
            for matcher in matchers.filter(|m| m.name != "__name__") {
                if !labels.contains(&matcher.name) {
                    problems.push(format!("{name} has no label {}", matcher.name));
                    continue;
                }
                let Some(known) = closed.get(matcher.name.as_str()) else {
                    continue;
                };
                let alternatives: Vec<&str> = match matcher.op {
                    MatchOp::Equal | MatchOp::NotEqual => vec![matcher.value.as_str()],
                    MatchOp::Re(_) | MatchOp::NotRe(_) => matcher.value.split('|').collect(),
                };
                for value in alternatives {
                    if !known.contains(value) {
                        problems.push(format!(
                            "{name}: {} is never {value:?} (known: {known:?})",
                            matcher.name
                        ));
                    }
                }
            }
            labels
                .iter()
                .filter(|l| l.as_str() != "__name__")
                .cloned()
                .collect()
        }
        Expr::MatrixSelector(matrix) => {
            result_labels(&Expr::VectorSelector(matrix.vs.clone()), scrape, problems)
        }
        Expr::Paren(paren) => result_labels(&paren.expr, scrape, problems),
        Expr::Unary(unary) => result_labels(&unary.expr, scrape, problems),
        Expr::Subquery(subquery) => result_labels(&subquery.expr, scrape, problems),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => BTreeSet::new(),
        Expr::Aggregate(aggregate) => {
            let inner = result_labels(&aggregate.expr, scrape, problems);
            if let Some(param) = &aggregate.param {
                result_labels(param, scrape, problems);
            }
            match &aggregate.modifier {
                Some(LabelModifier::Include(by)) => {
                    for label in &by.labels {
                        if !inner.contains(label) {
                            problems.push(format!("by ({label}): no such label below"));
                        }
                    }
                    names(by)
                }
                Some(LabelModifier::Exclude(without)) => {
                    inner.difference(&names(without)).cloned().collect()
                }
                None => BTreeSet::new(),
            }
        }
        Expr::Call(call) => {
            let mut args: Vec<BTreeSet<String>> = call
                .args
                .args
                .iter()
                .map(|arg| result_labels(arg, scrape, problems))
                .collect();
            match call.func.name {
                "time" | "vector" | "scalar" | "pi" => BTreeSet::new(),
                "histogram_quantile" => {
                    let mut labels = args.pop().unwrap_or_default();
                    if !labels.remove("le") {
                        problems.push("histogram_quantile over series without le".into());
                    }
                    labels
                }
                _ => args.into_iter().next().unwrap_or_default(),
            }
        }
        Expr::Binary(binary) => {
            let lhs = result_labels(&binary.lhs, scrape, problems);
            let rhs = result_labels(&binary.rhs, scrape, problems);
            if is_scalar(&binary.lhs) {
                return rhs;
            }
            if is_scalar(&binary.rhs) {
                return lhs;
            }
            let Some(modifier) = &binary.modifier else {
                return lhs;
            };
            let both: BTreeSet<String> = lhs.union(&rhs).cloned().collect();
            if let Some(matching) = &modifier.matching {
                for label in &matching.labels().labels {
                    if !both.contains(label) {
                        problems.push(format!("on/ignoring ({label}): no such label"));
                    }
                }
            }
            match &modifier.card {
                VectorMatchCardinality::ManyToOne(extra) => {
                    lhs.union(&names(extra)).cloned().collect()
                }
                VectorMatchCardinality::OneToMany(extra) => {
                    rhs.union(&names(extra)).cloned().collect()
                }
                VectorMatchCardinality::ManyToMany => both,
                VectorMatchCardinality::OneToOne => lhs,
            }
        }
        Expr::Extension(_) => {
            problems.push("an extension expression".into());
            BTreeSet::new()
        }
    }
}

// ---------------------------------------------------------------------------
// The rules and the dashboard, read
// ---------------------------------------------------------------------------

fn enabled() -> Value {
    values(json!({
        "metrics": {
            "prometheusRule": { "enabled": true },
            "dashboard": { "enabled": true },
        }
    }))
}

/// Every alerting rule of the rendered `PrometheusRule`.
fn alert_rules(values: &Value) -> Vec<Value> {
    let rule = document(RULE, &render_file(RULE, values));
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD_JSON)).unwrap_or_else(|e| panic!("{DASHBOARD_JSON}: {e}"))
}

/// Every panel's queries, with the panel's title and each query's legend.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap().to_string();
            panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("panel {title} has no targets"))
                .iter()
                .map(move |target| {
                    (
                        title.clone(),
                        target["expr"]
                            .as_str()
                            .unwrap_or_else(|| panic!("a query of {title} has no expr"))
                            .to_string(),
                        target["legendFormat"].as_str().unwrap_or("").to_string(),
                    )
                })
        })
        .collect()
}

/// Names used as `{{ $labels.name }}` (alert annotations) or `{{name}}` (legends).
fn template_labels(text: &str, pattern: &str) -> BTreeSet<String> {
    regex::Regex::new(pattern)
        .unwrap()
        .captures_iter(text)
        .map(|captures| captures[1].to_string())
        .collect()
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_of_the_rules_and_the_dashboard_uses_only_what_metrics_shows() {
    let scrape = scrape().await;
    // The activity gave every family of the operator samples.
    for name in [
        "grant_operator_vendor_requests_total",
        "grant_operator_vendor_request_duration_seconds_bucket",
        "grant_operator_reconciles_total",
        "grant_operator_drift_repairs_total",
        "grant_operator_time_to_first_ready_seconds_bucket",
        "grant_operator_grants",
        "grant_operator_resources",
        "grant_operator_not_ready_since_timestamp_seconds",
        "grant_operator_last_successful_sync_timestamp_seconds",
        "grant_operator_default_sync_interval_seconds",
    ] {
        assert!(scrape.labels.contains_key(name), "no {name} in {scrape:?}");
    }

    let rules = alert_rules(&enabled());
    assert_eq!(rules.len(), 6, "{rules:?}");
    for rule in &rules {
        let alert = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        let labels = check_expr(alert, expr, &scrape);
        let annotations = serde_json::to_string(&rule["annotations"]).unwrap();
        for label in template_labels(&annotations, r"\$labels\.([a-zA-Z_]+)") {
            assert!(
                labels.contains(&label),
                "{alert}: the annotations use $labels.{label}, not a label of the result {labels:?}"
            );
        }
    }

    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 15, "{queries:?}");
    for (title, expr, legend) in queries {
        // Grafana's own interval variable; any other variable is not expected.
        let expr = expr.replace("$__rate_interval", "5m");
        assert!(
            !expr.contains('$'),
            "{title}: an unknown variable in {expr}"
        );
        let labels = check_expr(&title, &expr, &scrape);
        for label in template_labels(&legend, r"\{\{\s*([a-zA-Z_]+)\s*\}\}") {
            assert!(
                labels.contains(&label),
                "{title}: the legend uses {label}, not a label of {expr} ({labels:?})"
            );
        }
    }
}

#[test]
fn a_query_with_an_unknown_metric_label_or_value_is_refused() {
    let scrape = parse_scrape(
        "# TYPE grant_operator_resources gauge\n\
         grant_operator_resources{kind=\"SigmaGrant\",ready=\"True\",reason=\"Synced\"} 1\n\
         # EOF\n",
    );
    let check =
        |expr: &str| std::panic::catch_unwind(|| check_expr("test", expr, &scrape)).map_err(|_| ());
    assert_eq!(
        check(r#"sum by (kind) (grant_operator_resources{ready="False"})"#).unwrap(),
        BTreeSet::from(["kind".to_string()])
    );
    for bad in [
        "grant_operator_resource",
        r#"grant_operator_resources{state="Applied"}"#,
        r#"grant_operator_resources{ready="false"}"#,
        r#"grant_operator_resources{reason!~"Suspended|Paused"}"#,
        "sum by (knd) (grant_operator_resources)",
        "histogram_quantile(0.9, grant_operator_resources)",
        "sum(grant_operator_resources",
    ] {
        assert!(check(bad).is_err(), "accepted {bad}");
    }
}

#[test]
fn the_rule_renders_when_enabled_and_nothing_when_not() {
    let defaults = values(json!({}));
    assert_eq!(defaults["metrics"]["prometheusRule"]["enabled"], false);
    assert!(
        render_file(RULE, &defaults).trim().is_empty(),
        "{}",
        render_file(RULE, &defaults)
    );

    let values = values(json!({
        "metrics": { "prometheusRule": {
            "enabled": true,
            "additionalLabels": { "release": "kube-prometheus-stack" },
            "runbookUrl": "https://wiki.example.com/grant-operator",
            "resourceNotReady": { "afterSeconds": 1800, "severity": "info" },
        } }
    }));
    let rule = document(RULE, &render_file(RULE, &values));
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["name"], RELEASE);
    assert_eq!(rule["metadata"]["namespace"], RELEASE_NAMESPACE);
    let labels = &rule["metadata"]["labels"];
    assert_eq!(labels["release"], "kube-prometheus-stack");
    assert_eq!(labels["app.kubernetes.io/instance"], RELEASE);

    let runbook = read("docs/runbook.md");
    let sections: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(anchor)
        .collect();
    let rules = alert_rules(&values);
    let prometheus_duration = regex::Regex::new("^([0-9]+(ms|s|m|h|d|w|y))+$").unwrap();
    let mut alerts = BTreeSet::new();
    for rule in &rules {
        let alert = rule["alert"].as_str().unwrap();
        assert!(alerts.insert(alert), "{alert} twice");
        assert!(alert.starts_with("GrantOperator"), "{alert}");
        let severity = rule["labels"]["severity"].as_str().unwrap();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{alert}: {severity}"
        );
        let annotations = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                annotations[key]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{alert}: no {key}"
            );
        }
        let url = annotations["runbook_url"].as_str().unwrap();
        let (base, section) = url.split_once('#').unwrap();
        assert_eq!(base, "https://wiki.example.com/grant-operator");
        assert_eq!(section, alert.to_lowercase(), "{alert}");
        assert!(
            sections.contains(section),
            "docs/runbook.md has no section for {alert}"
        );
        if let Some(duration) = rule.get("for") {
            let duration = duration.as_str().unwrap();
            assert!(
                prometheus_duration.is_match(duration),
                "{alert}: for {duration}"
            );
        }
    }
    assert_eq!(sections.len(), alerts.len(), "a runbook section per alert");
    // The tuning values reach the rule.
    let not_ready = &rules[0];
    assert_eq!(not_ready["alert"], "GrantOperatorResourceNotReady");
    assert_eq!(not_ready["labels"]["severity"], "info");
    assert!(
        not_ready["expr"].as_str().unwrap().ends_with("> 1800"),
        "{not_ready}"
    );
    // The alert's description names the resource and the reason.
    let description = not_ready["annotations"]["description"].as_str().unwrap();
    for name in ["kind", "namespace", "name", "reason"] {
        assert!(
            description.contains(&format!("$labels.{name}")),
            "{description}"
        );
    }
    // The resource's namespace label survives the scrape (not exported_namespace).
    assert!(
        read("charts/grant-operator/templates/servicemonitor.yaml").contains("honorLabels: true")
    );
}

#[test]
fn the_dashboard_renders_when_enabled_and_nothing_when_not() {
    let defaults = values(json!({}));
    assert_eq!(defaults["metrics"]["dashboard"]["enabled"], false);
    assert!(render_file(DASHBOARD, &defaults).trim().is_empty());

    // Defaults: the Grafana sidecar's default label, the release's namespace.
    let config_map = document(DASHBOARD, &render_file(DASHBOARD, &enabled()));
    assert_eq!(config_map["kind"], "ConfigMap");
    assert_eq!(config_map["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert!(config_map["metadata"].get("annotations").is_none());
    let json = config_map["data"]["grant-operator.json"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(json).unwrap(),
        dashboard(),
        "the ConfigMap carries the dashboard as it is"
    );

    let custom = values(json!({
        "metrics": { "dashboard": {
            "enabled": true,
            "namespace": "monitoring",
            "labelKey": "example.com/dashboard",
            "labelValue": "grant-operator",
            "annotations": { "grafana_folder": "Operators" },
        } }
    }));
    let config_map = document(DASHBOARD, &render_file(DASHBOARD, &custom));
    let metadata = &config_map["metadata"];
    assert_eq!(metadata["name"], format!("{RELEASE}-dashboard"));
    assert_eq!(metadata["namespace"], "monitoring");
    assert_eq!(
        metadata["labels"]["example.com/dashboard"],
        "grant-operator"
    );
    assert!(metadata["labels"].get("grafana_dashboard").is_none());
    assert_eq!(
        metadata["labels"]["app.kubernetes.io/name"],
        "grant-operator"
    );
    assert_eq!(metadata["annotations"]["grafana_folder"], "Operators");
}

#[test]
fn the_renderer_refuses_what_it_does_not_understand() {
    let values = enabled();
    for template in [
        "{{ .Values.metrics.port | upper }}",
        "{{ tpl .Values.x . }}",
        "{{- range .Values.metrics }}x{{- end }}",
        "{{ include \"grant-operator.serviceAccountName\" . }}",
        "{{- if .Values.metrics.prometheusRule.enabled }}no end",
        "{{ .Values.metrics.nothing }}",
        "{{ .Values.metrics.prometheusRule.enabled",
    ] {
        assert!(render(template, &values).is_err(), "rendered {template}");
    }
    // Whitespace trimming and raw strings as Go templates do them.
    assert_eq!(
        render(
            "a\n  {{- if .Values.metrics.dashboard.enabled }}\nb {{`{{ $labels.x }}`}}\n{{- end }}\nc",
            &values
        )
        .unwrap(),
        "a\nb {{ $labels.x }}\nc"
    );
}

#[test]
fn every_dashboard_panel_queries_the_datasource_variable() {
    let dashboard = dashboard();
    assert!(dashboard["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasource = variables
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let expected = json!({ "type": "prometheus", "uid": "${datasource}" });
    let mut ids = BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_i64().unwrap()),
            "{title}: id twice"
        );
        assert_eq!(panel["datasource"], expected, "{title}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_i64(), "{title}: gridPos.{key}");
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            assert_eq!(target["datasource"], expected, "{title}");
        }
    }
    // What the brief asks the dashboard to show.
    let queries: String = dashboard_queries(&dashboard)
        .into_iter()
        .map(|(_, expr, _)| expr + "\n")
        .collect();
    for needle in [
        "grant_operator_resources",
        "grant_operator_grants",
        "grant_operator_vendor_requests_total",
        "histogram_quantile(0.5, sum by (vendor, le) (rate(grant_operator_vendor_request_duration_seconds_bucket",
        "histogram_quantile(0.95, sum by (vendor, le) (rate(grant_operator_vendor_request_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (vendor, le) (rate(grant_operator_vendor_request_duration_seconds_bucket",
        "grant_operator_drift_repairs_total",
        "grant_operator_time_to_first_ready_seconds_bucket",
    ] {
        assert!(queries.contains(needle), "no panel queries {needle}");
    }
}

#[test]
fn the_chart_values_read_the_same_in_yaml_1_1() {
    for path in [
        "charts/grant-operator/values.yaml",
        "charts/grant-operator/Chart.yaml",
    ] {
        assert_reads_the_same_in_yaml_1_1(path, &read(path));
    }
    for bad in ["enabled: yes", "- on", "mode: 0755", "at: 1:30", "<<: *x"] {
        assert!(
            std::panic::catch_unwind(|| assert_reads_the_same_in_yaml_1_1("test", bad)).is_err(),
            "accepted {bad}"
        );
    }
    assert_reads_the_same_in_yaml_1_1("test", "a: \"yes\"\nb: |\n  on\n  1:30\nc: 10m");
}
