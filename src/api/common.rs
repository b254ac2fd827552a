//! Types shared by every kind: Secret and provider references, the policies
//! every grant resource carries, and the status every grant resource reports.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every kind.
pub const GROUP: &str = "grantoperator.dev";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";
/// The finalizer that makes deletion revoke grants.
pub const FINALIZER: &str = "grantoperator.dev/revoke";
/// The condition type every kind reports.
pub const READY: &str = "Ready";

/// RFC 1123 subdomain, the shape of Secret and provider names.
pub(crate) const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// RFC 1123 label, the shape of namespace names.
pub(crate) const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Go-style duration as accepted by `syncInterval` (`90s`, `10m`, `1h30m`).
pub(crate) const DURATION: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// An http(s) base URL.
pub(crate) const BASE_URL: &str = r"^https?://[^\s/?#]+(/[^\s?#]*)?$";

/// A key of a Secret in the provider's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct SecretKeySelector {
    /// Name of the Secret, in the namespace of the `GrantProvider`.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A key of a Secret in a named namespace (used by `ClusterGrantProvider`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct ClusterSecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63), pattern(DNS_LABEL))]
    pub namespace: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253), pattern(r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// Where a Secret key lives, whatever the provider kind.
pub trait SecretSelector {
    /// Secret name.
    fn name(&self) -> &str;
    /// Key inside the Secret.
    fn key(&self) -> &str;
    /// Namespace, when the reference names one (cluster providers).
    fn namespace(&self) -> Option<&str>;
}

impl SecretSelector for SecretKeySelector {
    fn name(&self) -> &str {
        &self.name
    }
    fn key(&self) -> &str {
        &self.key
    }
    fn namespace(&self) -> Option<&str> {
        None
    }
}

impl SecretSelector for ClusterSecretKeySelector {
    fn name(&self) -> &str {
        &self.name
    }
    fn key(&self) -> &str {
        &self.key
    }
    fn namespace(&self) -> Option<&str> {
        Some(&self.namespace)
    }
}

/// `{ secretKeyRef: { ... } }`: a value read from a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValue<S> {
    /// The Secret key holding the value.
    pub secret_key_ref: S,
}

/// Which provider a grant resource uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct ProviderRef {
    /// `GrantProvider` (same namespace as the grant) or `ClusterGrantProvider`.
    #[serde(default)]
    pub kind: ProviderKind,
    /// Name of the provider.
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN))]
    pub name: String,
}

/// The two provider kinds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ProviderKind {
    /// A namespaced provider in the grant's own namespace.
    #[default]
    GrantProvider,
    /// A cluster-scoped provider; its `namespaceSelector` must admit the grant's namespace.
    ClusterGrantProvider,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::GrantProvider => "GrantProvider",
            ProviderKind::ClusterGrantProvider => "ClusterGrantProvider",
        })
    }
}

/// What happens to live grants that no grant resource declares.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Mode {
    /// Ensure the declared grants exist; touch nothing else.
    #[default]
    Additive,
    /// Also revoke, on the same target, every grant that no grant resource declares.
    Authoritative,
}

/// What deleting the resource does to its grants.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeletionPolicy {
    /// Revoke the grants no other resource declares (through the finalizer).
    #[default]
    Delete,
    /// Leave the grants in place.
    Orphan,
}

/// Whether the operator may write to the vendor for this resource.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ManagementPolicy {
    /// Read, compare and repair.
    #[default]
    Manage,
    /// Read and report the difference in status; never write.
    Observe,
}

/// Fields every grant kind shares (flattened into each spec).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantPolicy {
    /// The provider to reach the vendor with.
    pub provider_ref: ProviderRef,
    /// `Additive` (default) or `Authoritative`.
    #[serde(default)]
    pub mode: Mode,
    /// `Delete` (default) revokes on deletion; `Orphan` leaves grants in place.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// `Manage` (default) or `Observe` (read-only, drift reported in status).
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// Stop reconciling (no vendor calls) until set back to false.
    #[serde(default)]
    pub suspend: bool,
    /// How often the live state is read again to find and repair drift (`5s`, `10m`, `1h`; at
    /// least `1s`). Defaults to the operator's `--sync-interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("syncInterval must be at least 1s"))]
    pub sync_interval: Option<String>,
    /// From this RFC 3339 time on, the resource declares nothing: its grants are revoked and
    /// it reports `Ready=False, reason=Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

/// The state of one status row.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GrantState {
    /// Live on the vendor as declared.
    Applied,
    /// Not yet confirmed live (or, for a grant no longer declared, its revocation is pending).
    Pending,
    /// The vendor refused it or the grantee did not resolve; `message` says why.
    Failed,
    /// `managementPolicy: Observe` and the live state differs.
    Drifted,
}

