//! Unit tests of the Grafana vendor module: levels, keys, exact names, units.

use crate::api::{GrafanaDatasourceRef, GrafanaGrant, GrafanaPermission};
use crate::plan::Permission;
use crate::vendor_api::GrantKind;

use super::client::{AccessGrantee, LegacyGrantee};
use super::kind::datasource_key;
use super::vendor::exact;
use super::{access_grantee, legacy_grantee};

#[test]
fn levels_include_lower_levels() {
    assert_eq!(
        GrafanaPermission::Admin.closure(),
        vec![
            GrafanaPermission::Admin,
            GrafanaPermission::Edit,
            GrafanaPermission::Query
        ]
    );
    assert_eq!(
        GrafanaPermission::Query.closure(),
        vec![GrafanaPermission::Query]
    );
    assert_eq!(
        "Edit".parse::<GrafanaPermission>(),
        Ok(GrafanaPermission::Edit)
    );
    assert!("View".parse::<GrafanaPermission>().is_err());
}

#[test]
fn legacy_levels_are_numbers() {
    assert_eq!(GrafanaPermission::Query.legacy_level(), Some(1));
    assert_eq!(GrafanaPermission::Edit.legacy_level(), Some(2));
    assert_eq!(GrafanaPermission::Admin.legacy_level(), None);
    assert_eq!(
        GrafanaPermission::from_legacy(2),
        Some(GrafanaPermission::Edit)
    );
    assert_eq!(GrafanaPermission::from_legacy(4), None);
    assert_eq!(GrafanaPermission::from_legacy(0), None);
}

#[test]
fn keys_map_to_grantees() {
    assert_eq!(access_grantee("user:7"), Some(AccessGrantee::User(7)));
    assert_eq!(access_grantee("team:3"), Some(AccessGrantee::Team(3)));
    assert_eq!(
        access_grantee("role:Viewer"),
        Some(AccessGrantee::BuiltIn("Viewer".into()))
    );
    assert_eq!(access_grantee("role:Owner"), None);
    assert_eq!(access_grantee("user:jane"), None);
    assert_eq!(legacy_grantee("role:Viewer"), None);
    assert_eq!(legacy_grantee("team:3"), Some(LegacyGrantee::Team(3)));
}

#[test]
fn names_match_exactly_never_by_substring() {
    let names = ["jane", "janet", "Bob", "bob2"];
    assert_eq!(exact(&names, |name| name, "jane"), Some(&"jane"));
    assert_eq!(exact(&names, |name| name, "jan"), None);
    assert_eq!(exact(&names, |name| name, "bob"), Some(&"Bob"));
    let ambiguous = ["Ann", "ANN"];
    assert_eq!(
        exact(&ambiguous, |name| name, "ann"),
        None,
        "two case-insensitive matches"
    );
    assert_eq!(exact(&ambiguous, |name| name, "ANN"), Some(&"ANN"));
}

#[test]
fn units_follow_the_reference_as_written() {
    let reference = |uid: Option<&str>, name: Option<&str>, id: Option<i64>| GrafanaDatasourceRef {
        uid: uid.map(String::from),
        name: name.map(String::from),
        id,
    };
    assert_eq!(
        datasource_key(&reference(Some("P8E"), None, None)),
        "uid:P8E"
    );
    assert_eq!(
        datasource_key(&reference(None, Some("Prom"), None)),
        "name:Prom"
    );
    assert_eq!(datasource_key(&reference(None, None, Some(4))), "id:4");
    let object = serde_json::json!({"spec": {"datasource": {"name": "Prom"}}});
    assert_eq!(
        GrafanaGrant::unit_key_of(&object).as_deref(),
        Some("name:Prom")
    );
}
