//! The rules and the dashboard as the chart ships them: read and rendered,
//! every panel on the datasource variable, every alert's runbook section, and
//! the chart values read the same in YAML 1.1.

use super::*;

pub(crate) fn enabled() -> Value {
    values(json!({
        "metrics": {
            "prometheusRule": { "enabled": true },
            "dashboard": { "enabled": true },
        }
    }))
}

/// Every alerting rule of the rendered `PrometheusRule`.
pub(crate) fn alert_rules(values: &Value) -> Vec<Value> {
    let rule = document(RULE, &render_file(RULE, values));
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap().clone())
        .collect()
}

pub(crate) fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD_JSON)).unwrap_or_else(|e| panic!("{DASHBOARD_JSON}: {e}"))
}

/// Every panel's queries, with the panel's title and each query's legend.
pub(crate) fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
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
pub(crate) fn template_labels(text: &str, pattern: &str) -> BTreeSet<String> {
    regex::Regex::new(pattern)
        .unwrap()
        .captures_iter(text)
        .map(|captures| captures[1].to_string())
        .collect()
}

/// GitHub's anchor of a Markdown heading.
pub(crate) fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
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
