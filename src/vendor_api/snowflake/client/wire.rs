//! The wire types of the Snowflake calls: what the listings' rows hold (exactly
//! the fields this client reads, for the conformance test), the bodies written,
//! and how securables and scopes are named on the wire.

use serde::{Deserialize, Serialize};

use crate::vendor_api::snowflake::identifiers::{Name, Part, parse_listed_part};
use crate::vendor_api::snowflake::model::{BulkKind, ScopeType};

/// A grant as a grantee listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGrant {
    /// Securable type keyword (`SCHEMA`).
    pub securable_type: String,
    /// Securable name.
    pub name: Name,
    /// Privileges.
    pub privileges: Vec<String>,
    /// Whether they carry the grant option.
    pub grant_option: bool,
}

/// A future grant as the `future-grants` listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFuture {
    /// Plural type (`TABLES`).
    pub plural: String,
    /// Scope.
    pub scope: ScopeType,
    /// Scope name.
    pub scope_name: Name,
    /// Privileges.
    pub privileges: Vec<String>,
    /// Whether they carry the grant option.
    pub grant_option: bool,
}

/// `securable` / `containing_scope` objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct WireObject {
    /// Database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A `containing_scope` as a future-grants listing shows it (the definitions'
/// `ContainingScope`: a database, and a schema in it).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct WireScope {
    /// Database.
    #[serde(default)]
    pub database: Option<String>,
    /// Schema.
    #[serde(default)]
    pub schema: Option<String>,
}

// The rows of each listing as this client reads them: exactly the fields it
// reads, one type per listing, so that the conformance test can check each field
// against the answer the vendor's definition gives (`response_wire_types`).
// Scalars stay JSON values: the readers below say what is wrong with them.

/// A row of a role's or database role's grants listing (`RoleGrants`: the
/// `Grant` of role.yaml and database-role.yaml).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct RoleGrantRow {
    #[serde(default)]
    pub(super) securable_type: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) securable: Option<WireObject>,
    #[serde(default)]
    pub(super) privileges: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) grant_option: Option<serde_json::Value>,
}

/// A row of a user's grants listing (`RoleGrants`: user.yaml's `Grant`, which
/// has no grant option: users hold roles).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct UserGrantRow {
    #[serde(default)]
    pub(super) securable_type: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) securable: Option<WireObject>,
    #[serde(default)]
    pub(super) privileges: Option<serde_json::Value>,
}

/// A row of the `Legacy` grants listing (grant.yaml's `Grant`, the output of
/// `SHOW GRANTS TO`: the securable by name).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct LegacyGrantRow {
    #[serde(default)]
    pub(super) securable_type: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) securable_name: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) privileges: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) grant_option: Option<serde_json::Value>,
}

/// A row of a future-grants listing (the `Grant` of role.yaml and
/// database-role.yaml: the scope as `containing_scope` or as `securable`).
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct FutureGrantRow {
    #[serde(default)]
    pub(super) securable_type: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) containing_scope: Option<WireScope>,
    #[serde(default)]
    pub(super) securable: Option<WireObject>,
    #[serde(default)]
    pub(super) privileges: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) grant_option: Option<serde_json::Value>,
}

/// A row of an object listing (schemas, tables, views): its name.
#[derive(Deserialize, Debug, schemars::JsonSchema)]
pub struct NamedRow {
    #[serde(default)]
    pub(super) name: Option<serde_json::Value>,
}

/// Which grants listing a row comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GrantListing {
    /// A role's or database role's (`RoleGrants`).
    Role,
    /// A user's (`RoleGrants`).
    User,
    /// `Legacy`.
    Legacy,
}

#[derive(Deserialize, Debug, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Accepted {
    #[serde(default)]
    pub(super) result_handler: Option<String>,
}

/// The body of a `RoleGrants` grant or revoke (the definitions' `Grant`).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct RoleGrantBody {
    /// Singular type.
    pub securable_type: String,
    /// Named securable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub securable: Option<WireObject>,
    /// Scope of an `ALL` or future grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containing_scope: Option<WireObject>,
    /// Privileges; none when a role is granted (the role itself is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Vec<String>>,
    /// Grant option; none when a role is granted (user.yaml's Grant has no
    /// such field, and a role is never granted with it). On a revoke, `true`
    /// revokes only the grant option.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_option: Option<bool>,
}

