//! The CRDs: the committed `crds/` match what `grant-operator crd` prints, and
//! every CEL rule refuses the invalid samples and accepts the valid ones
//! (evaluated with kube's client-side CEL, as the API server would).

use std::collections::BTreeSet;
use std::path::Path;

use grant_operator::api::{all_crds, crd_yaml};
use kube::core::cel::Validator;
use serde_json::{Value, json};

fn crds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crds")
}

#[test]
fn committed_crds_match_the_binary_output() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grant-operator"))
        .arg("crd")
        .output()
        .expect("grant-operator runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();

    let mut committed = String::new();
    let mut expected_files = BTreeSet::new();
    for (file, crd) in all_crds() {
        let path = crds_dir().join(&file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run `cargo run -- crd --dir crds`",
                path.display()
            )
        });
        assert_eq!(
            on_disk,
            crd_yaml(&crd).unwrap(),
            "{file} is out of date; run `cargo run -- crd --dir crds`"
        );
        committed.push_str("---\n");
        committed.push_str(&on_disk);
        expected_files.insert(file);
    }
    assert_eq!(
        printed, committed,
        "`grant-operator crd` prints exactly the committed files"
    );

    let on_disk: BTreeSet<String> = std::fs::read_dir(crds_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        on_disk, expected_files,
        "crds/ holds one file per kind and nothing else"
    );
}

#[test]
fn names_categories_and_columns_follow_the_contract() {
    for (_, crd) in all_crds() {
        let names = &crd.spec.names;
        let categories = names.categories.clone().unwrap_or_default();
        assert!(
            categories.contains(&"grantoperator".to_string()),
            "{}",
            names.kind
        );
        let is_grant = names.kind.ends_with("Grant");
        assert_eq!(
            categories.contains(&"grants".to_string()),
            is_grant,
            "{}",
            names.kind
        );
        assert!(
            !names.short_names.clone().unwrap_or_default().is_empty(),
            "{}",
            names.kind
        );
        let version = &crd.spec.versions[0];
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{} has a status subresource",
            names.kind
        );
        let columns: Vec<String> = version
            .additional_printer_columns
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|column| column.name)
            .collect();
        if is_grant {
            assert_eq!(
                columns,
                ["Provider", "Target", "Ready", "Reason", "Age"],
                "{}",
                names.kind
            );
        } else {
            assert_eq!(columns, ["Ready", "Reason", "Age"], "{}", names.kind);
        }
    }
}

/// Every `pattern` of every schema compiles (the API server refuses CRDs with a bad one).
#[test]
fn every_pattern_is_a_valid_regex() {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(pattern)) = map.get("pattern") {
                    found.push(pattern.clone());
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut patterns = Vec::new();
    for (_, crd) in all_crds() {
        walk(&serde_json::to_value(&crd).unwrap(), &mut patterns);
    }
    assert!(patterns.len() > 20);
    for pattern in patterns {
        regex::Regex::new(&pattern).unwrap_or_else(|error| panic!("{pattern}: {error}"));
    }
}

fn schema(kind: &str) -> Value {
    let crd = all_crds()
        .into_iter()
        .map(|(_, crd)| crd)
        .find(|crd| crd.spec.names.kind == kind)
        .unwrap();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

fn rules_of(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    found.insert(rule["rule"].as_str().unwrap().to_string());
                }
            }
            map.values().for_each(|v| rules_of(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| rules_of(v, found)),
        _ => {}
    }
}

fn object(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "grantoperator.dev/v1alpha1", "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec})
}

struct Cel {
    kind: &'static str,
    schema: Value,
    validator: Validator,
    failed_rules: BTreeSet<String>,
}

impl Cel {
    fn new(kind: &'static str) -> Cel {
        Cel {
            kind,
            schema: schema(kind),
            validator: Validator::new(),
            failed_rules: BTreeSet::new(),
        }
    }

    fn valid(&self, spec: Value) {
        let result = self
            .validator
            .validate(&self.schema, &object(self.kind, spec.clone()), None);
        assert!(
            result.is_ok(),
            "{} should accept {spec}: {result:?}",
            self.kind
        );
    }

