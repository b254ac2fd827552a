//! Unit tests of the Snowflake vendor module: changes per call and the GrantKind mapping.

use std::collections::BTreeSet;

use crate::api::SnowflakeGrant;
use crate::plan::Action;
use crate::vendor_api::{GrantKind, Live, OtherEntry, OtherKind};

use super::client::ListedGrant;
use super::identifiers;
use super::listing::live_of;
use super::model::SnowflakePrivilege;
use super::statements::{Changes, changes};

fn privilege(name: &str, option: bool) -> SnowflakePrivilege {
    SnowflakePrivilege::new(name, option)
}

fn action(live: &[(&str, bool)], target: &[(&str, bool)]) -> Action<SnowflakePrivilege> {
    let close = |list: &[(&str, bool)]| {
        list.iter()
            .flat_map(|(name, option)| crate::plan::Permission::closure(&privilege(name, *option)))
            .collect()
    };
    Action {
        key: "SCHEMA S.P".into(),
        live: close(live),
        target: close(target),
        vendor_ids: Vec::new(),
    }
}

#[test]
fn grant_option_off_revokes_only_the_option() {
    let planned = changes(&action(&[("USAGE", true)], &[("USAGE", false)]));
    assert_eq!(
        planned,
        Changes {
            revoke_option: vec!["USAGE".into()],
            ..Changes::default()
        }
    );
}

#[test]
fn changes_group_privileges_per_call() {
    let planned = changes(&action(
        &[("USAGE", false), ("MONITOR", true), ("OLD", false)],
        &[
            ("USAGE", true),
            ("MONITOR", true),
            ("CREATE TABLE", false),
            ("NEW", false),
        ],
    ));
    assert_eq!(
        planned,
        Changes {
            grant: vec!["CREATE TABLE".into(), "NEW".into()],
            grant_with_option: vec!["USAGE".into()],
            revoke: vec!["OLD".into()],
            revoke_option: vec![],
        }
    );
    let revoke_all = changes(&action(&[("USAGE", true)], &[]));
    assert_eq!(revoke_all.revoke, vec!["USAGE".to_string()]);
    assert!(revoke_all.revoke_option.is_empty());
}

fn grant(spec: serde_json::Value) -> SnowflakeGrant {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "grantoperator.dev/v1alpha1",
        "kind": "SnowflakeGrant",
        "metadata": {"name": "g", "namespace": "ns"},
        "spec": spec,
    }))
    .expect("grant")
}

#[test]
fn resources_map_to_grantee_units_and_securable_keys() {
    let object = grant(serde_json::json!({
        "providerRef": {"name": "p"},
        "grantee": {"type": "ROLE", "name": "analyst"},
        "target": {"securable": {"type": "schema", "name": r#"sales."Public""#}},
        "privileges": ["usage", "CREATE TABLE"],
        "withGrantOption": true,
    }));
    assert_eq!(object.unit_key(), "ROLE:ANALYST");
    let declared = object.declarations();
    assert_eq!(declared.len(), 2);
    assert_eq!(
        SnowflakeGrant::grantee_label(&declared[0].0),
        r#"SCHEMA SALES."Public""#
    );
    assert_eq!(declared[0].1, privilege("USAGE", true));
    assert_eq!(
        object.authoritative_keys(),
        Some(vec![r#"SCHEMA SALES."Public""#.to_string()])
    );
    let future = grant(serde_json::json!({
        "providerRef": {"name": "p"},
        "grantee": {"type": "DATABASE_ROLE", "name": "sales.reader"},
        "target": {"future": {"securableType": "tables", "in": {"type": "DATABASE", "name": "sales"}}},
        "privileges": ["SELECT"],
    }));
    assert_eq!(future.unit_key(), "DATABASE_ROLE:SALES.READER");
    assert_eq!(
        SnowflakeGrant::grantee_label(&future.declarations()[0].0),
        "FUTURE TABLES IN DATABASE SALES"
    );
    let raw = serde_json::json!({"spec": {"grantee": {"type": "USER", "name": "jane"}}});
    assert_eq!(
        SnowflakeGrant::unit_key_of(&raw).as_deref(),
        Some("USER:JANE")
    );
}

#[test]
fn ownership_is_never_managed() {
    let mut live = Live::default();
    let listed = vec![ListedGrant {
        securable_type: "TABLE".into(),
        name: identifiers::parse("A.B.C").unwrap(),
        privileges: vec!["OWNERSHIP".into(), "SELECT".into()],
        grant_option: true,
    }];
    let by_key = live_of(&listed, &mut live);
    assert_eq!(live.unmanaged, 1);
    assert_eq!(
        live.others,
        vec![OtherEntry {
            key: "TABLE A.B.C".into(),
            name: None,
            permission: "OWNERSHIP".into(),
            kind: OtherKind::Fixed,
            detail: None,
        }]
    );
    assert_eq!(live.grants.len(), 1);
    assert_eq!(
        by_key["TABLE A.B.C"],
        BTreeSet::from([privilege("SELECT", true), privilege("SELECT", false)])
    );
}
