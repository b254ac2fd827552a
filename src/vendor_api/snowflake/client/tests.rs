//! Unit tests of the Snowflake client: wire objects, reading entries, links and paths.

use crate::vendor_api::snowflake::model::{BulkKind, Grantee, GranteeType, ScopeType};

use super::rows::{ListingError, read_future, read_grant};
use super::wire::{GrantListing, LegacyTarget, WireObject, wire_object, wire_scope};
use super::{SnowflakeApi, next_link};
use crate::vendor_api::snowflake::identifiers::parse;

#[test]
fn securables_split_into_wire_objects_by_part_count() {
    let table = parse(r#"sales."My Schema".orders"#).unwrap();
    assert_eq!(
        serde_json::to_value(wire_object(&table)).unwrap_or_default(),
        serde_json::json!({"database": "SALES", "schema": "\"My Schema\"", "name": "ORDERS"})
    );
    let schema = parse("sales.public").unwrap();
    assert_eq!(
        serde_json::to_value(wire_object(&schema)).unwrap_or_default(),
        serde_json::json!({"database": "SALES", "name": "PUBLIC"})
    );
    assert_eq!(wire_object(&parse("a.b.c.d").unwrap()), None);
    assert_eq!(
        wire_scope(ScopeType::Schema, &schema),
        WireObject {
            database: Some("SALES".into()),
            schema: Some("PUBLIC".into()),
            name: None
        }
    );
}

#[test]
fn grant_entries_are_read_or_refused_never_dropped() {
    let table = read_grant(&serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "\"My S\"", "name": "T"}, "privileges": ["select"], "grant_option": true}), GrantListing::Role).unwrap();
    assert_eq!(table.securable_type, "TABLE");
    assert_eq!(table.name.sql(), r#"SALES."My S".T"#);
    assert_eq!(table.privileges, vec!["SELECT".to_string()]);
    assert!(table.grant_option);
    let legacy = read_grant(&serde_json::json!({"securable_type": "EXTERNAL_TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}), GrantListing::Legacy).unwrap();
    assert_eq!(legacy.securable_type, "EXTERNAL TABLE");
    assert!(!legacy.grant_option);
    // A role granted to a user: no privilege shown, USAGE meant.
    let role = read_grant(&serde_json::json!({"securable_type": "DATABASE_ROLE", "securable": {"database": "SALES", "name": "READER"}}), GrantListing::User).unwrap();
    assert_eq!(
        (
            role.securable_type.as_str(),
            role.name.sql(),
            role.privileges
        ),
        (
            "DATABASE ROLE",
            "SALES.READER".to_string(),
            vec!["USAGE".to_string()]
        )
    );
    for (entry, listing, problem) in [
        (
            serde_json::json!({"securable": {"name": "X"}, "privileges": ["USAGE"]}),
            GrantListing::Role,
            "no securable_type",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "S"}, "privileges": ["SELECT"]}),
            GrantListing::Role,
            "securable has no name",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable": "S.T", "privileges": ["SELECT"]}),
            GrantListing::Role,
            "expected struct WireObject",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "privileges": ["SELECT"]}),
            GrantListing::Role,
            "no securable",
        ),
        (
            // Each listing is read with the fields its definition gives it.
            serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}),
            GrantListing::Role,
            "no securable",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "A", "schema": "B", "name": "C"}, "privileges": ["SELECT"]}),
            GrantListing::Legacy,
            "no securable_name",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C"}),
            GrantListing::Legacy,
            "no privileges",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": [3]}),
            GrantListing::Legacy,
            "is not a privilege",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable_name": "A.B.C", "privileges": ["SELECT"], "grant_option": "yes"}),
            GrantListing::Legacy,
            "not a boolean",
        ),
        (
            serde_json::json!({"securable_type": "TA-BLE", "securable_name": "A.B.C", "privileges": ["SELECT"]}),
            GrantListing::Legacy,
            "is not a type",
        ),
        (
            serde_json::json!(["TABLE"]),
            GrantListing::Role,
            "not an object",
        ),
    ] {
        let error = read_grant(&entry, listing).unwrap_err();
        assert!(error.contains(problem), "{entry}: {error}");
    }
}

