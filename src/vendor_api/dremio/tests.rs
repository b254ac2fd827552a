//! Unit tests of the Dremio vendor module: merging lists, comparing them, keys and units.

use crate::api::{DremioCatalogObjectRef, DremioGrant};
use crate::vendor_api::GrantKind;

use super::client::{Entry, GranteeType, ListedEntry, ObjectGrants};
use super::grant_list::{merge, parse_key, same};
use super::kind::object_key;
use super::{Change, Privilege};

fn listed(grants: &[(&str, &str, &[&str])], available: &[&str]) -> ObjectGrants {
    ObjectGrants {
        available_privileges: available.iter().map(|p| p.to_string()).collect(),
        grants: grants
            .iter()
            .map(|(kind, id, privileges)| ListedEntry {
                privileges: privileges.iter().map(|p| p.to_string()).collect(),
                grantee_type: kind.to_string(),
                id: id.to_string(),
                name: None,
            })
            .collect(),
    }
}

fn change(key: &str, removed: &[&str], added: &[&str]) -> Change {
    let (grantee_type, id) = parse_key(key).unwrap_or((GranteeType::User, String::new()));
    Change {
        key: key.into(),
        grantee_type,
        id,
        removed: removed.iter().map(|p| p.to_string()).collect(),
        added: added.iter().map(|p| p.to_string()).collect(),
    }
}

fn entries(list: &[Entry]) -> Vec<(String, String, Vec<String>)> {
    list.iter()
        .map(|e| (e.grantee_type.clone(), e.id.clone(), e.privileges.clone()))
        .collect()
}

const ALL: &[&str] = &["ALTER", "MANAGE_GRANTS", "SELECT"];

#[test]
fn merge_keeps_every_other_entry_exactly() {
    let current = listed(
        &[
            ("USER", "someone", &["SELECT", "MANAGE_GRANTS"]),
            ("GROUP", "future-type", &["SELECT"]),
            ("ROLE", "r1", &["SELECT"]),
        ],
        ALL,
    );
    let (merged, refused) = merge(
        "obj",
        &current,
        &[
            change("role:r1", &[], &["ALTER"]),
            change("user:new", &[], &["SELECT"]),
        ],
    );
    assert!(refused.is_empty());
    assert_eq!(
        entries(&merged),
        vec![
            (
                "USER".into(),
                "someone".into(),
                vec!["SELECT".into(), "MANAGE_GRANTS".into()]
            ),
            ("GROUP".into(), "future-type".into(), vec!["SELECT".into()]),
            (
                "ROLE".into(),
                "r1".into(),
                vec!["SELECT".into(), "ALTER".into()]
            ),
            ("USER".into(), "new".into(), vec!["SELECT".into()]),
        ]
    );
}

#[test]
fn merge_removes_only_planned_privileges_and_drops_empty_entries() {
    let current = listed(
        &[
            ("USER", "u1", &["SELECT", "ALTER"]),
            ("ROLE", "r1", &["SELECT"]),
        ],
        ALL,
    );
    let (merged, _) = merge(
        "obj",
        &current,
        &[
            change("user:u1", &["ALTER"], &[]),
            change("role:r1", &["SELECT"], &[]),
        ],
    );
    assert_eq!(
        entries(&merged),
        vec![("USER".into(), "u1".into(), vec!["SELECT".into()])]
    );
}

#[test]
fn merge_refuses_unavailable_privileges_and_applies_the_rest() {
    let current = listed(&[], &["SELECT"]);
    let (merged, refused) = merge(
        "obj",
        &current,
        &[change("user:u1", &[], &["SELECT", "ALTER"])],
    );
    assert_eq!(
        entries(&merged),
        vec![("USER".into(), "u1".into(), vec!["SELECT".into()])]
    );
    let message = refused
        .get("user:u1")
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("ALTER not available on catalog object obj (available: SELECT)"),
        "{message}"
    );
    assert_eq!(
        refused["user:u1"].reason(),
        crate::api::Reason::InvalidGrant
    );
}

#[test]
fn same_ignores_order() {
    let current = listed(
        &[
            ("USER", "u1", &["SELECT", "ALTER"]),
            ("ROLE", "r", &["SELECT"]),
        ],
        ALL,
    );
    let reordered = vec![
        Entry {
            privileges: vec!["SELECT".into()],
            grantee_type: "ROLE".into(),
            id: "r".into(),
        },
        Entry {
            privileges: vec!["ALTER".into(), "SELECT".into()],
            grantee_type: "USER".into(),
            id: "u1".into(),
        },
    ];
    assert!(same(&reordered, &current.grants));
    assert!(!same(&reordered[..1], &current.grants));
}

#[test]
fn keys_and_units() {
    assert_eq!(
        parse_key("user:abc"),
        Some((GranteeType::User, "abc".into()))
    );
    assert_eq!(
        parse_key("role:r-1"),
        Some((GranteeType::Role, "r-1".into()))
    );
    assert_eq!(parse_key("team:x"), None);
    assert_eq!(parse_key("user:"), None);
    let by_path = DremioCatalogObjectRef {
        path: Some(vec![
            "Samples".into(),
            "samples.dremio.com".into(),
            "zips.json".into(),
        ]),
        id: None,
    };
    assert_eq!(
        object_key(&by_path),
        r#"path:["Samples","samples.dremio.com","zips.json"]"#
    );
    let object = serde_json::json!({"spec": {"catalogObject": {"id": "7f1c"}}});
    assert_eq!(
        DremioGrant::unit_key_of(&object).as_deref(),
        Some("id:7f1c")
    );
    assert_eq!(
        "SELECT".parse::<Privilege>(),
        Ok(Privilege("SELECT".into()))
    );
    assert!("select".parse::<Privilege>().is_err());
}
