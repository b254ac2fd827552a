//! `SnowflakeGrant`: privileges on a Snowflake securable, or on all/future
//! securables of a type in a database or schema.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{BASE_URL, GrantPolicy, GrantStatus, SecretValue};

/// Snowflake identifier, optionally dotted and quoted (`SALES.PUBLIC`, `"My DB"."Sch"`).
const OBJECT_NAME: &str =
    r#"^("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(\.("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*$"#;
/// Snowflake keyword phrase such as `SCHEMA`, `EXTERNAL TABLE`, `CREATE TABLE`.
const KEYWORDS: &str = r"^[A-Za-z]+( [A-Za-z]+)*$";
/// Plural securable type such as `TABLES`, `MATERIALIZED VIEWS`.
const PLURAL_KEYWORDS: &str = r"^[A-Za-z_]+( [A-Za-z_]+)*$";

/// Why a `USER` grantee takes only roles (user.yaml's user grants: "Only ROLE is supported").
pub const USER_TAKES_ROLES: &str = "Snowflake grants roles, not privileges, to users: a USER grantee takes only target.securable of type ROLE";
const USER_TAKES_ROLES_RULE: &str = "self.grantee.type != 'USER' || (has(self.target.securable) && self.target.securable.type.matches('^(?i)role$'))";
/// Why a granted role carries exactly `USAGE` and no grant option.
pub const ROLE_GRANTED_WHOLE: &str = "a role is granted whole, not privilege by privilege: for target.securable of type ROLE or DATABASE ROLE, privileges is exactly [USAGE] and withGrantOption is false";
const ROLE_GRANTED_WHOLE_RULE: &str = "!has(self.target.securable) || !self.target.securable.type.matches('^(?i)(database +)?role$') || (self.privileges.size() == 1 && self.privileges[0].matches('^(?i)usage$') && !(has(self.withGrantOption) && self.withGrantOption))";
/// Why a database role takes only database roles.
pub const DATABASE_ROLE_TAKES_DATABASE_ROLES: &str = "an account role cannot be granted to a database role: a DATABASE_ROLE grantee takes roles of type DATABASE ROLE (of its own database)";
const DATABASE_ROLE_TAKES_DATABASE_ROLES_RULE: &str = "self.grantee.type != 'DATABASE_ROLE' || !has(self.target.securable) || !self.target.securable.type.matches('^(?i)role$')";

/// Privileges granted to one role, database role or user on one securable.
///
/// Roles are granted too (the role hierarchy, and the roles a user holds): a
/// `target.securable` of type `ROLE` (or `DATABASE ROLE`) with privileges
/// `[USAGE]`.
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
#[x_kube(validation = Rule::new(USER_TAKES_ROLES_RULE).message(USER_TAKES_ROLES))]
#[x_kube(validation = Rule::new(ROLE_GRANTED_WHOLE_RULE).message(ROLE_GRANTED_WHOLE))]
#[x_kube(validation = Rule::new(DATABASE_ROLE_TAKES_DATABASE_ROLES_RULE).message(DATABASE_ROLE_TAKES_DATABASE_ROLES))]
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
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("!self.type.matches('^(?i)database +role$') || self.name.contains('.')").message("a DATABASE ROLE securable is named DATABASE.ROLE"))]
pub struct SnowflakeSecurable {
    /// Type such as `DATABASE`, `SCHEMA`, `TABLE`, `VIEW`, `WAREHOUSE`, or
    /// `ROLE` / `DATABASE ROLE` to grant a role (privileges `[USAGE]`).
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

/// Which Snowflake grants API to use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum SnowflakeGrantsApi {
    /// `/api/v2/roles/{name}/grants` and the database-role equivalents.
    #[default]
    RoleGrants,
    /// The deprecated `/api/v2/grants/...` endpoints.
    Legacy,
}

/// Snowflake key pair.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct SnowflakeKeyPair<S> {
    /// PKCS#8 PEM private key (encrypted or not).
    #[serde(rename = "privateKey")]
    pub private_key: SecretValue<S>,
    /// Passphrase of an encrypted private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<SecretValue<S>>,
}

/// Snowflake: key-pair JWT, OAuth token or programmatic access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "S: Deserialize<'de>"))]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "[has(self.keyPair), has(self.oauthToken), has(self.programmaticAccessToken)].filter(x, x).size() == 1",
     "message": "set exactly one of keyPair, oauthToken or programmaticAccessToken"}
]))]
pub struct SnowflakeProvider<S> {
    /// `https://<orgname>-<account_name>.snowflakecomputing.com`.
    #[schemars(length(max = 2048), pattern(BASE_URL))]
    pub account_url: String,
    /// Account identifier used in JWT claims (`MYORG-MYACCOUNT`).
    #[schemars(length(min = 1, max = 255), pattern(r"^[A-Za-z0-9_.-]+$"))]
    pub account: String,
    /// User the operator logs in as.
    #[schemars(length(min = 1, max = 255))]
    pub user: String,
    /// Key-pair authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pair: Option<SnowflakeKeyPair<S>>,
    /// OAuth access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token: Option<SecretValue<S>>,
    /// Programmatic access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programmatic_access_token: Option<SecretValue<S>>,
    /// `RoleGrants` (default) or `Legacy`.
    #[serde(default)]
    pub grants_api: SnowflakeGrantsApi,
}
