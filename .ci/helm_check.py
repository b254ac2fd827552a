"""The Helm chart as Helm itself reads it: lint, schema, and what renders.

Run by .ci/helm. tests/monitoring/ checks the monitoring templates in
`cargo test` with a limited renderer; this checks the whole chart with Helm's
engine, for the default values and the optional parts switched on.
"""

import json
import sys

import helm_python as helm

CHART = "charts/grant-operator"
RELEASE = "grant-operator"
NAMESPACE = "grant-operator-system"
RULE = f"{RELEASE}/templates/prometheusrule.yaml"
DASHBOARD = f"{RELEASE}/templates/dashboard.yaml"
SERVICE_MONITOR = f"{RELEASE}/templates/servicemonitor.yaml"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def render(values):
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)


def block(text, key):
    """The lines of the block scalar `key: |-` in rendered YAML, unindented."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{key}: |-")
    indent = len(lines[start]) - len(lines[start].lstrip()) + 2
    body = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line[indent:])
    return "\n".join(body).rstrip("\n")


MONITORING_ON = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "additionalLabels": {"release": "kps"}},
        "dashboard": {
            "enabled": True,
            "namespace": "monitoring",
            "annotations": {"grafana_folder": "Operators"},
        },
    }
}

print(f"helm-c-sdk {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}")

# helm lint, with the defaults and with everything optional on.
for name, values in [("defaults", None), ("monitoring on", MONITORING_ON)]:
    report = helm.lint(CHART, values, namespace=NAMESPACE, strict=True)
    for message in report["messages"]:
        # 1 is info (such as "icon is recommended"); 2 warning, 3 error.
        check(message["severity"] < 2, f"helm lint ({name}): {message}")
    check(not report["errors"], f"helm lint ({name}): {report['errors']}")

# Defaults: no monitoring objects.
rendered = render({})
for template in [RULE, DASHBOARD, SERVICE_MONITOR]:
    check(not rendered.get(template, "").strip(), f"{template} renders by default")
check("kind: Deployment" in rendered[f"{RELEASE}/templates/deployment.yaml"], "no Deployment")

# Everything on: the rule, the dashboard and the ServiceMonitor render.
rendered = render(MONITORING_ON)
rule = rendered[RULE]
check("kind: PrometheusRule" in rule, "no PrometheusRule")
check("    release: kps\n" in rule, "additionalLabels missing from the PrometheusRule")
check(rule.count("- alert: ") == 6, "six alerts expected")
check("{{ $labels.name }}" in rule, "the annotations' Prometheus templates do not survive Helm")
dashboard = rendered[DASHBOARD]
check("kind: ConfigMap" in dashboard, "no dashboard ConfigMap")
check("  namespace: monitoring\n" in dashboard, "the dashboard namespace is not applied")
check('    "grafana_dashboard": "1"\n' in dashboard, "no sidecar label on the dashboard")
check("    grafana_folder: Operators\n" in dashboard, "annotations missing from the dashboard")
with open(f"{CHART}/dashboards/grant-operator.json") as file:
    shipped = json.load(file)
check(json.loads(block(dashboard, "grant-operator.json")) == shipped, "the ConfigMap's JSON differs")
check("honorLabels: true" in rendered[SERVICE_MONITOR], "the ServiceMonitor does not honour labels")

# values.schema.json refuses bad monitoring values.
for bad in [
    {"metrics": {"prometheusRule": {"enabled": True, "vendorErrors": {"ratio": 2}}}},
    {"metrics": {"prometheusRule": {"enabled": True, "driftRepairs": {"for": "an hour"}}}},
    {"metrics": {"dashboard": {"enabled": True, "labelValue": 1}}},
    {"metrics": {"dashboard": {"enabeld": True}}},
]:
    try:
        render(bad)
        failures.append(f"values.schema.json accepts {bad}")
    except helm.HelmValuesError:
        pass

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("helm: chart lints clean; defaults render no monitoring objects; the rule and dashboard render when enabled")
