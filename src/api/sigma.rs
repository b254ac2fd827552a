//! `SigmaGrant`: grants on a Sigma connection.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{BASE_URL, GrantPolicy, GrantStatus, SecretValue};

/// Grants on one Sigma connection.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "grantoperator.dev",
    version = "v1alpha1",
    kind = "SigmaGrant",
    namespaced,
    status = "GrantStatus",
    doc = "Who may use a Sigma connection. The operator keeps the connection's grants matching the union of every SigmaGrant on it.",
    category = "grantoperator",
    category = "grants",
    shortname = "sgrant",
    printcolumn(
        name = "Provider",
        type_ = "string",
        json_path = ".spec.providerRef.name"
    ),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.connectionId"),
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
pub struct SigmaGrantSpec {
    /// Provider, mode and lifecycle policies.
    #[serde(flatten)]
    pub policy: GrantPolicy,
    /// The Sigma connection. Immutable: create another resource for another connection.
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9][A-Za-z0-9_-]*$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("connectionId is immutable; create a new SigmaGrant for another connection"))]
    pub connection_id: String,
    /// The grants to keep on the connection.
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub grants: Vec<SigmaGrantEntry>,
}

/// One member or team and its permission.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.member) != has(self.team)").message("set exactly one of member or team"))]
pub struct SigmaGrantEntry {
    /// An organisation member, by email or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<SigmaMemberRef>,
    /// A team, by exact name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<SigmaTeamRef>,
    /// `usage` (can use) or `annotate` (can use and annotate).
    pub permission: SigmaPermission,
}

/// A Sigma member.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.id) != has(self.email)").message("set exactly one of id or email"))]
pub struct SigmaMemberRef {
    /// Member id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_-]+$"))]
    pub id: Option<String>,
    /// Member email, resolved with the member search (exact, case-insensitive match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 320), pattern(r"^[^@\s]+@[^@\s]+$"))]
    pub email: Option<String>,
}

/// A Sigma team.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.id) != has(self.name)").message("set exactly one of id or name"))]
pub struct SigmaTeamRef {
    /// Team id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9_-]+$"))]
    pub id: Option<String>,
    /// Exact team name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,
}

/// A Sigma connection permission; `annotate` includes `usage`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SigmaPermission {
    /// Can use.
    Usage,
    /// Can use and annotate.
    Annotate,
}

impl SigmaPermission {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigmaPermission::Usage => "usage",
            SigmaPermission::Annotate => "annotate",
        }
    }

    /// Parses a wire name; `None` for permissions the operator does not manage.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "usage" => Some(SigmaPermission::Usage),
            "annotate" => Some(SigmaPermission::Annotate),
            _ => None,
        }
    }
}

/// Sigma Computing: OAuth client credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigmaProvider<S> {
    /// Base URL of the Sigma API for the organisation's cloud and region, for example
    /// `https://aws-api.sigmacomputing.com`.
    #[schemars(length(max = 2048), pattern(BASE_URL))]
    pub api_url: String,
    /// API client id.
    pub client_id: SecretValue<S>,
    /// API client secret.
    pub client_secret: SecretValue<S>,
}