/// A named securable as the `securable` object (`{database, schema, name}` by part count).
pub fn wire_object(name: &Name) -> Option<WireObject> {
    let parts: Vec<String> = name.parts().iter().map(Part::sql).collect();
    match parts.as_slice() {
        [name] => Some(WireObject {
            name: Some(name.clone()),
            ..WireObject::default()
        }),
        [database, name] => Some(WireObject {
            database: Some(database.clone()),
            name: Some(name.clone()),
            ..WireObject::default()
        }),
        [database, schema, name] => Some(WireObject {
            database: Some(database.clone()),
            schema: Some(schema.clone()),
            name: Some(name.clone()),
        }),
        _ => None,
    }
}

/// A scope as the `containing_scope` object.
pub fn wire_scope(scope: ScopeType, name: &Name) -> WireObject {
    let parts: Vec<String> = name.parts().iter().map(Part::sql).collect();
    match (scope, parts.as_slice()) {
        (ScopeType::Schema, [database, schema]) => WireObject {
            database: Some(database.clone()),
            schema: Some(schema.clone()),
            name: None,
        },
        _ => WireObject {
            database: Some(name.sql()),
            ..WireObject::default()
        },
    }
}

/// The privilege a granted role shows as.
pub const USAGE: &str = "USAGE";

/// Whether a securable type is a role (`ROLE`, `DATABASE ROLE`): granting it is
/// GRANT ROLE, not a privilege on an object.
pub fn is_role_type(type_: &str) -> bool {
    type_ == "ROLE" || type_ == "DATABASE ROLE"
}

/// A securable type as a listing writes it, keyed as declared: `SHOW GRANTS`
/// joins the words with `_` (`DATABASE_ROLE`), resources with spaces.
pub(super) fn listed_type(text: &str) -> String {
    crate::vendor_api::snowflake::model::keyword(&text.replace('_', " "))
}

pub(super) fn listed_name(object: &WireObject) -> Name {
    Name(
        [&object.database, &object.schema, &object.name]
            .into_iter()
            .flatten()
            .map(|part| parse_listed_part(part))
            .collect(),
    )
}

/// A grant or revoke of the `Legacy` API, on one named or bulk securable.
#[derive(Clone, Debug)]
pub enum LegacyTarget<'a> {
    /// `{securableType}/{securableName}`.
    Named {
        /// Type keyword.
        type_: &'a str,
        /// Name.
        name: &'a Name,
    },
    /// `{bulkGrantType}/{securableTypePlural}/{scopeType}/{scopeName}`.
    Bulk {
        /// All or future.
        kind: BulkKind,
        /// Plural type.
        plural: &'a str,
        /// Scope type.
        scope: ScopeType,
        /// Scope name.
        scope_name: &'a Name,
    },
}

/// The answers this client reads, each with an operation that gives it:
/// `(method, path template, status, schema of the row type read)`, for the
/// conformance test to compare with Snowflake's own definitions.
pub fn response_wire_types() -> Vec<(&'static str, &'static str, &'static str, schemars::Schema)> {
    vec![
        (
            "GET",
            "/api/v2/roles/{name}/grants",
            "200",
            schemars::schema_for!(Vec<RoleGrantRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/grants",
            "200",
            schemars::schema_for!(Vec<RoleGrantRow>),
        ),
        (
            "GET",
            "/api/v2/users/{name}/grants",
            "200",
            schemars::schema_for!(Vec<UserGrantRow>),
        ),
        (
            "GET",
            "/api/v2/grants/{granteeType}/{granteeName}",
            "200",
            schemars::schema_for!(Vec<LegacyGrantRow>),
        ),
        (
            "GET",
            "/api/v2/roles/{name}/future-grants",
            "200",
            schemars::schema_for!(Vec<FutureGrantRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/database-roles/{name}/future-grants",
            "200",
            schemars::schema_for!(Vec<FutureGrantRow>),
        ),
        (
            "GET",
            "/api/v2/roles",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/tables",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "GET",
            "/api/v2/databases/{database}/schemas/{schema}/views",
            "200",
            schemars::schema_for!(Vec<NamedRow>),
        ),
        (
            "POST",
            "/api/v2/roles/{name}/grants",
            "202",
            schemars::schema_for!(Accepted),
        ),
    ]
}
