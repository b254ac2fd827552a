//! RBAC and the install manifests.
//!
//! - The operator runs (with leader election) against the in-memory API server
//!   through a scenario that exercises every kind of Kubernetes call it makes:
//!   watches, Secret reads, finalizer and status patches, Events, the Lease.
//!   Every request is recorded as (API group, resource, verb, name), and the
//!   chart's RBAC must grant each of them, and grant nothing that no request used.
//! - `deploy/rbac.yaml` has the same rules as the chart.
//! - The chart's `crds/` and `deploy/crds/` are byte-identical copies of `crds/`.
//! - Every environment variable the manifests set is a flag of the binary.
//!
//! There is no `helm` here: the RBAC templates are read with a renderer limited
//! to what their `rules:` blocks use (one value, the lease name); any other
//! template expression inside a `rules:` block fails the test. The rest of the
//! chart (labels, names, conditionals) is not rendered by these tests.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use grant_operator::api::{ClusterGrantProvider, GrantProvider};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use support::fake_kube::RecordedCall;
use support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One API request, as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    group: String,
    /// `plural` or `plural/subresource`.
    resource: String,
    verb: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn request_of(call: &RecordedCall) -> Request {
    let segments: Vec<&str> = call.path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!(
            "a request outside the resource API: {} {}",
            call.method, call.path
        ),
    };
    let own = |s: &&str| Some(s.to_string());
    let (namespace, plural, name, sub) = match rest {
        ["namespaces"] if group.is_empty() => (None, "namespaces", None, None),
        ["namespaces", name] if group.is_empty() => (None, "namespaces", own(name), None),
        ["namespaces", ns, plural] => (own(ns), *plural, None, None),
        ["namespaces", ns, plural, name] => (own(ns), *plural, own(name), None),
        ["namespaces", ns, plural, name, sub] => (own(ns), *plural, own(name), own(sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, own(name), None),
        [plural, name, sub] => (None, *plural, own(name), own(sub)),
        _ => panic!("unexpected path {}", call.path),
    };
    let watch = call
        .query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let verb = match (call.method.as_str(), &name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        (method, _) => panic!("unexpected method {method}"),
    };
    Request {
        group: group.to_string(),
        resource: match sub {
            Some(sub) => format!("{plural}/{sub}"),
            None => plural.to_string(),
        },
        verb: verb.to_string(),
        namespace,
        name,
    }
}

