//! The custom resources of the contract (`grantoperator.dev/v1alpha1`): the
//! shared parts, and one module per kind.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` inside them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod common;
pub mod dremio;
pub mod grafana;
pub mod provider;
pub mod sigma;
pub mod snowflake;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::*;
pub use dremio::*;
pub use grafana::*;
pub use provider::*;
pub use sigma::*;
pub use snowflake::*;

/// The grant kinds' CRDs, from the list in [`crate::vendors`].
macro_rules! grant_crds {
    ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
        [$(self::$module::$grant::crd()),*]
    };
}

/// Every CRD with the file name it is committed under in `crds/`: the two
/// provider kinds, then one grant kind per vendor.
pub fn all_crds() -> Vec<(String, CustomResourceDefinition)> {
    [GrantProvider::crd(), ClusterGrantProvider::crd()]
        .into_iter()
        .chain(crate::vendors::vendors!(grant_crds))
        .map(|crd| {
            let file = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            (file, crd)
        })
        .collect()
}

/// Every CRD as one multi-document YAML stream, as printed by `grant-operator crd`.
pub fn crds_yaml() -> Result<String, crate::yaml::WriteError> {
    let mut out = String::new();
    for (_, crd) in all_crds() {
        out.push_str("---\n");
        out.push_str(&crd_yaml(&crd)?);
    }
    Ok(out)
}

/// One CRD as YAML, with every string that YAML 1.1 would read as something
/// else quoted (kubectl and Helm read YAML 1.1: a property `on` would reach the
/// API server as `"true"`).
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, crate::yaml::WriteError> {
    crate::yaml::to_kubernetes_yaml(crd)
}