    /// The spec is refused, with a message containing `message`.
    fn invalid(&mut self, spec: Value, message: &str) {
        let result = self
            .validator
            .validate(&self.schema, &object(self.kind, spec.clone()), None);
        self.refused(result, &spec, message);
    }

    /// Updating `old` to `new` is refused.
    fn invalid_update(&mut self, old: Value, new: Value, message: &str) {
        let result = self.validator.validate(
            &self.schema,
            &object(self.kind, new.clone()),
            Some(&object(self.kind, old)),
        );
        self.refused(result, &new, message);
    }

    fn refused(
        &mut self,
        result: Result<(), kube::core::cel::ValidationErrors>,
        spec: &Value,
        message: &str,
    ) {
        let errors = result
            .expect_err(&format!("{} should refuse {spec}", self.kind))
            .into_vec();
        assert!(
            errors.iter().any(|error| error.message.contains(message)),
            "{} refused {spec} but not with {message:?}: {errors:?}",
            self.kind
        );
        self.failed_rules
            .extend(errors.into_iter().map(|error| error.rule));
    }

    /// Every rule of the CRD was seen refusing something.
    fn all_rules_exercised(&self) {
        let mut rules = BTreeSet::new();
        rules_of(&self.schema, &mut rules);
        let missing: Vec<_> = rules.difference(&self.failed_rules).collect();
        assert!(
            missing.is_empty(),
            "{}: rules never exercised: {missing:?}",
            self.kind
        );
    }
}

fn sigma_provider() -> Value {
    json!({"apiUrl": "https://aws-api.sigmacomputing.com",
           "clientId": {"secretKeyRef": {"name": "s", "key": "id"}},
           "clientSecret": {"secretKeyRef": {"name": "s", "key": "secret"}}})
}

