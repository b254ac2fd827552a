//! Providers as grants see them: finding the referenced provider, the scoping
//! rules (own namespace, `namespaceSelector`), its readiness, and one vendor
//! client per provider, rebuilt when the provider or one of its Secrets changes
//! (so a rotated Secret is used from the next sync on).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use crate::api::{
    ClusterGrantProvider, GrantProvider, ProviderConfig, ProviderKind, ProviderRef, ProviderStatus,
    READY, Reason, SecretSelector, SecretValue, VendorKind, vendor_of,
};
use crate::credentials::{SecretReader, SecretSource};
use crate::metrics::Metrics;
use crate::vendor_api::http::{HttpClient, HttpConfig, RateLimitConfig, RetryPolicy};
use crate::vendor_api::{self, GrantKind, ProviderSecrets, VendorClient};

use super::{Context, Failure};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which provider object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId {
    /// Kind.
    pub kind: ProviderKind,
    /// Namespace of a `GrantProvider`.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ProviderId {
    /// The provider a grant in `namespace` references.
    pub fn of_ref(reference: &ProviderRef, namespace: &str) -> ProviderId {
        ProviderId {
            kind: reference.kind,
            namespace: match reference.kind {
                ProviderKind::GrantProvider => Some(namespace.to_string()),
                ProviderKind::ClusterGrantProvider => None,
            },
            name: reference.name.clone(),
        }
    }
}

