//! `GrafanaGrant`: permissions on a Grafana data source.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{BASE_URL, GrantPolicy, GrantStatus, SecretValue};

/// Permissions on one Grafana data source.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "grantoperator.dev",
    version = "v1alpha1",
    kind = "GrafanaGrant",
    namespaced,
    status = "GrantStatus",
    doc = "Who may query, edit or administer a Grafana data source.",
    category = "grantoperator",
    category = "grants",
    shortname = "gfgrant",
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.providerRef.name"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".status.target.datasourceUid"
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
pub struct GrafanaGrantSpec {
    /// Provider, mode and lifecycle policies.
    #[serde(flatten)]
    pub policy: GrantPolicy,
    /// The data source. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("datasource is immutable; create a new GrafanaGrant for another data source"))]
    pub datasource: GrafanaDatasourceRef,
    /// The permissions to keep on the data source.
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub permissions: Vec<GrafanaPermissionEntry>,
}

/// A data source by uid, name or numeric id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.uid), has(self.name), has(self.id)].filter(x, x).size() == 1").message("set exactly one of uid, name or id"))]
pub struct GrafanaDatasourceRef {
    /// Data source uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), pattern(r"^[A-Za-z0-9_-]+$"))]
    pub uid: Option<String>,
    /// Data source name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 190))]
    pub name: Option<String>,
    /// Numeric data source id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub id: Option<i64>,
}

/// One user, team or built-in role and its permission.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.user), has(self.team), has(self.role)].filter(x, x).size() == 1").message("set exactly one of user, team or role"))]
pub struct GrafanaPermissionEntry {
    /// A user, by login, email or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<GrafanaUserRef>,
    /// A team, by exact name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<GrafanaTeamRef>,
    /// A built-in role (AccessControl API only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<GrafanaBuiltInRole>,
    /// `Query`, `Edit` or `Admin`.
    pub permission: GrafanaPermission,
}

/// A Grafana user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("[has(self.login), has(self.email), has(self.id)].filter(x, x).size() == 1").message("set exactly one of login, email or id"))]
pub struct GrafanaUserRef {
    /// Exact login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 190))]
    pub login: Option<String>,
    /// Exact email (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 320), pattern(r"^[^@\s]+@[^@\s]+$"))]
    pub email: Option<String>,
    /// Numeric user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub id: Option<i64>,
}

/// A Grafana team.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.name) != has(self.id)").message("set exactly one of name or id"))]
pub struct GrafanaTeamRef {
    /// Exact team name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 190))]
    pub name: Option<String>,
    /// Numeric team id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub id: Option<i64>,
}

/// Grafana's built-in organisation roles.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GrafanaBuiltInRole {
    /// Viewer.
    Viewer,
    /// Editor.
    Editor,
    /// Admin.
    Admin,
}

/// A data source permission level; each includes the ones before it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum GrafanaPermission {
    /// Query the data source.
    Query,
    /// Query and edit.
    Edit,
    /// Query, edit and manage permissions.
    Admin,
}

/// Which Grafana permissions API to use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum GrafanaPermissionsApi {
    /// Ask the server once which API it serves.
    #[default]
    Auto,
    /// `/api/access-control/datasources/:uid` (Grafana 9 and later).
    AccessControl,
    /// `/api/datasources/:id/permissions` (Grafana Enterprise before 10.3).
    Legacy,
}

/// Basic auth credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct BasicAuth<S> {
    /// User name.
    pub username: SecretValue<S>,
    /// Password.
    pub password: SecretValue<S>,
}

/// Grafana: service account token or basic auth.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "S: Deserialize<'de>"))]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.token) != has(self.basicAuth)", "message": "set exactly one of token or basicAuth"}
]))]
pub struct GrafanaProvider<S> {
    /// Base URL of Grafana.
    #[schemars(length(max = 2048), pattern(BASE_URL))]
    pub url: String,
    /// Organisation id, sent as `X-Grafana-Org-Id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub org_id: Option<i64>,
    /// `Auto` (default), `AccessControl` or `Legacy`.
    #[serde(default)]
    pub permissions_api: GrafanaPermissionsApi,
    /// Service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretValue<S>>,
    /// Basic auth user and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth<S>>,
}