#[test]
fn provider_rules() {
    for kind in ["GrantProvider", "ClusterGrantProvider"] {
        let mut cel = Cel::new(if kind == "GrantProvider" {
            "GrantProvider"
        } else {
            "ClusterGrantProvider"
        });
        let extra = |mut spec: Value| {
            if kind == "ClusterGrantProvider" {
                spec["namespaceSelector"] = json!({});
            }
            spec
        };
        cel.valid(extra(json!({"sigma": sigma_provider()})));
        cel.valid(extra(json!({"grafana": {"url": "https://g", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})));
        cel.valid(extra(
            json!({"snowflake": {"accountUrl": "https://a", "account": "A-B", "user": "U",
            "programmaticAccessToken": {"secretKeyRef": {"name": "s", "key": "t"}}}}),
        ));
        cel.valid(extra(json!({"dremio": {"url": "https://d", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})));
        cel.invalid(extra(json!({})), "exactly one vendor block");
        cel.invalid(
            extra(json!({"sigma": sigma_provider(), "dremio": {"url": "https://d", "token": {"secretKeyRef": {"name": "s", "key": "t"}}}})),
            "exactly one vendor block",
        );
        cel.invalid(
            extra(json!({"grafana": {"url": "https://g", "token": {"secretKeyRef": {"name": "s", "key": "t"}},
                "basicAuth": {"username": {"secretKeyRef": {"name": "s", "key": "u"}}, "password": {"secretKeyRef": {"name": "s", "key": "p"}}}}})),
            "exactly one of token or basicAuth",
        );
        cel.invalid(
            extra(json!({"grafana": {"url": "https://g"}})),
            "exactly one of token or basicAuth",
        );
        cel.invalid(
            extra(
                json!({"snowflake": {"accountUrl": "https://a", "account": "A", "user": "U",
                "oauthToken": {"secretKeyRef": {"name": "s", "key": "t"}},
                "programmaticAccessToken": {"secretKeyRef": {"name": "s", "key": "t"}}}}),
            ),
            "exactly one of keyPair, oauthToken or programmaticAccessToken",
        );
        cel.all_rules_exercised();
    }
}

fn common() -> Value {
    json!({"providerRef": {"name": "p"}})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

#[test]
fn sigma_grant_rules() {
    let mut cel = Cel::new("SigmaGrant");
    let valid = with(
        common(),
        json!({"connectionId": "c1", "grants": [
        {"member": {"email": "jane@example.com"}, "permission": "annotate"},
        {"member": {"id": "D09b"}, "permission": "usage"},
        {"team": {"name": "Finance"}, "permission": "usage"},
        {"team": {"id": "88858466"}, "permission": "usage"}]}),
    );
    cel.valid(valid.clone());
    cel.valid(with(valid.clone(), json!({"syncInterval": "1s"})));
    cel.valid(with(valid.clone(), json!({"syncInterval": "1h30m"})));
    cel.invalid(
        with(common(), json!({"connectionId": "c1", "grants": [{"member": {"email": "a@b"}, "team": {"name": "T"}, "permission": "usage"}]})),
        "exactly one of member or team",
    );
    cel.invalid(
        with(
            common(),
            json!({"connectionId": "c1", "grants": [{"permission": "usage"}]}),
        ),
        "exactly one of member or team",
    );
    cel.invalid(
        with(common(), json!({"connectionId": "c1", "grants": [{"member": {"email": "a@b", "id": "x"}, "permission": "usage"}]})),
        "exactly one of id or email",
    );
    cel.invalid(
        with(
            common(),
            json!({"connectionId": "c1", "grants": [{"team": {}, "permission": "usage"}]}),
        ),
        "exactly one of id or name",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "500ms"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"connectionId": "c2"})),
        "connectionId is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn grafana_grant_rules() {
    let mut cel = Cel::new("GrafanaGrant");
    let valid = with(
        common(),
        json!({"datasource": {"uid": "P8E80F9AEF21F6940"}, "permissions": [
        {"user": {"login": "jane"}, "permission": "Query"},
        {"user": {"email": "jane@example.com"}, "permission": "Edit"},
        {"user": {"id": 7}, "permission": "Admin"},
        {"team": {"name": "SRE"}, "permission": "Query"},
        {"team": {"id": 3}, "permission": "Query"},
        {"role": "Viewer", "permission": "Query"}]}),
    );
    cel.valid(valid.clone());
    cel.invalid(
        with(common(), json!({"datasource": {"uid": "a", "name": "b"}})),
        "exactly one of uid, name or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {}})),
        "exactly one of uid, name or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"user": {"id": 1}, "role": "Viewer", "permission": "Query"}]})),
        "exactly one of user, team or role",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"user": {"login": "a", "id": 1}, "permission": "Query"}]})),
        "exactly one of login, email or id",
    );
    cel.invalid(
        with(common(), json!({"datasource": {"id": 1}, "permissions": [{"team": {"name": "a", "id": 1}, "permission": "Query"}]})),
        "exactly one of name or id",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "0s"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"datasource": {"name": "Prometheus"}})),
        "datasource is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn snowflake_grant_rules() {
    let mut cel = Cel::new("SnowflakeGrant");
    let valid = with(
        common(),
        json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}, "privileges": ["USAGE"]}),
    );
    cel.valid(valid.clone());
    cel.valid(with(common(), json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.READER"},
        "target": {"future": {"securableType": "TABLES", "in": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}}, "privileges": ["SELECT"]})));
    // Role grants: the roles a user holds, and the role hierarchy.
    cel.valid(with(
        common(),
        json!({"grantee": {"type": "USER", "name": "\"jane\""},
        "target": {"securable": {"type": "ROLE", "name": "ANALYST"}}, "privileges": ["USAGE"]}),
    ));
    cel.valid(with(common(), json!({"grantee": {"type": "USER", "name": "JANE"},
        "target": {"securable": {"type": "role", "name": "ANALYST"}}, "privileges": ["usage"], "withGrantOption": false})));
    cel.valid(with(
        common(),
        json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "ROLE", "name": "READER"}}, "privileges": ["USAGE"]}),
    ));
    cel.valid(with(common(), json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
        "target": {"securable": {"type": "DATABASE ROLE", "name": "SALES.READER"}}, "privileges": ["USAGE"]})));
    cel.valid(with(common(), json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.WRITER"},
        "target": {"securable": {"type": "database role", "name": "SALES.READER"}}, "privileges": ["USAGE"]})));
    let user = |target: Value, privileges: Value| {
        with(
            common(),
            json!({"grantee": {"type": "USER", "name": "JANE"}, "target": target, "privileges": privileges}),
        )
    };
    for target in [
        json!({"securable": {"type": "SCHEMA", "name": "SALES.PUBLIC"}}),
        json!({"securable": {"type": "DATABASE ROLE", "name": "SALES.READER"}}),
        json!({"all": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "SALES"}}}),
        json!({"future": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "SALES"}}}),
    ] {
        cel.invalid(
            user(target, json!(["USAGE"])),
            "Snowflake grants roles, not privileges, to users: a USER grantee takes only target.securable of type ROLE",
        );
    }
    let role_grant = |securable_type: &str, privileges: Value, option: bool| {
        with(
            common(),
            json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
                "target": {"securable": {"type": securable_type, "name": "SALES.READER"}},
                "privileges": privileges, "withGrantOption": option}),
        )
    };
    for (securable_type, privileges, option) in [
        ("ROLE", json!(["USAGE", "MONITOR"]), false),
        ("Role", json!(["SELECT"]), false),
        ("DATABASE ROLE", json!(["USAGE"]), true),
        ("database role", json!(["OWNERSHIP"]), false),
    ] {
        cel.invalid(
            role_grant(securable_type, privileges, option),
            "a role is granted whole, not privilege by privilege",
        );
    }
    cel.invalid(
        user(
            json!({"securable": {"type": "ROLE", "name": "ANALYST"}}),
            json!(["USAGE", "MONITOR"]),
        ),
        "privileges is exactly [USAGE] and withGrantOption is false",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "DATABASE_ROLE", "name": "SALES.WRITER"},
            "target": {"securable": {"type": "ROLE", "name": "ANALYST"}}, "privileges": ["USAGE"]}),
        ),
        "an account role cannot be granted to a database role",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "ANALYST"},
            "target": {"securable": {"type": "DATABASE ROLE", "name": "READER"}}, "privileges": ["USAGE"]})),
        "a DATABASE ROLE securable is named DATABASE.ROLE",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "ROLE", "name": "A"}, "target": {}, "privileges": ["USAGE"]}),
        ),
        "exactly one of securable, all or future",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "A"},
            "target": {"securable": {"type": "SCHEMA", "name": "S.P"}, "future": {"securableType": "TABLES", "in": {"type": "DATABASE", "name": "S"}}},
            "privileges": ["USAGE"]})),
        "exactly one of securable, all or future",
    );
    cel.invalid(
        with(
            common(),
            json!({"grantee": {"type": "DATABASE_ROLE", "name": "READER"},
            "target": {"securable": {"type": "SCHEMA", "name": "S.P"}}, "privileges": ["USAGE"]}),
        ),
        "a DATABASE_ROLE is named DATABASE.ROLE",
    );
    cel.invalid(
        with(common(), json!({"grantee": {"type": "ROLE", "name": "A"},
            "target": {"all": {"securableType": "TABLES", "in": {"type": "SCHEMA", "name": "PUBLIC"}}}, "privileges": ["SELECT"]})),
        "a SCHEMA scope is named DATABASE.SCHEMA",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "0.5s"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(
            valid.clone(),
            json!({"grantee": {"type": "ROLE", "name": "OTHER"}}),
        ),
        "grantee is immutable",
    );
    cel.invalid_update(
        valid.clone(),
        with(
            valid,
            json!({"target": {"securable": {"type": "SCHEMA", "name": "SALES.OTHER"}}}),
        ),
        "target is immutable",
    );
    cel.all_rules_exercised();
}

