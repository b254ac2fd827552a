//! Reading credentials from Secrets.
//!
//! Secret data is read with a GET when a vendor client is built and kept only
//! inside that client as [`SecretString`] (redacted in `Debug`, zeroed on drop).
//! The operator watches Secrets as metadata only, to notice rotations by their
//! `resourceVersion` without holding their data.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use secrecy::SecretString;

/// Why a credential could not be read. Messages name the Secret and key, never the value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    /// The Secret does not exist.
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The key is not in the Secret.
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    KeyNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Key.
        key: String,
    },
    /// The value is empty or not text.
    #[error("key {key:?} of Secret {namespace}/{name} is {problem}")]
    BadValue {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Key.
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The Kubernetes API refused or failed the read.
    #[error("cannot read Secret {namespace}/{name}: {message}")]
    Api {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What happened.
        message: String,
    },
}

/// Reads Secret keys and tells their versions.
#[derive(Clone)]
pub struct SecretReader {
    client: kube::Client,
    metadata: Store<PartialObjectMeta<Secret>>,
}

impl SecretReader {
    /// A reader using `client` for data and `metadata` (a metadata-only reflector) for versions.
    pub fn new(client: kube::Client, metadata: Store<PartialObjectMeta<Secret>>) -> SecretReader {
        SecretReader { client, metadata }
    }

    /// The `resourceVersion` of a Secret as last seen by the watch (`None` when unseen).
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.metadata
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|meta| meta.metadata.resource_version.clone())
    }

    /// The `resourceVersion` of a Secret: from the watch, or, for a Secret the
    /// watch does not cover (a cluster provider's Secret in another namespace
    /// when the operator watches one namespace), from a metadata-only read.
    pub async fn current_version(&self, namespace: &str, name: &str) -> Option<String> {
        if let Some(version) = self.version(namespace, name) {
            return Some(version);
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        api.get_metadata_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|meta| meta.metadata.resource_version)
    }
}

/// Where Secret values come from: the cluster for the controller; manifests,
/// the environment or files for the command-line tools.
pub trait SecretSource: Sync {
    /// The value of `key` in Secret `namespace/name`.
    fn read_key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> impl std::future::Future<Output = Result<SecretString, CredentialError>> + Send;
}

impl SecretSource for SecretReader {
    async fn read_key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretString, CredentialError> {
        read_from_cluster(&self.client, namespace, name, key).await
    }
}

/// Reads one key of a Secret with a GET.
pub async fn read_from_cluster(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretString, CredentialError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|error| CredentialError::Api {
            namespace: namespace.to_string(),
            name: name.to_string(),
            message: describe_kube_error(&error),
        })?;
    let secret = secret.ok_or_else(|| CredentialError::SecretNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })?;
    secret_key(&secret, namespace, name, key)
}

/// The value of `key` in a Secret object (`data`, else `stringData`), checked
/// the same way whatever the Secret came from.
pub fn secret_key(
    secret: &Secret,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretString, CredentialError> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .map(|value| value.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|data| data.get(key))
                .map(|value| value.clone().into_bytes())
        })
        .ok_or_else(|| CredentialError::KeyNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
            key: key.to_string(),
        })?;
    secret_text(bytes, namespace, name, key)
}

/// A Secret value as text: UTF-8, a trailing newline dropped, never empty.
pub fn secret_text(
    bytes: Vec<u8>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SecretString, CredentialError> {
    let bad = |problem| CredentialError::BadValue {
        namespace: namespace.to_string(),
        name: name.to_string(),
        key: key.to_string(),
        problem,
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("not valid UTF-8"))?;
    // Values pasted with a trailing newline are common; it is never part of a credential.
    let text = text.trim_end_matches(['\n', '\r']).to_string();
    if text.trim().is_empty() {
        return Err(bad("empty"));
    }
    Ok(SecretString::from(text))
}

/// A Kubernetes API error in a sentence (status and reason; never request bodies).
pub fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let code = status.code;
            match code {
                403 => format!("forbidden ({}); check the operator's RBAC", status.message),
                _ => format!("{} ({code})", status.message),
            }
        }
        other => other.to_string(),
    }
}