/// Runs the operator through every kind of call it makes; returns the requests.
async fn recorded_requests() -> Vec<Request> {
    let h = Harness::new().await;
    h.sigma.add_member("jane@example.com");
    h.sigma_prod_provider();
    h.secret(
        "vault",
        "sigma-shared",
        &[("client-id", CLIENT_ID), ("client-secret", CLIENT_SECRET)],
    );
    h.put(&h.cluster_provider(
        "sigma-shared",
        "vault",
        "sigma-shared",
        LabelSelector::default(),
    ));
    h.put(&jane_readers());
    // One grant of every other implemented kind, so their calls are recorded too.
    h.grafana.add_user(1, "jane", "jane@example.com");
    h.secret(NS, "grafana-sa", &[("token", GRAFANA_TOKEN)]);
    h.put(&h.grafana_provider(
        NS,
        "grafana",
        "grafana-sa",
        grant_operator::api::GrafanaPermissionsApi::Auto,
    ));
    h.put(&grafana_grant(
        "gf-readers",
        vec![user_login(
            "jane",
            grant_operator::api::GrafanaPermission::Query,
        )],
    ));
    h.dremio.add_user("jeansmith", "jean@example.com");
    h.secret(NS, "dremio-pat", &[("token", DREMIO_TOKEN)]);
    h.put(&h.dremio_provider(NS, "dremio", "dremio-pat", false));
    h.put(&dremio_grant(
        "dr-readers",
        vec![dremio_user("jeansmith", &["SELECT"])],
    ));
    h.put_snowflake_provider(
        "snowflake-key",
        SnowflakeLogin::KeyPair,
        grant_operator::api::SnowflakeGrantsApi::RoleGrants,
    );
    h.put(&snowflake_grant(
        "sf-readers",
        (grant_operator::api::SnowflakeGranteeType::Role, "ANALYST"),
        target_securable("SCHEMA", "SALES.PUBLIC"),
        &["USAGE"],
        false,
    ));
    h.kube.clear_calls();

    let config = fast_config();
    let operator = ElectedOperator::start(h.kube.client(), config, "replica-a");
    let ready = |provider: Option<GrantProvider>| {
        provider
            .and_then(|p| p.status)
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Authenticated"))
    };
    eventually("namespaced provider Ready", || {
        ready(h.kube.get::<GrantProvider>(Some(NS), "sigma-prod"))
    })
    .await;
    eventually("cluster provider Ready", || {
        h.kube
            .get::<ClusterGrantProvider>(None, "sigma-shared")
            .and_then(|p| p.status)
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Authenticated"))
    })
    .await;
    eventually("grant Synced", || {
        h.get("readers")
            .and_then(|g| g.status)
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Synced"))
    })
    .await;
    eventually("events published", || {
        !h.kube.list_json("events.k8s.io", "events").is_empty()
    })
    .await;
    eventually("Grafana, Dremio and Snowflake grants Synced", || {
        let synced = |status: Option<grant_operator::api::GrantStatus>| {
            status.is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Synced"))
        };
        synced(
            h.get_of::<grant_operator::api::GrafanaGrant>("gf-readers")
                .and_then(|g| g.status),
        ) && synced(
            h.get_of::<grant_operator::api::DremioGrant>("dr-readers")
                .and_then(|g| g.status),
        ) && synced(
            h.get_of::<grant_operator::api::SnowflakeGrant>("sf-readers")
                .and_then(|g| g.status),
        )
    })
    .await;
    h.delete("readers");
    h.delete_of::<grant_operator::api::GrafanaGrant>("gf-readers");
    h.delete_of::<grant_operator::api::DremioGrant>("dr-readers");
    h.delete_of::<grant_operator::api::SnowflakeGrant>("sf-readers");
    eventually("revoked and released", || {
        h.live().is_empty()
            && h.get("readers").is_none()
            && h.get_of::<grant_operator::api::GrafanaGrant>("gf-readers")
                .is_none()
            && h.get_of::<grant_operator::api::DremioGrant>("dr-readers")
                .is_none()
            && h.get_of::<grant_operator::api::SnowflakeGrant>("sf-readers")
                .is_none()
            && h.snowflake.live("ROLE", "ANALYST").is_empty()
    })
    .await;
    operator.stop(Duration::from_secs(10)).await.unwrap();
    h.kube.calls().iter().map(request_of).collect()
}

/// A chart value by its dotted path in `values.yaml`.
fn value(path: &str) -> Value {
    let values: Value = serde_norway::from_str(&read("charts/grant-operator/values.yaml")).unwrap();
    path.split('.').fold(values, |value, key| {
        value.get(key).cloned().unwrap_or(Value::Null)
    })
}

/// The `rules:` block of a template, rendered: the only template expression
/// allowed there is the lease name; anything else fails the test.
fn rules_block(template: &str) -> String {
    let text = read(template);
    let start = text
        .lines()
        .position(|line| line.trim_end() == "rules:")
        .unwrap_or_else(|| panic!("{template} has no rules: block"));
    let lease = value("leaderElection.leaseName");
    let lease = lease.as_str().expect("a lease name");
    let mut block = String::new();
    for line in text.lines().skip(start + 1) {
        if line.trim_start().starts_with("{{- end") {
            break;
        }
        let line = line.replace(
            "{{ .Values.leaderElection.leaseName | quote }}",
            &format!("{lease:?}"),
        );
        assert!(
            !line.contains("{{"),
            "{template}: a template expression the test cannot render in rules: {line}"
        );
        block.push_str(&line);
        block.push('\n');
    }
    block
}

/// Rules of a `rules:` block; each rule must follow a comment saying why.
fn parse_rules(what: &str, block: &str) -> Vec<PolicyRule> {
    let lines: Vec<&str> = block.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            let before = lines[..index]
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(|line| line.trim_start());
            assert!(
                before.is_some_and(|line| line.starts_with('#')),
                "{what}: the rule at `{}` has no comment saying why",
                line.trim()
            );
        }
    }
    serde_norway::from_str(block).unwrap_or_else(|e| panic!("{what}: {e}\n{block}"))
}