#[test]
fn dremio_grant_rules() {
    let mut cel = Cel::new("DremioGrant");
    let valid = with(
        common(),
        json!({"catalogObject": {"path": ["Samples", "samples.dremio.com", "zips.json"]}, "grants": [
        {"user": {"name": "jeansmith"}, "privileges": ["SELECT"]},
        {"role": {"id": "0f2d94e0-bb5e-4c03-8c6f-62d379d10889"}, "privileges": ["SELECT", "ALTER"]}]}),
    );
    cel.valid(valid.clone());
    cel.invalid(
        with(
            common(),
            json!({"catalogObject": {"path": ["a"], "id": "x"}}),
        ),
        "exactly one of path or id",
    );
    cel.invalid(
        with(common(), json!({"catalogObject": {"id": "x"}, "grants": [{"user": {"name": "a"}, "role": {"name": "b"}, "privileges": ["SELECT"]}]})),
        "exactly one of user or role",
    );
    cel.invalid(
        with(common(), json!({"catalogObject": {"id": "x"}, "grants": [{"user": {"name": "a", "id": "b"}, "privileges": ["SELECT"]}]})),
        "exactly one of name or id",
    );
    cel.invalid(
        with(valid.clone(), json!({"syncInterval": "999ms"})),
        "at least 1s",
    );
    cel.invalid_update(
        valid.clone(),
        with(valid, json!({"catalogObject": {"id": "other"}})),
        "catalogObject is immutable",
    );
    cel.all_rules_exercised();
}

