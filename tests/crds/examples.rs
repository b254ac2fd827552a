//! The shipped examples pass the schemas and their rules, and a rate limit
//! that never admits a call is refused.

use super::*;

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