/// One declared grant, as resolved and applied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantRow {
    /// The resolved grantee, `kind:id` (for example `member:D09b2Z...`), or the declared name
    /// when it did not resolve.
    pub grantee: String,
    /// The grantee as the manifest names it (`jane@example.com`), when that is
    /// not its id; for a grant nobody declares, as the vendor lists it. For
    /// people reading the status: the operator never acts on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The declared permission or privilege.
    pub permission: String,
    /// The vendor's id of the live grant, when the vendor has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// Applied, Pending, Failed or Drifted.
    pub state: GrantState,
    /// Why the row is not Applied.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Resolved ids of the vendor object a grant resource targets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantTarget {
    /// Sigma connection id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Grafana data source numeric id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource_id: Option<i64>,
    /// Grafana data source uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource_uid: Option<String>,
    /// Snowflake grantee, as sent to the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee: Option<String>,
    /// Snowflake securable (or bulk scope), as sent to the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub securable: Option<String>,
    /// Dremio catalog object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_object_id: Option<String>,
}

/// Status of every grant kind.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Resolved ids of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<GrantTarget>,
    /// One row per declared grant (and per grant whose revocation is still pending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantRow>,
    /// When the live state was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// How many grants were repaired after drifting.
    #[serde(default)]
    pub drift_corrections: i64,
}

/// Status of both provider kinds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True once the operator authenticated against the vendor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Conditions as a list-map keyed by `type`, so server-side apply merges them per type.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    let object = schema.ensure_object();
    object.insert("x-kubernetes-list-type".into(), "map".into());
    object.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    schema
}

/// Every condition reason of the contract: one type for conditions, Events and
/// metric labels. Its name (`as_str`, `Display`, `FromStr`) is the variant's,
/// and [`Reason::ALL`] lists them in the contract's order.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
pub enum Reason {
    /// Live state matches.
    Synced,
    /// First reconcile under way.
    Progressing,
    /// Observe mode and the live state differs.
    DriftDetected,
    /// The referenced provider does not exist (or is for another vendor).
    ProviderNotFound,
    /// The provider is not Ready.
    ProviderNotReady,
    /// A cluster provider's `namespaceSelector` does not admit the namespace.
    ProviderNotAllowed,
    /// A Secret or key is missing.
    CredentialsMissing,
    /// The vendor answered 401.
    Unauthorized,
    /// The vendor answered 403.
    Forbidden,
    /// The target object does not exist.
    TargetNotFound,
    /// A grantee does not exist.
    GranteeNotFound,
    /// The vendor refused a grant as invalid.
    InvalidGrant,
    /// The vendor answered 429.
    RateLimited,
    /// 5xx, timeouts, connection errors.
    VendorUnavailable,
    /// The vendor reported a conflicting change.
    Conflict,
    /// `spec.suspend` is true.
    Suspended,
    /// `spec.expiresAt` has passed.
    Expired,
    /// Revocation under way or failing.
    Deleting,
    /// Provider: authenticated against the vendor.
    Authenticated,
    /// Provider: the vendor could not be reached.
    Unreachable,
    /// Provider: the spec cannot be used.
    InvalidSpec,
}

impl Reason {
    /// Every reason of the contract, in its order.
    pub const ALL: &'static [Reason] = <Reason as strum::VariantArray>::VARIANTS;

    /// The reason as written in conditions, Events and metric labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The contract's reason named `name` (as a condition read back shows it).
    pub fn named(name: &str) -> Option<Reason> {
        name.parse().ok()
    }

    /// Whether waiting alone may clear it (an outage, a rate limit, a conflict, a
    /// sync under way), as opposed to a refusal that needs a change of spec,
    /// credentials or vendor data. Decides the reconcile backoff: a transient
    /// failure is retried soon and then less often; a permanent one waits its
    /// resource's sync interval (a change of the resource, its provider or its
    /// Secret wakes it sooner).
    pub fn transient(self) -> bool {
        matches!(
            self,
            Reason::Progressing
                | Reason::RateLimited
                | Reason::VendorUnavailable
                | Reason::Conflict
                | Reason::ProviderNotReady
                | Reason::Unreachable
                | Reason::Deleting
        )
    }
}

/// Parses a Go-style duration (`1h30m`, `90s`, `500ms`) as used by `syncInterval`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if number_len == 0 {
            return None;
        }
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (unit_seconds, unit_len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return None;
        };
        total += value * unit_seconds;
        rest = &rest[unit_len..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5d"), None);
    }
}
