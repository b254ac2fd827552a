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

mod examples;
mod generated;
mod rules;
