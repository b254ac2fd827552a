//! A provider from the manifests as `plan` and `access` use it: its vendor
//! client (built with the Secrets the user pointed at) and whether a
//! `ClusterGrantProvider` admits a namespace of the manifests.

use std::sync::Arc;

use crate::api::{ClusterGrantProvider, GrantProvider};
use crate::controller::Failure;
use crate::controller::clients::{ProviderId, admits_namespace, build_client};
use crate::metrics::Metrics;
use crate::vendor_api::VendorClient;
use crate::vendor_api::http::RetryPolicy;

use super::manifests::Manifests;
use super::secrets::CliSecrets;

/// A provider of the manifests, of either kind.
#[derive(Clone, Copy)]
pub enum ProviderSpec<'a> {
    /// A `GrantProvider`.
    Namespaced(&'a GrantProvider),
    /// A `ClusterGrantProvider`.
    Cluster(&'a ClusterGrantProvider),
}

impl ProviderSpec<'_> {
    /// The vendor client of the provider `id` names: a `GrantProvider` reads
    /// its Secrets in its own namespace, as the controller does.
    pub async fn client(
        self,
        id: &ProviderId,
        secrets: &CliSecrets,
        metrics: &Arc<Metrics>,
        retry: &RetryPolicy,
    ) -> Result<VendorClient, Failure> {
        match self {
            ProviderSpec::Namespaced(provider) => {
                build_client(
                    &provider.spec,
                    id.namespace.as_deref(),
                    secrets,
                    metrics,
                    retry,
                )
                .await
            }
            ProviderSpec::Cluster(provider) => {
                build_client(&provider.spec, None, secrets, metrics, retry).await
            }
        }
    }
}

/// Whether `provider` (`shown` as messages name it) admits grants of
/// `namespace`, from that Namespace's labels in the manifests (none when the
/// manifests do not define it); `why_not` ends a refusal.
pub fn admits(
    manifests: &Manifests,
    provider: &ClusterGrantProvider,
    shown: &str,
    namespace: &str,
    why_not: &str,
) -> Result<(), Failure> {
    let labels = manifests.namespace_labels(namespace).unwrap_or_default();
    admits_namespace(provider, shown, namespace, &labels, why_not)
}