/// Every rule of a document of `kind` in a multi-document YAML file.
fn manifest_rules(path: &str, kind: &str) -> Vec<PolicyRule> {
    let text = read(path);
    let documents: Vec<&str> = text.split("\n---\n").collect();
    let found: Vec<&str> = documents
        .into_iter()
        .filter(|doc| doc.lines().any(|line| line == format!("kind: {kind}")))
        .collect();
    assert_eq!(found.len(), 1, "{path}: one {kind}");
    let start = found[0].find("\nrules:\n").expect("rules") + "\nrules:\n".len();
    let block = &found[0][start..];
    parse_rules(&format!("{path} {kind}"), block)
}

const CLUSTER_ROLE: &str = "charts/grant-operator/templates/clusterrole.yaml";
const LEASE_ROLE: &str = "charts/grant-operator/templates/leader-election-role.yaml";

fn grants(rule: &PolicyRule, request: &Request) -> bool {
    let groups = rule.api_groups.clone().unwrap_or_default();
    let resources = rule.resources.clone().unwrap_or_default();
    let names = rule.resource_names.clone().unwrap_or_default();
    groups.contains(&request.group)
        && resources.contains(&request.resource)
        && rule.verbs.contains(&request.verb)
        && (names.is_empty()
            || request
                .name
                .as_ref()
                .is_some_and(|name| names.contains(name)))
}

