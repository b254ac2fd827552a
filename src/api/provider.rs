//! `GrantProvider` and `ClusterGrantProvider`: where a vendor is and how to log
//! in. Both carry exactly one vendor block; the cluster kind's Secret references
//! name their namespace and it admits grants through a `namespaceSelector`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    BASE_URL, ClusterSecretKeySelector, ProviderStatus, SecretKeySelector, SecretSelector,
    SecretValue,
};

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

/// Requests per second and burst for one provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained requests per second (may be fractional, e.g. `0.5`).
    #[schemars(range(min = 0.01, max = 10000.0))]
    pub requests_per_second: f64,
    /// Requests allowed at once after a quiet period (default: one second's worth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub burst: Option<i32>,
}

/// The vendor block and connection settings, generic over how Secrets are referenced.
pub trait ProviderConfig {
    /// The Secret reference type.
    type Secret: SecretSelector + Send + Sync;
    /// Sigma block.
    fn sigma(&self) -> Option<&SigmaProvider<Self::Secret>>;
    /// Grafana block.
    fn grafana(&self) -> Option<&GrafanaProvider<Self::Secret>>;
    /// Snowflake block.
    fn snowflake(&self) -> Option<&SnowflakeProvider<Self::Secret>>;
    /// Dremio block.
    fn dremio(&self) -> Option<&DremioProvider<Self::Secret>>;
    /// Per-request timeout.
    fn request_timeout_seconds(&self) -> Option<i32>;
    /// Rate limit.
    fn rate_limit(&self) -> Option<&RateLimit>;
    /// PEM bundle of private CAs.
    fn ca_bundle(&self) -> Option<&SecretValue<Self::Secret>>;
}

macro_rules! provider_spec {
    ($(#[$meta:meta])* $name:ident, $secret:ty, { $($extra:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            /// Sigma Computing.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sigma: Option<SigmaProvider<$secret>>,
            /// Grafana.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub grafana: Option<GrafanaProvider<$secret>>,
            /// Snowflake.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub snowflake: Option<SnowflakeProvider<$secret>>,
            /// Dremio.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dremio: Option<DremioProvider<$secret>>,
            /// Timeout of one vendor request, in seconds (default 30).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1, max = 600))]
            pub request_timeout_seconds: Option<i32>,
            /// Client-side rate limit for this provider. Unset, requests are only bounded by
            /// the reconciles in flight, and a 429's `Retry-After` pauses the provider.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub rate_limit: Option<RateLimit>,
            /// PEM bundle of private CAs to trust, in addition to the system roots.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub ca_bundle: Option<SecretValue<$secret>>,
            $($extra)*
        }

        impl ProviderConfig for $name {
            type Secret = $secret;
            fn sigma(&self) -> Option<&SigmaProvider<$secret>> {
                self.sigma.as_ref()
            }
            fn grafana(&self) -> Option<&GrafanaProvider<$secret>> {
                self.grafana.as_ref()
            }
            fn snowflake(&self) -> Option<&SnowflakeProvider<$secret>> {
                self.snowflake.as_ref()
            }
            fn dremio(&self) -> Option<&DremioProvider<$secret>> {
                self.dremio.as_ref()
            }
            fn request_timeout_seconds(&self) -> Option<i32> {
                self.request_timeout_seconds
            }
            fn rate_limit(&self) -> Option<&RateLimit> {
                self.rate_limit.as_ref()
            }
            fn ca_bundle(&self) -> Option<&SecretValue<$secret>> {
                self.ca_bundle.as_ref()
            }
        }
    };
}

provider_spec!(
    /// Where a vendor is and how to log in, for grants of this namespace.
    #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kube(
        group = "grantoperator.dev",
        version = "v1alpha1",
        kind = "GrantProvider",
        namespaced,
        status = "ProviderStatus",
        doc = "Where a vendor is and how to log in. Grants of the same namespace reference it; Secrets are read from its namespace.",
        category = "grantoperator",
        shortname = "gprov",
        printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
        printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
    )]
    #[serde(rename_all = "camelCase")]
    #[x_kube(validation = Rule::new("[has(self.sigma), has(self.grafana), has(self.snowflake), has(self.dremio)].filter(x, x).size() == 1").message("set exactly one vendor block: sigma, grafana, snowflake or dremio"))]
    GrantProviderSpec,
    SecretKeySelector,
    {}
);

provider_spec!(
    /// Where a vendor is and how to log in, for grants of the namespaces its selector admits.
    #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kube(
        group = "grantoperator.dev",
        version = "v1alpha1",
        kind = "ClusterGrantProvider",
        status = "ProviderStatus",
        doc = "A cluster-wide provider. Its Secret references name their namespace; grants from namespaces its namespaceSelector admits may use it.",
        category = "grantoperator",
        shortname = "cgprov",
        printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
        printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
    )]
    #[serde(rename_all = "camelCase")]
    #[x_kube(validation = Rule::new("[has(self.sigma), has(self.grafana), has(self.snowflake), has(self.dremio)].filter(x, x).size() == 1").message("set exactly one vendor block: sigma, grafana, snowflake or dremio"))]
    ClusterGrantProviderSpec,
    ClusterSecretKeySelector,
    {
        /// Namespaces whose grants may use this provider (`{}` admits every namespace).
        pub namespace_selector: LabelSelector,
    }
);

/// The vendor a provider spec is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VendorKind {
    /// Sigma Computing.
    Sigma,
    /// Grafana.
    Grafana,
    /// Snowflake.
    Snowflake,
    /// Dremio.
    Dremio,
}

impl VendorKind {
    /// Lower-case name used in messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            VendorKind::Sigma => "sigma",
            VendorKind::Grafana => "grafana",
            VendorKind::Snowflake => "snowflake",
            VendorKind::Dremio => "dremio",
        }
    }
}

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which vendor block a provider spec carries (the schema admits exactly one).
pub fn vendor_of<P: ProviderConfig>(spec: &P) -> Option<VendorKind> {
    if spec.sigma().is_some() {
        Some(VendorKind::Sigma)
    } else if spec.grafana().is_some() {
        Some(VendorKind::Grafana)
    } else if spec.snowflake().is_some() {
        Some(VendorKind::Snowflake)
    } else if spec.dremio().is_some() {
        Some(VendorKind::Dremio)
    } else {
        None
    }
}