impl ProviderId {
    /// The id of a provider object.
    pub fn of_provider<P: super::provider::ProviderObject>(provider: &P) -> ProviderId {
        ProviderId {
            kind: P::KIND,
            namespace: match P::KIND {
                ProviderKind::GrantProvider => provider.namespace(),
                ProviderKind::ClusterGrantProvider => None,
            },
            name: provider.name_any(),
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A provider found for a grant.
#[derive(Clone, Debug)]
pub enum Provider {
    /// Namespaced.
    Namespaced(Arc<GrantProvider>),
    /// Cluster-scoped.
    Cluster(Arc<ClusterGrantProvider>),
}

impl Provider {
    /// Finds the provider `id` in the stores.
    pub fn find(context: &Context, id: &ProviderId) -> Result<Provider, Failure> {
        let found = match id.kind {
            ProviderKind::GrantProvider => {
                let namespace = id.namespace.as_deref().unwrap_or_default();
                context
                    .stores
                    .providers
                    .get(&ObjectRef::new(&id.name).within(namespace))
                    .map(Provider::Namespaced)
            }
            ProviderKind::ClusterGrantProvider => context
                .stores
                .cluster_providers
                .get(&ObjectRef::new(&id.name))
                .map(Provider::Cluster),
        };
        found.ok_or_else(|| Failure::new(Reason::ProviderNotFound, format!("{id} not found")))
    }

    /// `resourceVersion`, to notice any change of the provider.
    pub fn version(&self) -> Option<String> {
        match self {
            Provider::Namespaced(provider) => provider.resource_version(),
            Provider::Cluster(provider) => provider.resource_version(),
        }
    }

    fn status(&self) -> Option<&ProviderStatus> {
        match self {
            Provider::Namespaced(provider) => provider.status.as_ref(),
            Provider::Cluster(provider) => provider.status.as_ref(),
        }
    }

    fn generation(&self) -> Option<i64> {
        match self {
            Provider::Namespaced(provider) => provider.metadata.generation,
            Provider::Cluster(provider) => provider.metadata.generation,
        }
    }

    /// The timeout of one vendor request through this provider.
    pub fn request_timeout(&self) -> Duration {
        let seconds = match self {
            Provider::Namespaced(provider) => provider.spec.request_timeout_seconds(),
            Provider::Cluster(provider) => provider.spec.request_timeout_seconds(),
        };
        seconds
            .map(|seconds| Duration::from_secs(seconds.max(1) as u64))
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The vendor block the provider carries.
    pub fn vendor(&self) -> Option<VendorKind> {
        match self {
            Provider::Namespaced(provider) => vendor_of(&provider.spec),
            Provider::Cluster(provider) => vendor_of(&provider.spec),
        }
    }

    /// The account identity, for grants of kind `K`.
    pub fn endpoint<K: GrantKind>(&self) -> Option<String> {
        match self {
            Provider::Namespaced(provider) => K::endpoint(&provider.spec),
            Provider::Cluster(provider) => K::endpoint(&provider.spec),
        }
    }

    /// Checks that grants of kind `K` can use this provider: right vendor, and Ready.
    pub fn usable_for<K: GrantKind>(&self, id: &ProviderId) -> Result<(), Failure> {
        if self.vendor() != Some(K::VENDOR) {
            return Err(Failure::new(
                Reason::ProviderNotFound,
                format!(
                    "{id} is not a {} provider; a {} needs one with a {} block",
                    K::VENDOR,
                    K::KIND,
                    K::VENDOR
                ),
            ));
        }
        let ready = self.status().and_then(|status| {
            status
                .conditions
                .iter()
                .find(|condition| condition.type_ == READY)
        });
        match ready {
            Some(condition)
                if condition.status == "True"
                    && condition.observed_generation == self.generation() =>
            {
                Ok(())
            }
            Some(condition) if condition.status != "True" => Err(Failure::new(
                Reason::ProviderNotReady,
                format!(
                    "{id} is not ready ({}): {}",
                    condition.reason, condition.message
                ),
            )),
            _ => Err(Failure::new(
                Reason::ProviderNotReady,
                format!("{id} has not been checked yet"),
            )),
        }
    }

    /// Whether a grant in `namespace` may use this provider.
    pub fn allows(
        &self,
        context: &Context,
        id: &ProviderId,
        namespace: &str,
    ) -> Result<(), Failure> {
        let Provider::Cluster(provider) = self else {
            // A GrantProvider is only ever looked up in the grant's own namespace.
            return Ok(());
        };
        let labels = context
            .stores
            .namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default();
        admits_namespace(
            provider,
            &id.to_string(),
            namespace,
            &labels,
            "namespaceSelector does not match its labels",
        )
    }

    /// The vendor client of this provider.
    pub async fn client(
        &self,
        context: &Context,
        id: &ProviderId,
    ) -> Result<VendorClient, Failure> {
        match self {
            Provider::Namespaced(provider) => {
                context
                    .clients
                    .get(
                        id,
                        provider.as_ref(),
                        provider.namespace().as_deref(),
                        &context.secrets,
                    )
                    .await
            }
            Provider::Cluster(provider) => {
                context
                    .clients
                    .get(id, provider.as_ref(), None, &context.secrets)
                    .await
            }
        }
    }
}

/// Whether a `ClusterGrantProvider` (`shown` as messages name it) admits grants
/// of `namespace`, whose labels are `labels`; `why_not` says, in a refusal,
/// where the labels were read. The controller, `plan` and `access` decide it
/// alike.
pub fn admits_namespace(
    provider: &ClusterGrantProvider,
    shown: &str,
    namespace: &str,
    labels: &std::collections::BTreeMap<String, String>,
    why_not: &str,
) -> Result<(), Failure> {
    let selector =
        Selector::try_from(provider.spec.namespace_selector.clone()).map_err(|error| {
            Failure::new(
                Reason::ProviderNotAllowed,
                format!("{shown} has an invalid namespaceSelector: {error}"),
            )
        })?;
    if selector.matches(labels) {
        Ok(())
    } else {
        Err(Failure::new(
            Reason::ProviderNotAllowed,
            format!("{shown} does not admit namespace {namespace} ({why_not})"),
        ))
    }
}

/// Dispatches to the vendor folders' `connect` modules, from the list in
/// [`crate::vendors`]: which Secrets a vendor block names, and its client.
macro_rules! connect_vendors {
    ([$($module:ident $kind:ident $grant:ident $block:ident $title:literal),* $(,)?]) => {
        /// The Secret values the vendor block of `spec` names.
        fn vendor_secrets<P: ProviderConfig>(spec: &P) -> Vec<&SecretValue<P::Secret>> {
            let mut values = Vec::new();
            $(values.extend(spec.$module().map(vendor_api::$module::connect::secrets).unwrap_or_default());)*
            values
        }

        /// The client of `vendor` from its block of `spec`.
        async fn connect<P: ProviderConfig>(
            vendor: VendorKind,
            spec: &P,
            http: HttpClient,
            read: &Reader<'_, impl SecretSource>,
        ) -> Result<VendorClient, Failure> {
            match vendor {
                $(
                    VendorKind::$kind if let Some(block) = spec.$module() => Ok(VendorClient::$kind(
                        vendor_api::$module::connect::client(block, http, read).await?,
                    )),
                )*
                other => Err(Failure::new(
                    Reason::InvalidSpec,
                    format!("the provider's {other} block cannot be read"),
                )),
            }
        }
    };
}
crate::vendors::vendors!(connect_vendors);

/// Every Secret a provider spec references, as `(namespace, name)`.
pub fn secret_refs<P: ProviderConfig>(
    spec: &P,
    own_namespace: Option<&str>,
) -> Vec<(String, String)> {
    let mut values = vendor_secrets(spec);
    values.extend(spec.ca_bundle());
    let mut out: Vec<(String, String)> = values
        .into_iter()
        .filter_map(|value| {
            let selector = &value.secret_key_ref;
            let namespace = selector.namespace().or(own_namespace)?;
            Some((namespace.to_string(), selector.name().to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Vendor clients per provider.
pub struct VendorClients {
    clients: Mutex<HashMap<ProviderId, (String, VendorClient)>>,
    metrics: Arc<Metrics>,
    retry: RetryPolicy,
}

impl VendorClients {
    /// An empty registry.
    pub fn new(metrics: Arc<Metrics>, retry: RetryPolicy) -> VendorClients {
        VendorClients {
            clients: Mutex::new(HashMap::new()),
            metrics,
            retry,
        }
    }

    /// The client of a provider, built again when the provider or a Secret it references changed.
    pub async fn get<P>(
        &self,
        id: &ProviderId,
        provider: &P,
        own_namespace: Option<&str>,
        secrets: &SecretReader,
    ) -> Result<VendorClient, Failure>
    where
        P: Resource + ProviderConfigOf,
    {
        let spec = provider.config();
        let mut fingerprint = format!(
            "{}/{}",
            provider.meta().uid.as_deref().unwrap_or_default(),
            provider.meta().generation.unwrap_or_default()
        );
        for (namespace, name) in secret_refs(spec, own_namespace) {
            let version = secrets
                .current_version(&namespace, &name)
                .await
                .unwrap_or_else(|| "?".into());
            fingerprint.push_str(&format!("/{namespace}/{name}@{version}"));
        }
        if let Some((known, client)) = self.lock().get(id)
            && *known == fingerprint
        {
            return Ok(client.clone());
        }
        let client = build_client(spec, own_namespace, secrets, &self.metrics, &self.retry).await?;
        self.lock()
            .insert(id.clone(), (fingerprint, client.clone()));
        Ok(client)
    }

    /// The clients currently built (for inspection; their `Debug` shows no secret).
    pub fn snapshot(&self) -> Vec<VendorClient> {
        self.lock()
            .values()
            .map(|(_, client)| client.clone())
            .collect()
    }

    /// Drops the client of a provider that is gone.
    pub fn forget(&self, id: &ProviderId) {
        self.lock().remove(id);
    }

    /// Clients kept (for tests of boundedness).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no client is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProviderId, (String, VendorClient)>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds the vendor client of a provider spec, reading its credentials from
/// `secrets` (the Secrets of `own_namespace` for a namespaced provider). What a
/// vendor block means is its vendor folder's `connect` module's business.
pub async fn build_client<P: ProviderConfig>(
    spec: &P,
    own_namespace: Option<&str>,
    secrets: &impl SecretSource,
    metrics: &Arc<Metrics>,
    retry: &RetryPolicy,
) -> Result<VendorClient, Failure> {
    let read = Reader {
        secrets,
        own_namespace,
    };
    let ca_pem = match spec.ca_bundle() {
        Some(value) => {
            use secrecy::ExposeSecret;
            Some(read.value(value).await?.expose_secret().as_bytes().to_vec())
        }
        None => None,
    };
    let rate_limit = spec.rate_limit().map(|limit| RateLimitConfig {
        requests_per_second: limit.requests_per_second,
        burst: limit
            .burst
            .map(|burst| burst.max(1) as u32)
            .unwrap_or_else(|| limit.requests_per_second.ceil().max(1.0) as u32),
    });
    let config = HttpConfig {
        timeout: spec
            .request_timeout_seconds()
            .map(|seconds| Duration::from_secs(seconds.max(1) as u64))
            .unwrap_or(DEFAULT_TIMEOUT),
        rate_limit,
        ca_pem,
        retry: retry.clone(),
    };
    let vendor = vendor_of(spec)
        .ok_or_else(|| Failure::new(Reason::InvalidSpec, "the provider has no vendor block"))?;
    let http = HttpClient::new(vendor, &config, metrics.clone())?;
    connect(vendor, spec, http, &read).await
}

/// Reads a provider's Secret values: from the reference's namespace, or the
/// provider's own.
struct Reader<'a, R> {
    secrets: &'a R,
    own_namespace: Option<&'a str>,
}

impl<S: SecretSelector + Sync, R: SecretSource> ProviderSecrets<S> for Reader<'_, R> {
    async fn value(&self, value: &SecretValue<S>) -> Result<secrecy::SecretString, Failure> {
        let selector = &value.secret_key_ref;
        let namespace = selector
            .namespace()
            .or(self.own_namespace)
            .unwrap_or_default();
        Ok(self
            .secrets
            .read_key(namespace, selector.name(), selector.key())
            .await?)
    }
}

/// A provider object and its spec.
pub trait ProviderConfigOf {
    /// The spec type.
    type Config: ProviderConfig;
    /// The spec.
    fn config(&self) -> &Self::Config;
}

impl ProviderConfigOf for GrantProvider {
    type Config = crate::api::GrantProviderSpec;
    fn config(&self) -> &Self::Config {
        &self.spec
    }
}

impl ProviderConfigOf for ClusterGrantProvider {
    type Config = crate::api::ClusterGrantProviderSpec;
    fn config(&self) -> &Self::Config {
        &self.spec
    }
}
