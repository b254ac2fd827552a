//! The operator's real `/metrics`, scraped while it runs, and every PromQL
//! expression of the rules and the dashboard checked against it: metric
//! names, labels, matcher values, and the labels annotations and legends use.

use super::*;

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
    let mut readers = jane_readers();
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
    let operator = RunningOperator::start_leading(h.kube.client(), &metrics, &health);
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
