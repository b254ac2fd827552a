//! Where the review's providers and resources come from: the providers of the
//! sources and the account each reaches, their clients (built once, with the
//! Secrets from the named places), what a `ClusterGrantProvider` admits, and
//! `--from-cluster` (list calls only).

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};

use crate::api::{ClusterGrantProvider, Reason, VendorKind};
use crate::controller::Failure;
use crate::controller::clients::ProviderId;
use crate::vendor_api::{GrantKind, VendorClient};

use crate::cli::manifests::Manifests;
use crate::cli::providers::{self, ProviderSpec};

use super::scope::Engine;

/// A provider of the sources.
pub(super) struct ProviderEntry<'a> {
    pub(super) id: ProviderId,
    pub(super) vendor: Option<VendorKind>,
    pub(super) spec: ProviderSpec<'a>,
    pub(super) in_scope: bool,
}

/// The vendor account a provider reaches, as the controller compares them
/// (providers without one stand for themselves).
pub(super) fn endpoint<K: GrantKind>(entry: &ProviderEntry<'_>) -> String {
    let reached = match entry.spec {
        ProviderSpec::Namespaced(provider) => K::endpoint(&provider.spec),
        ProviderSpec::Cluster(provider) => K::endpoint(&provider.spec),
    };
    reached.unwrap_or_else(|| entry.id.to_string())
}

impl Engine<'_> {
    /// The provider's client, built once.
    pub(super) async fn client(&mut self, id: &ProviderId) -> Result<VendorClient, Failure> {
        if let Some(client) = self.clients.get(id) {
            return client.clone();
        }
        let client = match self.providers.iter().find(|entry| &entry.id == id) {
            Some(entry) => {
                entry
                    .spec
                    .client(id, self.secrets, self.metrics, self.retry)
                    .await
            }
            None => Err(Failure::new(
                Reason::ProviderNotFound,
                format!("{id} is not in the sources"),
            )),
        };
        self.clients.insert(id.clone(), client.clone());
        client
    }

    /// Whether a `ClusterGrantProvider` admits grants of `namespace`, as the
    /// controller decides it from the Namespace's labels.
    pub(super) fn admits(
        &self,
        provider: &ClusterGrantProvider,
        namespace: &str,
    ) -> Result<(), Failure> {
        providers::admits(
            self.manifests,
            provider,
            &format!("ClusterGrantProvider {}", provider.name_any()),
            namespace,
            "its namespaceSelector does not match the Namespace's labels, or the Namespace is not in the sources",
        )
    }
}

/// Providers, grant resources and Namespaces from the cluster (`--from-cluster`):
/// list calls only. Secrets are read one by one when a provider needs them.
pub async fn from_cluster(client: &kube::Client) -> Result<Manifests, String> {
    async fn all<K>(client: &kube::Client, what: &str) -> Result<Vec<K>, String>
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::<K>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|list| list.items)
            .map_err(|error| format!("cannot list {what} in the cluster: {error}"))
    }
    let mut manifests = Manifests {
        providers: all(client, "GrantProviders").await?,
        cluster_providers: all(client, "ClusterGrantProviders").await?,
        ..Manifests::default()
    };
    macro_rules! list_every_kind {
        ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
            $(manifests.$module = all(client, concat!(stringify!($grant), "s")).await?;)*
        };
    }
    crate::vendors::vendors!(list_every_kind);
    // Namespace labels decide what a ClusterGrantProvider admits; without one they
    // are not needed.
    if !manifests.cluster_providers.is_empty() {
        manifests.namespaces = all::<Namespace>(client, "Namespaces").await?;
    }
    Ok(manifests)
}