/// The (group, resource, verb, resource name) grants of rules.
fn expand(rules: &[PolicyRule]) -> BTreeSet<(String, String, String, Option<String>)> {
    let mut out = BTreeSet::new();
    for rule in rules {
        let names = rule.resource_names.clone().unwrap_or_default();
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    if names.is_empty() {
                        out.insert((group.clone(), resource.clone(), verb.clone(), None));
                    }
                    for name in &names {
                        out.insert((
                            group.clone(),
                            resource.clone(),
                            verb.clone(),
                            Some(name.clone()),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_grants_exactly_the_calls_the_operator_makes() {
    let cluster = parse_rules(CLUSTER_ROLE, &rules_block(CLUSTER_ROLE));
    let lease = parse_rules(LEASE_ROLE, &rules_block(LEASE_ROLE));
    assert_eq!(value("leaderElection.leaseName"), LEASE, "the test's lease");

    for rule in cluster.iter().chain(&lease) {
        let all = rule
            .api_groups
            .iter()
            .flatten()
            .chain(rule.resources.iter().flatten())
            .chain(&rule.verbs);
        for item in all {
            assert!(!item.contains('*'), "a wildcard in {rule:?}");
        }
        if rule.resources.iter().flatten().any(|r| r == "secrets") {
            for verb in &rule.verbs {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str()),
                    "Secrets are read-only, not {verb}"
                );
            }
        }
    }
    for rule in &cluster {
        assert!(
            !rule.resources.iter().flatten().any(|r| r == "leases"),
            "Leases belong in the namespaced Role"
        );
    }
    for rule in &lease {
        assert_eq!(rule.resources.clone().unwrap_or_default(), ["leases"]);
    }

    let requests = recorded_requests().await;
    let mut missing = BTreeSet::new();
    let mut used = BTreeSet::new();
    for request in &requests {
        let (rules, role) = if request.resource == "leases" {
            assert_eq!(
                request.namespace.as_deref(),
                Some(OPERATOR_NS),
                "Leases only in the operator's namespace: {request:?}"
            );
            (&lease, "Role")
        } else {
            (&cluster, "ClusterRole")
        };
        match rules.iter().find(|rule| grants(rule, request)) {
            Some(rule) => {
                for grant in expand(std::slice::from_ref(rule)) {
                    let (group, resource, verb, name) = &grant;
                    if *group == request.group
                        && *resource == request.resource
                        && *verb == request.verb
                        && (name.is_none() || *name == request.name)
                    {
                        used.insert(grant);
                    }
                }
            }
            None => {
                missing.insert(format!(
                    "{role}: {} {} in {:?} (group {:?})",
                    request.verb, request.resource, request.namespace, request.group
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the chart's RBAC does not grant:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
    let granted: BTreeSet<_> = expand(&cluster).union(&expand(&lease)).cloned().collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the chart's RBAC grants more than the operator uses: {unused:?}"
    );
}

#[test]
fn deploy_rbac_has_the_same_rules_as_the_chart() {
    assert_eq!(
        manifest_rules("deploy/rbac.yaml", "ClusterRole"),
        parse_rules(CLUSTER_ROLE, &rules_block(CLUSTER_ROLE))
    );
    assert_eq!(
        manifest_rules("deploy/rbac.yaml", "Role"),
        parse_rules(LEASE_ROLE, &rules_block(LEASE_ROLE))
    );
}

fn yaml_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn chart_and_kustomize_crds_are_copies_of_crds() {
    let crds = yaml_files(&root().join("crds"));
    assert_eq!(crds.len(), 6);
    for copy in ["charts/grant-operator/crds", "deploy/crds"] {
        let files = yaml_files(&root().join(copy));
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            crds.keys().collect::<Vec<_>>(),
            "{copy} holds the same files as crds/; run `cp crds/*.yaml {copy}/`"
        );
        for (file, bytes) in &crds {
            assert!(
                files[file] == *bytes,
                "{copy}/{file} differs from crds/{file}; run `cp crds/*.yaml {copy}/`"
            );
        }
    }
}

#[test]
fn the_kustomization_installs_crds_rbac_and_the_deployment() {
    let kustomization: Value = serde_norway::from_str(&read("deploy/kustomization.yaml")).unwrap();
    let resources: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for file in yaml_files(&root().join("crds")).keys() {
        assert!(resources.contains(&format!("crds/{file}")), "{file}");
    }
    for file in [
        "namespace.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "service.yaml",
    ] {
        assert!(resources.contains(file), "{file}");
    }
    for resource in &resources {
        assert!(root().join("deploy").join(resource).exists(), "{resource}");
    }
}

/// The `env:` names set by a Deployment manifest or template.
fn env_names(path: &str) -> Vec<String> {
    let text = read(path);
    let start = text.find("env:\n").expect("env");
    let end = text.find("ports:\n").expect("ports");
    text[start..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- name: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn manifests_set_only_real_flags_and_the_chart_defaults() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    let chart = env_names("charts/grant-operator/templates/deployment.yaml");
    let deploy = env_names("deploy/deployment.yaml");
    for name in chart.iter().chain(&deploy) {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "{name} is not a flag's environment variable"
        );
    }
    let mut chart_sorted = chart.clone();
    chart_sorted.retain(|name| name != "WATCH_NAMESPACE");
    assert_eq!(chart_sorted, deploy, "deploy/ sets what the chart sets");

    // deploy/deployment.yaml is the chart's Deployment with its default values.
    let deployment: Value = serde_norway::from_str(&read("deploy/deployment.yaml")).unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"], value("podSecurityContext"));
    assert_eq!(container["securityContext"], value("securityContext"));
    assert_eq!(container["resources"], value("resources"));
    assert_eq!(deployment["spec"]["replicas"], value("replicas"));
    let env: BTreeMap<String, Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect();
    for (name, path) in [
        ("LEADER_ELECTION_LEASE_NAME", "leaderElection.leaseName"),
        (
            "LEADER_ELECTION_LEASE_DURATION",
            "leaderElection.leaseDuration",
        ),
        ("SYNC_INTERVAL", "syncInterval"),
        ("PROVIDER_CHECK_INTERVAL", "providerCheckInterval"),
        ("LOG_LEVEL", "log.level"),
        ("LOG_FORMAT", "log.format"),
    ] {
        assert_eq!(env[name], value(path), "{name}");
    }
    assert_eq!(env["CONCURRENCY"], value("concurrency").to_string());
    assert_eq!(
        env["LEADER_ELECTION"],
        value("leaderElection.enabled").to_string()
    );
    // The hardening the house style asks for, in the defaults.
    let hardened = value("securityContext");
    assert_eq!(hardened["allowPrivilegeEscalation"], false);
    assert_eq!(hardened["readOnlyRootFilesystem"], true);
    assert_eq!(hardened["runAsNonRoot"], true);
    assert_eq!(hardened["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(hardened["seccompProfile"]["type"], "RuntimeDefault");
}
