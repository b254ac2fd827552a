//! `DremioGrant`: privileges on a Dremio catalog object.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{BASE_URL, GrantPolicy, GrantStatus, SecretValue};

/// Privileges on one Dremio catalog object.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "grantoperator.dev",
    version = "v1alpha1",
    kind = "DremioGrant",
    namespaced,
    status = "GrantStatus",
    doc = "Privileges users and roles hold on a Dremio catalog object (Software or Cloud).",
    category = "grantoperator",
    category = "grants",
    shortname = "dgrant",
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.providerRef.name"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".status.target.catalogObjectId"
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
pub struct DremioGrantSpec {
    /// Provider, mode and lifecycle policies.
    #[serde(flatten)]
    pub policy: GrantPolicy,
    /// The catalog object. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("catalogObject is immutable; create a new DremioGrant for another object"))]
    pub catalog_object: DremioCatalogObjectRef,
    /// The grants to keep on the object.
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub grants: Vec<DremioGrantEntry>,
}

/// A catalog object by path or id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.path) != has(self.id)").message("set exactly one of path or id"))]
pub struct DremioCatalogObjectRef {
    /// Path parts, for example `[Samples, samples.dremio.com, zips.json]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 1024)))]
    pub path: Option<Vec<String>>,
    /// Catalog object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9-]+$"))]
    pub id: Option<String>,
}

/// One user or role and its privileges.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.user) != has(self.role)").message("set exactly one of user or role"))]
pub struct DremioGrantEntry {
    /// A user, by name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<DremioPrincipalRef>,
    /// A role, by name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<DremioPrincipalRef>,
    /// Privileges such as `SELECT`, `ALTER`, `MANAGE_GRANTS`.
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 64), pattern(r"^[A-Z][A-Z_]*$"))
    )]
    pub privileges: Vec<String>,
}

/// A Dremio user or role.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.name) != has(self.id)").message("set exactly one of name or id"))]
pub struct DremioPrincipalRef {
    /// Exact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,
    /// Id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9-]+$"))]
    pub id: Option<String>,
}

/// Dremio Software or Cloud: personal access token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "S: Deserialize<'de>"))]
pub struct DremioProvider<S> {
    /// Dremio Software URL, or `https://api.dremio.cloud` for Dremio Cloud.
    #[schemars(length(max = 2048), pattern(BASE_URL))]
    pub url: String,
    /// Dremio Cloud project; set for Cloud (paths under `/v0/projects/{projectId}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9-]+$"))]
    pub project_id: Option<String>,
    /// Personal access token.
    pub token: SecretValue<S>,
}
