//! `SnowflakeGrant`: privileges on a Snowflake securable, or on all/future
//! securables of a type in a database or schema.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{GrantPolicy, GrantStatus};

/// Snowflake identifier, optionally dotted and quoted (`SALES.PUBLIC`, `"My DB"."Sch"`).
const OBJECT_NAME: &str =
    r#"^("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(\.("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*$"#;
/// Snowflake keyword phrase such as `SCHEMA`, `EXTERNAL TABLE`, `CREATE TABLE`.
const KEYWORDS: &str = r"^[A-Za-z]+( [A-Za-z]+)*$";
/// Plural securable type such as `TABLES`, `MATERIALIZED VIEWS`.
const PLURAL_KEYWORDS: &str = r"^[A-Za-z_]+( [A-Za-z_]+)*$";

/// Privileges granted to one role, database role or user on one securable.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "grantoperator.dev",
    version = "v1alpha1",
    kind = "SnowflakeGrant",
    namespaced,
    status = "GrantStatus",
    doc = "Privileges a Snowflake role, database role or user holds on a securable (or on all or future securables of a type).",
    category = "grantoperator",
    category = "grants",
    shortname = "sfgrant",
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.providerRef.name"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".status.target.securable"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SnowflakeGrantSpec {
    /// Provider, mode and lifecycle policies.
    #[serde(flatten)]
    pub policy: GrantPolicy,
    /// Who receives the privileges. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("grantee is immutable; create a new SnowflakeGrant for another grantee"))]
    pub grantee: SnowflakeGrantee,
    /// What the privileges are on: one securable, or all or future securables
    /// of a type in a scope. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("target is immutable; create a new SnowflakeGrant for another securable"))]
    pub target: SnowflakeTarget,
    /// Privileges such as `USAGE`, `SELECT`, `CREATE TABLE`.
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 64), pattern(KEYWORDS))
    )]
    pub privileges: Vec<String>,
    /// Also grant the right to grant these privileges on.
    #[serde(default)]
    pub with_grant_option: bool,
}

/// The kind of grantee.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnowflakeGranteeType {
    /// An account role.
    Role,
    /// A database role, named `DATABASE.ROLE`.
    DatabaseRole,
    /// A user.
    User,
}

/// A role, database role or user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("self.type != 'DATABASE_ROLE' || self.name.contains('.')").message("a DATABASE_ROLE is named DATABASE.ROLE"))]
pub struct SnowflakeGrantee {
    /// `ROLE`, `DATABASE_ROLE` or `USER`.
    #[serde(rename = "type")]
    pub type_: SnowflakeGranteeType,
    /// Name; unquoted names are upper-cased, quoted names keep their case.
    #[schemars(length(min = 1, max = 520), pattern(OBJECT_NAME))]
    pub name: String,
}

/// Exactly one of a securable, all securables of a type in a scope, or future ones.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.securable), has(self.all), has(self.future)].filter(x, x).size() == 1").message("set exactly one of securable, all or future"))]
pub struct SnowflakeTarget {
    /// One named securable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub securable: Option<SnowflakeSecurable>,
    /// Every existing securable of a type in a database or schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<SnowflakeBulk>,
    /// Securables of a type created later in a database or schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future: Option<SnowflakeBulk>,
}

/// A named securable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct SnowflakeSecurable {
    /// Type such as `DATABASE`, `SCHEMA`, `TABLE`, `VIEW`, `WAREHOUSE`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 64), pattern(KEYWORDS))]
    pub type_: String,
    /// Name, dotted for schema objects (`SALES.PUBLIC.ORDERS`).
    #[schemars(length(min = 1, max = 800), pattern(OBJECT_NAME))]
    pub name: String,
}

/// All or future securables of a type in a scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnowflakeBulk {
    /// Plural type such as `TABLES`, `VIEWS`, `SCHEMAS`.
    #[schemars(length(min = 1, max = 64), pattern(PLURAL_KEYWORDS))]
    pub securable_type: String,
    /// The database or schema.
    #[serde(rename = "in")]
    pub in_: SnowflakeScope,
}

/// The kind of scope of a bulk grant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnowflakeScopeType {
    /// A database.
    Database,
    /// A schema, named `DATABASE.SCHEMA`.
    Schema,
}

/// A database or schema.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type != 'SCHEMA' || self.name.contains('.')", "message": "a SCHEMA scope is named DATABASE.SCHEMA"}
]))]
pub struct SnowflakeScope {
    /// `DATABASE` or `SCHEMA`.
    #[serde(rename = "type")]
    pub type_: SnowflakeScopeType,
    /// Name.
    #[schemars(length(min = 1, max = 520), pattern(OBJECT_NAME))]
    pub name: String,
}