#[test]
fn future_entries_are_read_in_every_shape_the_definition_allows() {
    let scope_of = |entry: serde_json::Value| {
        let future = read_future(&entry).unwrap();
        (future.plural, future.scope, future.scope_name.sql())
    };
    let schema = (
        "TABLES".to_string(),
        ScopeType::Schema,
        "SALES.PUBLIC".to_string(),
    );
    assert_eq!(
        scope_of(
            serde_json::json!({"securable_type": "TABLE", "containing_scope": {"database": "SALES", "schema": "PUBLIC"}, "privileges": ["SELECT"]})
        ),
        schema
    );
    // By the securable: the future objects' placeholder, or the scope itself.
    assert_eq!(
        scope_of(
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "schema": "PUBLIC", "name": "<TABLE>"}, "privileges": ["SELECT"]})
        ),
        schema
    );
    assert_eq!(
        scope_of(
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "SALES", "name": "PUBLIC"}, "privileges": ["SELECT"]})
        ),
        schema
    );
    assert_eq!(
        scope_of(
            serde_json::json!({"securable_type": "SCHEMA", "securable": {"database": "SALES", "name": "<SCHEMA>"}, "privileges": ["USAGE"]})
        ),
        (
            "SCHEMAS".to_string(),
            ScopeType::Database,
            "SALES".to_string()
        )
    );
    assert_eq!(
        scope_of(
            serde_json::json!({"securable_type": "VIEW", "securable": {"name": "SALES"}, "privileges": ["SELECT"]})
        ),
        (
            "VIEWS".to_string(),
            ScopeType::Database,
            "SALES".to_string()
        )
    );
    for (entry, problem) in [
        (
            serde_json::json!({"securable_type": "TABLE", "privileges": ["SELECT"]}),
            "no containing_scope or securable",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "containing_scope": {"schema": "P"}, "privileges": ["SELECT"]}),
            "containing_scope has no database",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "securable": {"database": "A", "schema": "B", "name": "C"}, "privileges": ["SELECT"]}),
            "not a database or a schema",
        ),
        (
            serde_json::json!({"securable_type": "TABLE", "containing_scope": {"database": "A"}}),
            "no privileges",
        ),
        (
            serde_json::json!({"containing_scope": {"database": "A"}, "privileges": ["SELECT"]}),
            "no securable_type",
        ),
    ] {
        let error = read_future(&entry).unwrap_err();
        assert!(error.contains(problem), "{entry}: {error}");
    }
}

#[test]
fn an_unreadable_row_is_quoted_in_the_error() {
    let rows = vec![
        serde_json::json!({"name": "ORDERS"}),
        serde_json::json!({"kind": "x".repeat(1000)}),
    ];
    let error = SnowflakeApi::read_rows(rows, "SCHEMA S.P", "tables", |row| {
        row.get("name")
            .and_then(serde_json::Value::as_str)
            .map(String::from)
            .ok_or_else(|| "no name".to_string())
    })
    .unwrap_err();
    let ListingError::Unreadable(message) = error else {
        panic!("unreadable")
    };
    assert!(
        message.starts_with("the tables listing of SCHEMA S.P has an entry this version cannot read (no name): {\"kind\":\"xxx"),
        "{message}"
    );
    assert!(message.len() < 600, "quoted, not copied whole");
}

#[test]
fn next_links_are_found() {
    assert_eq!(
        next_link(r#"</api/v2/results/a?page=2>; rel="next", </x>; rel="prev""#).as_deref(),
        Some("/api/v2/results/a?page=2")
    );
    assert_eq!(
        next_link(r#"</x>; rel="prev", <https://h/y>; rel=next"#).as_deref(),
        Some("https://h/y")
    );
    assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    assert_eq!(next_link("garbage"), None);
}

#[test]
fn legacy_paths_encode_each_segment() {
    let grantee = Grantee::parse(GranteeType::Role, r#""My Role""#).unwrap();
    let name = parse(r#"sales."My Schema""#).unwrap();
    assert_eq!(
        SnowflakeApi::legacy_path(
            &grantee,
            &LegacyTarget::Named {
                type_: "SCHEMA",
                name: &name
            }
        ),
        "/api/v2/grants/role/%22My%20Role%22/SCHEMA/SALES.%22My%20Schema%22/privileges"
    );
    assert_eq!(
        SnowflakeApi::legacy_path(
            &grantee,
            &LegacyTarget::Bulk {
                kind: BulkKind::Future,
                plural: "TABLES",
                scope: ScopeType::Schema,
                scope_name: &name
            }
        ),
        "/api/v2/grants/role/%22My%20Role%22/future/tables/schema/SALES.%22My%20Schema%22/privileges"
    );
}