/// Every example manifest of a grant-operator kind deserializes into its type
/// and passes the CRD's CEL rules.
#[test]
fn examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    let demo = dir.join("demo");
    let paths = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(&demo).unwrap())
        .map(|entry| entry.unwrap().path());
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(document).unwrap();
            if value.is_null() || value["apiVersion"] != "grantoperator.dev/v1alpha1" {
                continue;
            }
            let kind = value["kind"].as_str().unwrap();
            let name = format!("{} {kind}/{}", path.display(), value["metadata"]["name"]);
            let typed = match kind {
                "GrantProvider" => {
                    serde_json::from_value::<grant_operator::api::GrantProvider>(value.clone())
                        .map(|_| ())
                }
                "ClusterGrantProvider" => serde_json::from_value::<
                    grant_operator::api::ClusterGrantProvider,
                >(value.clone())
                .map(|_| ()),
                "SigmaGrant" => {
                    serde_json::from_value::<grant_operator::api::SigmaGrant>(value.clone())
                        .map(|_| ())
                }
                "GrafanaGrant" => {
                    serde_json::from_value::<grant_operator::api::GrafanaGrant>(value.clone())
                        .map(|_| ())
                }
                "SnowflakeGrant" => {
                    serde_json::from_value::<grant_operator::api::SnowflakeGrant>(value.clone())
                        .map(|_| ())
                }
                "DremioGrant" => {
                    serde_json::from_value::<grant_operator::api::DremioGrant>(value.clone())
                        .map(|_| ())
                }
                other => panic!("{name}: unknown kind {other}"),
            };
            typed.unwrap_or_else(|error| panic!("{name}: {error}"));
            let result = Validator::new().validate(&schema(kind), &value, None);
            assert!(result.is_ok(), "{name}: {result:?}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "examples checked: {checked}");
}

/// A rate limit that can never admit a call (`requestsPerSecond: 0`, a burst of
/// 0) is refused at admission: the schema's bounds are the client's own.
#[test]
fn rate_limits_that_never_admit_a_call_are_refused_by_the_schema() {
    for kind in ["GrantProvider", "ClusterGrantProvider"] {
        let schema = schema(kind);
        let limit = &schema["properties"]["spec"]["properties"]["rateLimit"];
        let rate = &limit["properties"]["requestsPerSecond"];
        assert_eq!(
            rate["minimum"].as_f64(),
            Some(grant_operator::vendor_api::http::MIN_RATE),
            "{kind}: {rate}"
        );
        assert_eq!(limit["properties"]["burst"]["minimum"].as_f64(), Some(1.0));
        assert_eq!(limit["required"], serde_json::json!(["requestsPerSecond"]));
    }
}
