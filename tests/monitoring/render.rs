//! A renderer limited to the constructs the two templates use (there is no
//! `helm` in `cargo test`), and the tests that the rule and the dashboard
//! render when enabled and nothing when not, and that any other construct
//! is refused.

use super::*;

/// The release the templates are rendered for.
pub(crate) const RELEASE: &str = "grant-operator";
pub(crate) const RELEASE_NAMESPACE: &str = "grant-operator-system";

/// `values.yaml` with `overrides` merged in (maps merge, anything else replaces).
pub(crate) fn values(overrides: Value) -> Value {
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
pub(crate) enum Piece {
    Text(String),
    Action(String),
}

/// Splits a template into text and actions, applying the `{{-` and `-}}`
/// whitespace trimming of Go templates.
pub(crate) fn pieces(template: &str) -> Result<Vec<Piece>, String> {
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
pub(crate) fn lookup<'a>(values: &'a Value, path: &str) -> Result<&'a Value, String> {
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
pub(crate) fn truthy(value: &Value) -> bool {
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
pub(crate) fn print(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("cannot print {other} in place")),
    }
}

pub(crate) fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.split('\n')
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The chart's labels as `_helpers.tpl` writes them for the release.
pub(crate) fn chart_labels() -> String {
    let chart: Value = serde_norway::from_str(&read("charts/grant-operator/Chart.yaml")).unwrap();
    format!(
        "app.kubernetes.io/name: {name}\napp.kubernetes.io/instance: {RELEASE}\napp.kubernetes.io/version: \"{app}\"\napp.kubernetes.io/managed-by: Helm\nhelm.sh/chart: {name}-{version}",
        name = chart["name"].as_str().unwrap(),
        app = chart["appVersion"].as_str().unwrap(),
        version = chart["version"].as_str().unwrap(),
    )
}

/// The value of one pipeline (`a | f x | g`), for the stages the templates use.
pub(crate) fn pipeline(
    action: &str,
    values: &Value,
    dot: Option<&Value>,
) -> Result<String, String> {
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
pub(crate) fn render(template: &str, values: &Value) -> Result<String, String> {
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

pub(crate) fn render_file(path: &str, values: &Value) -> String {
    render(&read(path), values).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one YAML document a template rendered.
pub(crate) fn document(path: &str, rendered: &str) -> Value {
    assert_reads_the_same_in_yaml_1_1(path, rendered);
    serde_norway::from_str(rendered).unwrap_or_else(|e| panic!("{path}: {e}\n{rendered}"))
}

/// Fails on plain scalars that a YAML 1.1 reader (kubectl, Helm, Argo CD) reads
/// differently from a YAML 1.2 one: booleans such as `on`/`yes`/`n`,
/// sexagesimal numbers such as `1:30`, octal-looking numbers such as `0755`,
/// and the merge key `<<`. Block scalars are text in both and are skipped.
pub(crate) fn assert_reads_the_same_in_yaml_1_1(what: &str, yaml: &str) {
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
