//! `GrantProvider` and `ClusterGrantProvider`: where a vendor is and how to log
//! in. Both carry exactly one vendor block; the cluster kind's Secret references
//! name their namespace and it admits grants through a `namespaceSelector`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Message, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    ClusterSecretKeySelector, ProviderStatus, SecretKeySelector, SecretSelector, SecretValue,
};

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

/// The vendor block and connection settings, generic over how Secrets are
/// referenced. One method per vendor block, from the list in [`crate::vendors`].
macro_rules! provider_config {
    ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
        /// The vendor block and connection settings, generic over how Secrets are referenced.
        pub trait ProviderConfig {
            /// The Secret reference type.
            type Secret: SecretSelector + Send + Sync;
            $(
                #[doc = concat!($title, " block.")]
                fn $module(&self) -> Option<&super::$module::$block<Self::Secret>>;
            )*
            /// Per-request timeout.
            fn request_timeout_seconds(&self) -> Option<i32>;
            /// Rate limit.
            fn rate_limit(&self) -> Option<&RateLimit>;
            /// PEM bundle of private CAs.
            fn ca_bundle(&self) -> Option<&SecretValue<Self::Secret>>;
        }

        /// The vendor a provider spec is for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum VendorKind {
            $(
                #[doc = concat!($title, ".")]
                $kind,
            )*
        }

        impl VendorKind {
            /// Every vendor, in the order of the list.
            pub const ALL: &[VendorKind] = &[$(VendorKind::$kind),*];

            /// Lower-case name used in messages and metric labels (the
            /// provider block's name).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(VendorKind::$kind => stringify!($module),)*
                }
            }
        }

        /// Which vendor block a provider spec carries (the schema admits exactly one).
        pub fn vendor_of<P: ProviderConfig>(spec: &P) -> Option<VendorKind> {
            $(
                if spec.$module().is_some() {
                    return Some(VendorKind::$kind);
                }
            )*
            None
        }
    };
}
crate::vendors::vendors!(provider_config);

/// A provider spec: one optional block per vendor of the list, and the
/// connection settings every vendor shares.
macro_rules! provider_spec {
    (
        [$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]
        $(#[$meta:meta])* $name:ident, $secret:ty, { $($extra:tt)* }
    ) => {
        $(#[$meta])*
        #[x_kube(validation = one_vendor_block())]
        pub struct $name {
            $(
                #[doc = concat!($title, ".")]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $module: Option<super::$module::$block<$secret>>,
            )*
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
            $(
                fn $module(&self) -> Option<&super::$module::$block<$secret>> {
                    self.$module.as_ref()
                }
            )*
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

crate::vendors::vendors!(
    provider_spec,
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
    GrantProviderSpec,
    SecretKeySelector,
    {}
);

crate::vendors::vendors!(
    provider_spec,
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
    ClusterGrantProviderSpec,
    ClusterSecretKeySelector,
    {
        /// Namespaces whose grants may use this provider (`{}` admits every namespace).
        pub namespace_selector: LabelSelector,
    }
);

impl std::fmt::Display for VendorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CEL rule that a provider spec sets exactly one vendor block.
fn one_vendor_block() -> Rule {
    let blocks: Vec<&str> = VendorKind::ALL
        .iter()
        .map(|vendor| vendor.as_str())
        .collect();
    let has: Vec<String> = blocks
        .iter()
        .map(|block| format!("has(self.{block})"))
        .collect();
    let named = match blocks.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Rule::new(format!("[{}].filter(x, x).size() == 1", has.join(", "))).message(Message::Message(
        format!("set exactly one vendor block: {named}"),
    ))
}
